"""Embedded ClickHouse: a real ClickHouse server (from chdb-core) in a child process.

chdb's in-process connections can never listen on a port, but its legacy ``query()`` runs the
whole clickhouse-local program, which reads ``./config.xml`` and can ``SYSTEM START LISTEN``.
So the child (this module's ``__main__``) starts listening, writes the ports it got, then keeps
one endless query running; cancelling that query (``KILL QUERY``) shuts the server down.

The child lives in its own session (a Ctrl-C in the terminal must not kill ClickHouse while the
receiver is still flushing into it) and exits by itself when its parent dies, so a SIGKILLed
receiver never leaves an orphan holding the data directory.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self
from xml.sax.saxutils import escape as xml_escape

import structlog

from receiver.config import how_to_set
from receiver.store.credentials import (
    USERS_FILE,
    Credentials,
    embedded_credentials,
    write_users_file,
)

log = structlog.get_logger("receiver.store.embedded")

INSTALL_HINT = "pip install 'agent-otel-receiver[local]'"

# The keep-alive query; ``stop`` finds it in system.processes by this prefix. (clickhouse-local
# takes no query_id from SQL -- ``SETTINGS query_id`` is rejected -- so the text is the handle.)
_KEEPALIVE_PREFIX = "SELECT sum(sleepEachRow(0.1)) AS agent_otel_receiver_keepalive"
_KEEPALIVE = (
    f"{_KEEPALIVE_PREFIX} FROM numbers(1e12) SETTINGS max_block_size=1, max_execution_time=0"
)
_KILL_KEEPALIVE = f"KILL QUERY WHERE query LIKE '{_KEEPALIVE_PREFIX}%' ASYNC"

_RUN_DIR = "run"  # under data_dir: config.xml, ports file, server log, lock file
_PORTS_FILE = "ports.tsv"
_LOG_FILE = "clickhouse.log"
_LOCK_FILE = "server.lock"

# Child exit codes the parent tells apart.
_EXIT_STOPPED = 0
_EXIT_STARTUP_FAILED = 2
_EXIT_NO_CHDB = 3
_EXIT_ORPHANED = 4

_KEEP_ALIVE_SECONDS = 1
_PARENT_POLL_SECONDS = 0.2
_CHILD_SELF_STOP_SECONDS = 5.0
_SIGKILL_REAP_SECONDS = 5.0


class EmbeddedClickHouseError(RuntimeError):
    """The embedded ClickHouse could not start or died; the message says why, for the user."""


def _connect_host(listen_host: str) -> str:
    """The address a local client dials to reach a server bound to ``listen_host``."""
    return {"localhost": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(
        listen_host, listen_host
    )


def _bind_host(listen_host: str) -> str:
    """One concrete address: with port 0, ``localhost`` (two addresses) would get two ports."""
    return "127.0.0.1" if listen_host == "localhost" else listen_host


def _http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# Never through an http_proxy from the environment: the server is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_HTTP_ERRORS = (OSError, http.client.HTTPException)  # URLError and HTTPError are OSErrors


def _http_query(url: str, sql: str, timeout: float, headers: dict[str, str] | None = None) -> str:
    """POST one query to ClickHouse's HTTP interface; raises one of _HTTP_ERRORS on failure."""
    request = urllib.request.Request(
        url + "/", data=sql.encode(), method="POST", headers=headers or {}
    )
    with _opener.open(request, timeout=timeout) as response:
        return response.read().decode()


