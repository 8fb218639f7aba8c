-- codex_usage: the tokens of each Codex response and their cost estimate. The one copy of the
-- Codex estimate the reports share (sql/codex_runs.sql, sessions.sql, session_tree.sql,
-- tokens_by_model.sql and the Grafana dashboard built from them): one row per log event
-- codex.sse_event with event.kind = response.completed that carries input_token_count, which
-- names its run (RunId: the codex shim's agent.run.id on the resource, else the codex thread id
-- conversation.id) even without the shim. Token counts as codex reports them (OpenAI
-- semantics: InputTokens includes CachedTokens, OutputTokens includes ReasoningTokens);
-- CodexEstCostUsd = ((input - cached) * Input + cached * CachedInput + (output - reasoning) *
-- Output + reasoning * Reasoning) / 1e6 with the prices of the newest codex_prices load
-- (schema/0014_codex_prices.sql; a model missing there is estimated at 0). A plain view over
-- the whole table: reports filter on Timestamp and RunId themselves, so every report stays one
-- query any ClickHouse client can run.
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'. No engine,
-- no TTL (the view stores nothing).
CREATE VIEW IF NOT EXISTS "${database}"."codex_usage" ${cluster}
AS WITH
    (SELECT CAST((groupArray(Model), groupArray((Input, CachedInput, Output, Reasoning))),
                 'Map(String, Tuple(Float64, Float64, Float64, Float64))')
     FROM "${database}"."codex_prices"
     WHERE LoadedAt = (SELECT max(LoadedAt) FROM "${database}"."codex_prices"))
        AS codex_prices  -- USD per 1M tokens: uncached input, cached input, output, reasoning
SELECT Timestamp,
       if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
          LogAttributes['conversation.id']) AS RunId,
       LogAttributes['model'] AS Model,
       toFloat64OrZero(LogAttributes['input_token_count']) AS InputTokens,
       toFloat64OrZero(LogAttributes['cached_token_count']) AS CachedTokens,
       toFloat64OrZero(LogAttributes['cache_write_token_count']) AS CacheWriteTokens,
       toFloat64OrZero(LogAttributes['output_token_count']) AS OutputTokens,
       toFloat64OrZero(LogAttributes['reasoning_token_count']) AS ReasoningTokens,
       (greatest(InputTokens - CachedTokens, 0) * codex_prices[Model].1
        + CachedTokens * codex_prices[Model].2
        + greatest(OutputTokens - ReasoningTokens, 0) * codex_prices[Model].3
        + ReasoningTokens * codex_prices[Model].4) / 1e6 AS CodexEstCostUsd
FROM "${database}"."otel_logs"
WHERE EventName = 'codex.sse_event'
  AND LogAttributes['event.kind'] = 'response.completed'
  AND LogAttributes['input_token_count'] != ''
