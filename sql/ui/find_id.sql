-- find_id: what an id names (agent run, launch, trace, span, prompt, tool use) and where to see it
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {id:String}            any id a user may paste: cc.launch id, Claude session id, codex run
--                          or thread id, trace id, span id, prompt.id, tool_use_id
-- Columns: kind (run | trace | span | prompt | tool_use), run_id (the run to show, for run,
--   prompt and tool_use), trace_id (for trace and span). One row per way the id is known, runs
--   first.
-- Source: agent_runs (runs, launches and their traces), otel_traces_trace_id_ts (traces),
--   agent_spans (spans), otel_logs (prompt.id and tool_use_id of Claude Code events).
SELECT kind, run_id, trace_id FROM (
    SELECT 1 AS rank, 'run' AS kind, RunId AS run_id, TraceId AS trace_id
    FROM {database:Identifier}.agent_runs FINAL
    WHERE RunId = {id:String} OR LaunchId = {id:String} OR ThreadId = {id:String}
    LIMIT 1
    UNION ALL
    SELECT 2, 'trace', '', TraceId
    FROM {database:Identifier}.otel_traces_trace_id_ts WHERE TraceId = {id:String} LIMIT 1
    UNION ALL
    SELECT 3, 'span', RunId, TraceId
    FROM {database:Identifier}.agent_spans WHERE SpanId = {id:String} LIMIT 1
    UNION ALL
    SELECT 4, if(LogAttributes['prompt.id'] = {id:String}, 'prompt', 'tool_use'),
           LogAttributes['session.id'], TraceId
    FROM {database:Identifier}.otel_logs
    WHERE has(mapValues(LogAttributes), {id:String})
      AND (LogAttributes['prompt.id'] = {id:String} OR LogAttributes['tool_use_id'] = {id:String})
      AND LogAttributes['session.id'] != ''
    LIMIT 1
)
ORDER BY rank
