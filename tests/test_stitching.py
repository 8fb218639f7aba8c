"""Stitching through the real receiver into the real ClickHouse: renamed replays of the real
Claude Code / Codex captures, in their real arrival order (the codex child before its Claude
parent), and scenario data shaped like them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.ingest.otlp import SERVICES
from receiver.query.tree import Node, build_tree

from .bare_python import make_bare_python
from .capture import (
    CAPTURE_INBOUND_SPAN,
    CAPTURE_TOOL_EXECUTION_SPAN,
    Replay,
    is_claude,
    is_codex,
    replay,
)
from .receiver_process import ReceiverProcess, wait_for


def send(receiver: ReceiverProcess, bodies: list[tuple[str, bytes]]) -> None:
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        for signal, body in bodies:
            method = f"/{SERVICES[signal][0]}/Export"
            channel.unary_unary(method)(body, timeout=10)


def tree_when(client: Client, database: str, key: str, ready: Any, timeout: float = 15) -> Node:
    """Poll the tree of ``key`` until ``ready(top)`` holds."""

    def attempt() -> Node | None:
        tops = build_tree(client, database, key)
        return tops[0] if len(tops) == 1 and ready(tops[0]) else None

    return wait_for(attempt, timeout, f"the tree of {key}", interval=0.3)


def only(nodes: list[Node], kind: str) -> Node:
    found = [n for n in nodes if n.kind == kind]
    assert len(found) == 1, [(n.kind, n.name) for n in nodes]
    return found[0]


def codex_under_bash(top: Node) -> bool:
    try:
        session = only(top.children, "claude_session")
        interaction = only(session.children, "interaction")
        tool = only(interaction.children, "tool_call")
        codex = only(tool.children, "codex_run")
        return "resolution=span_link" in codex.detail
    except AssertionError:
        return False


def assert_capture_tree(top: Node, capture: Replay) -> None:
    assert (top.kind, top.id) == ("cc_launch", capture.launch)
    session = only(top.children, "claude_session")
    assert session.id == capture.session
    interaction = only(session.children, "interaction")
    bash = only(interaction.children, "tool_call")
    assert bash.name == "Bash"
    codex = only(bash.children, "codex_run")
    assert codex.id == capture.thread
    assert "resolution=span_link" in codex.detail
    assert f"parent_span={capture.span(CAPTURE_TOOL_EXECUTION_SPAN)}" in codex.detail
    turn = only(codex.children, "codex_turn")
    assert turn.duration_ms > 0
    assert (codex.input_tokens, codex.output_tokens) == (50, 4)
    assert (session.input_tokens, session.output_tokens) == (246, 34)
    assert top.totals["input_tokens"] == 296 and top.totals["output_tokens"] == 38
    assert round(top.totals["cost_usd"], 6) == 0.001664


def test_a_main_capture_codex_under_claude_bash_under_session_under_inbound_span(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    capture = replay("main_grpc")
    send(receiver, list(capture.bodies()))
    for key in (capture.launch, capture.session, capture.thread):
        top = tree_when(client, database, key, codex_under_bash)
        assert_capture_tree(top, capture)
    session = only(top.children, "claude_session")
    assert "resolution=launch" in session.detail
    assert f"parent_span={capture.span(CAPTURE_INBOUND_SPAN)}" in session.detail


def test_b_no_traceparent_capture(receiver: ReceiverProcess, client: Client, database: str) -> None:
    capture = replay("no_traceparent")
    session_id = capture.renamer.name("96271b2a-f7e4-4ad6-b8b0-4f6ace9dd8b8")  # its own session
    send(receiver, list(capture.bodies()))
    top = tree_when(client, database, session_id, codex_under_bash)
    session = only(top.children, "claude_session")
    assert session.id == session_id
    assert "parent_span=" not in session.detail  # the interaction span is a root here
    codex = only(
        only(only(session.children, "interaction").children, "tool_call").children, "codex_run"
    )
    assert "resolution=span_link" in codex.detail


def test_c_two_sessions_interleaved_do_not_cross_link(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    first, second = replay("main_grpc"), replay("main_grpc")
    interleaved = [b for pair in zip(first.bodies(), second.bodies(), strict=True) for b in pair]
    send(receiver, interleaved)
    for capture, other in ((first, second), (second, first)):
        top = tree_when(client, database, capture.session, codex_under_bash)
        assert_capture_tree(top, capture)
        ids = json.dumps([top.as_dict()])
        assert other.session not in ids and other.thread not in ids


def _subagent_capture() -> Replay:
    """main_grpc with the Bash call made inside a subagent: interaction -> Task tool ->
    Task tool.execution -> (subagent) Bash tool -> Bash tool.execution -> codex."""
    capture = replay("main_grpc")
    bash_tool = capture.span("f290ef6366b10742")
    interaction = capture.span("9dcc6a7acacdc51b")
    for signal, request in capture.requests:
        if signal != "traces":
            continue
        for scope in request.resource_spans[0].scope_spans:
            spans = {s.span_id.hex(): s for s in scope.spans}
            if bash_tool not in spans:
                continue
            bash = spans[bash_tool]
            task_tool = trace_pb2.Span()
            task_tool.CopyFrom(bash)
            task_tool.span_id = bytes.fromhex("aa" * 8)
            task_tool.parent_span_id = bytes.fromhex(interaction)
            for kv in task_tool.attributes:
                if kv.key in ("tool_name", "gen_ai.tool.name"):
                    kv.value.string_value = "Task"
                if kv.key == "tool_use_id":
                    kv.value.string_value = "toolu_task"
            task_execution = trace_pb2.Span()
            task_execution.CopyFrom(task_tool)
            task_execution.name = "claude_code.tool.execution"
            task_execution.span_id = bytes.fromhex("bb" * 8)
            task_execution.parent_span_id = task_tool.span_id
            bash.parent_span_id = task_execution.span_id
            scope.spans.extend([task_tool, task_execution])
    return capture


def test_d_codex_spawned_from_a_subagent_tool_call(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    capture = _subagent_capture()
    send(receiver, list(capture.bodies()))

    def codex_under_task(top: Node) -> bool:
        try:
            interaction = only(only(top.children, "claude_session").children, "interaction")
            task = next(n for n in interaction.children if n.name == "Task")
            bash = only(task.children, "tool_call")
            return bash.name == "Bash" and any(c.kind == "codex_run" for c in bash.children)
        except (AssertionError, StopIteration):
            return False

    top = tree_when(client, database, capture.thread, codex_under_task)
    assert top.totals["input_tokens"] == 296


def test_e_orphan_whose_parent_never_arrives_is_shown_with_its_reason(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    capture = replay("main_grpc", keep=is_codex)
    for _, request in capture.requests:  # no launch either: nothing else to hang it on
        for resource in (
            getattr(request, "resource_spans", [])
            or getattr(request, "resource_logs", [])
            or getattr(request, "resource_metrics", [])
        ):
            kept = [kv for kv in resource.resource.attributes if kv.key != "cc.launch.id"]
            del resource.resource.attributes[:]
            resource.resource.attributes.extend(kept)
    send(receiver, list(capture.bodies()))
    top = tree_when(client, database, capture.thread, lambda t: t.kind == "codex_run")
    assert top.id == capture.thread
    missing = capture.span(CAPTURE_TOOL_EXECUTION_SPAN)
    assert f"resolution=orphan (parent span {missing} has not arrived)" in top.detail


def test_f_two_receivers_each_given_one_side_end_with_the_same_tree(
    receiver: ReceiverProcess,
    tmp_path: Path,
    clickhouse_url: str,
    client: Client,
    database: str,
) -> None:
    other = ReceiverProcess.serving(
        tmp_path / "other",
        clickhouse_url,
        database,
        data_dir=tmp_path / "other-data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    try:
        capture = replay("main_grpc")
        bodies = list(capture.bodies())
        codex_side = [
            b
            for b, (_, r) in zip(bodies, capture.requests, strict=True)
            if _service(r) == "codex_exec"
        ]
        claude_side = [b for b in bodies if b not in codex_side]
        send(receiver, codex_side)
        orphan = tree_when(client, database, capture.thread, lambda t: True)
        assert not codex_under_bash(orphan)  # the parent has not arrived anywhere yet
        send(other, claude_side)
        top = tree_when(client, database, capture.thread, codex_under_bash)
        assert_capture_tree(top, capture)
    finally:
        other.stop()


def _service(request: Any) -> str:
    for resources in ("resource_spans", "resource_logs", "resource_metrics"):
        for resource in getattr(request, resources, []):
            for kv in resource.resource.attributes:
                if kv.key == "service.name":
                    return kv.value.string_value
    return ""


def test_g_claude_tracing_off_codex_parented_by_launch_context_and_shim_stamps(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    capture = replay("main_grpc", keep=lambda p: not (is_claude(p) and "traces" in p.name))
    launch_span = bytes.fromhex("cc" * 8)
    run_id = "run-" + capture.thread[:8]
    stamps = {
        "agent.run.id": run_id,
        "agent.parent.session.id": capture.session,
        "agent.parent.span.id": launch_span.hex(),
        "cc.launch.id": capture.launch,
    }
    trace_id = b""
    for _, request in capture.requests:
        for resource_spans in getattr(request, "resource_spans", []):
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    if span.parent_span_id.hex() == capture.span(CAPTURE_TOOL_EXECUTION_SPAN):
                        span.parent_span_id = launch_span  # Claude passed the launch context on
                        trace_id = span.trace_id
        if _service(request) != "codex_exec":
            continue
        for resources in ("resource_spans", "resource_logs", "resource_metrics"):
            for resource in getattr(request, resources, []):
                resource.resource.attributes.extend(
                    KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in stamps.items()
                )
    launch = _launch_request(trace_id, launch_span, capture.launch)
    send(receiver, [*capture.bodies(), ("traces", launch)])

    def codex_under_session(top: Node) -> bool:
        if top.name.startswith("cc.launch (no launch span"):
            return False
        try:
            session = only(top.children, "claude_session")
            return only(session.children, "codex_run").id == run_id
        except AssertionError:
            return False

    top = tree_when(client, database, run_id, codex_under_session)
    assert (top.kind, top.id, top.name) == ("cc_launch", capture.launch, "cc.launch task T-1")
    codex = only(only(top.children, "claude_session").children, "codex_run")
    assert "resolution=stamped" in codex.detail
    side_traces = client.query(
        f"SELECT count() FROM {database}.agent_spans WHERE RunId = {{r:String}} "
        "AND ParentSpanId = '' ",
        parameters={"r": run_id},
    ).result_rows[0][0]
    assert side_traces >= 12  # codex's parentless side traces belong to the run via the stamps
    # The shim cannot see task.id (Claude strips OTEL_* from its children): the run takes its
    # launch's task, although the launch span arrives last.
    wait_for(
        lambda: (
            client.query(
                f"SELECT TaskId FROM {database}.agent_runs FINAL WHERE RunId = {{r:String}}",
                parameters={"r": run_id},
            ).result_rows
            == [("T-1",)]
        ),
        20,
        "the codex run's task from its launch",
    )


def _launch_request(trace_id: bytes, span_id: bytes, launch_id: str) -> bytes:
    now = time.time_ns()
    attrs = {"cc.launch.id": launch_id, "task.id": "T-1", "process.exit_code": "0"}
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=Resource(
                    attributes=[
                        KeyValue(key="service.name", value=AnyValue(string_value="cc-launch"))
                    ]
                ),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        spans=[
                            trace_pb2.Span(
                                trace_id=trace_id,
                                span_id=span_id,
                                name="cc.launch",
                                start_time_unix_nano=now - 5_000_000_000,
                                end_time_unix_nano=now,
                                attributes=[
                                    KeyValue(key=k, value=AnyValue(string_value=v))
                                    for k, v in attrs.items()
                                ],
                            )
                        ]
                    )
                ],
            )
        ]
    ).SerializeToString()


def test_tree_cli_prints_the_replayed_capture(
    receiver: ReceiverProcess, client: Client, database: str, clickhouse_url: str
) -> None:
    capture = replay("main_grpc")
    send(receiver, list(capture.bodies()))
    tree_when(client, database, capture.launch, codex_under_bash)
    base = [
        sys.executable,
        "-m",
        "receiver.cli",
        "tree",
        capture.launch,
        "--clickhouse-url",
        clickhouse_url,
        "--clickhouse-database",
        database,
    ]
    text = subprocess.run(base, capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    assert lines[0].startswith("cc.launch")
    assert any("└─ Bash [tool_call" in line for line in lines)
    assert any(f"codex exec (thread {capture.thread})" in line for line in lines)
    assert "tokens 296 in / 38 out" in lines[0]
    nested = json.loads(
        subprocess.run(
            [*base, "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
    )
    session = nested[0]["children"][0]
    assert session["kind"] == "claude_session" and session["totals"]["input_tokens"] == 296
    missing = subprocess.run([*base[:4], "no-such-run", *base[5:]], capture_output=True, text=True)
    assert missing.returncode == 1 and "no agent run" in missing.stderr


def test_launch_span_from_a_bare_python3_lands_in_the_tree(
    receiver: ReceiverProcess, client: Client, database: str, tmp_path: Path
) -> None:
    """``bin/cc-launch`` run by a python3 without the project's dependencies: its hand-encoded
    OTLP/HTTP JSON span lands in ClickHouse and the tree's launch node is that span (not a
    placeholder named by its children)."""
    bare = make_bare_python(tmp_path / "bare")
    run = subprocess.run(
        [
            str(bare),
            str(Path(__file__).resolve().parents[1] / "bin" / "cc-launch"),
            "--endpoint",
            f"http://{receiver.grpc_target}",
            "--http-endpoint",
            receiver.http_url,
            "--task",
            "T-bare",
            "-v",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3, run.stderr
    assert "cc.launch span sent" in run.stderr, run.stderr
    launch_id = run.stderr.split("cc-launch: launch ", 1)[1].split()[0]
    top = tree_when(client, database, launch_id, lambda top: top.kind == "cc_launch")
    assert top.id == launch_id
    assert top.name == "cc.launch task T-bare"
    rows = client.query(
        f"SELECT SpanAttributes['process.exit_code'], ResourceAttributes['task.id'], "
        f"ServiceName FROM {database}.otel_traces WHERE SpanName = 'cc.launch' "
        "AND ResourceAttributes['cc.launch.id'] = {l:String}",
        parameters={"l": launch_id},
    ).result_rows
    assert rows == [("3", "T-bare", "cc-launch")]
