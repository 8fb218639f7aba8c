"""Run the real ``otel-receiver`` as a child process, the way a user does, for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ReceiverProcess:
    """``otel-receiver serve`` in a child process; its JSON log goes to a file we can read."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.log_path = workdir / "receiver.log"
        if "--http-listen" not in args and "OTEL_RECEIVER_HTTP_LISTEN" not in (env or {}):
            # Tests never take the default ports: OTLP/HTTP is on unless disabled.
            args = (*args, "--http-listen", "127.0.0.1:0")
        if "--metrics-listen" not in args and "OTEL_RECEIVER_METRICS_LISTEN" not in (env or {}):
            args = (*args, "--metrics-listen", "127.0.0.1:0")  # never the default port
        if "--ui-listen" not in args and "OTEL_RECEIVER_UI_LISTEN" not in (env or {}):
            args = (*args, "--ui-listen", "")  # the web UI only where a test asks for it
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.grpc_port = 0
        self.http_port: int | None = None
        self.metrics_port: int | None = None

    @classmethod
    def serving(
        cls,
        workdir: Path,
        clickhouse_url: str,
        database: str,
        *args: str,
        data_dir: Path | None = None,
        **env: str,
    ) -> ReceiverProcess:
        """A receiver on OS-assigned ports writing to ``database`` of ``clickhouse_url``, its
        spool in ``data_dir`` (default ``workdir/data``); ``env`` adds OTEL_RECEIVER_* settings."""
        return cls(
            workdir,
            "--grpc-listen",
            "127.0.0.1:0",
            "--clickhouse-url",
            clickhouse_url,
            "--data-dir",
            str(data_dir or workdir / "data"),
            *args,
            env={"OTEL_RECEIVER_CLICKHOUSE_DATABASE": database, **env},
        )

    def start(self, timeout: float = 30.0) -> ReceiverProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "receiver.cli", "serve", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started = wait_for(
            lambda: self.event("receiver_started") or self._exited(), timeout, "receiver start"
        )
        self.grpc_port = started["grpc_port"]
        self.http_port = started.get("http_port")
        self.metrics_port = started.get("metrics_port")
        return self

    def _exited(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"receiver exited with {self.process.returncode}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events()) if e.get("event") == name), None)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the OTLP/HTTP front end."""
        assert self.http_port, "OTLP/HTTP is disabled in this receiver"
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"receiver did not stop in {timeout}s:\n{self.log()}"
                ) from None
        return self.process.returncode
