"""What the commands say when something is wrong, as a newcomer meets it (issue 17): busy
ports, an unreachable ClickHouse, the query commands and a receiver's ``--data-dir``, bad
report flags, and ``tree`` of a plain OpenTelemetry trace. Real processes, real ClickHouse."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from .receiver_process import ReceiverProcess, wait_for


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def not_json(stderr: str) -> list[str]:
    """The stderr lines that are not structlog JSON events."""
    lines = []
    for line in stderr.splitlines():
        try:
            json.loads(line)
        except ValueError:
            lines.append(line)
    return lines


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("grpc_listen", "127.0.0.1:{port}"),
        ("http_listen", "127.0.0.1:{port}"),
        ("metrics_listen", "127.0.0.1:{port}"),
    ],
)
def test_busy_port_stops_serve_naming_the_setting(
    tmp_path: Path, busy_port: int, setting: str, value: str
) -> None:
    ports = {
        "grpc_listen": "127.0.0.1:0",
        "http_listen": "127.0.0.1:0",
        "metrics_listen": "127.0.0.1:0",
        "embedded_http_port": "0",
        "embedded_tcp_port": "0",
        setting: value.format(port=busy_port),
    }
    flags = [item for name, v in ports.items() for item in (f"--{name.replace('_', '-')}", v)]
    result = cli("serve", "--data-dir", str(tmp_path / "data"), *flags)
    assert result.returncode == 2, result.stderr
    [message] = not_json(result.stderr)
    flag = f"--{setting.replace('_', '-')}"
    assert message.startswith(f"otel-receiver: invalid configuration: {setting}: cannot listen")
    assert "address already in use" in message and flag in message
    assert "add_port.cc" not in result.stderr
    # Checked before anything starts: no embedded ClickHouse was started for nothing.
    assert not (tmp_path / "data" / "clickhouse").exists()


@pytest.mark.parametrize("command", ["serve", "clickhouse"])
@pytest.mark.parametrize("setting", ["embedded_http_port", "embedded_tcp_port"])
def test_busy_embedded_port_names_its_setting(
    tmp_path: Path, busy_port: int, command: str, setting: str
) -> None:
    ports = {"embedded_http_port": "0", "embedded_tcp_port": "0", setting: str(busy_port)}
    flags = [item for name, v in ports.items() for item in (f"--{name.replace('_', '-')}", v)]
    if command == "serve":
        flags += ["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]
        flags += ["--metrics-listen", "127.0.0.1:0"]
    result = cli(command, "--data-dir", str(tmp_path / "data"), *flags)
    assert result.returncode == 1
    [message] = not_json(result.stderr)
    assert message.startswith(
        f"otel-receiver: the embedded ClickHouse cannot listen on 127.0.0.1 port {busy_port}: "
        "address already in use"
    )
    flag = f"--{setting.replace('_', '-')}"
    assert f"choose another port with {flag}, OTEL_RECEIVER_{setting.upper()} or " in message


def test_unreachable_clickhouse_url_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cli(
        "serve",
        "--clickhouse-url",
        url,
        "--data-dir",
        str(tmp_path / "data"),
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    )
    assert result.returncode == 1
    assert not_json(result.stderr) == [
        f"otel-receiver: cannot reach ClickHouse at {url} (clickhouse.url, --clickhouse-url): "
        "connection refused"
    ]
    assert "HTTPConnectionPool" not in result.stderr
    assert "Unexpected Http Driver Exception" not in result.stderr


# --- the query commands and a receiver's --data-dir -------------------------------------------


@pytest.fixture(scope="module")
def own_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A receiver with its own embedded ClickHouse in a data dir, on OS-assigned ports:
    the query commands must find that server's port and password from the data dir."""
    tmp = tmp_path_factory.mktemp("own")
    data_dir = tmp / "data"
    receiver = ReceiverProcess(
        tmp / "receiver",
        "--grpc-listen",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        "--embedded-http-port",
        "0",
        "--embedded-tcp-port",
        "0",
        env={"OTEL_RECEIVER_BATCH_MAX_DELAY": "0.05"},
    ).start(timeout=90)
    assert receiver.http_port
    yield data_dir, receiver.http_port
    receiver.stop()


