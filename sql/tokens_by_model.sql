-- tokens_by_model: tokens by type and cost, per day (UTC), agent and model.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: day, agent (claude | codex | python_agent), model, input_tokens, output_tokens,
--   cache_read_tokens, cache_creation_tokens, reasoning_tokens, total_tokens, cost_usd (Claude
--   Code's reported cost; 0 for codex), codex_est_cost_usd (the Codex estimate: tokens times the price table
--   codex_prices, see README "Costs"; 0 for claude and for unpriced models),
--   total_cost_incl_est_usd (cost_usd + codex_est_cost_usd: includes an estimate).
-- Sources (the same in every report, so reports agree on the same data):
--   Claude Code tokens and cost: the metrics claude_code.token.usage (attribute type =
--   input / output / cacheRead / cacheCreation) and claude_code.cost.usage, which Claude Code
--   exports whenever telemetry is on (log events and spans are optional). DELTA points are
--   summed; CUMULATIVE points count what each added since the previous point of the same
--   series (metric, resource, attributes, StartTimeUnix), a new StartTimeUnix being a reset;
--   a point is counted in the window (and day) of its TimeUnix.
--   Codex tokens and estimate: the view codex_usage (schema/0016_codex_usage.sql) over the log
--   events codex.sse_event (event.kind = response.completed) that carry input_token_count,
--   because they name their run (conversation.id) even without the codex shim, which codex
--   metrics do not; codex reports no cost. For codex, input_tokens includes
--   cache_read_tokens and output_tokens includes reasoning_tokens (OpenAI usage semantics);
--   total_tokens = input + output for codex, input + output + cache read + cache creation
--   for Claude (Anthropic counts cache tokens apart from input).
--   Python agents (agent_otel, resource agent.kind = python_agent): their model-call spans'
--   gen_ai.usage.input_tokens / output_tokens / cache_read.input_tokens by
--   gen_ai.response.model (else gen_ai.request.model); spans rather than the histogram
--   gen_ai.client.token.usage because each span names its run. GenAI semantics: input
--   includes cache reads, so total_tokens = input + output, as for codex.
-- Table: day, agent, model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, total_tokens, cost_usd, codex_est_cost_usd, total_cost_incl_est_usd
WITH
    claude_points AS (
        -- metric increments, one row per point: the view metric_increments
        -- (schema/0015_metric_increments.sql) holds the cumulative-to-delta rule
        SELECT MetricName, Attributes, TimeUnix, Delta
        FROM {database:Identifier}.metric_increments
        WHERE MetricName IN ('claude_code.token.usage', 'claude_code.cost.usage')
          AND TimeUnix >= {since:DateTime64(9)} AND TimeUnix < {until:DateTime64(9)}
    ),
    usage AS (
        SELECT toDate(TimeUnix, 'UTC') AS day, 'claude' AS agent, Attributes['model'] AS model,
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'input') AS input,
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'output') AS output,
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'cacheRead') AS cache_read,
               sumIf(Delta, MetricName = 'claude_code.token.usage' AND Attributes['type'] = 'cacheCreation') AS cache_creation,
               0. AS reasoning,
               sumIf(Delta, MetricName = 'claude_code.cost.usage') AS cost,
               0. AS codex_est
        FROM claude_points
        GROUP BY day, model
        UNION ALL
        -- codex tokens and the estimate: the view codex_usage (schema/0016_codex_usage.sql)
        SELECT toDate(Timestamp, 'UTC') AS day, 'codex' AS agent, Model AS model,
               sum(InputTokens), sum(OutputTokens), sum(CachedTokens), sum(CacheWriteTokens),
               sum(ReasoningTokens), 0., sum(CodexEstCostUsd)
        FROM {database:Identifier}.codex_usage
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
        GROUP BY day, model
        UNION ALL
        SELECT toDate(Timestamp, 'UTC') AS day, 'python_agent' AS agent,
               if(SpanAttributes['gen_ai.response.model'] != '',
                  SpanAttributes['gen_ai.response.model'],
                  SpanAttributes['gen_ai.request.model']) AS model,
               sum(toFloat64OrZero(SpanAttributes['gen_ai.usage.input_tokens'])),
               sum(toFloat64OrZero(SpanAttributes['gen_ai.usage.output_tokens'])),
               sum(toFloat64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens'])),
               0., 0., 0., 0.
        FROM {database:Identifier}.otel_traces
        WHERE ResourceAttributes['agent.kind'] = 'python_agent'
          AND SpanAttributes['gen_ai.usage.input_tokens'] != ''
          AND Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
        GROUP BY day, model
    )
SELECT day, agent, model,
       toUInt64(round(sum(input))) AS input_tokens,
       toUInt64(round(sum(output))) AS output_tokens,
       toUInt64(round(sum(cache_read))) AS cache_read_tokens,
       toUInt64(round(sum(cache_creation))) AS cache_creation_tokens,
       toUInt64(round(sum(reasoning))) AS reasoning_tokens,
       if(agent != 'claude', input_tokens + output_tokens,
          input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens) AS total_tokens,
       round(sum(cost), 6) AS cost_usd,
       round(sum(codex_est), 6) AS codex_est_cost_usd,
       round(cost_usd + codex_est_cost_usd, 6) AS total_cost_incl_est_usd
FROM usage
GROUP BY day, agent, model
ORDER BY day, agent, cost_usd DESC, total_tokens DESC, model
