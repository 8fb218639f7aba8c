-- codex_runs: codex runs with their parent Claude session: duration, API calls, tokens, tools
--   One row per codex run active in the window: parent session, launch, duration, models,
--   prompts, API calls and errors, tokens, tool calls and failures.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
--   {session:String}       only the runs of this Claude session, or this one run (default: all)
-- Columns: run_id (the codex shim's agent.run.id, else the codex thread id conversation.id),
--   thread_id (conversation.id), parent_session, parent_span (the Claude tool.execution span
--   that spawned it), parent_via (span_link | stamped | '' when unknown), launch_id
--   (cc.launch.id), start, end, duration_s (first to last telemetry in the window), models,
--   prompts, api_calls (failed ones included), api_errors, input_tokens, output_tokens,
--   cache_read_tokens (cached input, included in input_tokens), reasoning_tokens (included in
--   output_tokens), codex_est_cost_usd (an estimate: tokens times the price table codex_prices,
--   README "Costs"; codex reports no cost), tool_calls, tool_failures. Every figure counts what
--   happened in the window.
-- Sources (the same as the codex rows of `sessions` and `tokens_by_model`):
--   Tokens and the estimate: the view codex_usage (schema/0016_codex_usage.sql) over the log
--   events codex.sse_event (event.kind = response.completed), which name their run
--   (conversation.id, plus agent.run.id on the resource with the shim) even without the shim,
--   which codex metrics do not; codex reports no cost. Prompts, API calls and errors
--   (status not 2xx or error.message set), tool calls and failures: the log events
--   codex.user_prompt, codex.api_request, codex.tool_result. Start and end also use spans.
--   Parent: by span link first (a codex span, e.g. codex.exec, whose parent span is a Claude
--   Code span), else the shim's resource attributes agent.parent.session.id and
--   agent.parent.span.id.
-- Table: run_id, parent_session, parent_via, launch_id, start, duration_s, models, prompts, api_calls, api_errors, input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, codex_est_cost_usd, tool_calls, tool_failures
WITH
    events AS (
        SELECT if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                  LogAttributes['conversation.id']) AS run_id,
               EventName AS name, LogAttributes AS a, ResourceAttributes AS r, Timestamp AS ts
        FROM {database:Identifier}.otel_logs
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
          AND startsWith(EventName, 'codex.')
    ),
    spans AS (
        SELECT multiIf(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                       length(SpanAttributes['thread.id']) = 36, SpanAttributes['thread.id'],
                       SpanAttributes['conversation.id']) AS run_id,
               Timestamp, Duration, ParentSpanId, ResourceAttributes AS r,
               if(length(SpanAttributes['thread.id']) = 36, SpanAttributes['thread.id'],
                  SpanAttributes['conversation.id']) AS thread
        FROM {database:Identifier}.otel_traces
        WHERE Timestamp >= {since:DateTime64(9)} - INTERVAL 1 DAY
          AND Timestamp < {until:DateTime64(9)}
          AND startsWith(ServiceName, 'codex')
    ),
    links AS (
        -- codex spans whose parent span is a Claude Code span (codex.exec under tool.execution)
        SELECT c.run_id AS run_id, any(p.session) AS parent_session,
               any(c.ParentSpanId) AS parent_span
        FROM (SELECT run_id, ParentSpanId FROM spans
              WHERE run_id != '' AND ParentSpanId != '') AS c
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
        SELECT run_id, min(ts) AS first, max(ts) AS last,
               anyIf(a['conversation.id'], a['conversation.id'] != '') AS thread,
               groupUniqArrayIf(a['model'], a['model'] != '') AS models,
               countIf(name = 'codex.user_prompt') AS prompts,
               countIf(name = 'codex.api_request') AS api_calls,
               countIf(name = 'codex.api_request'
                       AND (a['error.message'] != ''
                            OR NOT toUInt16OrZero(a['http.response.status_code'])
                                   BETWEEN 200 AND 299)) AS api_errors,
               countIf(name = 'codex.tool_result') AS tool_calls,
               countIf(name = 'codex.tool_result' AND a['success'] = 'false') AS tool_failures,
               0. AS input, 0. AS output, 0. AS cache_read, 0. AS reasoning, 0. AS codex_est,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != '') AS stamped,
               anyIf(r['agent.parent.span.id'], r['agent.parent.span.id'] != '') AS stamped_span,
               anyIf(if(r['cc.launch.id'] != '', r['cc.launch.id'], a['cc.launch.id']),
                     r['cc.launch.id'] != '' OR a['cc.launch.id'] != '') AS launch
        FROM events
        WHERE run_id != ''
        GROUP BY run_id
        UNION ALL
        -- tokens and the estimate: the view codex_usage (schema/0016_codex_usage.sql)
        SELECT RunId, min(Timestamp), max(Timestamp), '', [], 0, 0, 0, 0, 0,
               sum(InputTokens), sum(OutputTokens), sum(CachedTokens), sum(ReasoningTokens),
               sum(CodexEstCostUsd), '', '', ''
        FROM {database:Identifier}.codex_usage
        WHERE RunId != ''
          AND Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
        GROUP BY RunId
        UNION ALL
        SELECT run_id, min(Timestamp),
               max(addNanoseconds(Timestamp, toInt64(least(Duration, 4611686018427387904)))),
               anyIf(thread, thread != ''), [], 0, 0, 0, 0, 0, 0., 0., 0., 0., 0.,
               anyIf(r['agent.parent.session.id'], r['agent.parent.session.id'] != ''),
               anyIf(r['agent.parent.span.id'], r['agent.parent.span.id'] != ''),
               anyIf(r['cc.launch.id'], r['cc.launch.id'] != '')
        FROM spans
        WHERE run_id != '' AND Timestamp >= {since:DateTime64(9)}
        GROUP BY run_id
    ),
    runs AS (
        SELECT f.run_id AS run_id, f.thread AS thread_id,
               if(l.parent_session != '', l.parent_session, f.stamped) AS parent_session,
               if(l.parent_session != '', l.parent_span, f.stamped_span) AS parent_span,
               multiIf(l.parent_session != '', 'span_link', f.stamped != '', 'stamped', '')
                   AS parent_via,
               f.launch AS launch_id, f.start AS start, f.end AS end,
               round((toUnixTimestamp64Nano(f.end) - toUnixTimestamp64Nano(f.start)) / 1e9, 3)
                   AS duration_s,
               f.models AS models, f.prompts AS prompts, f.api_calls AS api_calls,
               f.api_errors AS api_errors,
               toUInt64(round(f.input)) AS input_tokens,
               toUInt64(round(f.output)) AS output_tokens,
               toUInt64(round(f.cache_read)) AS cache_read_tokens,
               toUInt64(round(f.reasoning)) AS reasoning_tokens,
               round(f.codex_est, 6) AS codex_est_cost_usd,
               f.tool_calls AS tool_calls, f.tool_failures AS tool_failures
        FROM (
            SELECT run_id, min(first) AS start, max(last) AS end,
                   anyIf(thread, thread != '') AS thread,
                   arraySort(arrayDistinct(arrayFlatten(groupArray(models)))) AS models,
                   sum(prompts) AS prompts, sum(api_calls) AS api_calls,
                   sum(api_errors) AS api_errors, sum(tool_calls) AS tool_calls,
                   sum(tool_failures) AS tool_failures, sum(input) AS input,
                   sum(output) AS output, sum(cache_read) AS cache_read,
                   sum(reasoning) AS reasoning, sum(codex_est) AS codex_est,
                   anyIf(stamped, stamped != '') AS stamped,
                   anyIf(stamped_span, stamped_span != '') AS stamped_span,
                   anyIf(launch, launch != '') AS launch
            FROM facts
            GROUP BY run_id
        ) AS f
        LEFT JOIN links AS l ON l.run_id = f.run_id
    )
SELECT *
FROM runs
WHERE {session:String} = '' OR run_id = {session:String} OR parent_session = {session:String}
ORDER BY start DESC, run_id
