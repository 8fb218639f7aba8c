-- otel_traces_trace_id_ts: per-TraceId first/last span start time, filled by otel_traces_trace_id_ts_mv (trace lookup table).
-- Source: opentelemetry-collector-contrib exporter/clickhouseexporter internal/sqltemplates/traces_id_ts_lookup_table.sql at commit 61540ced55e993255df9bcfca48ed89a87d3914f
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'; engine = 'MergeTree()' by default (same tableEngineString as otel_traces);
-- ttl_expr = '' or 'TTL toDateTime(Start) + toIntervalDay(N)' (exporter GenerateTTLExpr: Day/Hour/Minute/Second by divisibility).
-- ttl_column: toDateTime(Start)
-- Deliberate difference from upstream: SETTINGS adds non_replicated_deduplication_window = 1000.
CREATE TABLE IF NOT EXISTS "${database}"."otel_traces_trace_id_ts" ${cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${engine}
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
${ttl_expr}
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000
