-- trace_spans: every span of one trace, with attributes, events and links, by start time
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {trace:String}         the trace id (lower-case hex)
--   {limit:UInt32}         at most this many spans (default 5000)
-- Columns: start, duration_ns, trace_id, span_id, parent_span_id, name, kind, service, status,
--   status_message, attributes, resource, scope, event_times, event_names, event_attributes,
--   link_trace_ids, link_span_ids, link_attributes.
-- Source: otel_traces, read only in the trace's time range from otel_traces_trace_id_ts (the
--   exporter's lookup table for exactly this), so one trace never scans the whole table.
WITH bounds AS (
    SELECT toDateTime64(min(Start), 9) - INTERVAL 1 MINUTE AS first,
           toDateTime64(max(End), 9) + INTERVAL 1 MINUTE AS last
    FROM {database:Identifier}.otel_traces_trace_id_ts
    WHERE TraceId = {trace:String}
)
SELECT Timestamp AS start, Duration AS duration_ns, TraceId AS trace_id, SpanId AS span_id,
       ParentSpanId AS parent_span_id, SpanName AS name, SpanKind AS kind,
       ServiceName AS service, StatusCode AS status, StatusMessage AS status_message,
       SpanAttributes AS attributes, ResourceAttributes AS resource, ScopeName AS scope,
       Events.Timestamp AS event_times, Events.Name AS event_names,
       Events.Attributes AS event_attributes, Links.TraceId AS link_trace_ids,
       Links.SpanId AS link_span_ids, Links.Attributes AS link_attributes
FROM {database:Identifier}.otel_traces
WHERE TraceId = {trace:String}
  AND Timestamp >= (SELECT first FROM bounds) AND Timestamp <= (SELECT last FROM bounds)
ORDER BY Timestamp, SpanId
LIMIT {limit:UInt32}
