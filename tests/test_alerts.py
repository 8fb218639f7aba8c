"""Alert rules against the real ClickHouse, notifying a real local webhook server.

The evaluator is driven slot by slot with explicit times (each call is one evaluation
interval), so firing, repeating and resolving are checked without waiting for the clock; the
daemon tests start real receivers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from receiver.config import ConfigError, Settings, load_settings
from receiver.ingest.otlp import SERVICES
from receiver.query.alert_rules import parse_rules
from receiver.query.alerts import AlertEvaluator, check_rules, samples
from receiver.store.codex_prices import DEFAULT_PRICES, store_prices
from receiver.store.schema import apply_schema
from receiver.store.sink import connect

from .capture_files import FIXTURES, signal_of
from .receiver_process import REPO, ReceiverProcess, wait_for

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Webhook:
    """A real HTTP server on an OS-assigned port that records the JSON bodies posted to it.
    ``hang`` makes it hold every request until released; ``status`` is its answer."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrivals = 0
        self.status = 200
        self.hang = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.arrivals += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.hang.is_set():
                    hook.release.wait(30)
                hook.bodies.append(json.loads(body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def schema(client: Client, database: str) -> str:
    """``database`` with the receiver's tables and a ``spend`` table the rules read."""
    apply_schema(client, database, Settings())
    client.command(f"CREATE TABLE {database}.spend (user String, usd Float64) ENGINE = Memory")
    return database


def _rule(url: str, **table: Any) -> Any:
    return parse_rules(
        [
            {
                "name": "daily-cost-per-user",
                "query": "SELECT user, sum(usd) AS value FROM {database:Identifier}.spend "
                "GROUP BY user",
                "above": 50,
                "notify": [url],
                "severity": "critical",
                "summary": "{user} spent ${value:.2f} today",
                "retries": 0,
                **table,
            }
        ]
    )[0]


def _evaluator(clickhouse_url: str, database: str, rule: Any) -> AlertEvaluator:
    return AlertEvaluator(lambda: connect(clickhouse_url), database, [rule])


def _spend(client: Client, database: str, user: str, usd: float) -> None:
    client.insert("spend", [(user, usd)], column_names=["user", "usd"], database=database)


def test_fires_once_while_the_condition_holds_and_resolves_when_it_clears(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    rule = _rule(webhook.url)
    evaluator = _evaluator(clickhouse_url, schema, rule)
    _spend(client, schema, "ann", 60.0)
    _spend(client, schema, "bob", 5.0)
    for minute in range(3):
        evaluator.evaluate(rule, T0 + minute * MINUTE)
    assert len(webhook.bodies) == 1
    firing = webhook.bodies[0]
    assert firing["alert"] == "daily-cost-per-user" and firing["state"] == "firing"
    assert firing["labels"] == {"user": "ann"} and firing["value"] == 60.0
    assert firing["severity"] == "critical" and firing["summary"] == "ann spent $60.00 today"
    assert "FIRING" in firing["text"] and "ann spent $60.00 today" in firing["text"]
    assert firing["starts_at"] == "2026-12-03T09:00:00.000Z" and firing["ends_at"] is None

    client.command(f"TRUNCATE TABLE {schema}.spend")
    evaluator.evaluate(rule, T0 + 3 * MINUTE)
    evaluator.evaluate(rule, T0 + 4 * MINUTE)
    assert [b["state"] for b in webhook.bodies] == ["firing", "resolved"]
    resolved = webhook.bodies[1]
    assert resolved["labels"] == {"user": "ann"}
    assert resolved["starts_at"] == firing["starts_at"]
    assert resolved["ends_at"] == "2026-12-03T09:03:00.000Z"
    evaluator.stop()


def test_a_restart_does_not_notify_again(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    rule = _rule(webhook.url, repeat="1h")
    _spend(client, schema, "ann", 60.0)
    first = _evaluator(clickhouse_url, schema, rule)
    first.evaluate(rule, T0)
    first.stop()
    assert len(webhook.bodies) == 1

    restarted = _evaluator(clickhouse_url, schema, rule)  # same ClickHouse, fresh memory
    for minute in range(1, 4):
        restarted.evaluate(rule, T0 + minute * MINUTE)
    assert len(webhook.bodies) == 1
    restarted.evaluate(rule, T0 + 61 * MINUTE)  # a repeat is due after repeat = 1h
    assert [(b["state"], b["repeat"]) for b in webhook.bodies] == [
        ("firing", False),
        ("firing", True),
    ]
    restarted.stop()


def test_several_receivers_on_one_database_notify_once(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    rule = _rule(webhook.url)
    _spend(client, schema, "ann", 60.0)
    receivers = [_evaluator(clickhouse_url, schema, rule) for _ in range(3)]
    for minute in range(2):
        outcomes = [r.evaluate(rule, T0 + minute * MINUTE) for r in receivers]
        assert sum(not o.skipped for o in outcomes) == 1  # one evaluates each slot
    client.command(f"TRUNCATE TABLE {schema}.spend")
    for r in receivers:
        r.evaluate(rule, T0 + 2 * MINUTE)
    assert [b["state"] for b in webhook.bodies] == ["firing", "resolved"]
    for r in receivers:
        r.stop()


def test_for_waits_before_firing_and_the_cli_shows_the_state(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    rule = _rule(webhook.url, **{"for": "2m"})
    evaluator = _evaluator(clickhouse_url, schema, rule)
    _spend(client, schema, "ann", 60.0)
    evaluator.evaluate(rule, T0)
    evaluator.evaluate(rule, T0 + MINUTE)
    assert webhook.bodies == []
    evaluator.evaluate(rule, T0 + 2 * MINUTE)
    assert [b["state"] for b in webhook.bodies] == ["firing"]
    assert webhook.bodies[0]["starts_at"] == "2026-12-03T09:02:00.000Z"
    evaluator.stop()


def test_a_failing_webhook_is_counted_and_recorded(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    webhook.status = 500
    rule = _rule(webhook.url, retries=2)
    evaluator = _evaluator(clickhouse_url, schema, rule)
    _spend(client, schema, "ann", 60.0)
    evaluator.evaluate(rule, T0)
    assert webhook.arrivals == 3  # the first attempt and two retries, with backoff
    outcome = client.query(
        f"SELECT Outcome FROM {schema}.alert_state FINAL "
        "WHERE Kind = 'claim' AND startsWith(Key, 'notify:')"
    ).result_rows
    assert outcome == [("failed",)]
    evaluator.stop()


def test_clickhouse_refuses_a_broken_rule_naming_it(client: Client, schema: str) -> None:
    good = _rule("http://127.0.0.1:1/")
    check_rules(client, schema, [good])
    cases = {
        "SELECT user, sum(usd) AS value FROM {database:Identifier}.nope GROUP BY user": "nope",
        "SELECT user, sum(usd) AS total FROM {database:Identifier}.spend GROUP BY user": (
            "no column 'value'"
        ),
        "SELECT user AS value FROM {database:Identifier}.spend": "not a number",
        "SELEC 1": "ClickHouse refused the query",
    }
    for query, cause in cases.items():
        rule = _rule("http://127.0.0.1:1/", query=query)
        with pytest.raises(ConfigError) as raised:
            check_rules(client, schema, [rule])
        assert str(raised.value).startswith("alerts.daily-cost-per-user: ")
        assert cause in str(raised.value)


def _serve(
    tmp_path: Path, clickhouse_url: str, database: str, rules: list[dict[str, Any]]
) -> ReceiverProcess:
    return ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse_url,
        database,
        OTEL_RECEIVER_ALERTS=json.dumps(rules),
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    )


def test_a_broken_rule_stops_the_receiver_at_start_with_exit_2(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> None:
    rules = [{"name": "broken", "query": "SELECT 1 AS value FROM missing_table", "above": 0}]
    ports = ("--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
    ports += ("--metrics-listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"))
    done = _run_cli(clickhouse_url, database, rules, "serve", *ports, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "invalid configuration: alerts.broken: ClickHouse refused the query" in done.stderr
    assert "missing_table" in done.stderr


def _post_otlp(http_url: str, path: Path) -> float:
    """POST one captured request to OTLP/HTTP; the seconds until the acknowledgement."""
    started = time.monotonic()
    request = urllib.request.Request(
        http_url + SERVICES[signal_of(path)].http_path,
        data=path.read_bytes(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    return time.monotonic() - started


def test_a_hanging_webhook_does_not_delay_ingest_and_is_counted(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client, webhook: Webhook
) -> None:
    webhook.hang.set()
    rule = {
        "name": "always",
        "query": "SELECT 1 AS value",
        "above": 0,
        "every": "1s",
        "notify": [webhook.url],
        "timeout": "3s",
        "retries": 0,
    }
    receiver = _serve(tmp_path, clickhouse_url, database, [rule]).start()
    try:
        wait_for(lambda: webhook.arrivals, 30, "the evaluator to call the webhook")
        requests = sorted((FIXTURES / "main_grpc").glob("*_logs.pb"))
        ack_seconds = [_post_otlp(receiver.http_url, path) for path in requests]
        assert webhook.arrivals == 1 and not webhook.bodies  # still hanging all along
        assert max(ack_seconds) < 2.0, ack_seconds  # a batch interval, not the webhook's 3 s

        def failures() -> float:
            url = f"http://127.0.0.1:{receiver.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
            for line in text.splitlines():
                if line.startswith(
                    'otel_receiver_alert_webhook_failures_total{alert="always",reason="timeout"}'
                ):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        wait_for(failures, 30, "the webhook timeout counted in /metrics")
    finally:
        webhook.release.set()
        assert receiver.stop() == 0


def _run_cli(
    clickhouse_url: str, database: str, rules: list[dict[str, Any]], *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``otel-receiver ARGS`` on ``database`` with ``rules`` as the configured alerts."""
    env = {
        **os.environ,
        "OTEL_RECEIVER_ALERTS": json.dumps(rules),
        "OTEL_RECEIVER_CLICKHOUSE_DATABASE": database,
    }
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args, "--clickhouse-url", clickhouse_url],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _cli(clickhouse_url: str, database: str, rules: list[dict[str, Any]], *args: str) -> Any:
    """``otel-receiver alerts ARGS --format json``, its JSON answer."""
    done = _run_cli(
        clickhouse_url, database, rules, "alerts", *args, "--format", "json", timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cli_lists_state_and_last_notification_and_tests_a_rule_without_sending(
    clickhouse_url: str, client: Client, schema: str, webhook: Webhook
) -> None:
    table = {
        "name": "daily-cost-per-user",
        "query": "SELECT user, sum(usd) AS value FROM {database:Identifier}.spend GROUP BY user",
        "above": 50,
        "notify": [webhook.url],
        "summary": "{user} spent ${value:.2f} today",
    }
    rule = parse_rules([table])[0]
    _spend(client, schema, "ann", 60.0)
    evaluator = _evaluator(clickhouse_url, schema, rule)
    # `alerts test` judges at the real time: the notification must be recent, or the rule's
    # 4 h repeat would be due (this test failed on every run after 13:00 with T0).
    evaluator.evaluate(rule, datetime.now(UTC).replace(microsecond=0))
    evaluator.stop()

    (listed,) = _cli(clickhouse_url, schema, [table])
    assert listed["alert"] == "daily-cost-per-user" and listed["state"] == "firing"
    assert listed["value"] == 60.0 and listed["firing"] == 1
    assert listed["last_notification"]["state"] == "firing"
    assert listed["last_notification"]["outcome"] == "sent"

    _spend(client, schema, "bob", 70.0)
    tested = _cli(clickhouse_url, schema, [table], "test", "daily-cost-per-user")
    by_user = {s["labels"]["user"]: s for s in tested["label_sets"]}
    assert by_user["ann"]["stored_state"] == "firing" and by_user["ann"]["would_send"] is None
    assert by_user["bob"]["next_state"] == "firing"
    assert by_user["bob"]["would_send"]["summary"] == "bob spent $70.00 today"
    assert len(webhook.bodies) == 1  # the test sent nothing


def test_every_ready_made_rule_is_accepted_by_clickhouse(client: Client, schema: str) -> None:
    example = REPO / "config" / "alerts.example.toml"
    rules = load_settings(environ={"OTEL_RECEIVER_ALERTS": str(example)}).alerts
    assert {r.name for r in rules} >= {
        "daily-cost-per-user",
        "cost-per-task",
        "api-error-rate",
        "rate-limited",
        "codex-run-failed",
        "waiting-for-a-person",
    }
    check_rules(client, schema, rules)


def test_a_rule_may_name_a_report_with_its_text_columns_as_labels(
    client: Client, schema: str
) -> None:
    rule = parse_rules(
        [
            {
                "name": "model-cost-today",
                "report": "tokens_by_model",
                "column": "total_cost_incl_est_usd",
                "params": {"since": "today"},
                "above": 10,
                "summary": "{agent} {model} cost ${value:.2f} on {day}",
            }
        ]
    )[0]
    check_rules(client, schema, [rule])
    now = datetime.now(UTC)
    client.insert(
        "otel_logs",
        [
            (
                now - timedelta(seconds=5),
                "codex.sse_event",
                {
                    "event.kind": "response.completed",
                    "model": "gpt-5.4",
                    "input_token_count": "4000000",
                    "output_token_count": "0",
                },
            )
        ],
        column_names=["Timestamp", "EventName", "LogAttributes"],
        database=schema,
    )
    store_prices(client, schema, DEFAULT_PRICES)
    found = list(samples(client, rule, schema, now).values())
    assert found == [
        ({"day": now.date().isoformat(), "agent": "codex", "model": "gpt-5.4"}, 10.0)
    ]  # 4M input tokens at $2.50: labels day, agent, model; the figures are not labels
