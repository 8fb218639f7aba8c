-- tools: tool calls per agent kind and tool: count, success rate, p50/p95 duration
--   Plus one row per agent kind over all its tools (tool = '(all)').
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: agent (claude | codex), tool, calls, failures (success = false), success_rate
--   (0..1), p50_ms, p95_ms, max_ms (duration_ms; percentiles interpolated between the exact
--   values, as quantileExactInclusive does), runs (distinct sessions / codex runs).
-- Source: the log events claude_code.tool_result and codex.tool_result (tool_name, success,
--   duration_ms), one per tool call; the same events count tool calls and failures in
--   `sessions`, `codex_runs` and `activity`. (Spans would need Claude Code's beta tracing.)
-- Table: agent, tool, calls, failures, success_rate, p50_ms, p95_ms, max_ms, runs
SELECT agent,
       if(grouping(tool_name) = 1, '(all)', tool_name) AS tool,
       count() AS calls,
       countIf(success = 'false') AS failures,
       round(countIf(success = 'true') / count(), 4) AS success_rate,
       round(quantileExactInclusive(0.5)(duration_ms), 1) AS p50_ms,
       round(quantileExactInclusive(0.95)(duration_ms), 1) AS p95_ms,
       round(max(duration_ms), 1) AS max_ms,
       uniqExact(run_id) AS runs
FROM (
    SELECT if(EventName = 'claude_code.tool_result', 'claude', 'codex') AS agent,
           LogAttributes['tool_name'] AS tool_name,
           LogAttributes['success'] AS success,
           toFloat64OrZero(LogAttributes['duration_ms']) AS duration_ms,
           multiIf(agent = 'claude', LogAttributes['session.id'],
                   ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                   LogAttributes['conversation.id']) AS run_id
    FROM {database:Identifier}.otel_logs
    WHERE EventName IN ('claude_code.tool_result', 'codex.tool_result')
      AND Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
)
GROUP BY GROUPING SETS ((agent, tool_name), (agent))
ORDER BY agent, grouping(tool_name) = 0, calls DESC, tool
