"""``otel-receiver alerts``: the configured rules with their state, last value and last
notification (read from ``alert_state``), and ``alerts test NAME``: evaluate one rule now and
print what it would send, without sending, claiming or storing anything."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from receiver.config import ConfigError
from receiver.query.alerts import AlertEvaluator, check_rules, notification

if TYPE_CHECKING:
    import argparse

    from clickhouse_connect.driver.client import Client


def add_commands(commands: Any, settings_flags: Any) -> None:
    parser = commands.add_parser(
        "alerts",
        help="list the alert rules with state, last value and last notification; "
        "`alerts test NAME` evaluates one now and prints what it would send",
    )
    parser.add_argument(
        "alerts_action",
        nargs="?",
        choices=("list", "test"),
        default="list",
        metavar="ACTION",
        help="list (default) or test",
    )
    parser.add_argument("alert_name", nargs="?", metavar="NAME", help="the rule to test")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    settings_flags(
        parser, "clickhouse_url", "clickhouse_database", "embedded_http_port", "log_level"
    )


def run_command(settings: Any, args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    rules = {rule.name: rule for rule in settings.alerts}
    if args.alerts_action == "test":
        if not args.alert_name:
            print("otel-receiver: alerts test needs the NAME of a rule", file=sys.stderr)
            return 2
        if args.alert_name not in rules:
            known = ", ".join(rules) or "none configured"
            print(
                f"otel-receiver: no alert rule {args.alert_name!r} (rules: {known})",
                file=sys.stderr,
            )
            return 2
        return _test(settings, rules[args.alert_name], connect, args.format)
    client = connect()
    try:
        rows = _listing(client, settings.clickhouse_database, list(rules))
    finally:
        client.close()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no alert rules configured ([[alerts]] in the config, or $OTEL_RECEIVER_ALERTS)")
        return 0
    for row in rows:
        rule = rules[row["alert"]]
        last = row["last_notification"]
        print(
            f"{row['alert']}: {row['state']}"
            + (
                f" ({row['firing']} firing, {row['pending']} pending)"
                if row["firing"] or row["pending"]
                else ""
            )
            + (f"  value {row['value']:g}" if row["evaluated_at"] else "")
            + f"  (alert when value {rule.condition}, every {rule.every:g}s)"
            + (f"  evaluated {row['evaluated_at']}" if row["evaluated_at"] else "")
            + (
                f"  last notification {last['state']} {last['outcome']} at {last['at']}"
                if last
                else "  no notification yet"
            )
            + (f"  error: {row['error']}" if row["error"] else "")
        )
    return 0


def _listing(client: Client, database: str, names: list[str]) -> list[dict[str, Any]]:
    table = f"`{database}`.alert_state"
    evaluated = _by_rule(
        client,
        f"SELECT Rule, State, Value, Detail, UpdatedAt FROM {table} FINAL WHERE Kind = 'rule'",
    )
    counts = _by_rule(
        client,
        f"SELECT Rule, countIf(State = 'firing'), countIf(State = 'pending') "
        f"FROM {table} FINAL WHERE Kind = 'state' GROUP BY Rule",
    )
    notified = _by_rule(
        client,
        f"SELECT Rule, argMax(State, UpdatedAt), argMax(Outcome, UpdatedAt), max(UpdatedAt) "
        f"FROM {table} FINAL WHERE Kind = 'claim' AND startsWith(Key, 'notify:') GROUP BY Rule",
    )
    rows = []
    for name in names:
        state, value, error, at = evaluated.get(name, ("", 0.0, "", None))
        firing, pending = counts.get(name, (0, 0))
        last = notified.get(name)
        rows.append(
            {
                "alert": name,
                "state": state or "never evaluated",
                "value": value,
                "firing": firing,
                "pending": pending,
                "evaluated_at": _iso(at),
                "error": error,
                "last_notification": (
                    {"state": last[0], "outcome": last[1], "at": _iso(last[2])} if last else None
                ),
            }
        )
    return rows


def _by_rule(client: Client, sql: str) -> dict[str, Sequence[Any]]:
    """The query's rows by their first column, the rule's name, without it."""
    return {row[0]: row[1:] for row in client.query(sql).result_rows}


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _test(settings: Any, rule: Any, connect: Callable[[], Client], fmt: str) -> int:
    client = connect()
    try:
        check_rules(client, settings.clickhouse_database, [rule])
    except ConfigError as exc:
        client.close()
        print(f"otel-receiver: invalid configuration: {exc}", file=sys.stderr)
        return 2
    evaluator = AlertEvaluator(lambda: client, settings.clickhouse_database, [rule])
    try:
        evaluation = evaluator.evaluate(rule, datetime.now(UTC), dry_run=True)
    finally:
        client.close()
    label_sets = [
        {
            "labels": after.state.labels,
            "value": after.state.value,
            "condition_holds": after.state.state in ("pending", "firing"),
            "stored_state": before.state,
            "next_state": after.state.state,
            "would_send": notification(rule, after) if after.notify else None,
        }
        for before, after in evaluation.steps
    ]
    if fmt == "json":
        print(
            json.dumps(
                {"alert": rule.name, "webhooks": len(rule.notify), "label_sets": label_sets},
                indent=2,
            )
        )
        return 0
    print(f"{rule.name}: value {rule.condition}, {len(label_sets)} label set(s)")
    for item in label_sets:
        labels = ", ".join(f"{k}={v}" for k, v in item["labels"].items()) or "(no labels)"
        print(
            f"  {labels}: value {item['value']:g}, {item['stored_state']} -> {item['next_state']}"
        )
        if item["would_send"]:
            print(
                f"    would POST to {len(rule.notify)} webhook(s): {json.dumps(item['would_send'])}"
            )
    if not any(item["would_send"] for item in label_sets):
        print("  nothing to send now")
    return 0
