-- sessions: Claude Code sessions and their codex runs: time, user, prompts, API calls, tokens, cost, tools
--   One row per Claude Code session and per codex run active in the window, each codex run
--   right after the Claude session that spawned it.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
--   {session:String}       only this Claude session (and its codex runs) or codex run (default: all)
-- Columns: agent (claude | codex), id (Claude session.id; codex run id = the codex shim's
--   agent.run.id, else the codex thread id conversation.id), parent_session (codex: the Claude
--   session that spawned it), start, end, duration_s (first to last telemetry in the window),
--   user (Claude user.id; codex carries none), models, prompts, api_calls (requests made,
--   failed ones included), api_errors, input_tokens, output_tokens, cache_read_tokens,
--   cache_creation_tokens, reasoning_tokens, cost_usd, active_time_s, tool_calls,
--   tool_failures, codex_children (codex runs spawned by the session), launch_id (cc.launch.id).
--   Every figure counts what happened inside the window.
-- Sources (the same in every report, so reports agree on the same data):
--   Claude Code tokens, cost and active time: the metrics claude_code.token.usage,
--   claude_code.cost.usage and claude_code.active_time.total, which Claude Code exports
--   whenever telemetry is on (log events and spans are optional). DELTA points are summed;
--   CUMULATIVE points count what each added since the previous point of the same series
--   (metric, resource, attributes, StartTimeUnix), a new StartTimeUnix being a reset.
--   Codex tokens: the log events codex.sse_event (event.kind = response.completed), which name
--   their run even without the codex shim (codex metrics do not); codex reports no cost.
--   Prompts, API calls and errors, tool calls and failures: log events (claude_code.* and
--   codex.*: user_prompt, api_request, api_error, tool_result). Start and end also use spans.
--   Parent session of a codex run: by span link first (a codex span whose parent span is a
--   Claude Code span, e.g. codex.exec under the Bash tool.execution), else the codex shim's
--   resource attribute agent.parent.session.id.
-- Table: agent, id, parent_session, start, duration_s, user, models, prompts, api_calls, api_errors, input_tokens, output_tokens, cache_read_tokens, cost_usd, tool_calls, tool_failures, codex_children
WITH
    claude_points AS (
        -- metric increments: one row per point, Delta = what the point added
        SELECT MetricName, Attributes, TimeUnix,
               if(AggregationTemporality = 2,
                  if(IsMonotonic AND Value < Previous, Value, Value - Previous),
                  Value) AS Delta
        FROM (
            SELECT MetricName, Attributes, TimeUnix, Value, AggregationTemporality, IsMonotonic,
                   lagInFrame(Value, 1, 0.) OVER (
                       PARTITION BY MetricName, ServiceName, cityHash64(ResourceAttributes),
                                    cityHash64(Attributes), StartTimeUnix, AggregationTemporality
                       ORDER BY TimeUnix ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS Previous
            FROM {database:Identifier}.otel_metrics_sum
            WHERE MetricName IN ('claude_code.token.usage', 'claude_code.cost.usage',
                                 'claude_code.active_time.total')
              AND TimeUnix < {until:DateTime64(9)}
              AND (TimeUnix >= {since:DateTime64(9)}
                   OR (AggregationTemporality = 2 AND StartTimeUnix < {since:DateTime64(9)}))
              AND bitAnd(Flags, 1) = 0
        )
        WHERE TimeUnix >= {since:DateTime64(9)}
    ),
    events AS (
        SELECT if(startsWith(EventName, 'claude_code.'), 'claude', 'codex') AS agent,
               if(agent = 'claude', LogAttributes['session.id'],
                  if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                     LogAttributes['conversation.id'])) AS run_id,
               EventName AS name, LogAttributes AS a, ResourceAttributes AS r, Timestamp AS ts,
               name = 'codex.sse_event' AND a['event.kind'] = 'response.completed'
                   AND a['input_token_count'] != '' AS completed
        FROM {database:Identifier}.otel_logs
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
          AND (startsWith(EventName, 'claude_code.') OR startsWith(EventName, 'codex.'))
    ),
    spans AS (
        SELECT if(startsWith(ServiceName, 'codex'), 'codex', 'claude') AS agent,
               multiIf(agent = 'claude', SpanAttributes['session.id'],
                       ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                       length(SpanAttributes['thread.id']) = 36, SpanAttributes['thread.id'],
                       SpanAttributes['conversation.id']) AS run_id,
               Timestamp, Duration, ParentSpanId, ResourceAttributes AS r
        FROM {database:Identifier}.otel_traces
        WHERE Timestamp >= {since:DateTime64(9)} - INTERVAL 1 DAY
          AND Timestamp < {until:DateTime64(9)}
          AND (startsWith(ServiceName, 'codex') OR startsWith(SpanName, 'claude_code.'))
    ),
    links AS (
        -- codex spans whose parent span is a Claude Code span (codex.exec under tool.execution)
        SELECT c.run_id AS run_id, any(p.session) AS parent_session,
               any(c.ParentSpanId) AS parent_span
        FROM (SELECT run_id, ParentSpanId FROM spans
              WHERE agent = 'codex' AND run_id != '' AND ParentSpanId != '') AS c
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
               sumIf(toFloat64OrZero(a['input_token_count']), completed) AS input,
               sumIf(toFloat64OrZero(a['output_token_count']), completed) AS output,
               sumIf(toFloat64OrZero(a['cached_token_count']), completed) AS cache_read,
               sumIf(toFloat64OrZero(a['cache_write_token_count']), completed) AS cache_creation,
               sumIf(toFloat64OrZero(a['reasoning_token_count']), completed) AS reasoning,
               0. AS cost, 0. AS active_time,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != '') AS stamped,
               anyIf(if(r['cc.launch.id'] != '', r['cc.launch.id'], a['cc.launch.id']),
                     r['cc.launch.id'] != '' OR a['cc.launch.id'] != '') AS launch
        FROM events
        WHERE run_id != ''
        GROUP BY agent, run_id
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
               '', ''
        FROM claude_points
        WHERE Attributes['session.id'] != ''
        GROUP BY Attributes['session.id']
        UNION ALL
        SELECT agent, run_id, min(Timestamp),
               max(addNanoseconds(Timestamp, toInt64(least(Duration, 4611686018427387904)))),
               '', [], 0, 0, 0, 0, 0, 0., 0., 0., 0., 0., 0., 0.,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != ''),
               anyIf(r['cc.launch.id'], r['cc.launch.id'] != '')
        FROM spans
        WHERE run_id != '' AND Timestamp >= {since:DateTime64(9)}
        GROUP BY agent, run_id
    ),
    runs AS (
        SELECT f.agent AS agent, f.run_id AS id,
               multiIf(f.agent != 'codex', '', l.parent_session != '', l.parent_session,
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
               round(f.cost, 6) AS cost_usd, round(f.active_time, 3) AS active_time_s,
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
                   anyIf(stamped, stamped != '') AS stamped, anyIf(launch, launch != '') AS launch
            FROM facts
            GROUP BY agent, run_id
        ) AS f
        LEFT JOIN links AS l ON l.run_id = f.run_id
    )
