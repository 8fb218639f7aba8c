"""The embedded ClickHouse, for real: OS-assigned loopback ports (never 8123/9000), data that
survives restarts, clear errors for the ways start-up fails, and no orphaned server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from receiver.store.embedded import EmbeddedClickHouse, EmbeddedClickHouseError

REPO = Path(__file__).resolve().parents[1]


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return value


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (it holds no files any more)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def query(server: EmbeddedClickHouse, sql: str) -> list[tuple[Any, ...]]:
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=server.http_port, **server.credentials.client_kwargs()
    )
    try:
        return client.query(sql).result_rows
    finally:
        client.close()


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedClickHouse]:
    with EmbeddedClickHouse(tmp_path / "clickhouse", http_port=0, tcp_port=0) as running:
        yield running


def test_answers_over_http_and_native_on_os_assigned_ports(server: EmbeddedClickHouse) -> None:
    assert server.running()
    assert server.http_port not in (0, 8123) and server.tcp_port not in (0, 9000)
    assert server.url == f"http://127.0.0.1:{server.http_port}"
    assert query(server, "SELECT version()")[0][0].startswith("26.9")
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=2):
        pass


def test_data_survives_stop_and_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "clickhouse"
    with EmbeddedClickHouse(data_dir, http_port=0, tcp_port=0) as first:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=first.http_port, **first.credentials.client_kwargs()
        )
        client.command("CREATE TABLE kept (x UInt32) ENGINE = MergeTree ORDER BY x")
        client.insert("kept", [[1], [2], [3]])
        client.close()
    with EmbeddedClickHouse(data_dir, http_port=0, tcp_port=0) as again:
        assert query(again, "SELECT sum(x) FROM kept") == [(6,)]


def test_stop_is_quick_leaves_no_child_and_is_idempotent(server: EmbeddedClickHouse) -> None:
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=server.http_port, **server.credentials.client_kwargs()
    )
    client.query("SELECT 1")  # leaves an idle keep-alive connection, which shutdown waits out
    pid, port = server.pid, server.http_port
    assert pid is not None
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 5
    assert not server.running() and not alive(pid)
    assert refuses(port)
    server.stop()
    client.close()


def test_second_server_on_the_same_data_dir_fails_at_once_naming_the_lock(
    server: EmbeddedClickHouse,
) -> None:
    began = time.monotonic()
    with pytest.raises(EmbeddedClickHouseError, match=r"locked by another running ClickHouse"):
        EmbeddedClickHouse(server.data_dir, http_port=0, tcp_port=0).start()
    assert time.monotonic() - began < 2
    assert query(server, "SELECT 1") == [(1,)]  # the first one is untouched


def test_data_dir_held_by_a_foreign_clickhouse_is_reported_as_locked(tmp_path: Path) -> None:
    data_dir = tmp_path / "clickhouse"
    data_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, chdb._chdb as c; c.query('SELECT sleepEachRow(0.1) FROM numbers(600) "
            "SETTINGS max_block_size=1 FORMAT Null', 'TabSeparated', path=sys.argv[1])",
            str(data_dir),
        ],
        cwd=tmp_path,
    )
    try:
        status = data_dir / "status"
        poll(lambda: status.exists() and f"PID: {holder.pid}" in status.read_text(), 30, "lock")
        began = time.monotonic()
        server = EmbeddedClickHouse(data_dir, http_port=0, tcp_port=0)
        with pytest.raises(EmbeddedClickHouseError, match=r"locked by another ClickHouse.*76"):
            server.start()
        assert time.monotonic() - began < 10
        assert not server.running()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("which", ["http_port", "tcp_port"])
def test_busy_port_fails_naming_the_port(tmp_path: Path, which: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"http_port": 0, "tcp_port": 0, which: port}
        server = EmbeddedClickHouse(tmp_path / "clickhouse", **ports)
        began = time.monotonic()
        with pytest.raises(EmbeddedClickHouseError, match=rf"port {port}: address already in use"):
            server.start()
        assert time.monotonic() - began < 10
        assert server.pid is not None and not alive(server.pid)
    # Nothing is left holding the data directory.
    with EmbeddedClickHouse(tmp_path / "clickhouse", http_port=0, tcp_port=0) as again:
        assert query(again, "SELECT 1") == [(1,)]


def test_not_ready_in_time_raises_and_leaves_no_child(tmp_path: Path) -> None:
    server = EmbeddedClickHouse(
        tmp_path / "clickhouse", http_port=0, tcp_port=0, startup_timeout=0.05
    )
    with pytest.raises(EmbeddedClickHouseError, match=r"did not become ready in 0.05 s"):
        server.start()
    assert server.pid is not None and not alive(server.pid)


def test_missing_chdb_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)  # what an environment without chdb-core sees
    with pytest.raises(
        EmbeddedClickHouseError, match=r"pip install 'agent-otel-receiver\[local\]'"
    ):
        EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0).start()


def test_sigterm_to_the_server_shuts_it_down_cleanly(server: EmbeddedClickHouse) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGTERM)
    assert server.wait() == 0
    assert "signal received" in server.log_path.read_text()
    assert not server.running()


def test_stop_from_a_signal_handler_ends_wait(server: EmbeddedClickHouse) -> None:
    """How the foreground ``otel-receiver clickhouse`` command stops on Ctrl-C."""
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: server.stop())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        began = time.monotonic()
        assert server.wait() == 0
        assert time.monotonic() - began < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "clickhouse"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from pathlib import Path
                from receiver.store.embedded import EmbeddedClickHouse
                server = EmbeddedClickHouse(Path(sys.argv[1]), http_port=0, tcp_port=0)
                server.start()
                print("SERVER_PID", server.pid, flush=True)
                time.sleep(600)
                """
            ),
            str(data_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None
        line = b""
        while not line.startswith(b"SERVER_PID "):  # skip any log lines
            line = parent.stdout.readline()
            assert line, "the parent exited before starting ClickHouse"
        child = int(line.split()[1])
    finally:
        parent.kill()
        parent.wait()
    poll(lambda: not alive(child), 10, "the orphaned ClickHouse to exit")
    assert "parent process is gone" in (data_dir / "run" / "clickhouse.log").read_text()

    def restarted() -> EmbeddedClickHouse | None:
        # The last of the child's threads may still be closing the lock for a moment.
        try:
            server = EmbeddedClickHouse(data_dir, http_port=0, tcp_port=0)
            server.start()
        except EmbeddedClickHouseError as exc:
            assert "locked" in str(exc)
            return None
        return server

    again = poll(restarted, 10, "the data directory to be free")
    try:
        assert query(again, "SELECT 1") == [(1,)]
    finally:
        again.stop()
