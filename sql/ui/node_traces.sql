-- node_traces: the trace of each span and agent run shown in a session tree
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {spans:Array(String)}  span ids (interactions, tool calls, codex turns)
--   {runs:Array(String)}   agent run ids (launches, Claude sessions, codex runs)
-- Columns: id (the span or run id), trace_id.
-- Source: agent_spans (ordered by SpanId) and agent_runs (the trace a run was first seen in).
SELECT SpanId AS id, any(TraceId) AS trace_id
FROM {database:Identifier}.agent_spans
WHERE SpanId IN {spans:Array(String)}
GROUP BY SpanId
UNION ALL
SELECT RunId, any(TraceId)
FROM {database:Identifier}.agent_runs FINAL
WHERE RunId IN {runs:Array(String)} AND TraceId != ''
GROUP BY RunId
