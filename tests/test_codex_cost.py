"""The Codex cost estimate: the real capture replayed through a real receiver with a
configured price table; every report, the tree and the sessions view show Claude's reported
cost and the Codex estimate apart, and totals that include the estimate."""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from receiver.config import load_settings
from receiver.ingest.otlp import SERVICES
from receiver.query import reports
from receiver.query.alerts import samples
from receiver.query.tree import build_tree

from .capture import Replay, replay
from .receiver_process import REPO, ReceiverProcess, wait_for

PRICES = {"input": 3.0, "cached_input": 0.5, "output": 20.0, "reasoning": 40.0}  # USD / 1M
MODEL = "gpt-5.4"  # what the captured codex run used
EXTRA = {"input": 1200, "cached": 200, "output": 90, "reasoning": 30}  # a second response


def _attributes(record: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value or str(kv.value.int_value) for kv in record.attributes}


def _completed_records(capture: Replay) -> Iterator[tuple[Any, Any]]:
    for signal, request in capture.requests:
        if signal != "logs":
            continue
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    a = _attributes(record)
                    if a.get("event.kind") == "response.completed" and "input_token_count" in a:
                        yield scope_logs, record


def _add_response_with_cache_and_reasoning(capture: Replay) -> None:
    """A second response.completed of the same run with every kind of token, built from the
    captured record (so it names the run and model exactly as codex does)."""
    scope_logs, record = next(_completed_records(capture))
    extra = copy.deepcopy(record)
    values = {
        "input_token_count": EXTRA["input"],
        "cached_token_count": EXTRA["cached"],
        "output_token_count": EXTRA["output"],
        "reasoning_token_count": EXTRA["reasoning"],
    }
    kept = [kv for kv in extra.attributes if kv.key not in values]
    del extra.attributes[:]
    extra.attributes.extend(kept)
    for key, value in values.items():
        extra.attributes.append(KeyValue(key=key))
        extra.attributes[-1].value.string_value = str(value)
    extra.observed_time_unix_nano += 1000  # codex leaves time_unix_nano 0
    scope_logs.log_records.append(extra)


def _estimate(input_: float, cached: float, output: float, reasoning: float) -> float:
    return (
        (input_ - cached) * PRICES["input"]
        + cached * PRICES["cached_input"]
        + (output - reasoning) * PRICES["output"]
        + reasoning * PRICES["reasoning"]
    ) / 1e6


@pytest.fixture
def loaded(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> Iterator[tuple[Replay, float]]:
    """The capture (plus one richer response) stored by a receiver priced with PRICES; yields
    the replay and the expected Codex estimate computed from the captured token counts."""
    capture = replay("main_grpc")
    captured = [_attributes(r) for _, r in _completed_records(capture)]
    _add_response_with_cache_and_reasoning(capture)
    expected = sum(
        _estimate(
            float(a["input_token_count"]),
            float(a.get("cached_token_count") or 0),
            float(a["output_token_count"]),
            float(a.get("reasoning_token_count") or 0),
        )
        for a in captured
    ) + _estimate(EXTRA["input"], EXTRA["cached"], EXTRA["output"], EXTRA["reasoning"])
    assert captured and all(a["model"] == MODEL for a in captured)
    receiver = ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse_url,
        database,
        OTEL_RECEIVER_CODEX_PRICES=json.dumps({MODEL: PRICES}),
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    try:
        for signal, body in capture.bodies():
            request = urllib.request.Request(
                receiver.http_url + SERVICES[signal].http_path,
                data=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
        wait_for(
            lambda: client.query(
                f"SELECT count() FROM {database}.agent_runs FINAL "
                "WHERE Kind = 'codex_run' AND ParentRunId = %(s)s",
                parameters={"s": capture.session},
            ).result_rows[0][0],
            60,
            "the codex run stitched under the Claude session in agent_runs",
        )
        yield capture, expected
    finally:
        receiver.stop()


def _report(client: Client, database: str, name: str, **extra: str) -> list[dict[str, Any]]:
    report = reports.get(name)
    result = reports.run(client, report, reports.parameters(report, database, extra=extra))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_codex_estimate_is_tokens_times_the_configured_prices(
    client: Client, database: str, loaded: tuple[Replay, float]
) -> None:
    capture, expected = loaded
    (codex,) = _report(client, database, "codex_runs")
    assert codex["codex_est_cost_usd"] == pytest.approx(expected, abs=1e-6)
    tokens = _estimate(
        codex["input_tokens"],
        codex["cache_read_tokens"],
        codex["output_tokens"],
        codex["reasoning_tokens"],
    )
    assert codex["codex_est_cost_usd"] == pytest.approx(tokens, abs=1e-6)

    by_model = {(r["agent"], r["model"]): r for r in _report(client, database, "tokens_by_model")}
    codex_model = by_model[("codex", MODEL)]
    assert codex_model["cost_usd"] == 0  # codex reports no cost
    assert codex_model["codex_est_cost_usd"] == pytest.approx(expected, abs=1e-6)
    claude = [r for (agent, _), r in by_model.items() if agent == "claude"]
    assert claude and all(r["codex_est_cost_usd"] == 0 for r in claude)
    for row in by_model.values():
        assert row["total_cost_incl_est_usd"] == pytest.approx(
            row["cost_usd"] + row["codex_est_cost_usd"], abs=1e-6
        )

    sessions = {r["id"]: r for r in _report(client, database, "sessions")}
    session, run = sessions[capture.session], sessions[codex["run_id"]]
    assert session["cost_usd"] > 0 and session["codex_est_cost_usd"] == 0
    assert run["cost_usd"] == 0 and run["codex_est_cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert session["total_cost_incl_est_usd"] == pytest.approx(
        session["cost_usd"] + expected, abs=1e-6
    )


def test_the_tree_totals_say_they_include_the_estimate(
    client: Client, database: str, loaded: tuple[Replay, float]
) -> None:
    capture, expected = loaded

    def tree_with_codex() -> Any:
        tops = build_tree(client, database, capture.session)
        return tops if tops and tops[0].totals["codex_est_cost_usd"] else None

    (top,) = wait_for(tree_with_codex, 60, "the codex run under the session in the tree")
    assert top.totals["codex_est_cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert top.totals["total_cost_incl_est_usd"] == pytest.approx(
        top.totals["cost_usd"] + expected, abs=1e-6
    )
    from receiver.query.tree import render_text

    first_line = render_text([top]).splitlines()[0]
    assert "codex est. $" in first_line and "(incl. estimate)" in first_line


def test_the_ready_made_cost_rule_adds_claude_cost_and_codex_estimate_per_user(
    client: Client, database: str, loaded: tuple[Replay, float]
) -> None:
    capture, expected = loaded
    example = REPO / "config" / "alerts.example.toml"
    rules = {
        r.name: r for r in load_settings(environ={"OTEL_RECEIVER_ALERTS": str(example)}).alerts
    }
    (session,) = [r for r in _report(client, database, "sessions") if r["id"] == capture.session]
    now = datetime.now(UTC)
    found = samples(client, rules["daily-cost-per-user"], database, now)
    assert {tuple(labels.items()): value for labels, value in found.values()} == {
        (("user", session["user"]),): pytest.approx(session["cost_usd"] + expected, abs=1e-6)
    }
