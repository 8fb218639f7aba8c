-- activity: events per minute per session / codex run (prompts, API calls, tools), for a live view
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 1h)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
--   {session:String}       only this Claude session or codex run (default: all)
-- Columns: minute (UTC, start of the minute), agent (claude | codex), run_id (Claude
--   session.id; codex: the shim's agent.run.id, else its thread id conversation.id), events
--   (all claude_code.* / codex.* log events), prompts, api_requests (failed ones included),
--   api_errors, tool_calls, tool_failures.
-- Source: log events, which both agents export every few seconds (metrics come once a minute,
--   spans only with Claude Code's beta tracing), counted as in `sessions`. No tokens or cost
--   here: those come from metrics (see `sessions`, `tokens_by_model`), exported per interval.
-- Table: minute, agent, run_id, events, prompts, api_requests, api_errors, tool_calls, tool_failures
SELECT toStartOfMinute(Timestamp, 'UTC') AS minute,
       if(startsWith(EventName, 'claude_code.'), 'claude', 'codex') AS agent,
       if(agent = 'claude', LogAttributes['session.id'],
          if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
             LogAttributes['conversation.id'])) AS run_id,
       count() AS events,
       countIf(EventName IN ('claude_code.user_prompt', 'codex.user_prompt')) AS prompts,
       countIf(EventName IN ('claude_code.api_request', 'claude_code.api_error',
                             'codex.api_request')) AS api_requests,
       countIf(EventName = 'claude_code.api_error'
               OR (EventName = 'codex.api_request'
                   AND (LogAttributes['error.message'] != ''
                        OR NOT toUInt16OrZero(LogAttributes['http.response.status_code'])
                               BETWEEN 200 AND 299))) AS api_errors,
       countIf(EventName IN ('claude_code.tool_result', 'codex.tool_result')) AS tool_calls,
       countIf(EventName IN ('claude_code.tool_result', 'codex.tool_result')
               AND LogAttributes['success'] = 'false') AS tool_failures
FROM {database:Identifier}.otel_logs
WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
  AND (startsWith(EventName, 'claude_code.') OR startsWith(EventName, 'codex.'))
GROUP BY minute, agent, run_id
HAVING run_id != '' AND ({session:String} = '' OR run_id = {session:String})
ORDER BY minute, agent, run_id
