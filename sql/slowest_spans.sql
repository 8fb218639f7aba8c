-- slowest_spans: the longest spans in the window, with the agent run each belongs to.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 24h)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
--   {limit:UInt32}         how many spans (default 20)
--   {service:String}       only this service.name, e.g. claude-code or codex_exec (default: all)
--   {session:String}       only spans of this Claude session or codex run (default: all)
-- Columns: start, duration_ms, service, span, agent (claude | codex | ''), run_id (Claude
--   session.id; codex: the shim's agent.run.id, else its thread id where the span carries one),
--   status, trace_id, span_id, parent_span_id.
-- Source: spans (otel_traces) started in the window; durations are end - start. Spans whose
--   end precedes their start (stored as a wrapped-around Duration) are left out.
-- Table: start, duration_ms, service, span, agent, run_id, status, trace_id
SELECT start, duration_ms, service, span, agent, run_id, status, trace_id, span_id,
       parent_span_id
FROM (
    SELECT Timestamp AS start,
           round(Duration / 1e6, 3) AS duration_ms,
           Duration AS duration_ns,
           ServiceName AS service,
           SpanName AS span,
           multiIf(startsWith(ServiceName, 'codex'), 'codex',
                   SpanAttributes['session.id'] != '', 'claude', '') AS agent,
           multiIf(agent = 'claude', SpanAttributes['session.id'],
                   agent != 'codex', '',
                   ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                   length(SpanAttributes['thread.id']) = 36, SpanAttributes['thread.id'],
                   SpanAttributes['conversation.id']) AS run_id,
           StatusCode AS status,
           TraceId AS trace_id,
           SpanId AS span_id,
           ParentSpanId AS parent_span_id
    FROM {database:Identifier}.otel_traces
    WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
      AND Duration < 9223372036854775808
      AND ({service:String} = '' OR ServiceName = {service:String})
)
WHERE {session:String} = '' OR run_id = {session:String}
ORDER BY duration_ns DESC, start, span_id
LIMIT {limit:UInt32}
