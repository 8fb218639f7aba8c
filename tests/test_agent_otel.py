"""agent_otel: a user's own Python agent, run as a real script that calls the real ``openai``
client against a local mock of the Responses API, lands in the receiver under the tool call or
launch that started it, with the token counts the mock returned (issue 19)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from agent_otel.environment import (
    GRPC,
    HTTP,
    KIND_KEY,
    PYTHON_AGENT,
    capture_content,
    export_settings,
    resource_attributes,
)
from agent_otel.providers import EXIT_FLUSH_S
from receiver.query import reports
from receiver.query.tree import Node

from .capture import CAPTURE_TOOL_EXECUTION_SPAN, replay
from .launch_env import clean_env
from .mock_model_apis import MockAnthropic, MockOpenAI
from .receiver_process import REPO, ReceiverProcess
from .test_launch import CC_LAUNCH
from .test_stitching import only, send, tree_when

AGENT = str(REPO / "tests" / "agents" / "openai_agent.py")
# The agent's calls: Responses API plain, streamed, async streamed; one chat completion.
CALLS = 4


@pytest.fixture
def mock_openai() -> Any:
    with MockOpenAI() as mock:
        yield mock


def run_agent(command: list[str], env: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # agent_otel says nothing unless asked to
    return json.loads(result.stdout.splitlines()[-1])


def agent_under(top: Node, run_id: str) -> Node | None:
    """The python_agent node ``run_id`` anywhere under ``top``, once its model calls are in."""
    stack = [top]
    while stack:
        node = stack.pop()
        if node.kind == "python_agent" and node.id == run_id:
            calls = [c for c in node.children if c.kind == "model_call"]
            return node if len(calls) == CALLS else None
        stack.extend(node.children)
    return None


def assert_model_calls(agent: Node, mock: MockOpenAI) -> None:
    calls = [c for c in agent.children if c.kind == "model_call"]
    assert [c.name for c in calls] == ["chat gpt-mock"] * CALLS
    usage = MockOpenAI.USAGE
    assert {(c.input_tokens, c.output_tokens) for c in calls} == {
        (usage.input_tokens, usage.output_tokens)
    }
    assert agent.totals["input_tokens"] == mock.input_tokens == CALLS * usage.input_tokens
    assert agent.totals["output_tokens"] == mock.output_tokens == CALLS * usage.output_tokens


# --- what the module reads from the environment ---------------------------------------------


@pytest.mark.unit
def test_export_settings_follow_otel_variables_then_cc_launch_then_default() -> None:
    assert export_settings({}) == export_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert (export_settings({}).endpoint, export_settings({}).protocol) == (
        "http://127.0.0.1:4317",
        GRPC,
    )
    launched = export_settings({"CC_LAUNCH_ENDPOINT": "127.0.0.1:5317"})
    assert (launched.endpoint, launched.protocol) == ("http://127.0.0.1:5317", GRPC)
    user = export_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "CC_LAUNCH_ENDPOINT": "127.0.0.1:5317",
        }
    )
    assert (user.endpoint, user.protocol) == ("http://collector:4318", HTTP)
    http_default = export_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert http_default.endpoint == "http://127.0.0.1:4318"


@pytest.mark.unit
def test_token_file_is_used_only_without_user_headers(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    assert export_settings({"CC_LAUNCH_TOKEN_FILE": str(token)}).token == "s3cret"
    assert (
        export_settings(
            {"CC_LAUNCH_TOKEN_FILE": str(token), "OTEL_EXPORTER_OTLP_HEADERS": "x=y"}
        ).token
        == ""
    )


@pytest.mark.unit
def test_resource_is_stamped_like_the_codex_shim_and_drops_an_outer_runs_stamps() -> None:
    env = {
        "TRACEPARENT": f"00-{'a' * 32}-{'b' * 16}-01",
        "CLAUDE_CODE_SESSION_ID": "session-1",
        "CC_LAUNCH_ID": "launch-1",
        "OTEL_RESOURCE_ATTRIBUTES": "task.id=T-1,agent.run.id=outer,agent.parent.span.id=c",
    }
    attributes = resource_attributes(env, "bot", ticket_id="TK-2")
    assert attributes["agent.run.id"] not in ("", "outer")
    assert attributes["agent.parent.session.id"] == "session-1"
    assert attributes["agent.parent.span.id"] == "b" * 16
    assert attributes["cc.launch.id"] == "launch-1"
    assert attributes[KIND_KEY] == PYTHON_AGENT
    assert (attributes["service.name"], attributes["task.id"], attributes["ticket.id"]) == (
        "bot",
        "T-1",
        "TK-2",
    )
    bare = resource_attributes({"OTEL_RESOURCE_ATTRIBUTES": "agent.parent.span.id=c"}, "bot")
    assert "agent.parent.span.id" not in bare and "agent.parent.session.id" not in bare


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [("", False), ("false", False), ("NO_CONTENT", False), ("true", True), ("span_only", True)],
)
def test_message_content_only_when_turned_on(value: str, expected: bool) -> None:
    env = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": value}
    assert capture_content(env) is expected


# Runs agent_otel with the OpenTelemetry SDK missing, and lists the server dependencies that
# `import agent_otel` pulled in.
WITHOUT_SDK = """
import json, sys

