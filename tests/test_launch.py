"""cc-launch and the codex shim as real processes (issue 6, tests (h)).

The cc.launch span is received by a real OTLP/HTTP endpoint in the test (a test peer that
decodes each request with the receiver's own OTLP/JSON decoder and records it). Codex is a
fake script that dumps its argv and environment: the real codex is exercised end to end
elsewhere. No ClickHouse is needed. The tools are also run under a bare ``python3`` (no
project dependencies), as ``#!/usr/bin/env python3`` may pick on a user's machine.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from receiver.agents import launch
from receiver.agents.codex_shim import find_subcommand, otel_overrides, rewrite
from receiver.ingest.http_frontend import HttpError, json_to_protobuf

from .bare_python import make_bare_python
from .launch_env import clean_env
from .receiver_process import wait_for

REPO = Path(__file__).resolve().parents[1]
CC_LAUNCH = [sys.executable, str(REPO / "bin" / "cc-launch")]
CODEX_SPAWN = [sys.executable, str(REPO / "bin" / "codex-spawn")]

# A child that writes its environment, when it started, and what it finds first on PATH
# (the shim directory's mode, whether it holds an executable `codex`) as JSON to argv[1].
DUMP_ENV = textwrap.dedent(
    """
    import json, os, stat, sys, time
    first = os.environ["PATH"].split(os.pathsep)[0]
    shim = {
        "mode": stat.S_IMODE(os.stat(first).st_mode),
        "codex": os.access(os.path.join(first, "codex"), os.X_OK),
    }
    json.dump({"env": dict(os.environ), "t": time.time_ns(), "shim": shim}, open(sys.argv[1], "w"))
    """
)

FAKE_CODEX = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["FAKE_CODEX_OUT"], "a") as out:
    out.write(json.dumps({{"argv": sys.argv, "env": dict(os.environ)}}) + "\\n")
"""


