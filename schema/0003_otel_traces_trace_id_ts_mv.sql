-- otel_traces_trace_id_ts_mv: on every insert into otel_traces, writes min/max(Timestamp) per non-empty TraceId of the block into otel_traces_trace_id_ts.
-- Source: opentelemetry-collector-contrib exporter/clickhouseexporter internal/sqltemplates/traces_id_ts_lookup_mv.sql at commit 57b29d74154d72320747c8dd2a0b4a1629a39187
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'. No engine, no TTL, no SETTINGS (a TO view). Identical to upstream.
CREATE MATERIALIZED VIEW IF NOT EXISTS "${database}"."otel_traces_trace_id_ts_mv" ${cluster}
TO "${database}"."otel_traces_trace_id_ts"
AS SELECT
    TraceId,
    min(Timestamp) as Start,
    max(Timestamp) as End
FROM "${database}"."otel_traces"
WHERE TraceId != ''
GROUP BY TraceId
