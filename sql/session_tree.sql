-- session_tree: one launch / Claude Code session / codex run as a tree of nodes:
--   cc.launch -> Claude session -> interactions -> tool calls -> codex runs -> turns, tool calls
--                                                             -> Python agents -> model calls
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {id:String}            a cc.launch id, Claude session id, codex run id, or trace id; the
--                          tree shown is the whole family the run belongs to (from its top)
-- Returns one row per node: node_id, parent_id ('' for the top), kind, id, name, start,
-- duration_ms, input_tokens, output_tokens, cost_usd (Claude Code's reported cost),
-- codex_est_cost_usd (codex runs: the estimate from the price table codex_prices, README
-- "Costs"), failures (the node's own figures; `otel-receiver tree` adds descendants' figures
-- into totals).
-- Sources: runs and parents from agent_runs (see receiver/stitch.py); interactions and tool
-- calls from otel_traces spans; tokens and cost from log events, which Claude Code and Codex
-- send even with tracing off: claude_code.api_request (input/output tokens, cost_usd) on the
-- session, codex.sse_event response.completed (input/output token counts and the estimate:
-- the view codex_usage, schema/0016_codex_usage.sql) on the codex run;
-- failures from claude_code.tool_result / codex.tool_result (success = false) and
-- claude_code.api_error; a Python agent's (agent_otel) model calls and their tokens from its
-- GenAI spans (gen_ai.usage.input_tokens / output_tokens). A node whose parent span is not itself a node (e.g. a tool call made
-- by a subagent) has parent_span set; the CLI attaches it to the nearest ancestor node.
WITH
    runs AS (
        SELECT RunId, Kind, ParentRunId, ParentSpanId, Resolution, OrphanReason, LaunchId,
               TaskId, TicketId, ThreadId, TraceIds, FirstSeen, LastSeen, ServiceName
        FROM {database:Identifier}.agent_runs FINAL
    ),
    ancestry AS (
        SELECT r.RunId AS RunId,
               multiIf(p3.ParentRunId != '', p3.ParentRunId, p2.ParentRunId != '', p2.ParentRunId,
                       p1.ParentRunId != '', p1.ParentRunId, r.ParentRunId != '', r.ParentRunId,
                       r.RunId) AS TopId
        FROM runs AS r
        LEFT JOIN runs AS p1 ON p1.RunId = r.ParentRunId
        LEFT JOIN runs AS p2 ON p2.RunId = p1.ParentRunId
        LEFT JOIN runs AS p3 ON p3.RunId = p2.ParentRunId
    ),
    top_of_request AS (
        SELECT any(a.TopId) AS TopId FROM ancestry AS a
        INNER JOIN runs AS r ON r.RunId = a.RunId
        WHERE r.RunId = {id:String} OR r.LaunchId = {id:String} OR has(r.TraceIds, {id:String})
           OR a.TopId = {id:String}
    ),
    family AS (
        SELECT r.* FROM runs AS r INNER JOIN ancestry AS a ON a.RunId = r.RunId
        WHERE a.TopId = (SELECT TopId FROM top_of_request)
    ),
    sessions AS (SELECT RunId FROM family WHERE Kind = 'claude_session'),
    codex AS (SELECT RunId, ThreadId FROM family WHERE Kind = 'codex_run'),
    python_agents AS (SELECT RunId FROM family WHERE Kind = 'python_agent'),
    claude_logs AS (
        SELECT LogAttributes['session.id'] AS RunId, EventName, LogAttributes AS a
        FROM {database:Identifier}.otel_logs
        WHERE EventName IN ('claude_code.api_request', 'claude_code.api_error',
                            'claude_code.tool_result')
          AND LogAttributes['session.id'] IN (SELECT RunId FROM sessions)
    ),
    codex_logs AS (
        SELECT c.RunId AS RunId, l.EventName AS EventName, l.LogAttributes AS a,
               l.Timestamp AS Timestamp
        FROM {database:Identifier}.otel_logs AS l
        INNER JOIN codex AS c
            ON if(l.ResourceAttributes['agent.run.id'] != '', l.ResourceAttributes['agent.run.id'],
                  l.LogAttributes['conversation.id']) = c.RunId
        WHERE l.EventName IN ('codex.tool_result', 'codex.api_request')
    ),
    claude_spans AS (
        SELECT SpanId, ParentSpanId, SpanName, SpanAttributes AS a, Timestamp, Duration
        FROM {database:Identifier}.otel_traces
        WHERE ServiceName = 'claude-code'
          AND SpanName IN ('claude_code.interaction', 'claude_code.tool',
                           'claude_code.tool.execution')
          AND SpanAttributes['session.id'] IN (SELECT RunId FROM sessions)
    ),
    tool_failures AS (
        SELECT a['tool_use_id'] AS ToolUseId, countIf(a['success'] = 'false') AS Failures
        FROM claude_logs WHERE EventName = 'claude_code.tool_result' GROUP BY ToolUseId
    ),
    top_placeholder AS (
        -- a parent named by runs (e.g. a cc.launch id) whose own telemetry never arrived
        SELECT DISTINCT ParentRunId AS RunId FROM family
        WHERE ParentRunId != '' AND ParentRunId NOT IN (SELECT RunId FROM family)
    )
SELECT * FROM (
    SELECT concat('run:', RunId) AS node_id, '' AS parent_id, '' AS parent_span,
           'cc_launch' AS kind, RunId AS id,
           'cc.launch (no launch span received)' AS name,
           toDateTime64(0, 9) AS start, 0. AS duration_ms,
           toUInt64(0) AS input_tokens, toUInt64(0) AS output_tokens, 0. AS cost_usd,
           0. AS codex_est_cost_usd, toUInt64(0) AS failures, '' AS detail
    FROM top_placeholder

    UNION ALL
    SELECT concat('run:', f.RunId),
           multiIf(f.Kind IN ('codex_run', 'python_agent') AND tool.SpanId != '',
                   concat('span:', tool.ParentSpanId),
                   f.ParentRunId != '', concat('run:', f.ParentRunId), ''),
           '',
           f.Kind, f.RunId,
           multiIf(f.Kind = 'claude_session', 'claude session',
                   f.Kind = 'codex_run', if(f.ThreadId != '', concat('codex exec (thread ', f.ThreadId, ')'),
                                            'codex exec'),
                   f.Kind = 'python_agent', concat('python agent ', f.ServiceName),
                   concat('cc.launch', if(f.TaskId != '', concat(' task ', f.TaskId), ''),
                          if(f.TicketId != '', concat(' ticket ', f.TicketId), ''))),
           f.FirstSeen,
           (toUnixTimestamp64Nano(f.LastSeen) - toUnixTimestamp64Nano(f.FirstSeen)) / 1e6,
           toUInt64(tokens.input), toUInt64(tokens.output), tokens.cost, tokens.codex_est,
           toUInt64(tokens.failures),
           concat('resolution=', f.Resolution,
                  if(f.OrphanReason != '', concat(' (', f.OrphanReason, ')'), ''),
                  if(f.ParentSpanId != '', concat(' parent_span=', f.ParentSpanId), ''))
    FROM family AS f
    LEFT JOIN (
        SELECT SpanId, ParentSpanId FROM claude_spans WHERE SpanName = 'claude_code.tool.execution'
    ) AS tool ON tool.SpanId = f.ParentSpanId
    LEFT JOIN (
        SELECT RunId,
               sumIf(toUInt64OrZero(a['input_tokens']), EventName = 'claude_code.api_request') AS input,
               sumIf(toUInt64OrZero(a['output_tokens']), EventName = 'claude_code.api_request') AS output,
               sumIf(toFloat64OrZero(a['cost_usd']), EventName = 'claude_code.api_request') AS cost,
               0. AS codex_est,
               countIf(EventName = 'claude_code.api_error') AS failures
        FROM claude_logs GROUP BY RunId
        UNION ALL
        SELECT RunId, toUInt64(sum(input)), toUInt64(sum(output)), 0., sum(codex_est),
               sum(failures)
        FROM (
            -- tokens and the estimate: the view codex_usage (schema/0016_codex_usage.sql)
            SELECT RunId, InputTokens AS input, OutputTokens AS output,
                   CodexEstCostUsd AS codex_est, 0 AS failures
            FROM {database:Identifier}.codex_usage WHERE RunId IN (SELECT RunId FROM codex)
            UNION ALL
            SELECT RunId, 0., 0., 0.,
                   toUInt64(toUInt16OrZero(a['http.response.status_code']) >= 400)
            FROM codex_logs WHERE EventName = 'codex.api_request'
        )
        GROUP BY RunId
    ) AS tokens ON tokens.RunId = f.RunId

    UNION ALL
    SELECT concat('span:', s.SpanId),
           if(s.SpanName = 'claude_code.interaction', concat('run:', s.a['session.id']),
              concat('span:', s.ParentSpanId)),
           s.ParentSpanId,
           if(s.SpanName = 'claude_code.interaction', 'interaction', 'tool_call'),
           s.SpanId,
           if(s.SpanName = 'claude_code.interaction',
              concat('interaction #', s.a['interaction.sequence']),
              s.a['tool_name']),
           s.Timestamp, s.Duration / 1e6, 0, 0, 0., 0., toUInt64(ifNull(tf.Failures, 0)),
           if(s.SpanName = 'claude_code.tool', s.a['tool_use_id'], '')
    FROM claude_spans AS s
    LEFT JOIN tool_failures AS tf ON tf.ToolUseId = s.a['tool_use_id'] AND s.SpanName = 'claude_code.tool'
    WHERE s.SpanName IN ('claude_code.interaction', 'claude_code.tool')

    UNION ALL
    SELECT concat('span:', t.SpanId), concat('run:', t.RunId), '', 'codex_turn', t.SpanId,
           concat('turn ', t.TurnId), t.Timestamp, t.Duration / 1e6, 0, 0, 0., 0., 0, ''
    FROM (
        SELECT s.SpanId AS SpanId, s.RunId AS RunId, s.Timestamp AS Timestamp, s.Duration AS Duration,
               o.SpanAttributes['turn.id'] AS TurnId
        FROM {database:Identifier}.agent_spans AS s
        INNER JOIN {database:Identifier}.otel_traces AS o ON o.SpanId = s.SpanId
        WHERE s.Kind = 'codex_run' AND s.SpanName = 'run_turn'
          AND s.RunId IN (SELECT RunId FROM codex)
    ) AS t

    UNION ALL
    SELECT concat('span:', m.SpanId), concat('run:', m.RunId), '', 'model_call', m.SpanId,
           m.SpanName, m.Timestamp, m.Duration / 1e6, m.InputTokens, m.OutputTokens, 0., 0.,
           toUInt64(m.Failed), m.Model
    FROM (
        SELECT s.SpanId AS SpanId, s.RunId AS RunId, s.SpanName AS SpanName,
               s.Timestamp AS Timestamp, s.Duration AS Duration,
               toUInt64OrZero(o.SpanAttributes['gen_ai.usage.input_tokens']) AS InputTokens,
               toUInt64OrZero(o.SpanAttributes['gen_ai.usage.output_tokens']) AS OutputTokens,
               o.StatusCode = 'Error' AS Failed,
               o.SpanAttributes['gen_ai.response.model'] AS Model
        FROM {database:Identifier}.agent_spans AS s
        INNER JOIN {database:Identifier}.otel_traces AS o ON o.SpanId = s.SpanId
        WHERE s.Kind = 'python_agent' AND s.RunId IN (SELECT RunId FROM python_agents)
          AND o.SpanAttributes['gen_ai.operation.name'] != ''
    ) AS m

    UNION ALL
    SELECT concat('log:', toString(cityHash64(RunId, Timestamp, a['call_id']))),
           concat('run:', RunId), '', 'codex_tool_call', a['call_id'], a['tool_name'],
           Timestamp, toFloat64OrZero(a['duration_ms']), 0, 0, 0., 0.,
           toUInt64(a['success'] = 'false'), ''
    FROM codex_logs WHERE EventName = 'codex.tool_result'
)
ORDER BY start, node_id
