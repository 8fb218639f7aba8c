"""Alert rules from the config and the per-label-set state machine (no ClickHouse)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from receiver.config import ConfigError, load_settings
from receiver.query.alert_rules import parse_rules
from receiver.query.alerts import LabelState, step
from receiver.store.codex_prices import DEFAULT_PRICES, CodexPrice

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _rule(**table: object) -> object:
    return parse_rules([{"name": "r", "query": "SELECT 1 AS value", "above": 10, **table}])[0]


def test_toml_alerts_tables_become_typed_rules(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(
        """
[[alerts]]
name = "daily-cost-per-user"
query = "SELECT user, sum(cost) AS value FROM t GROUP BY user"
above = 50.0
every = "30s"
for = "5m"
repeat = "1h"
notify = ["http://127.0.0.1:9099/alerts"]
severity = "critical"
summary = "{user} spent ${value:.2f} today"

[[alerts]]
name = "errors"
report = "api_errors"
column = "errors"
params = { since = "1h" }
below = 1
"""
    )
    cost, errors = load_settings(str(config), environ={}).alerts
    assert (cost.every, cost.for_, cost.repeat, cost.above, cost.below) == (30, 300, 3600, 50, None)
    assert cost.notify == ("http://127.0.0.1:9099/alerts",) and cost.severity == "critical"
    assert errors.report == "api_errors" and errors.params == {"since": "1h"}
    assert (errors.every, errors.repeat) == (60, 4 * 3600)


def test_alerts_from_the_environment_as_json_or_a_file(tmp_path: Path) -> None:
    rules = [{"name": "e", "query": "SELECT 1 AS value", "below": 2}]
    from_json = load_settings(environ={"OTEL_RECEIVER_ALERTS": json.dumps(rules)}).alerts
    file = tmp_path / "alerts.toml"
    file.write_text('[[alerts]]\nname = "e"\nquery = "SELECT 1 AS value"\nbelow = 2\n')
    from_file = load_settings(environ={"OTEL_RECEIVER_ALERTS": str(file)}).alerts
    assert from_json == from_file and from_json[0].below == 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"above": None}, "alerts.r: set exactly one of above or below"),
        ({"below": 1}, "alerts.r: set exactly one of above or below"),
        ({"report": "sessions"}, "alerts.r: set exactly one of query (SQL) or report"),
        ({"every": "soon"}, "alerts.r.every: expected a duration"),
        ({"notify": ["ftp://x"]}, "alerts.r.notify: expected http(s)://"),
        ({"colour": "red"}, "alerts.r: unknown key colour"),
        ({"summary": "{user"}, "alerts.r.summary: not a valid template"),
    ],
)
def test_invalid_rules_name_alerts_name_and_the_cause(table: dict, message: str) -> None:
    rule = {"name": "r", "query": "SELECT 1 AS value", "above": 10, **table}
    rule = {k: v for k, v in rule.items() if v is not None}
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"OTEL_RECEIVER_ALERTS": json.dumps([rule])})
    assert message in str(raised.value) and "env OTEL_RECEIVER_ALERTS" in str(raised.value)


def test_a_report_rule_with_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"alerts\.x: report 'sessions' has no parameter nope"):
        parse_rules([{"name": "x", "report": "sessions", "params": {"nope": 1}, "above": 1}])


def test_fires_at_once_without_for_and_resolves_when_cleared() -> None:
    rule = _rule()
    s = step(rule, LabelState("k", {}), 11.0, T0)
    assert (s.state.state, s.notify, s.state.starts_at) == ("firing", "firing", T0)
    again = step(rule, s.state, 12.0, T0 + MINUTE)
    assert again.notify is None and again.state.state == "firing" and again.state.value == 12
    cleared = step(rule, again.state, 3.0, T0 + 2 * MINUTE)
    assert (cleared.state.state, cleared.notify, cleared.state.ends_at) == (
        "resolved",
        "resolved",
        T0 + 2 * MINUTE,
    )
    assert step(rule, cleared.state, None, T0 + 3 * MINUTE).notify is None


def test_for_keeps_a_label_set_pending_until_it_has_held_long_enough() -> None:
    rule = _rule(**{"for": "2m"})
    first = step(rule, LabelState("k", {}), 11.0, T0)
    assert (first.state.state, first.notify) == ("pending", None)
    assert step(rule, first.state, 11.0, T0 + MINUTE).notify is None
    fired = step(rule, first.state, 11.0, T0 + 2 * MINUTE)
    assert (fired.state.state, fired.notify) == ("firing", "firing")
    dropped = step(rule, first.state, 1.0, T0 + MINUTE)
    assert (dropped.state.state, dropped.notify) == ("ok", None)


def test_a_still_firing_label_set_repeats_after_repeat() -> None:
    rule = _rule(repeat="1h")
    fired = step(rule, LabelState("k", {}), 11.0, T0).state
    assert step(rule, fired, 11.0, T0 + 59 * MINUTE).notify is None
    repeat = step(rule, fired, 11.0, T0 + 60 * MINUTE)
    assert (repeat.notify, repeat.repeat) == ("firing", 1)


def test_codex_prices_override_and_extend_the_shipped_defaults() -> None:
    prices = load_settings(
        environ={
            "OTEL_RECEIVER_CODEX_PRICES": json.dumps(
                {
                    "gpt-5.4": {"input": 1, "cached_input": 0.5, "output": 3},
                    "mine": {"input": 2, "output": 4},
                }
            )
        }
    ).codex_prices
    assert prices["gpt-5.4"] == CodexPrice(1, 0.5, 3, 3)  # reasoning defaults to output
    assert prices["mine"] == CodexPrice(2, 2, 4, 4)
    assert prices["gpt-5.5"] == DEFAULT_PRICES["gpt-5.5"]
    with pytest.raises(ConfigError, match=r"codex_prices\.mine\.output"):
        load_settings(environ={"OTEL_RECEIVER_CODEX_PRICES": '{"mine": {"input": 2}}'})
