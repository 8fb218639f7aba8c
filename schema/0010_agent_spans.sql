-- agent_spans: which agent run each span belongs to (one row per span of a Claude Code session,
-- codex run or cc.launch), written by the receiver's stitch stage. Parent resolution looks
-- spans up here by SpanId; the tree reads a run's spans by RunId.
-- ttl_column: toDateTime(Timestamp)
CREATE TABLE IF NOT EXISTS "${database}"."agent_spans" ${cluster} (
    SpanId String CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    RunId String CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    INDEX idx_run_id RunId TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_parent ParentSpanId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (SpanId)
${ttl_expr}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