def attrs(key_values: Any) -> dict[str, Any]:
    out = {}
    for kv in key_values:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TraceCollector:
    """A real OTLP/HTTP traces endpoint on an OS-assigned port: each POST to ``/v1/traces``
    is decoded by the receiver's own OTLP/JSON decoder and recorded with its headers."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = 200, b"{}"
                try:
                    assert self.path == "/v1/traces", self.path
                    assert self.headers.get("Content-Type") == "application/json"
                    raw = json_to_protobuf("traces", body)
                except (AssertionError, HttpError) as exc:
                    status, answer = 400, json.dumps({"message": str(exc)}).encode()
                else:
                    collector.headers.append(dict(self.headers))
                    collector.requests.append(ExportTraceServiceRequest.FromString(raw))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        return [
            (attrs(rs.resource.attributes), span)
            for request in self.requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]


@pytest.fixture
def collector() -> Iterator[TraceCollector]:
    peer = TraceCollector()
    yield peer
    peer.server.shutdown()
    peer.server.server_close()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bare_python(tmp_path_factory.mktemp("bare") / "venv")


def run_launch(
    *args: str, env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CC_LAUNCH, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def child_env(tmp_path: Path, *launch_args: str, env: dict[str, str]) -> dict[str, Any]:
    out = tmp_path / "child.json"
    result = run_launch(*launch_args, "--", sys.executable, "-c", DUMP_ENV, str(out), env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


# --- unit: trace context and resource attributes ------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01", True),
        ("00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-00", True),
        ("01-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01-future", True),
        ("00-00000000000000000000000000000000-1526e6d37ddcc3b1-01", False),
        ("00-a171b1cf0a55edc7f60e7b6d11e2c59f-0000000000000000-01", False),
        ("00-A171B1CF0A55EDC7F60E7B6D11E2C59F-1526e6d37ddcc3b1-01", False),
        ("ff-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01", False),
        ("00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01-extra", False),
        ("00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_parse_traceparent(value: str, valid: bool) -> None:
    assert (launch.parse_traceparent(value) is not None) is valid


@pytest.mark.unit
def test_resource_attributes_keep_existing_and_encode() -> None:
    merged = launch.merge_resource_attributes(
        "team=core, cc.launch.id=old,,deployment.environment=dev",
        {"cc.launch.id": "new", "task.id": "T 42,a=b%"},
    )
    assert merged.split(",") == [
        "team=core",
        "deployment.environment=dev",
        "cc.launch.id=new",
        "task.id=T%2042%2Ca%3Db%25",
    ]
    assert launch.parse_resource_attributes(merged) == {
        "team": "core",
        "deployment.environment": "dev",
        "cc.launch.id": "new",
        "task.id": "T 42,a=b%",
    }


@pytest.mark.unit
def test_prepare_is_pure_and_keeps_user_settings() -> None:
    environ = clean_env(
        OTEL_METRICS_EXPORTER="console",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://10.1.2.3:4317",
        CLAUDE_CODE_ENABLE_TELEMETRY="",
    )
    before = dict(environ)
    prepared = launch.prepare(environ, task="T-1", shim_dir="/shim")
    assert environ == before
    env = prepared.env
    assert env["OTEL_METRICS_EXPORTER"] == "console"
    assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"  # empty counts as unset
    # The user's gRPC endpoint is the receiver for the launch span and codex too.
    assert prepared.endpoint == env["CC_LAUNCH_ENDPOINT"] == "http://10.1.2.3:4317"
    assert prepared.warnings == []
    assert env["PATH"].startswith("/shim" + os.pathsep)


@pytest.mark.unit
def test_prepare_warns_on_split_endpoints_and_too_many_attributes() -> None:
    many = ",".join(f"k{i}=v" for i in range(11))
    prepared = launch.prepare(
        clean_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://else:4317", OTEL_RESOURCE_ATTRIBUTES=many),
        task="T",
        endpoint="http://127.0.0.1:4317",
    )
    assert len(prepared.warnings) == 2
    assert "http://else:4317" in prepared.warnings[0]
    assert "13 entries" in prepared.warnings[1]


# --- cc-launch: the child's environment ---------------------------------------------------


def test_mints_trace_context_and_turns_on_telemetry(tmp_path: Path) -> None:
    dump = child_env(
        tmp_path,
        "--task",
        "T-42",
        "--ticket",
        "JIRA 7",
        env=clean_env(OTEL_RESOURCE_ATTRIBUTES="team=core,env=dev", ANTHROPIC_BASE_URL="http://x"),
    )
    seen = dump["env"]
    context = launch.parse_traceparent(seen["TRACEPARENT"])
    assert context is not None and context.flags == "01"
    assert seen["TRACEPARENT"] == f"00-{context.trace_id}-{context.span_id}-01"
    for name, value in launch.TELEMETRY_DEFAULTS.items():
        assert seen[name] == value
    assert seen["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
    assert seen["CLAUDE_CODE_PROPAGATE_TRACEPARENT"] == "1"
    entries = seen["OTEL_RESOURCE_ATTRIBUTES"].split(",")
    assert entries[:2] == ["team=core", "env=dev"]
    assert entries[2] == f"cc.launch.id={seen['CC_LAUNCH_ID']}"
    assert entries[3:] == ["task.id=T-42", "ticket.id=JIRA%207"]
    assert len(seen["CC_LAUNCH_ID"]) == 32
    assert seen["CC_LAUNCH_ENDPOINT"] == "http://127.0.0.1:4317"
    assert seen["CC_LAUNCH_HTTP_ENDPOINT"] == "http://127.0.0.1:4318/v1/traces"
    assert dump["shim"] == {"mode": 0o700, "codex": True}
    shim_dir = seen["PATH"].split(os.pathsep)[0]
    assert seen["PATH"] == f"{shim_dir}{os.pathsep}{os.environ['PATH']}"
    assert not Path(shim_dir).exists()  # removed when cc-launch exits


def test_continues_valid_inbound_traceparent(tmp_path: Path) -> None:
    inbound = "00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01"
    seen = child_env(tmp_path, env=clean_env(TRACEPARENT=inbound))["env"]
    context = launch.parse_traceparent(seen["TRACEPARENT"])
    assert context is not None
    assert context.trace_id == "a171b1cf0a55edc7f60e7b6d11e2c59f"
    assert context.span_id != "1526e6d37ddcc3b1"


@pytest.mark.parametrize(
    "inbound",
    ["00-00000000000000000000000000000000-0000000000000000-00", "not-a-traceparent", ""],
)
def test_mints_when_inbound_traceparent_is_invalid(tmp_path: Path, inbound: str) -> None:
    seen = child_env(tmp_path, env=clean_env(TRACEPARENT=inbound))["env"]
    context = launch.parse_traceparent(seen["TRACEPARENT"])
    assert context is not None and context.trace_id != "0" * 32


def test_user_telemetry_settings_are_kept(tmp_path: Path) -> None:
    user = {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "console",
        "OTEL_TRACES_EXPORTER": "none",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "0",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "CLAUDE_CODE_PROPAGATE_TRACEPARENT": "0",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
    }
    out = tmp_path / "child.json"
    result = run_launch(
        "--endpoint",
        f"127.0.0.1:{closed_port()}",
        "--http-endpoint",
        f"127.0.0.1:{closed_port()}",
        "--",
        sys.executable,
        "-c",
        DUMP_ENV,
        str(out),
        env=clean_env(**user),
    )
    assert result.returncode == 0
    seen = json.loads(out.read_text())["env"]
    for name, value in user.items():
        assert seen[name] == value
    assert "warning: Claude Code exports to http://127.0.0.1:4318" in result.stderr


# --- cc-launch: exit codes, missing commands, signals -------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + signal.SIGTERM)],
)
def test_exit_code_passes_through(script: str, expected: int) -> None:
    env = clean_env(CC_LAUNCH_HTTP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    result = run_launch("--", "sh", "-c", script, env=env)
    assert result.returncode == expected
    assert len(result.stderr.splitlines()) == 1  # the span not sent, said once


def test_command_not_found_exits_127(collector: TraceCollector) -> None:
    env = clean_env(CC_LAUNCH_HTTP_ENDPOINT=collector.endpoint)
    result = run_launch("--", "no-such-command-cc-launch-test", "--secret", env=env)
    assert result.returncode == 127
    assert "no-such-command-cc-launch-test: command not found" in result.stderr
    [(_, span)] = collector.spans()
    assert attrs(span.attributes)["process.exit_code"] == 127
    assert span.status.code == Status.STATUS_CODE_ERROR


SIGNAL_CHILD = textwrap.dedent(
    """
    import signal, sys
    out = sys.argv[1]
    def record(signum, frame):
        with open(out, "a") as f:
            f.write(signal.Signals(signum).name + "\\n")
        if signum == signal.SIGTERM:
            sys.exit(7)
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, record)
    open(out + ".ready", "w").close()
    while True:
        signal.pause()
    """
)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_signals_reach_the_child(tmp_path: Path) -> None:
    out = tmp_path / "signals"
    env = clean_env(CC_LAUNCH_HTTP_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    process = subprocess.Popen(
        [*CC_LAUNCH, "--", sys.executable, "-c", SIGNAL_CHILD, str(out)],
        env=env,
        start_new_session=True,  # no controlling terminal: every signal is forwarded
    )
    try:
        wait_for(lambda: Path(f"{out}.ready").exists(), 20, "the child to start")
        sent = [signal.SIGUSR1, signal.SIGHUP, signal.SIGINT, signal.SIGUSR2]
        for number, signum in enumerate(sent, 1):
            process.send_signal(signum)
            wait_for(lambda n=number: len(lines(out)) >= n, 10, f"{signum.name} at the child")
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 7
    finally:
        if process.poll() is None:
            process.kill()
    assert lines(out) == [s.name for s in [*sent, signal.SIGTERM]]


def read_until(fd: int, text: str, timeout: float) -> str:
    """What the terminal shows (read from the pty master) until ``text`` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {text!r} on the terminal: {seen!r}")
        if select.select([fd], [], [], remaining)[0]:
            seen += os.read(fd, 4096)
    return seen.decode(errors="replace")