def _send_plain_trace(http_port: int) -> str:
    """A three-span trace from a service that is no agent; its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("checkout") as root:
        with tracer.start_as_current_span("db.query"):
            pass
        with tracer.start_as_current_span("payment") as payment:
            payment.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def test_query_commands_use_the_data_dirs_server_and_password(
    own_data_dir: tuple[Path, int],
) -> None:
    data_dir, _ = own_data_dir
    for command in (["report", "tools"], ["sessions"], ["tree", "no-such-run"]):
        result = cli(*command, "--data-dir", str(data_dir), "--format", "json")
        if command[0] == "tree":  # reached the server: the run is just not there
            assert result.returncode == 1
            assert "no agent run, launch or trace 'no-such-run'" in result.stderr
        else:
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) == []
        assert "AUTHENTICATION_FAILED" not in result.stderr


def test_query_commands_name_the_password_file(
    tmp_path: Path, own_data_dir: tuple[Path, int]
) -> None:
    never_started = tmp_path / "never"
    for command in (["report", "tools"], ["tree", "x"]):
        result = cli(*command, "--data-dir", str(never_started))
        assert result.returncode == 1
        password = never_started / "clickhouse" / "password"
        assert f"no embedded ClickHouse password in {password}" in result.stderr
        assert not password.exists()  # a query command never creates one
    # A data dir whose password is not the server's: the file read is named.
    data_dir, _ = own_data_dir
    wrong = tmp_path / "wrong"
    (wrong / "clickhouse" / "run").mkdir(parents=True)
    (wrong / "clickhouse" / "password").write_text("not-the-password\n")
    ports = (data_dir / "clickhouse" / "run" / "ports.tsv").read_text()
    (wrong / "clickhouse" / "run" / "ports.tsv").write_text(ports)
    for command in (["report", "tools"], ["tree", "x"]):
        result = cli(*command, "--data-dir", str(wrong))
        assert result.returncode == 1
        assert not_json(result.stderr) == [
            f"otel-receiver: ClickHouse at http://127.0.0.1:{ports.split()[0]} refused user "
            f"'otel' with the password from {wrong / 'clickhouse' / 'password'} "
            "(is this the server started with the same --data-dir?)"
        ]


def test_tree_of_a_plain_trace_shows_its_spans(own_data_dir: tuple[Path, int]) -> None:
    data_dir, http_port = own_data_dir
    trace_id = _send_plain_trace(http_port)

    def tree() -> str | None:
        result = cli("tree", trace_id, "--data-dir", str(data_dir))
        return result.stdout if result.returncode == 0 and "payment" in result.stdout else None

    lines = wait_for(tree, 30, "the plain trace's tree").splitlines()
    assert lines[0].startswith("checkout (shop) [span ")
    assert "1 failed" in lines[0]  # totals include the failed child
    assert lines[1].startswith("├─ db.query (shop) [span ")
    assert lines[2].startswith("└─ payment (shop) [span ") and lines[2].endswith("1 failed")
    nested = json.loads(
        cli("tree", trace_id, "--data-dir", str(data_dir), "--format", "json").stdout
    )
    assert [child["name"] for child in nested[0]["children"]] == [
        "db.query (shop)",
        "payment (shop)",
    ]


# --- report flags -----------------------------------------------------------------------------


def test_report_window_and_parameter_types_exit_2_naming_the_flag(tmp_path: Path) -> None:
    data_dir = tmp_path  # checked before any server is asked
    backwards = cli(
        "report", "tools", "--since", "1h", "--until", "2h", "--data-dir", str(data_dir)
    )
    assert backwards.returncode == 2
    assert "--since 1h is not before --until 2h" in backwards.stderr
    wrong_type = cli(
        "report", "slowest_spans", "--param", "limit=many", "--data-dir", str(data_dir)
    )
    assert wrong_type.returncode == 2
    assert "--param limit=many: limit is a UInt32" in wrong_type.stderr
    assert "BAD_QUERY_PARAMETER" not in wrong_type.stderr