class NoSdk:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[:2] == ["opentelemetry", "sdk"]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoSdk())
import agent_otel
server = [m for m in ("grpc", "aiohttp", "clickhouse_connect", "structlog") if m in sys.modules]
print(json.dumps({"server_modules": server, "run": agent_otel.configure("bot")}))
"""


def test_without_the_sdk_configure_says_so_and_the_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SDK], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"server_modules": [], "run": None}
    assert "pip install 'agent-otel-receiver[sdk]'" in result.stderr


def test_a_setup_that_fails_leaves_the_script_untraced_but_running(tmp_path: Path) -> None:
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT="https://127.0.0.1:1",
        CC_LAUNCH_CA_FILE=str(tmp_path / "missing-ca.pem"),
    )
    code = "import agent_otel; print(agent_otel.configure('bot'))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "None\n")
    assert "agent_otel: no telemetry (FileNotFoundError" in result.stderr


# --- the real script through the real receiver ------------------------------------------------


def test_script_under_cc_launch_sits_under_the_launch_with_its_model_calls(
    receiver: ReceiverProcess,
    client: Client,
    database: str,
    clickhouse_url: str,
    mock_openai: MockOpenAI,
) -> None:
    env = clean_env(
        CC_LAUNCH_ENDPOINT=f"http://{receiver.grpc_target}",
        CC_LAUNCH_HTTP_ENDPOINT=receiver.http_url,
        OPENAI_BASE_URL=f"{mock_openai.url}/v1",
    )
    out = run_agent([*CC_LAUNCH, "--task", "T-19", "--", sys.executable, AGENT], env)
    assert out["texts"] == [MockOpenAI.TEXT] * CALLS
    run_id = out["run_id"]

    def launch_with_agent(top: Node) -> bool:
        launched = top.kind == "cc_launch" and top.start.year > 1970  # the launch span is in
        return launched and agent_under(top, run_id) is not None

    top = tree_when(client, database, run_id, launch_with_agent)
    assert top.name == "cc.launch task T-19"
    agent = only(top.children, "python_agent")
    assert agent.id == run_id and agent.name == "python agent triage-bot"
    assert "resolution=span_link" in agent.detail
    assert_model_calls(agent, mock_openai)
    assert top.totals["input_tokens"] == mock_openai.input_tokens
    rows = client.query(
        f"SELECT TaskId, Kind, LaunchId FROM {database}.agent_runs FINAL "
        "WHERE RunId = {r:String}",
        parameters={"r": run_id},
    ).result_rows
    assert rows == [("T-19", "python_agent", top.id)]
    # The official instrumentation's metric for the same calls.
    points = client.query(
        f"SELECT sum(Sum) FROM {database}.otel_metrics_histogram "
        "WHERE MetricName = 'gen_ai.client.token.usage' "
        "AND ResourceAttributes['agent.run.id'] = {r:String}",
        parameters={"r": run_id},
    ).result_rows
    assert points == [(mock_openai.input_tokens + mock_openai.output_tokens,)]
    tree = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "tree", run_id, "--clickhouse-url", clickhouse_url,
         "--clickhouse-database", database],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert tree[0].startswith("cc.launch task T-19")
    assert tree[1].startswith(f"└─ python agent triage-bot [python_agent {run_id}]")
    assert sum("chat gpt-mock [model_call" in line for line in tree[2:]) == CALLS


def _trace_of(capture: Any, span_hex: str) -> str:
    for _, request in capture.requests:
        for resource_spans in getattr(request, "resource_spans", []):
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    if span.span_id.hex() == span_hex:
                        return span.trace_id.hex()
    raise AssertionError(f"span {span_hex} not in the capture")


def test_script_with_only_traceparent_sits_under_the_bash_call_and_counts_in_reports(
    receiver: ReceiverProcess,
    client: Client,
    database: str,
    mock_openai: MockOpenAI,
) -> None:
    capture = replay("main_grpc")
    send(receiver, list(capture.bodies()))
    bash_span = capture.span(CAPTURE_TOOL_EXECUTION_SPAN)
    env = clean_env(
        TRACEPARENT=f"00-{_trace_of(capture, bash_span)}-{bash_span}-01",
        # over OTLP/HTTP this time (the cc-launch test goes over gRPC)
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OPENAI_BASE_URL=f"{mock_openai.url}/v1",
    )
    run_id = run_agent([sys.executable, AGENT], env)["run_id"]

    top = tree_when(client, database, capture.launch, lambda t: agent_under(t, run_id) is not None)
    session = only(top.children, "claude_session")
    bash = only(only(session.children, "interaction").children, "tool_call")
    assert bash.name == "Bash"
    agent = only(bash.children, "python_agent")
    assert agent.id == run_id
    assert "resolution=span_link" in agent.detail and f"parent_span={bash_span}" in agent.detail
    assert_model_calls(agent, mock_openai)

    window = {
        "database": database,
        "since": datetime.now(UTC) - timedelta(days=1),
        "until": datetime.now(UTC) + timedelta(hours=1),
    }
    tokens = client.query(reports.get("tokens_by_model").sql, parameters=window).named_results()
    python_rows = [r for r in tokens if r["agent"] == PYTHON_AGENT]
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in python_rows] == [
        ("gpt-mock", mock_openai.input_tokens, mock_openai.output_tokens)
    ]
    sessions = list(
        client.query(
            reports.get("sessions").sql, parameters={**window, "session": capture.session}
        ).named_results()
    )
    agents = [r for r in sessions if r["agent"] == PYTHON_AGENT]
    assert len(agents) == 1
    row = agents[0]
    assert (row["id"], row["parent_session"], row["api_calls"]) == (run_id, capture.session, CALLS)
    assert (row["input_tokens"], row["output_tokens"]) == (
        mock_openai.input_tokens,
        mock_openai.output_tokens,
    )
    assert row["models"] == ["gpt-mock"]
    order = [r["id"] for r in sessions]
    assert order.index(capture.session) < order.index(run_id)  # listed under its session


@pytest.mark.parametrize("down", ["closed port", "silent listener"])
def test_receiver_down_the_script_still_exits_0_quickly(mock_openai: MockOpenAI, down: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if down == "silent listener":
            listener.listen()  # accepts TCP, never answers: only deadlines end the exports
        else:
            listener.close()
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            TRACEPARENT=f"00-{'a' * 32}-{'b' * 16}-01",
            OPENAI_BASE_URL=f"{mock_openai.url}/v1",
        )
        out = run_agent([sys.executable, AGENT], env)
        exited_at = time.time()
    assert out["texts"] == [MockOpenAI.TEXT] * CALLS
    assert len(mock_openai.requests) == CALLS
    # From the script's last line to its exit: the flush is bounded (imports, slow on a loaded
    # machine, are not agent_otel's to shorten).
    assert exited_at - out["done_at"] < EXIT_FLUSH_S + 1.5


def _span_text(client: Client, database: str, run_id: str) -> str:
    rows = client.query(
        f"SELECT toString(SpanAttributes) FROM {database}.otel_traces "
        "WHERE ResourceAttributes['agent.run.id'] = {r:String}",
        parameters={"r": run_id},
    ).result_rows
    return "\n".join(row[0] for row in rows)


def test_anthropic_client_traced_with_message_text_only_when_turned_on(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    script = str(REPO / "tests" / "agents" / "anthropic_agent.py")
    prompt = "a prompt only the user may see"
    with MockAnthropic("true") as mock:
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{receiver.grpc_target}",
            ANTHROPIC_BASE_URL=mock.url,
        )
        quiet = run_agent([sys.executable, script], env)["run_id"]
        on = {**env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
        loud = run_agent([sys.executable, script], on)["run_id"]

    usage = MockAnthropic.TOOL_USE_USAGE
    for run_id in (quiet, loud):
        top = tree_when(client, database, run_id, lambda t: any(t.children))
        assert (top.kind, top.id) == ("python_agent", run_id)
        assert "resolution=orphan" in top.detail  # no TRACEPARENT, no launch: said so
        call = only(top.children, "model_call")
        assert (call.input_tokens, call.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert prompt not in _span_text(client, database, quiet)
    assert prompt in _span_text(client, database, loud)


def test_without_trace_context_the_stamps_then_the_launch_id_place_the_script(
    receiver: ReceiverProcess, client: Client, database: str, mock_openai: MockOpenAI
) -> None:
    capture = replay("main_grpc")
    send(receiver, list(capture.bodies()))
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{receiver.grpc_target}",
        OPENAI_BASE_URL=f"{mock_openai.url}/v1",
    )
    stamped = run_agent([sys.executable, AGENT], {**env, "CLAUDE_CODE_SESSION_ID": capture.session})
    launched = run_agent([sys.executable, AGENT], {**env, "CC_LAUNCH_ID": capture.launch})

    def both_placed(top: Node) -> bool:
        return all(agent_under(top, out["run_id"]) for out in (stamped, launched))

    top = tree_when(client, database, capture.launch, both_placed)
    session = only(top.children, "claude_session")
    by_session = only(session.children, "python_agent")
    assert by_session.id == stamped["run_id"] and "resolution=stamped" in by_session.detail
    by_launch = only(top.children, "python_agent")
    assert by_launch.id == launched["run_id"] and "resolution=launch" in by_launch.detail
