-- agent_runs: one row per agent run (a Claude Code session, a codex exec run, a cc.launch)
-- with its resolved parent. Recomputed by every receiver's resolver from agent_spans and
-- agent_run_sightings; a better resolution (span link > shim stamps > cc.launch.id >
-- root/orphan) always carries a higher Version, so it wins. Query with FINAL.
-- Resolution: span_link | stamped | launch | root | orphan (OrphanReason says why).
-- ttl_column: toDateTime(LastSeen)
CREATE TABLE IF NOT EXISTS "${database}"."agent_runs" ${cluster} (
    RunId String CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ParentRunId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    Resolution LowCardinality(String) CODEC(ZSTD(1)),
    OrphanReason String CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    TraceIds Array(String) CODEC(ZSTD(1)),
    LaunchId String CODEC(ZSTD(1)),
    TaskId String CODEC(ZSTD(1)),
    TicketId String CODEC(ZSTD(1)),
    ThreadId String CODEC(ZSTD(1)),
    FirstSeen DateTime64(9) CODEC(Delta, ZSTD(1)),
    LastSeen DateTime64(9) CODEC(Delta, ZSTD(1)),
    Version UInt64 CODEC(ZSTD(1))
) ENGINE = ReplacingMergeTree(Version)
ORDER BY (RunId)
${ttl_expr}
SETTINGS index_granularity = 8192
