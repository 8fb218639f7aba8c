-- trace_logs: the log records of one trace, in time order
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {trace:String}         the trace id (lower-case hex)
--   {limit:UInt32}         at most this many records (default 2000)
-- Columns: ts, service, severity, event, body, span_id, attributes.
-- Source: otel_logs in the trace's time range (otel_traces_trace_id_ts, widened by five
--   minutes: log exporters batch) through its TraceId index.
WITH bounds AS (
    SELECT toDateTime64(min(Start), 9) - INTERVAL 5 MINUTE AS first,
           toDateTime64(max(End), 9) + INTERVAL 5 MINUTE AS last
    FROM {database:Identifier}.otel_traces_trace_id_ts
    WHERE TraceId = {trace:String}
)
SELECT Timestamp AS ts, ServiceName AS service, SeverityText AS severity, EventName AS event,
       Body AS body, SpanId AS span_id, LogAttributes AS attributes
FROM {database:Identifier}.otel_logs
WHERE TraceId = {trace:String}
  AND Timestamp >= (SELECT first FROM bounds) AND Timestamp <= (SELECT last FROM bounds)
ORDER BY Timestamp
LIMIT {limit:UInt32}