def test_terminal_ctrl_c_reaches_the_child_once(tmp_path: Path) -> None:
    """In a terminal's foreground, Ctrl-C already reaches the child: no second SIGINT
    (Claude Code exits on a second Ctrl-C). Two SIGINTs close together may merge at the
    child, so cc-launch's debug output says what it forwarded."""
    out = tmp_path / "signals"
    env = clean_env(
        CC_LAUNCH_HTTP_ENDPOINT=f"http://127.0.0.1:{closed_port()}", CC_LAUNCH_DEBUG="1"
    )
    argv = [*CC_LAUNCH, "--", sys.executable, "-c", SIGNAL_CHILD, str(out)]
    pid, master = pty.fork()
    if pid == 0:  # the child: session leader with the pty as controlling terminal
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    try:
        wait_for(lambda: Path(f"{out}.ready").exists(), 20, "the child to start")
        os.write(master, b"\x03")  # Ctrl-C: the terminal signals its foreground group
        wait_for(lambda: lines(out), 10, "SIGINT at the child")
        os.kill(pid, signal.SIGUSR1)  # forwarded after any (wrongly) forwarded SIGINT
        wait_for(lambda: "SIGUSR1" in lines(out), 10, "SIGUSR1 at the child")
        assert lines(out) == ["SIGINT", "SIGUSR1"]
        terminal = read_until(master, "forwarding SIGUSR1", 10)
        assert "not forwarding SIGINT: the terminal sent it too" in terminal
        assert "forwarding SIGINT to" not in terminal
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(master)