def _wait_for_http(url: str, deadline: float, headers: dict[str, str] | None = None) -> bool:
    """Poll ``SELECT 1`` until it answers (True) or the monotonic ``deadline`` passes (False)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            if _http_query(url, "SELECT 1", min(remaining, 2.0), headers).strip() == "1":
                return True
        except _HTTP_ERRORS:
            pass
        time.sleep(0.02)


def _read_ports(path: Path) -> tuple[int, int] | None:
    """The (http, tcp) ports the child wrote, or None while the file is absent or partial."""
    try:
        match = re.fullmatch(r"(\d+)\t(\d+)\n", path.read_text())
    except OSError:
        return None
    return (int(match[1]), int(match[2])) if match else None


def _relevant_line(log_path: Path) -> str:
    """The last ClickHouse error line of the server log (or its last line), for messages."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if "Code: " in line or "Exception" in line or "Error" in line:
            return line
    return lines[-1] if lines else ""


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EmbeddedClickHouse:
    """A real ClickHouse server on loopback, owned by this process; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        *,
        listen_host: str = "127.0.0.1",
        http_port: int = 8123,
        tcp_port: int = 9000,
        startup_timeout: float = 30.0,
        extra_config: str = "",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.extra_config = extra_config  # more XML inside <clickhouse> (e.g. a test cluster)
        self.listen_host = listen_host
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.startup_timeout = startup_timeout
        self.run_dir = self.data_dir / _RUN_DIR
        self.log_path = self.run_dir / _LOG_FILE
        self._requested_ports = (http_port, tcp_port)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._guard = threading.RLock()
        # Access control (receiver.store.credentials): user and generated password for clients.
        self.credentials = Credentials()

    @property
    def url(self) -> str:
        return _http_url(_connect_host(_bind_host(self.listen_host)), self.http_port)

    @property
    def pid(self) -> int | None:
        """The server child's process id (None before ``start``)."""
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and return once it answers HTTP queries.

        Raises EmbeddedClickHouseError (and leaves no child behind) when it cannot.
        """
        with self._guard:
            if self.running():
                return
            if importlib.util.find_spec("chdb") is None:
                raise EmbeddedClickHouseError(
                    "the embedded ClickHouse needs chdb-core, which is not installed: "
                    f"{INSTALL_HINT} (or configure the URL of your own ClickHouse)"
                )
            began = time.monotonic()
            deadline = began + self.startup_timeout
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock()
            try:
                self._spawn()
                self._await_ready(deadline)
            except BaseException:
                self._kill()
                self._release()
                raise
            log.debug(
                "embedded_clickhouse_ready",
                url=self.url,
                tcp_port=self.tcp_port,
                pid=self.pid,
                data_dir=str(self.data_dir),
                seconds=round(time.monotonic() - began, 3),
            )

    def _lock(self) -> None:
        """Take the data directory before touching it, so a second server fails at once and
        never overwrites the first one's config, ports or log. The child inherits the lock, so
        it stays held while either process lives."""
        lock_file = (self.run_dir / _LOCK_FILE).open("a+b")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().decode(errors="replace").strip() or "unknown"
            lock_file.close()
            raise EmbeddedClickHouseError(
                f"the ClickHouse data directory {self.data_dir} is locked by another running "
                f"ClickHouse server (process {holder}); stop it or use another data directory"
            ) from None
        lock_file.truncate(0)
        lock_file.write(f"{os.getpid()}\n".encode())
        lock_file.flush()
        self._lock_file = lock_file

    @property
    def dsn(self) -> str:
        """The HTTP URL with the user and password in it, for clients that take one URL."""
        return self.credentials.dsn(self.url)

    def _spawn(self) -> None:
        http_port, tcp_port = self._requested_ports
        # Access control (receiver.store.credentials): the generated password's user, and a
        # ``default`` that can only start listening (clickhouse-local's own session).
        self.credentials = embedded_credentials(self.data_dir)
        write_users_file(self.run_dir, self.credentials.password or "")
        (self.run_dir / "config.xml").write_text(
            "<clickhouse>\n"
            f"  <listen_host>{xml_escape(_bind_host(self.listen_host))}</listen_host>\n"
            f"  <http_port>{http_port}</http_port>\n"
            f"  <tcp_port>{tcp_port}</tcp_port>\n"
            # Shutdown waits for idle HTTP keep-alive connections to time out (5 s at most,
            # then it is forced and the child exits 1): keep that wait, and so stop(), short.
            f"  <keep_alive_timeout>{_KEEP_ALIVE_SECONDS}</keep_alive_timeout>\n"
            f"  <users_config>{USERS_FILE}</users_config>\n"
            # An OK for a direct insert means the part is on disk, not only in the page cache
            # (docs/DELIVERY.md: measured at a few ms per 10k-row insert).
            "  <merge_tree><fsync_after_insert>1</fsync_after_insert>"
            "<fsync_part_directory>1</fsync_part_directory></merge_tree>\n"
            f"{self.extra_config}"
            "</clickhouse>\n"
        )
        (self.run_dir / _PORTS_FILE).unlink(missing_ok=True)
        self._log_file = self.log_path.open("wb")
        assert self._lock_file is not None
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[1])
        if package_root not in sys.path:
            # Imported from the current directory: let the child, started elsewhere, find it.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "receiver.store.embedded",
                "--data-dir",
                str(self.data_dir.resolve()),
                "--run-dir",
                str(self.run_dir.resolve()),
                "--listen-host",
                _bind_host(self.listen_host),
                "--parent-pid",
                str(os.getpid()),
            ],
            cwd=self.run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(self._lock_file.fileno(),),
            start_new_session=True,
        )

    def _await_ready(self, deadline: float) -> None:
        assert self._process is not None
        ports_path = self.run_dir / _PORTS_FILE
        while (ports := _read_ports(ports_path)) is None:
            self._raise_if_exited()
            if time.monotonic() > deadline:
                raise self._not_ready()
            time.sleep(0.02)
        self.http_port, self.tcp_port = ports
        headers = self.credentials.http_headers()
        while not _wait_for_http(self.url, min(deadline, time.monotonic() + 0.25), headers):
            self._raise_if_exited()
            if time.monotonic() > deadline:
                raise self._not_ready()

    def _not_ready(self) -> EmbeddedClickHouseError:
        detail = _relevant_line(self.log_path)
        return EmbeddedClickHouseError(
            f"the embedded ClickHouse did not become ready in {self.startup_timeout:g} s"
            + (f": {detail}" if detail else "")
            + f" (log: {self.log_path})"
        )

    def _raise_if_exited(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return
        detail = _relevant_line(self.log_path)
        http_port, tcp_port = self._requested_ports
        if code == _EXIT_NO_CHDB:
            message = (
                f"the embedded ClickHouse needs chdb-core, which could not be imported "
                f"({detail}): {INSTALL_HINT}"
            )
        elif "Address already in use" in detail:
            busy = re.search(r"Listen \[(.*?)\]:(\d+) failed", detail)
            where = f"{busy[1]} port {busy[2]}" if busy else f"{self.listen_host}"
            settings = ["embedded_http_port", "embedded_tcp_port"]
            if busy and int(busy[2]) in (http_port, tcp_port):
                settings = [settings[(http_port, tcp_port).index(int(busy[2]))]]
            message = (
                f"the embedded ClickHouse cannot listen on {where}: address already in use "
                f"(HTTP port {http_port}, native port {tcp_port}); stop what uses it or choose "
                f"another port with {' / '.join(how_to_set(s) for s in settings)}"
            )
        elif "Cannot lock file" in detail:
            message = (
                f"the ClickHouse data directory {self.data_dir} is locked by another "
                f"ClickHouse process; stop it or use another data directory. "
                f"ClickHouse said: {detail}"
            )
        else:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            message = f"the embedded ClickHouse crashed during start-up ({how})" + (
                f": {detail}" if detail else ""
            )
        raise EmbeddedClickHouseError(f"{message} (log: {self.log_path})")

    # -- stop ------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the keep-alive query so ClickHouse shuts down cleanly; SIGKILL it if it has
        not exited after ``timeout`` seconds. Safe to call again, and from a signal handler."""
        with self._guard:
            process = self._process
            if process is None:
                return
            if process.poll() is None:
                began = time.monotonic()
                deadline = began + timeout
                try:
                    _http_query(
                        self.url,
                        _KILL_KEEPALIVE,
                        timeout=min(max(timeout / 2, 0.5), 3),
                        headers=self.credentials.http_headers(),
                    )
                except _HTTP_ERRORS as exc:
                    # The child's SIGTERM handler cancels the same query from inside.
                    log.warning("embedded_clickhouse_kill_query_failed", error=str(exc))
                    with contextlib.suppress(ProcessLookupError):
                        process.terminate()
                if self._wait_until(deadline) is None:
                    log.warning(
                        "embedded_clickhouse_stop_timeout", seconds=timeout, pid=process.pid
                    )
                    self._kill()
                log.info(
                    "embedded_clickhouse_stopped",
                    pid=process.pid,
                    exit_code=process.returncode,
                    seconds=round(time.monotonic() - began, 3),
                )
            self._release()

    def wait(self) -> int:
        """Block until the child exits (a foreground command) and return its exit code.

        Polls in short steps so that a signal handler calling ``stop`` is not blocked behind
        ``Popen.wait``'s internal lock.
        """
        process = self._process
        if process is None:
            raise EmbeddedClickHouseError("the embedded ClickHouse was never started")
        while (code := self._wait_until(time.monotonic() + 0.2)) is None:
            pass
        with self._guard:
            self._release()
        return code

    def _wait_until(self, deadline: float) -> int | None:
        assert self._process is not None
        try:
            return self._process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        try:
            process.wait(timeout=_SIGKILL_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("embedded_clickhouse_unkillable", pid=process.pid)

    def _release(self) -> None:
        """Close the files this object holds once the child is gone (the lock goes with them)."""
        if self._process is not None and self._process.poll() is None:
            return
        for handle in (self._log_file, self._lock_file):
            if handle is not None:
                handle.close()
        self._log_file = self._lock_file = None


# -- the child ---------------------------------------------------------------------------------


def _child_main(argv: list[str] | None = None) -> int:
    """Run ClickHouse in this process until the keep-alive query ends; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m receiver.store.embedded")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--listen-host", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        # Before changing directory: chdb's __init__ changes directory itself while loading.
        from chdb import _chdb
    except ImportError as exc:
        print(f"chdb-core is not installed: {exc}. {INSTALL_HINT}", file=sys.stderr, flush=True)
        return _EXIT_NO_CHDB
    os.chdir(args.run_dir)  # clickhouse-local reads ./config.xml
    ports_path = Path(args.run_dir) / _PORTS_FILE
    sql = (
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        "SELECT getServerPort('http_port'), getServerPort('tcp_port') "
        f"INTO OUTFILE {_sql_string(str(ports_path))} TRUNCATE FORMAT TabSeparated; "
        f"{_KEEPALIVE}"
    )

    def serve() -> None:
        # Errors go to stderr (the server log); the result object reports none.
        _chdb.query(sql, "TabSeparated", path=args.data_dir)

    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = threading.Thread(target=serve, name="clickhouse", daemon=True)
    server.start()
    orphaned = False
    while server.is_alive():
        server.join(_PARENT_POLL_SECONDS)
        if not server.is_alive():
            break
        if os.getppid() != args.parent_pid:
            orphaned = True
            print("parent process is gone; shutting down", file=sys.stderr, flush=True)
        elif stop_requested.is_set():
            print("signal received; shutting down", file=sys.stderr, flush=True)
        else:
            continue
        _cancel_keepalive(ports_path, args.listen_host, Path(args.data_dir))
        server.join(_CHILD_SELF_STOP_SECONDS)
        break
    sys.stdout.flush()
    sys.stderr.flush()
    if server.is_alive():
        print("ClickHouse did not shut down in time; exiting", file=sys.stderr, flush=True)
        os._exit(_EXIT_ORPHANED if orphaned else 1)
    if _read_ports(ports_path) is None:
        return _EXIT_STARTUP_FAILED  # the query returned before the server was listening
    return _EXIT_ORPHANED if orphaned else _EXIT_STOPPED


def _cancel_keepalive(ports_path: Path, listen_host: str, data_dir: Path) -> None:
    """Cancel our own keep-alive query over HTTP, the one clean way to stop the server."""
    ports = _read_ports(ports_path)
    if ports is None:
        return
    url = _http_url(_connect_host(listen_host), ports[0])
    try:
        headers = embedded_credentials(data_dir).http_headers()
        _http_query(url, _KILL_KEEPALIVE, timeout=2.0, headers=headers)
    except _HTTP_ERRORS as exc:
        print(f"could not cancel the keep-alive query: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    code = _child_main()
    # Skip interpreter teardown: chdb's static state has nothing left to flush once the query
    # returned, and its destructors are not needed to keep the data.
    os._exit(code)
