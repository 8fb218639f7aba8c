"""The embedded ClickHouse: a real ClickHouse server from the ``chdb-core`` package, run in a
child process and listening on loopback, so that a single ``pip install`` gives users a
database any ClickHouse client (clickhouse-connect, curl, Grafana) can talk to.

chdb cannot listen through its connection API, but its legacy ``query(sql, fmt, path=DIR)``
runs the full clickhouse-local program, which reads ``./config.xml`` and can start the HTTP
and native listeners. The child therefore runs, in one call: start both listeners, write the
bound ports to a ready file, then a keep-alive query that never ends. Stopping kills that
query over HTTP, which ends the call and the child. The child also exits when its parent
dies (its stdin, a pipe from the parent, reaches EOF), so a killed receiver never leaves a
server behind holding the data directory's lock.

The server has no password: it must only ever listen on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import structlog

log = structlog.get_logger("receiver.clickhouse_server")

KEEPALIVE_MARKER = "agent_otel_receiver_keepalive"
_POLL = 0.05


class EmbeddedClickHouseError(RuntimeError):
    """The embedded ClickHouse could not start or stop; the message says why."""


def _config_xml(listen_host: str, http_port: int, tcp_port: int) -> str:
    return (
        "<clickhouse>\n"
        f"    <listen_host>{listen_host}</listen_host>\n"
        f"    <http_port>{http_port}</http_port>\n"
        f"    <tcp_port>{tcp_port}</tcp_port>\n"
        # Shutdown waits out idle keep-alive connections: keep that wait short.
        "    <shutdown_wait_unfinished>0</shutdown_wait_unfinished>\n"
        "    <keep_alive_timeout>2</keep_alive_timeout>\n"
        "</clickhouse>\n"
    )


def _http(url: str, sql: str, timeout: float = 2.0) -> str:
    request = urllib.request.Request(url, data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


class EmbeddedClickHouse:
    """A ClickHouse server process owning ``data_dir``, reachable on loopback."""

    def __init__(
        self,
        data_dir: Path,
        *,
        listen_host: str = "127.0.0.1",
        http_port: int = 8123,
        tcp_port: int = 9000,
        startup_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.run_dir = self.data_dir / "run"
        self.listen_host = listen_host
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "clickhouse.log"

    @property
    def _ready_path(self) -> Path:
        return self.run_dir / "ready.tsv"

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers queries over HTTP."""
        if importlib.util.find_spec("chdb") is None:
            raise EmbeddedClickHouseError(
                "the embedded ClickHouse needs chdb-core: pip install 'agent-otel-receiver[local]'"
                " (or set clickhouse.url to use your own ClickHouse)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.xml").write_text(
            _config_xml(self.listen_host, self.http_port, self.tcp_port)
        )
        self._ready_path.unlink(missing_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as server_log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "receiver.clickhouse_server", str(self.data_dir)],
                stdin=subprocess.PIPE,
                stdout=server_log,
                stderr=server_log,
                # Its own session: a Ctrl-C meant for the receiver must not stop the database
                # before the receiver has flushed into it.
                start_new_session=True,
            )
        try:
            self._wait_until_ready(log_offset)
        except BaseException:
            self._kill()
            raise
        log.debug("clickhouse_ready", url=self.url, pid=self._process.pid)

    def _wait_until_ready(self, log_offset: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        ports: list[str] = []
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedClickHouseError(self._failure_reason(log_offset))
            if not ports and self._ready_path.exists():
                ports = self._ready_path.read_text().split()
                if len(ports) == 2:
                    self.http_port, self.tcp_port = int(ports[0]), int(ports[1])
                else:
                    ports = []
            if ports:
                with contextlib.suppress(OSError, urllib.error.URLError):
                    if _http(self.url, "SELECT 1").strip() == "1":
                        return
            time.sleep(_POLL)
        raise EmbeddedClickHouseError(
            f"embedded ClickHouse did not become ready in {self.startup_timeout:.0f} s "
            f"(log: {self.log_path})"
        )

    def _failure_reason(self, log_offset: int) -> str:
        with self.log_path.open("rb") as server_log:
            server_log.seek(log_offset)
            text = server_log.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if "Code:" in line or "Exception" in line]
        detail = lines[-1].strip() if lines else (text.strip().splitlines() or ["no output"])[-1]
        if "Address already in use" in text:
            return (
                f"embedded ClickHouse cannot listen on {self.listen_host} port {self.http_port} "
                f"(HTTP) or {self.tcp_port} (native): address already in use. Stop what uses "
                "it or choose other ports (embedded.http_port, embedded.tcp_port)."
            )
        if "Cannot lock file" in text:
            return (
                f"the ClickHouse data directory {self.data_dir} is locked by another running "
                "ClickHouse (another receiver or `otel-receiver clickhouse`?)."
            )
        return f"embedded ClickHouse exited during start-up: {detail} (log: {self.log_path})"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully; kill it if it does not stop within ``timeout``."""
        if not self.running():
            return
        assert self._process is not None
        with contextlib.suppress(OSError, urllib.error.URLError):
            _http(
                self.url,
                f"KILL QUERY WHERE query LIKE '%{KEEPALIVE_MARKER}%' AND query NOT LIKE '%KILL%'",
            )
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("clickhouse_stop_timed_out", seconds=timeout)
            self._kill()
        self._close_pipes()

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self._process is not None and self._process.stdin:
            with contextlib.suppress(OSError):
                self._process.stdin.close()

    def wait(self) -> int:
        """Block until the server process exits; its exit code."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> EmbeddedClickHouse:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _exit_when_parent_dies() -> None:
    """Our stdin is a pipe from the parent: EOF means the parent is gone."""
    while sys.stdin.buffer.read(1):
        pass
    os._exit(0)


def _serve(data_dir: Path) -> None:
    """The child: listen, signal readiness, and keep the server alive until killed."""
    import chdb._chdb as chdb  # before chdir: chdb's package init changes directory

    run_dir = data_dir / "run"
    os.chdir(run_dir)  # clickhouse-local reads ./config.xml
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_parent_dies, daemon=True).start()
    ready = run_dir / "ready.tsv"
    script = (
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        "SELECT getServerPort('http_port'), getServerPort('tcp_port') "
        f"INTO OUTFILE '{ready}' TRUNCATE FORMAT TabSeparated; "
        f"SELECT sum(sleepEachRow(1)) AS {KEEPALIVE_MARKER} FROM numbers(1e12) "
        "SETTINGS max_block_size = 1, max_execution_time = 0"
    )
    chdb.query(script, "TabSeparated", path=str(data_dir))
    # The server has shut down when the query returns; skip chdb's interpreter-exit
    # cleanup, which takes seconds and does nothing for the data.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="embedded ClickHouse child process")
    parser.add_argument("data_dir", type=Path)
    _serve(parser.parse_args().data_dir)