# --- cc-launch: the cc.launch span --------------------------------------------------------


def test_launch_span_arrives(tmp_path: Path, collector: TraceCollector) -> None:
    inbound = "00-a171b1cf0a55edc7f60e7b6d11e2c59f-1526e6d37ddcc3b1-01"
    out = tmp_path / "child.json"
    script = f'{sys.executable} -c "$0" {out} && exit 5'
    env = clean_env(TRACEPARENT=inbound, OTEL_RESOURCE_ATTRIBUTES="team=core")
    result = run_launch(
        "--http-endpoint",
        collector.endpoint,
        "--task",
        "T-42",
        "--ticket",
        "TK-1",
        "--",
        "/bin/sh",
        "-c",
        script,
        DUMP_ENV,
        env=env,
    )
    assert result.returncode == 5, result.stderr
    seen = json.loads(out.read_text())
    context = launch.parse_traceparent(seen["env"]["TRACEPARENT"])
    assert context is not None

    [(resource, span)] = collector.spans()
    assert resource["service.name"] == "cc-launch"
    assert resource["team"] == "core"
    assert resource["cc.launch.id"] == seen["env"]["CC_LAUNCH_ID"]
    assert resource["task.id"] == "T-42"
    assert span.name == "cc.launch"
    assert span.kind == Span.SPAN_KIND_INTERNAL
    assert span.trace_id.hex() == "a171b1cf0a55edc7f60e7b6d11e2c59f" == context.trace_id
    assert span.span_id.hex() == context.span_id
    assert span.parent_span_id.hex() == "1526e6d37ddcc3b1"
    assert attrs(span.attributes) == {
        "cc.launch.id": seen["env"]["CC_LAUNCH_ID"],
        "task.id": "T-42",
        "ticket.id": "TK-1",
        "process.exit_code": 5,
        "process.command": "sh",
    }
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.start_time_unix_nano <= seen["t"] <= span.end_time_unix_nano
    assert span.end_time_unix_nano - span.start_time_unix_nano < 20 * 10**9


