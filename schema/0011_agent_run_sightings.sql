-- agent_run_sightings: what one request said about one agent run (its kind, times, traces,
-- launch/task/ticket ids and the parent stamps of the codex shim), written by the stitch
-- stage. agent_runs is recomputed from these, so any receiver can resolve any run.
-- ttl_column: toDateTime(LastSeen)
CREATE TABLE IF NOT EXISTS "${database}"."agent_run_sightings" ${cluster} (
    RunId String CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    FirstSeen DateTime64(9) CODEC(Delta, ZSTD(1)),
    LastSeen DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceIds Array(String) CODEC(ZSTD(1)),
    LaunchId String CODEC(ZSTD(1)),
    TaskId String CODEC(ZSTD(1)),
    TicketId String CODEC(ZSTD(1)),
    StampedParentRunId String CODEC(ZSTD(1)),
    StampedParentSpanId String CODEC(ZSTD(1)),
    ThreadId String CODEC(ZSTD(1)),
    ReceivedAt DateTime64(3) DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    INDEX idx_received ReceivedAt TYPE minmax GRANULARITY 1
) ENGINE = ${engine}
PARTITION BY toDate(LastSeen)
ORDER BY (RunId, FirstSeen)
${ttl_expr}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
