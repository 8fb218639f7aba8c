-- codex_prices: USD per million tokens by Codex model, behind the Codex cost estimate in the
-- reports (receiver/store/codex_prices.py). The receiver inserts the whole table from its
-- settings at every start (one LoadedAt per load); reports use the newest load's rows:
--   WHERE LoadedAt = (SELECT max(LoadedAt) FROM codex_prices)
-- Input counts uncached input (input_token_count - cached_token_count), CachedInput the
-- cached part, Output non-reasoning output (output_token_count - reasoning_token_count),
-- Reasoning the reasoning tokens.
CREATE TABLE IF NOT EXISTS "${database}"."codex_prices" ${cluster} (
    Model String CODEC(ZSTD(1)),
    Input Float64 CODEC(ZSTD(1)),
    CachedInput Float64 CODEC(ZSTD(1)),
    Output Float64 CODEC(ZSTD(1)),
    Reasoning Float64 CODEC(ZSTD(1)),
    LoadedAt DateTime64(3) CODEC(Delta, ZSTD(1))
) ENGINE = ${engine}
ORDER BY (LoadedAt, Model)
SETTINGS index_granularity = 8192