SELECT r.agent AS agent, r.id AS id, r.parent_session AS parent_session,
       r.start AS start, r.end AS end, r.duration_s AS duration_s, r.user AS user,
       r.models AS models, r.prompts AS prompts, r.api_calls AS api_calls,
       r.api_errors AS api_errors, r.input_tokens AS input_tokens,
       r.output_tokens AS output_tokens, r.cache_read_tokens AS cache_read_tokens,
       r.cache_creation_tokens AS cache_creation_tokens, r.reasoning_tokens AS reasoning_tokens,
       r.cost_usd AS cost_usd, r.active_time_s AS active_time_s, r.tool_calls AS tool_calls,
       r.tool_failures AS tool_failures,
       -- a window over the family, not a join: a second reference to runs would compute it twice
       if(r.agent = 'claude',
          countIf(r.agent = 'codex') OVER (
              PARTITION BY if(r.parent_session != '', r.parent_session, r.id)),
          0) AS codex_children,
       r.launch_id AS launch_id
FROM runs AS r
WHERE {session:String} = '' OR r.id = {session:String} OR r.parent_session = {session:String}
ORDER BY min(r.start) OVER (PARTITION BY if(r.parent_session != '', r.parent_session, r.id)) DESC,
         if(r.parent_session != '', r.parent_session, r.id), r.agent = 'codex', r.start