def test_launch_span_is_a_root_without_inbound_context(collector: TraceCollector) -> None:
    env = clean_env(CC_LAUNCH_HTTP_ENDPOINT=collector.endpoint)
    result = run_launch("--", "true", env=env)
    assert result.returncode == 0
    [(_, span)] = collector.spans()
    assert span.parent_span_id == b""
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert attrs(span.attributes)["process.command"] == "true"
    assert "task.id" not in attrs(span.attributes)


@pytest.mark.parametrize("receiver", ["closed port", "silent listener", "HTTP error"])
def test_receiver_down_is_said_once_and_keeps_the_exit_code(
    tmp_path: Path, bare_python: Path, receiver: str
) -> None:
    """Under a bare python3 too: the command runs, its exit code is cc-launch's, and one
    stderr line says the span was not sent and why; the deadline bounds a silent peer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        if receiver == "silent listener":
            listener.listen()  # accepts TCP, never answers: only the deadline ends the export
        else:
            listener.close()
        if receiver == "HTTP error":
            peer = TraceCollector()  # answers 400 to anything but /v1/traces
            url = f"{peer.endpoint}/wrong"
        marker = tmp_path / "ran"
        env = clean_env(CC_LAUNCH_HTTP_ENDPOINT=url)
        started = time.monotonic()
        result = subprocess.run(
            [
                str(bare_python),
                str(REPO / "bin" / "cc-launch"),
                "--",
                "sh",
                "-c",
                f"touch {marker}; exit 4",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        elapsed = time.monotonic() - started
        if receiver == "HTTP error":
            peer.server.shutdown()
            peer.server.server_close()
    assert marker.exists()
    assert result.returncode == 4
    assert len(result.stderr.splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"cc-launch: cc.launch span not sent to {url}/v1/traces: ")
    expected = {
        "closed port": "connection refused",
        "silent listener": "timed out",
        "HTTP error": "HTTP 400",
    }[receiver]
    assert expected in line
    assert elapsed < 5.0


def test_bare_python3_on_path_runs_the_whole_chain(
    tmp_path: Path, fake_codex: Path, collector: TraceCollector, bare_python: Path
) -> None:
    """``bin/cc-launch`` found through ``#!/usr/bin/env python3`` with a python3 that has none
    of the project's dependencies: the span arrives, with the token, and the codex shim (run
    by the same interpreter) still stamps codex."""
    out = tmp_path / "calls"
    token = tmp_path / "token"
    token.write_text("bare-token\n")
    path = os.pathsep.join([str(bare_python.parent), str(fake_codex), os.environ["PATH"]])
    env = clean_env(
        PATH=path,
        FAKE_CODEX_OUT=str(out),
        CC_LAUNCH_HTTP_ENDPOINT=collector.endpoint,
        CC_LAUNCH_TOKEN_FILE=str(token),
    )
    script = 'echo "$TRACEPARENT" > "$0" && codex exec x'
    result = subprocess.run(
        [str(REPO / "bin" / "cc-launch"), "-v", "--", "sh", "-c", script, str(tmp_path / "tp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "cc.launch span sent" in result.stderr
    [call] = codex_calls(out)
    assert call["argv"][1:].count("-c") == 3
    launch_tp = launch.parse_traceparent((tmp_path / "tp").read_text().strip())
    assert launch_tp is not None
    [(_, span)] = collector.spans()
    assert span.span_id.hex() == launch_tp.span_id
    assert collector.headers[0]["Authorization"] == "Bearer bare-token"


# --- the codex shim -----------------------------------------------------------------------


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    directory = tmp_path / "real"
    directory.mkdir()
    script = directory / "codex"
    script.write_text(FAKE_CODEX)
    script.chmod(0o755)
    return directory


def codex_calls(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


@pytest.mark.unit
def test_find_subcommand_skips_options_and_their_values() -> None:
    assert find_subcommand(["exec", "x"]) == 0
    assert find_subcommand(["-m", "exec", "e", "x"]) == 2
    assert find_subcommand(["--full-auto", "-c", "a=b", "exec"]) == 3
    assert find_subcommand(["--version"]) is None
    assert find_subcommand(["--", "exec"]) is None


@pytest.mark.unit
def test_overrides_are_toml_as_codex_parses_them() -> None:
    """Codex splits ``-c key=value`` at the first ``=`` and parses ``_x_ = <value>`` as TOML."""
    overrides = otel_overrides('http://h:1/"odd"')
    assert overrides[::2] == ["-c"] * 3
    keys = ("exporter", "trace_exporter", "metrics_exporter")
    for override, key in zip(overrides[1::2], keys, strict=True):
        name, value = override.split("=", 1)
        assert name == f"otel.{key}"
        parsed = tomllib.loads(f"_x_ = {value}")["_x_"]
        assert parsed == {"otlp-grpc": {"endpoint": 'http://h:1/"odd"'}}


@pytest.mark.unit
def test_rewrite_only_touches_exec() -> None:
    env = {"PATH": "/bin"}
    assert rewrite(["--version"], env) == (["--version"], env)
    assert rewrite(["login"], env) == (["login"], env)
    args, stamped = rewrite(["e", "hi"], env)
    assert args == ["e", *otel_overrides(launch.DEFAULT_ENDPOINT), "hi"]
    assert "agent.run.id=" in stamped["OTEL_RESOURCE_ATTRIBUTES"]


def test_shim_adds_overrides_and_stamps_for_exec(tmp_path: Path, fake_codex: Path) -> None:
    out = tmp_path / "calls"
    tp = "00-a171b1cf0a55edc7f60e7b6d11e2c59f-7fd0cf463656e912-01"
    env = clean_env(
        PATH=f"{fake_codex}{os.pathsep}{os.environ['PATH']}",
        FAKE_CODEX_OUT=str(out),
        TRACEPARENT=tp,
        CLAUDE_CODE_SESSION_ID="b08ba7ad-8bff-4a48-8d31-9ae659a67575",
        CC_LAUNCH_ID="launch123",
        CC_LAUNCH_ENDPOINT="http://127.0.0.1:14317",
        OTEL_RESOURCE_ATTRIBUTES="launched.by=claude-bash,agent.run.id=stale",
    )
    result = subprocess.run(
        [*CODEX_SPAWN, "exec", "--skip-git-repo-check", "say hi"], env=env, timeout=20
    )
    assert result.returncode == 0
    [call] = codex_calls(out)
    endpoint = '{otlp-grpc={endpoint="http://127.0.0.1:14317"}}'
    assert call["argv"][0] == str(fake_codex / "codex")
    assert call["argv"][1:] == [
        "exec",
        "-c",
        f"otel.exporter={endpoint}",
        "-c",
        f"otel.trace_exporter={endpoint}",
        "-c",
        f"otel.metrics_exporter={endpoint}",
        "--skip-git-repo-check",
        "say hi",
    ]
    resource = launch.parse_resource_attributes(call["env"]["OTEL_RESOURCE_ATTRIBUTES"])
    assert resource["launched.by"] == "claude-bash"
    assert resource["agent.run.id"] != "stale" and len(resource["agent.run.id"]) == 32
    assert resource["agent.parent.session.id"] == "b08ba7ad-8bff-4a48-8d31-9ae659a67575"
    assert resource["agent.parent.span.id"] == "7fd0cf463656e912"
    assert resource["cc.launch.id"] == "launch123"


@pytest.mark.unit
def test_shim_drops_an_outer_runs_stamps() -> None:
    inherited = "agent.run.id=outer,agent.parent.span.id=1111111111111111,cc.launch.id=L,x=y"
    _, env = rewrite(["exec", "x"], {"OTEL_RESOURCE_ATTRIBUTES": inherited})
    resource = launch.parse_resource_attributes(env["OTEL_RESOURCE_ATTRIBUTES"])
    assert resource.keys() == {"agent.run.id", "cc.launch.id", "x"}
    assert resource["agent.run.id"] != "outer"
    assert resource["cc.launch.id"] == "L"


def test_shim_passes_other_subcommands_through(tmp_path: Path, fake_codex: Path) -> None:
    out = tmp_path / "calls"
    env = clean_env(
        PATH=f"{fake_codex}{os.pathsep}{os.environ['PATH']}",
        FAKE_CODEX_OUT=str(out),
        TRACEPARENT="00-a171b1cf0a55edc7f60e7b6d11e2c59f-7fd0cf463656e912-01",
        CC_LAUNCH_ID="launch123",
    )
    subprocess.run([*CODEX_SPAWN, "--version"], env=env, check=True, timeout=20)
    [call] = codex_calls(out)
    assert call["argv"][1:] == ["--version"]
    assert "OTEL_RESOURCE_ATTRIBUTES" not in call["env"]


def test_shim_avoids_recursion(tmp_path: Path, fake_codex: Path) -> None:
    """The generated shim twice on PATH, and codex-spawn linked as `codex` ahead of it."""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = launch.install_shim(shim_dir)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "codex").symlink_to(REPO / "bin" / "codex-spawn")
    out = tmp_path / "calls"
    path = os.pathsep.join([str(shim_dir), str(linked), str(shim_dir), str(fake_codex)])
    env = clean_env(PATH=f"{path}{os.pathsep}{os.environ['PATH']}", FAKE_CODEX_OUT=str(out))
    for entry in (shim, linked / "codex"):
        result = subprocess.run([str(entry), "exec", "x"], env=env, timeout=20)
        assert result.returncode == 0
    calls = codex_calls(out)
    assert len(calls) == 2
    for call in calls:
        assert call["argv"][0] == str(fake_codex / "codex")
        assert call["argv"][1:].count("-c") == 3


def test_shim_without_real_codex_exits_127(tmp_path: Path) -> None:
    shim = launch.install_shim(tmp_path)
    env = clean_env(PATH=f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    result = subprocess.run(
        [str(shim), "exec", "x"], env=env, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 127
    assert "no real `codex` found on PATH" in result.stderr


def test_whole_chain(tmp_path: Path, fake_codex: Path, collector: TraceCollector) -> None:
    """cc-launch → a shell script → `codex exec x` → the shim → the (fake) real codex."""
    out = tmp_path / "calls"
    env = clean_env(
        PATH=f"{fake_codex}{os.pathsep}{os.environ['PATH']}",
        FAKE_CODEX_OUT=str(out),
        CC_LAUNCH_ENDPOINT=collector.endpoint,
        CC_LAUNCH_HTTP_ENDPOINT=collector.endpoint,
    )
    script = 'echo "$TRACEPARENT" > "$0" && codex exec x'
    result = run_launch("--task", "T-9", "--", "sh", "-c", script, str(tmp_path / "tp"), env=env)
    assert result.returncode == 0, result.stderr
    [call] = codex_calls(out)
    launch_tp = launch.parse_traceparent((tmp_path / "tp").read_text().strip())
    assert launch_tp is not None
    resource = launch.parse_resource_attributes(call["env"]["OTEL_RESOURCE_ATTRIBUTES"])
    assert resource["agent.parent.span.id"] == launch_tp.span_id
    assert resource["cc.launch.id"] == call["env"]["CC_LAUNCH_ID"]
    assert resource["task.id"] == "T-9"  # cc-launch's entries survive the shim's stamps
    exporter = f'{{otlp-grpc={{endpoint="{collector.endpoint}"}}}}'
    assert f"otel.metrics_exporter={exporter}" in call["argv"]
    [(_, span)] = collector.spans()
    assert span.span_id.hex() == launch_tp.span_id
    assert attrs(span.attributes)["cc.launch.id"] == resource["cc.launch.id"]
