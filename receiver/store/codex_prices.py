"""Codex prices: the per-model price table behind the Codex cost estimate.

Codex reports tokens but no dollars, so the reports estimate its cost as tokens times these
prices (USD per million tokens). OpenAI usage semantics: ``input_token_count`` includes the
cached input and ``output_token_count`` includes the reasoning tokens, so

    estimate = ((input - cached) * input_price + cached * cached_input_price
                + (output - reasoning) * output_price + reasoning * reasoning_price) / 1e6

The table reaches SQL as the ClickHouse table ``codex_prices`` (``schema/0014``), which the
receiver fills from the settings at every start (``store_prices``); reports read the rows of
the latest load, so any ClickHouse client or Grafana gets the same estimate. A model missing
from the table is estimated at 0. This module must not import ``receiver.config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # receiver.config imports this module: keep it light
    from clickhouse_connect.driver.client import Client

PRICES_AS_OF = "2026-05-13"
PRICES_SOURCE = (
    "OpenAI Codex rate card (OpenAI Help Center, checked 2026-05-13; 25 credits = $1, as "
    "transcribed in the codex-ops crate's data/codex-rate-card.json) for gpt-5.2 to gpt-5.5; "
    "OpenAI API pricing (developers.openai.com/api/docs/pricing) for gpt-5, gpt-5.1 and their "
    "codex variants. Reasoning tokens are billed as output tokens."
)


@dataclass(frozen=True)
class CodexPrice:
    """USD per million tokens."""

    input: float
    cached_input: float
    output: float
    reasoning: float


DEFAULT_PRICES: dict[str, CodexPrice] = {
    "gpt-5.5": CodexPrice(5.00, 0.50, 30.00, 30.00),
    "gpt-5.4": CodexPrice(2.50, 0.25, 15.00, 15.00),
    "gpt-5.4-mini": CodexPrice(0.75, 0.075, 4.50, 4.50),
    "gpt-5.3-codex": CodexPrice(1.75, 0.175, 14.00, 14.00),
    "gpt-5.2": CodexPrice(1.75, 0.175, 14.00, 14.00),
    "gpt-5.2-codex": CodexPrice(1.75, 0.175, 14.00, 14.00),
    "gpt-5.1": CodexPrice(1.25, 0.125, 10.00, 10.00),
    "gpt-5.1-codex": CodexPrice(1.25, 0.125, 10.00, 10.00),
    "gpt-5.1-codex-max": CodexPrice(1.25, 0.125, 10.00, 10.00),
    "gpt-5.1-codex-mini": CodexPrice(0.25, 0.025, 2.00, 2.00),
    "gpt-5": CodexPrice(1.25, 0.125, 10.00, 10.00),
    "gpt-5-codex": CodexPrice(1.25, 0.125, 10.00, 10.00),
    "gpt-5-mini": CodexPrice(0.25, 0.025, 2.00, 2.00),
}
_FIELDS = ("input", "cached_input", "output", "reasoning")


def parse_prices(raw: Any) -> dict[str, CodexPrice]:
    """The shipped defaults with ``raw``'s models added or replaced.

    ``raw``: ``{model: {input, cached_input, output[, reasoning]}}`` (reasoning defaults to
    output; cached_input to input), from ``[codex_prices."<model>"]`` tables or the JSON object
    / file named by ``$OTEL_RECEIVER_CODEX_PRICES``. Raises ValueError naming the bad key.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"codex_prices: expected tables of model prices, got {raw!r}")
    prices = dict(DEFAULT_PRICES)
    for model, table in raw.items():
        where = f"codex_prices.{model}"
        if not isinstance(table, Mapping):
            raise ValueError(f"{where}: expected a table with input, cached_input, output")
        unknown = set(table) - set(_FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown key {', '.join(sorted(unknown))}")
        values = {}
        for key in _FIELDS:
            value = table.get(key)
            if value is None:
                fallback = {"reasoning": "output", "cached_input": "input"}.get(key)
                value = values.get(fallback) if fallback else None
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{where}.{key}: expected USD per 1M tokens (>= 0), got {value!r}")
            values[key] = float(value)
        prices[str(model)] = CodexPrice(**values)
    return prices


def store_prices(client: Client, database: str, prices: Mapping[str, CodexPrice]) -> None:
    """Write the price table as one load; reports use only the newest load's rows."""
    loaded = datetime.now(UTC)
    rows = [
        (model, p.input, p.cached_input, p.output, p.reasoning, loaded)
        for model, p in sorted(prices.items())
    ]
    client.insert(
        "codex_prices",
        rows,
        column_names=["Model", "Input", "CachedInput", "Output", "Reasoning", "LoadedAt"],
        database=database,
    )
