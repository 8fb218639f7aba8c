-- sessions: Claude Code sessions and their codex runs: time, user, prompts, API calls, tokens, cost, tools
--   One row per Claude Code session and per codex run active in the window, each codex run
--   right after the Claude session that spawned it.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
--   {session:String}       only this Claude session (and its codex runs) or codex run (default: all)
-- Columns: agent (claude | codex | python_agent), id (Claude session.id; codex run id = the
--   codex shim's agent.run.id, else the codex thread id conversation.id; python_agent: the
--   agent.run.id agent_otel stamps), parent_session (codex, python_agent: the Claude session
--   that spawned it), start, end, duration_s (first to last telemetry in the window),
--   user (Claude user.id; codex carries none), models, prompts, api_calls (requests made,
--   failed ones included), api_errors, input_tokens, output_tokens, cache_read_tokens,
--   cache_creation_tokens, reasoning_tokens, cost_usd (Claude Code's reported cost; 0 for
--   codex), codex_est_cost_usd (the Codex estimate: tokens times the price table codex_prices,
--   README "Costs"), total_cost_incl_est_usd (includes an estimate: cost_usd +
--   codex_est_cost_usd, plus for a Claude session the estimate of its codex runs),
--   active_time_s, tool_calls,
--   tool_failures, codex_children (codex runs spawned by the session), launch_id (cc.launch.id),
--   waits and wait_s (times and seconds the session waited for a person: from a Notification
--   hook with notification_type permission_prompt or idle_prompt to the next PostToolUse,
--   PostToolUseFailure, UserPromptSubmit, Stop or SessionEnd hook, or to the window's end; 0
--   without hooks). Every figure counts what happened inside the window.
-- Sources (the same in every report, so reports agree on the same data):
--   Claude Code tokens, cost and active time: the metrics claude_code.token.usage,
--   claude_code.cost.usage and claude_code.active_time.total, which Claude Code exports
--   whenever telemetry is on (log events and spans are optional). DELTA points are summed;
--   CUMULATIVE points count what each added since the previous point of the same series
--   (metric, resource, attributes, StartTimeUnix), a new StartTimeUnix being a reset.
--   Codex tokens and estimate: the view codex_usage (schema/0016_codex_usage.sql) over the log
--   events codex.sse_event (event.kind = response.completed), which name their run even
--   without the codex shim (codex metrics do not); codex reports no cost.
--   Prompts, API calls and errors, tool calls and failures: log events (claude_code.* and
--   codex.*: user_prompt, api_request, api_error, tool_result). Start and end also use spans.
--   Parent session of a codex run: by span link first (a codex span whose parent span is a
--   Claude Code span, e.g. codex.exec under the Bash tool.execution), else the codex shim's
--   resource attribute agent.parent.session.id.
--   Python agents (agent_otel, resource agent.kind = python_agent): models, API calls, errors
--   and tokens from their model-call spans (gen_ai.operation.name, gen_ai.usage.*); parent
--   session as for codex (span link, then agent.parent.session.id).
-- Table: agent, id, parent_session, start, duration_s, user, models, prompts, api_calls, api_errors, input_tokens, output_tokens, cache_read_tokens, cost_usd, codex_est_cost_usd, total_cost_incl_est_usd, tool_calls, tool_failures, codex_children, wait_s
WITH
    claude_points AS (
        -- metric increments, one row per point: the view metric_increments
        -- (schema/0015_metric_increments.sql) holds the cumulative-to-delta rule
        SELECT MetricName, Attributes, TimeUnix, Delta
        FROM {database:Identifier}.metric_increments
        WHERE MetricName IN ('claude_code.token.usage', 'claude_code.cost.usage',
                           'claude_code.active_time.total')
          AND TimeUnix >= {since:DateTime64(9)} AND TimeUnix < {until:DateTime64(9)}
    ),
    events AS (
        SELECT if(startsWith(EventName, 'claude_code.'), 'claude', 'codex') AS agent,
               if(agent = 'claude', LogAttributes['session.id'],
                  if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                     LogAttributes['conversation.id'])) AS run_id,
               EventName AS name, LogAttributes AS a, ResourceAttributes AS r, Timestamp AS ts
        FROM {database:Identifier}.otel_logs
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
          AND (startsWith(EventName, 'claude_code.') OR startsWith(EventName, 'codex.'))
    ),
    spans AS (
        SELECT multiIf(ResourceAttributes['agent.kind'] = 'python_agent', 'python_agent',
                       startsWith(ServiceName, 'codex'), 'codex', 'claude') AS agent,
               multiIf(agent = 'claude', SpanAttributes['session.id'],
                       ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                       length(SpanAttributes['thread.id']) = 36, SpanAttributes['thread.id'],
                       SpanAttributes['conversation.id']) AS run_id,
               Timestamp, Duration, ParentSpanId, ResourceAttributes AS r,
               SpanAttributes AS a, StatusCode = 'Error' AS failed,
               agent = 'python_agent' AND a['gen_ai.operation.name'] != '' AS model_call
        FROM {database:Identifier}.otel_traces
        WHERE Timestamp >= {since:DateTime64(9)} - INTERVAL 1 DAY
          AND Timestamp < {until:DateTime64(9)}
          AND (startsWith(ServiceName, 'codex') OR startsWith(SpanName, 'claude_code.')
               OR ResourceAttributes['agent.kind'] = 'python_agent')
    ),
    links AS (
        -- codex / python_agent spans whose parent span is a Claude Code span (codex.exec or
        -- agent_otel's root span under tool.execution)
        SELECT c.run_id AS run_id, any(p.session) AS parent_session,
               any(c.ParentSpanId) AS parent_span
        FROM (SELECT run_id, ParentSpanId FROM spans
              WHERE agent != 'claude' AND run_id != '' AND ParentSpanId != '') AS c
        INNER JOIN (
            SELECT SpanId, SpanAttributes['session.id'] AS session
            FROM {database:Identifier}.otel_traces
            WHERE startsWith(SpanName, 'claude_code.') AND SpanAttributes['session.id'] != ''
              AND Timestamp >= {since:DateTime64(9)} - INTERVAL 1 DAY
              AND Timestamp < {until:DateTime64(9)}
        ) AS p ON p.SpanId = c.ParentSpanId
        GROUP BY c.run_id
    ),
    facts AS (
        SELECT agent, run_id, min(ts) AS first, max(ts) AS last,
               anyIf(a['user.id'], a['user.id'] != '') AS user,
               groupUniqArrayIf(a['model'], a['model'] != '') AS models,
               countIf(name IN ('claude_code.user_prompt', 'codex.user_prompt')) AS prompts,
               countIf(name IN ('claude_code.api_request', 'claude_code.api_error',
                                'codex.api_request')) AS api_calls,
               countIf(name = 'claude_code.api_error'
                       OR (name = 'codex.api_request'
                           AND (a['error.message'] != ''
                                OR NOT toUInt16OrZero(a['http.response.status_code'])
                                       BETWEEN 200 AND 299))) AS api_errors,
               countIf(name IN ('claude_code.tool_result', 'codex.tool_result')) AS tool_calls,
               countIf(name IN ('claude_code.tool_result', 'codex.tool_result')
                       AND a['success'] = 'false') AS tool_failures,
               0. AS input, 0. AS output, 0. AS cache_read, 0. AS cache_creation,
               0. AS reasoning, 0. AS cost, 0. AS active_time, 0. AS codex_est,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != '') AS stamped,
               anyIf(if(r['cc.launch.id'] != '', r['cc.launch.id'], a['cc.launch.id']),
                     r['cc.launch.id'] != '' OR a['cc.launch.id'] != '') AS launch
        FROM events
        WHERE run_id != ''
        GROUP BY agent, run_id
        UNION ALL
        -- codex tokens and the estimate: the view codex_usage (schema/0016_codex_usage.sql)
        SELECT 'codex', RunId, min(Timestamp), max(Timestamp), '', [], 0, 0, 0, 0, 0,
               sum(InputTokens), sum(OutputTokens), sum(CachedTokens), sum(CacheWriteTokens),
               sum(ReasoningTokens), 0., 0., sum(CodexEstCostUsd), '', ''
        FROM {database:Identifier}.codex_usage
        WHERE RunId != ''
          AND Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
        GROUP BY RunId
        UNION ALL
        SELECT 'claude', Attributes['session.id'], min(TimeUnix), max(TimeUnix),
               anyIf(Attributes['user.id'], Attributes['user.id'] != ''),
               groupUniqArrayIf(Attributes['model'], Attributes['model'] != ''),
               0, 0, 0, 0, 0,
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'input'),
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'output'),
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'cacheRead'),
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'cacheCreation'),
               0.,
               sumIf(Delta, MetricName = 'claude_code.cost.usage'),
               sumIf(Delta, MetricName = 'claude_code.active_time.total'),
               0., '', ''
        FROM claude_points
        WHERE Attributes['session.id'] != ''
        GROUP BY Attributes['session.id']
        UNION ALL
        SELECT agent, run_id, min(Timestamp),
               max(addNanoseconds(Timestamp, toInt64(least(Duration, 4611686018427387904)))),
               '',
               groupUniqArrayIf(if(a['gen_ai.response.model'] != '', a['gen_ai.response.model'],
                                   a['gen_ai.request.model']), model_call),
               0, countIf(model_call), countIf(model_call AND failed), 0, 0,
               sumIf(toFloat64OrZero(a['gen_ai.usage.input_tokens']), model_call),
               sumIf(toFloat64OrZero(a['gen_ai.usage.output_tokens']), model_call),
               sumIf(toFloat64OrZero(a['gen_ai.usage.cache_read.input_tokens']), model_call),
               0., 0., 0., 0., 0.,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != ''),
               anyIf(r['cc.launch.id'], r['cc.launch.id'] != '')
        FROM spans
        WHERE run_id != '' AND Timestamp >= {since:DateTime64(9)}
        GROUP BY agent, run_id
    ),
    runs AS (
        SELECT f.agent AS agent, f.run_id AS id,
               multiIf(f.agent = 'claude', '', l.parent_session != '', l.parent_session,
                       f.stamped) AS parent_session,
               f.start AS start, f.end AS end,
               round((toUnixTimestamp64Nano(f.end) - toUnixTimestamp64Nano(f.start)) / 1e9, 3)
                   AS duration_s,
               f.user AS user, f.models AS models, f.prompts AS prompts,
               f.api_calls AS api_calls, f.api_errors AS api_errors,
               toUInt64(round(f.input)) AS input_tokens,
               toUInt64(round(f.output)) AS output_tokens,
               toUInt64(round(f.cache_read)) AS cache_read_tokens,
               toUInt64(round(f.cache_creation)) AS cache_creation_tokens,
               toUInt64(round(f.reasoning)) AS reasoning_tokens,
               round(f.cost, 6) AS cost_usd, round(f.codex_est, 6) AS codex_est_cost_usd,
               round(f.active_time, 3) AS active_time_s,
               f.tool_calls AS tool_calls, f.tool_failures AS tool_failures,
               f.launch AS launch_id
        FROM (
            SELECT agent, run_id, min(first) AS start, max(last) AS end,
                   anyIf(user, user != '') AS user,
                   arraySort(arrayDistinct(arrayFlatten(groupArray(models)))) AS models,
                   sum(prompts) AS prompts, sum(api_calls) AS api_calls,
                   sum(api_errors) AS api_errors, sum(tool_calls) AS tool_calls,
                   sum(tool_failures) AS tool_failures, sum(input) AS input,
                   sum(output) AS output, sum(cache_read) AS cache_read,
                   sum(cache_creation) AS cache_creation, sum(reasoning) AS reasoning,
                   sum(cost) AS cost, sum(active_time) AS active_time,
                   sum(codex_est) AS codex_est,
                   anyIf(stamped, stamped != '') AS stamped, anyIf(launch, launch != '') AS launch
            FROM facts
            GROUP BY agent, run_id
        ) AS f
        LEFT JOIN links AS l ON l.run_id = f.run_id
    ),
    hook_marks AS (
        -- hook events; a wait is the run of opening notifications between two closing events
        SELECT session, ts, opens, closes,
               countIf(closes) OVER (PARTITION BY session ORDER BY ts
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS closed
        FROM (
            SELECT LogAttributes['session.id'] AS session, Timestamp AS ts,
                   LogAttributes['hook_event_name'] AS event,
                   event = 'Notification' AND LogAttributes['notification_type']
                       IN ('permission_prompt', 'idle_prompt') AS opens,
                   event IN ('PostToolUse', 'PostToolUseFailure', 'UserPromptSubmit', 'Stop',
                             'SessionEnd') AS closes
            FROM {database:Identifier}.otel_logs
            WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
              AND (startsWith(EventName, 'claude_code.hook.')
                   OR startsWith(EventName, 'codex.hook.'))
              AND LogAttributes['session.id'] != ''
        )
    ),
    waits AS (
        SELECT w.session AS session, count() AS waits,
               round(sum(toUnixTimestamp64Nano(if(e.session = '', {until:DateTime64(9)}, e.end))
                         - toUnixTimestamp64Nano(w.start)) / 1e9, 3) AS wait_s
        FROM (SELECT session, closed, min(ts) AS start FROM hook_marks WHERE opens
              GROUP BY session, closed) AS w
        LEFT JOIN (SELECT session, closed - 1 AS closed, ts AS end FROM hook_marks
                   WHERE closes) AS e ON e.session = w.session AND e.closed = w.closed
        GROUP BY w.session
    )
SELECT r.agent AS agent, r.id AS id, r.parent_session AS parent_session,
       r.start AS start, r.end AS end, r.duration_s AS duration_s, r.user AS user,
       r.models AS models, r.prompts AS prompts, r.api_calls AS api_calls,
       r.api_errors AS api_errors, r.input_tokens AS input_tokens,
       r.output_tokens AS output_tokens, r.cache_read_tokens AS cache_read_tokens,
       r.cache_creation_tokens AS cache_creation_tokens, r.reasoning_tokens AS reasoning_tokens,
       r.cost_usd AS cost_usd, r.codex_est_cost_usd AS codex_est_cost_usd,
       -- windows over the family, not a join: a second reference to runs would compute it twice
       round(r.cost_usd + r.codex_est_cost_usd
             + if(r.agent = 'claude',
                  sumIf(r.codex_est_cost_usd, r.agent = 'codex') OVER (
                      PARTITION BY if(r.parent_session != '', r.parent_session, r.id)),
                  0), 6) AS total_cost_incl_est_usd,
       r.active_time_s AS active_time_s, r.tool_calls AS tool_calls,
       r.tool_failures AS tool_failures,
       if(r.agent = 'claude',
          countIf(r.agent = 'codex') OVER (
              PARTITION BY if(r.parent_session != '', r.parent_session, r.id)),
          0) AS codex_children,
       r.launch_id AS launch_id, w.waits AS waits, w.wait_s AS wait_s
FROM runs AS r
LEFT JOIN waits AS w ON w.session = r.id
WHERE {session:String} = '' OR r.id = {session:String} OR r.parent_session = {session:String}
ORDER BY min(r.start) OVER (PARTITION BY if(r.parent_session != '', r.parent_session, r.id)) DESC,
         if(r.parent_session != '', r.parent_session, r.id), r.agent != 'claude', r.start
