"""End to end with the real clients (issue 6): the real Claude Code runs a Bash tool call that
runs the real ``codex exec``, under ``cc-launch``, against local mock model APIs, with a real
receiver writing to the session's ClickHouse; then ``otel-receiver tree`` must show
cc.launch → Claude session → interaction → Bash tool call → codex run → turn, with the codex
run linked by span, its parentless side traces attributed to it through the shim's stamps,
and token totals equal to what the mocks reported.

The CLIs come from npm, installed once into a reused cache directory (``tests/real_clis.py``:
where, which versions, and when the test is skipped).
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from receiver.query.tree import build_tree

from .mock_model_apis import MockAnthropic
from .real_clis import RealClis, mock_clients, real_clis, run_claude  # noqa: F401 (real_clis is a fixture)
from .receiver_process import REPO, ReceiverProcess, wait_for

TASK = "T-E2E"
PROMPT = "run the thing"
CODEX_COMMAND = "codex exec --skip-git-repo-check 'say hi'"
TREE_TIMEOUT_S = 30


def _tree(clickhouse_url: str, database: str, launch_id: str) -> list[dict[str, Any]] | None:
    """``otel-receiver tree LAUNCH --format json`` as a user runs it; None until it exists."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver.cli",
            "tree",
            launch_id,
            "--format",
            "json",
            "--clickhouse-url",
            clickhouse_url,
            "--clickhouse-database",
            database,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    if run.returncode == 1 and "no agent run" in run.stderr:
        return None
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _only(nodes: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [n for n in nodes if n["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[(n['kind'], n['name']) for n in nodes]}"
    return found[0]


@dataclass
class Chain:
    launch: dict[str, Any]
    session: dict[str, Any]
    interaction: dict[str, Any]
    tool: dict[str, Any]
    codex: dict[str, Any]
    turn: dict[str, Any]


def _chain(tops: list[dict[str, Any]]) -> Chain:
    assert len(tops) == 1, [(t["kind"], t["name"]) for t in tops]
    launch = tops[0]
    session = _only(launch["children"], "claude_session")
    interaction = _only(session["children"], "interaction")
    tool = _only(interaction["children"], "tool_call")
    codex = _only(tool["children"], "codex_run")
    turn = _only(codex["children"], "codex_turn")
    return Chain(launch, session, interaction, tool, codex, turn)


def _render(node: dict[str, Any], depth: int = 0) -> str:
    totals = node["totals"]
    line = (
        f"{'   ' * depth}{node['name']} [{node['kind']} {node['id']}] "
        f"{node['duration_ms']:.0f} ms, tokens {totals['input_tokens']:.0f} in / "
        f"{totals['output_tokens']:.0f} out, ${totals['cost_usd']:.6f} {node['detail']}"
    )
    return "\n".join([line, *(_render(child, depth + 1) for child in node["children"])])


def test_real_claude_code_spawns_real_codex_under_cc_launch(
    real_clis: RealClis,  # noqa: F811
    receiver: ReceiverProcess,
    clickhouse_url: str,
    database: str,
    client: Client,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    with mock_clients(tmp_path, real_clis, CODEX_COMMAND) as mocks:
        anthropic, openai, egress = mocks.anthropic, mocks.openai, mocks.egress
        run = run_claude(
            mocks,
            PROMPT,
            "--task",
            TASK,
            "--endpoint",
            f"http://{receiver.grpc_target}",
            "--http-endpoint",
            receiver.http_url,
            "--verbose",
        )
        ran = time.monotonic() - started
        calls = f"anthropic:\n{anthropic.describe()}\nopenai:\n{openai.describe()}"
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{calls}"
        assert MockAnthropic.FINAL_TEXT in run.stdout, run.stdout
        assert "cc.launch span sent" in run.stderr, run.stderr
        launch_id = re.search(r"cc-launch: launch (\S+) TRACEPARENT=", run.stderr)
        assert launch_id, run.stderr
        launch_id = launch_id.group(1)

        # The models saw the whole conversation: Bash tool_use, codex's request, final text.
        answers = [seen.answer for seen in anthropic.requests if seen.answer != "empty"]
        assert answers == ["tool_use Bash", "final text"], calls
        final = next(seen for seen in anthropic.requests if seen.answer == "final text")
        tool_result = final.body["messages"][-1]["content"][0]
        assert tool_result["type"] == "tool_result" and not tool_result.get("is_error")
        assert "hi" in str(tool_result["content"]).splitlines()[-1], tool_result
        assert [s.answer for s in openai.requests if s.answer == "response"] == ["response"]
        if egress.requests:
            print(f"\ne2e: refused egress to {egress.destinations()}", file=sys.stderr)

    expected_in = anthropic.input_tokens + openai.input_tokens
    expected_out = anthropic.output_tokens + openai.output_tokens

    def complete_tree() -> Chain | None:
        tops = _tree(clickhouse_url, database, launch_id)
        if not tops:
            return None
        try:
            chain = _chain(tops)
        except AssertionError:
            return None
        totals = chain.launch["totals"]
        # Every run resolved: the launch's own span, not a placeholder named by its children.
        if "resolution=root" not in chain.launch["detail"]:
            return None
        if "resolution=span_link" not in chain.codex["detail"]:
            return None
        if (totals["input_tokens"], totals["output_tokens"]) != (expected_in, expected_out):
            return None
        return chain

    try:
        chain = wait_for(complete_tree, TREE_TIMEOUT_S, "the complete tree", interval=0.5)
    except AssertionError:
        tops = _tree(clickhouse_url, database, launch_id) or []
        shown = "\n".join(_render(top) for top in tops)
        pytest.fail(
            f"no complete tree for launch {launch_id} after {TREE_TIMEOUT_S}s; expected "
            f"tokens {expected_in} in / {expected_out} out. Tree:\n{shown}\n"
            f"agent_runs:\n{_agent_runs(client, database)}"
        )
    settled = time.monotonic() - started
    print(f"\ne2e: client run {ran:.1f}s, tree complete after {settled:.1f}s", file=sys.stderr)
    print(_render(chain.launch), file=sys.stderr)

    # The tree: cc.launch -> session -> interaction -> Bash -> codex run -> turn.
    launch, session, codex = chain.launch, chain.session, chain.codex
    assert (launch["kind"], launch["id"]) == ("cc_launch", launch_id)
    assert f"task {TASK}" in launch["name"]
    assert "resolution=span_link" in session["detail"], session["detail"]
    assert chain.interaction["name"] == "interaction #1"
    assert chain.tool["name"] == "Bash" and chain.tool["failures"] == 0
    assert codex["name"].startswith("codex exec (thread ")
    assert chain.turn["name"].startswith("turn ")

    # Tokens: the session's own figures are Claude's usage, the run's are codex's, and the
    # top sums both (the interaction and tool call carry none of their own).
    assert (session["input_tokens"], session["output_tokens"]) == (
        anthropic.input_tokens,
        anthropic.output_tokens,
    )
    assert (codex["input_tokens"], codex["output_tokens"]) == (
        openai.input_tokens,
        openai.output_tokens,
    )
    for node in (launch, session):
        assert node["totals"]["input_tokens"] == expected_in
        assert node["totals"]["output_tokens"] == expected_out
    assert session["cost_usd"] > 0 and launch["totals"]["cost_usd"] == pytest.approx(
        session["cost_usd"] + codex["cost_usd"]
    )

    # Asked by the codex run, the session or the trace, the tree is the same family.
    for key in (codex["id"], session["id"], _trace_of(client, database, chain.tool["id"])):
        assert [top.id for top in build_tree(client, database, key)] == [launch_id], key

    _assert_runs_and_side_traces(client, database, launch_id, session["id"], codex["id"])

    # Each node's time window lies inside its parent's (a child starts after and ends before
    # the parent that ran it), so durations are the real ones.
    problems = _window_problems(chain)
    launch_span_ms = client.query(
        f"SELECT max(Duration) / 1e6 FROM `{database}`.otel_traces WHERE SpanName = 'cc.launch'"
    ).result_rows[0][0]
    assert launch["duration_ms"] == pytest.approx(launch_span_ms, abs=1)
    assert not problems, problems


def _window(node: dict[str, Any]) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(node["start"])
    return start, start + timedelta(milliseconds=node["duration_ms"])


def _window_problems(chain: Chain) -> list[str]:
    # Claude Code's span starts have millisecond resolution; clocks are the same machine's.
    slack = timedelta(milliseconds=5)
    nodes = [chain.launch, chain.session, chain.interaction, chain.tool, chain.codex, chain.turn]
    problems = []
    for parent, child in itertools.pairwise(nodes):
        (p_start, p_end), (c_start, c_end) = _window(parent), _window(child)
        if c_start < p_start - slack or c_end > p_end + slack:
            problems.append(
                f"{child['kind']} {c_start.time()}..{c_end.time()} is outside "
                f"{parent['kind']} {p_start.time()}..{p_end.time()}"
            )
    return problems


def _trace_of(client: Client, database: str, span_id: str) -> str:
    return client.query(
        f"SELECT any(TraceId) FROM `{database}`.otel_traces WHERE SpanId = {{span:String}}",
        parameters={"span": span_id},
    ).result_rows[0][0]


def _agent_runs(client: Client, database: str) -> str:
    rows = client.query(
        f"SELECT RunId, Kind, ParentRunId, ParentSpanId, Resolution, OrphanReason "
        f"FROM `{database}`.agent_runs FINAL ORDER BY FirstSeen"
    ).result_rows
    return "\n".join(f"  {row}" for row in rows)


def _assert_runs_and_side_traces(
    client: Client, database: str, launch_id: str, session_id: str, run_id: str
) -> None:
    db = f"`{database}`"
    runs = {
        row[0]: row[1:]
        for row in client.query(
            f"SELECT RunId, Kind, ParentRunId, ParentSpanId, Resolution, LaunchId, TaskId "
            f"FROM {db}.agent_runs FINAL"
        ).result_rows
    }
    assert set(runs) == {launch_id, session_id, run_id}, _agent_runs(client, database)
    spans = dict(
        client.query(
            f"SELECT SpanName, any(SpanId) FROM {db}.otel_traces WHERE SpanName IN "
            "('claude_code.tool.execution', 'claude_code.interaction', 'cc.launch') "
            "GROUP BY SpanName HAVING count() = 1"
        ).result_rows
    )
    # The codex run is linked to Claude's Bash span that ran it (its TRACEPARENT), and the
    # session to the cc.launch span (Claude's interaction continues the launch's context).
    tool_span = spans["claude_code.tool.execution"]
    # The shim stamps no task.id (Claude strips OTEL_* from its children): the codex run takes
    # its launch's task, although the launch span arrived last.
    assert runs[run_id] == ("codex_run", session_id, tool_span, "span_link", launch_id, TASK)
    assert runs[session_id] == (
        "claude_session",
        launch_id,
        spans["cc.launch"],
        "span_link",
        launch_id,
        TASK,
    )
    assert runs[launch_id][0] == "cc_launch" and runs[launch_id][3] == "root"

    # Every codex span carries the shim's stamps, including the parentless side traces
    # (auth, fs.read_file, ...), and the stitch stage attributed each of them to the run.
    stamps = client.query(
        f"""
        SELECT
            count() AS spans,
            countIf(ResourceAttributes['agent.run.id'] = {{run:String}}) AS stamped,
            uniqExact(TraceId) AS traces,
            groupUniqArrayIf(SpanName, ParentSpanId = '') AS roots,
            countIf(ParentSpanId = '') AS root_spans,
            uniqExactIf(TraceId, ParentSpanId = '') AS root_traces,
            groupUniqArray(ResourceAttributes['agent.parent.session.id']) AS parent_sessions,
            groupUniqArray(ResourceAttributes['agent.parent.span.id']) AS parent_spans,
            groupUniqArray(ResourceAttributes['cc.launch.id']) AS launches,
            countIf(SpanId IN (SELECT SpanId FROM {db}.agent_spans
                               WHERE RunId = {{run:String}})) AS attributed
        FROM {db}.otel_traces WHERE ServiceName = 'codex_exec'
        """,
        parameters={"run": run_id},
    ).named_results()
    side = next(iter(stamps))
    assert side["spans"] > 100 and side["stamped"] == side["spans"], side
    assert side["root_spans"] >= 2 and side["root_traces"] >= 2, side
    assert {"auth", "fs.read_file"} <= set(side["roots"]), side["roots"]
    assert side["parent_sessions"] == [session_id]
    assert side["parent_spans"] == [tool_span]
    assert side["launches"] == [launch_id]
    assert side["attributed"] == side["spans"], side
    # agent_spans holds each side trace under the run (what the tree reads by RunId).
    side_traces = client.query(
        f"SELECT uniqExact(TraceId) FROM {db}.agent_spans "
        f"WHERE RunId = {{run:String}} AND ParentSpanId = ''",
        parameters={"run": run_id},
    ).result_rows[0][0]
    assert side_traces == side["root_traces"]
    # Codex's logs and metrics are stamped too.
    for table in ("otel_logs", "otel_metrics_sum", "otel_metrics_histogram"):
        unstamped = client.query(
            f"SELECT count(), countIf(ResourceAttributes['agent.run.id'] != {{run:String}}) "
            f"FROM {db}.{table} WHERE ServiceName = 'codex_exec'",
            parameters={"run": run_id},
        ).result_rows[0]
        assert unstamped[0] > 0 and unstamped[1] == 0, (table, unstamped)
