"""The embedded ClickHouse: a real server on OS-assigned loopback ports, clear errors, no
orphans."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import clickhouse_connect
import pytest

from receiver.clickhouse_server import EmbeddedClickHouse, EmbeddedClickHouseError

from .receiver_process import wait_for


def query(server: EmbeddedClickHouse, sql: str) -> list[tuple]:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
    try:
        return client.query(sql).result_rows
    finally:
        client.close()


def test_serves_http_and_native_and_keeps_data_across_restart(tmp_path: Path) -> None:
    with EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0) as server:
        assert server.http_port and server.tcp_port
        assert query(server, "SELECT version()")[0][0].startswith("26.9")
        with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=2):
            pass
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.http_port)
        client.command("CREATE TABLE kept (x UInt32) ENGINE = MergeTree ORDER BY x")
        client.insert("kept", [[1], [2], [3]])
        client.close()
    assert not server.running()
    with EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0) as again:
        assert query(again, "SELECT sum(x) FROM kept") == [(6,)]


def test_second_server_on_same_data_dir_fails_promptly_naming_the_lock(tmp_path: Path) -> None:
    with EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0):
        started = time.monotonic()
        with pytest.raises(EmbeddedClickHouseError, match="locked by another running ClickHouse"):
            EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0).start()
        assert time.monotonic() - started < 10


def test_busy_port_fails_promptly_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = EmbeddedClickHouse(tmp_path, http_port=port, tcp_port=0)
        with pytest.raises(EmbeddedClickHouseError, match=f"port {port}.*already in use"):
            server.start()
        assert not server.running()


def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from pathlib import Path
                from receiver.clickhouse_server import EmbeddedClickHouse
                server = EmbeddedClickHouse(Path({str(tmp_path)!r}), http_port=0, tcp_port=0)
                server.start()
                print("PID", server._process.pid, flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    line = b""
    while not line.startswith(b"PID "):
        line = parent.stdout.readline()
        assert line, "the parent exited before starting ClickHouse"
    child_pid = int(line.split()[1])
    parent.kill()
    parent.wait()

    def child_gone() -> bool:
        try:
            return Path(f"/proc/{child_pid}/status").read_text().find("State:\tZ") >= 0
        except FileNotFoundError:
            return True

    wait_for(child_gone, 15, "the orphaned ClickHouse to exit")
    with EmbeddedClickHouse(tmp_path, http_port=0, tcp_port=0) as again:  # lock released
        assert query(again, "SELECT 1") == [(1,)]
