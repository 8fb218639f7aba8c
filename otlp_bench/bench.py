"""otlp-bench: a load generator and meter for the receiver.

It replays a realistic mix of Claude Code and Codex telemetry (the real captures in
``tests/fixtures/real/main_grpc``: traces, logs and metrics, in the proportions one
Claude session with one Codex run produces) from several client processes, over OTLP/gRPC or
OTLP/HTTP protobuf, against a receiver it starts itself (``otel-receiver serve`` with the
embedded ClickHouse in a temporary data directory, on OS-assigned ports) or one that is
already running (``--target``). It measures and prints, and writes as JSON with ``--json``:

- items/s accepted (acknowledged by the receiver), for spans, logs and points and in total;
- rows/s landed in ClickHouse (``count()`` per table, polled);
- receiver and ClickHouse server CPU time per item, from the processes' own accounting
  (``/proc/<pid>/stat`` utime + stime), so the figure survives a noisy machine;
- export latency p50/p99 (request sent to answer received);
- export-to-queryable latency p50/p99 (a probe span sent until a query finds it);
- peak RSS of the receiver and of ClickHouse (``VmHWM``, and the largest sampled ``VmRSS``).

The generator must not be the bottleneck: every request is built and serialised before the
clock starts (a pool of copies of the captures, each with fresh trace and span ids, fresh
session/thread ids in attribute values, jittered numbers and current timestamps); the
clients only send bytes. Pool copies are reused round-robin during long runs.

Nothing here is imported by the receiver; it is a separate command.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import math
import multiprocessing as mp
import os
import pickle
import platform
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otlp_bench import clickhouse_breakdown

SIGNALS = ("traces", "logs", "metrics")
ITEM_NAMES = {"traces": "spans", "logs": "logs", "metrics": "points"}
TABLES = {
    "traces": ("otel_traces",),
    "logs": ("otel_logs",),
    "metrics": (
        "otel_metrics_gauge",
        "otel_metrics_sum",
        "otel_metrics_histogram",
        "otel_metrics_exponential_histogram",
        "otel_metrics_summary",
    ),
}
ALL_TABLES = tuple(t for tables in TABLES.values() for t in tables)
PROBE_SERVICE = "otlp-bench-probe"

# Issue 16's targets (2-core machine, embedded ClickHouse on the same box): CPU per span with
# traces only, per item for the mix; spans landed with traces only.
TARGET_RECEIVER_CPU_US = {"traces": 15.0, "mix": 20.0}
TARGET_CLICKHOUSE_CPU_US = 10.0
TARGET_SPANS_LANDED_PER_S = 40_000
TARGET_QUERYABLE_P99_S = 2.0
TARGET_QUERYABLE_AT_RATE = 10_000
TARGET_RECEIVER_RSS_MB = 300.0

REPO = Path(__file__).resolve().parents[1]
# The repository's copy of the real captures (tests/fixtures/real); --fixtures names another.
DEFAULT_FIXTURES = Path(
    os.environ.get("OTEL_RECEIVER_FIXTURES") or REPO / "tests" / "fixtures" / "real"
)

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark cannot run; the message says why, for the user."""


# --- the workload ------------------------------------------------------------------------


def _messages() -> dict[str, Any]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    return {
        "traces": ExportTraceServiceRequest,
        "logs": ExportLogsServiceRequest,
        "metrics": ExportMetricsServiceRequest,
    }


@dataclass(frozen=True)
class Request:
    """One pre-serialised Export request."""

    signal: str
    items: int
    body: bytes


def load_captures(fixtures: Path, signals: Sequence[str]) -> list[tuple[str, bytes]]:
    """The main_grpc capture: (signal, Export request bytes) in arrival order."""
    folder = fixtures / "main_grpc"
    paths = sorted(folder.glob("*.pb"))
    if not paths:
        raise BenchError(
            f"no captures in {folder}: pass --fixtures DIR (a fixtures/real folder) "
            "or set OTEL_RECEIVER_FIXTURES"
        )
    captures = [(p.stem.rsplit("_", 1)[1], p.read_bytes()) for p in paths]
    return [(s, body) for s, body in captures if s in signals]


_ID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-f]{16,64}\b"
)


class _Freshener:
    """Rewrites one copy of the captures: fresh ids (consistently: a parent id maps to its
    span's new id), fresh id-like attribute values, jittered numbers, times moved to now."""

    def __init__(self, rng: random.Random, shift_ns: int) -> None:
        self.rng = rng
        self.shift_ns = shift_ns
        self.ids: dict[bytes, bytes] = {}
        self.texts: dict[str, str] = {}
        self.scale = rng.uniform(0.5, 1.5)

    def id(self, old: bytes) -> bytes:
        if not old or not any(old):
            return old
        new = self.ids.get(old)
        if new is None:
            new = self.ids[old] = self.rng.randbytes(len(old))
        return new

    def time(self, value: int) -> int:
        return value + self.shift_ns if value else value

    def _text(self, match: re.Match[str]) -> str:
        old = match.group(0)
        new = self.texts.get(old)
        if new is None:
            if "-" in old:
                new = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            else:
                new = self.rng.randbytes(len(old) // 2 + 1).hex()[: len(old)]
            self.texts[old] = new
        return new

    def attributes(self, attributes: Any) -> None:
        for kv in attributes:
            value = kv.value
            kind = value.WhichOneof("value")
            if kind == "string_value":
                if _ID_TEXT.search(value.string_value):
                    value.string_value = _ID_TEXT.sub(self._text, value.string_value)
            elif kind == "int_value" and value.int_value >= 1000:
                value.int_value = int(value.int_value * self.scale)

    def traces(self, request: Any) -> int:
        n = 0
        for rs in request.resource_spans:
            self.attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    n += 1
                    span.trace_id = self.id(span.trace_id)
                    span.span_id = self.id(span.span_id)
                    span.parent_span_id = self.id(span.parent_span_id)
                    span.start_time_unix_nano = self.time(span.start_time_unix_nano)
                    span.end_time_unix_nano = self.time(span.end_time_unix_nano)
                    self.attributes(span.attributes)
                    for event in span.events:
                        event.time_unix_nano = self.time(event.time_unix_nano)
                        self.attributes(event.attributes)
                    for link in span.links:
                        link.trace_id = self.id(link.trace_id)
                        link.span_id = self.id(link.span_id)
        return n

    def logs(self, request: Any) -> int:
        n = 0
        for rl in request.resource_logs:
            self.attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    n += 1
                    record.trace_id = self.id(record.trace_id)
                    record.span_id = self.id(record.span_id)
                    record.time_unix_nano = self.time(record.time_unix_nano)
                    record.observed_time_unix_nano = self.time(record.observed_time_unix_nano)
                    self.attributes(record.attributes)
                    if record.body.WhichOneof("value") == "string_value" and _ID_TEXT.search(
                        record.body.string_value
                    ):
                        record.body.string_value = _ID_TEXT.sub(
                            self._text, record.body.string_value
                        )
        return n

    def metrics(self, request: Any) -> int:
        n = 0
        for rm in request.resource_metrics:
            self.attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    for point in getattr(metric, kind).data_points:
                        n += 1
                        point.start_time_unix_nano = self.time(point.start_time_unix_nano)
                        point.time_unix_nano = self.time(point.time_unix_nano)
                        self.attributes(point.attributes)
                        for exemplar in getattr(point, "exemplars", ()):
                            exemplar.time_unix_nano = self.time(exemplar.time_unix_nano)
                            exemplar.trace_id = self.id(exemplar.trace_id)
                            exemplar.span_id = self.id(exemplar.span_id)
        return n


def _latest_time(signal: str, request: Any) -> int:
    if signal == "traces":
        return max(
            (
                s.end_time_unix_nano
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
            ),
            default=0,
        )
    if signal == "logs":
        return max(
            (
                r.time_unix_nano or r.observed_time_unix_nano
                for rl in request.resource_logs
                for sl in rl.scope_logs
                for r in sl.log_records
            ),
            default=0,
        )
    latest = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind:
                    for point in getattr(metric, kind).data_points:
                        latest = max(latest, point.time_unix_nano)
    return latest


def build_pool(
    captures: list[tuple[str, bytes]], copies: int, seed: int | None = None
) -> list[Request]:
    """``copies`` fresh copies of the captured session, serialised, in arrival order."""
    messages = _messages()
    parsed = [(kind, messages[kind].FromString(body)) for kind, body in captures]
    latest = max(_latest_time(kind, request) for kind, request in parsed)
    rng = random.Random(seed)
    now = time.time_ns()
    pool = []
    for _ in range(copies):
        # Each copy ends a little before now, so copies do not share timestamps.
        fresh = _Freshener(rng, now - latest - rng.randrange(0, 5 * 10**9))
        for kind, template in parsed:
            request = messages[kind]()
            request.CopyFrom(template)
            items = getattr(fresh, kind)(request)
            pool.append(Request(kind, items, request.SerializeToString()))
    return pool


def probe_request(span_id: bytes, trace_id: bytes, run_tag: str, start_ns: int) -> bytes:
    """One span in its own request, found later by ServiceName, SpanName and start time."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = PROBE_SERVICE
    span = rs.scope_spans.add().spans.add()
    span.trace_id = trace_id
    span.span_id = span_id
    span.name = run_tag
    span.start_time_unix_nano = start_ns
    span.end_time_unix_nano = span.start_time_unix_nano + 1000
    return request.SerializeToString()


# --- process accounting ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a whole process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def system_busy_seconds() -> float | None:
    """CPU time all processes on the machine spent busy (``/proc/stat``), in seconds."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK


def memory_kb(pid: int, key: str) -> int | None:
    """A ``/proc/<pid>/status`` figure in kB (``VmRSS``, ``VmHWM``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.extend(int(c) for c in (task / "children").read_text().split())
    return children


def find_clickhouse_child(receiver_pid: int) -> int | None:
    """The embedded ClickHouse server process the receiver started, if any."""
    for pid in child_pids(receiver_pid):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"receiver.store.embedded" in cmdline:
                return pid
    return None


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = memory_kb_total()
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": round(mem_kb / 1024) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def memory_kb_total() -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return None


# --- ClickHouse --------------------------------------------------------------------------


class ClickHouseProbe:
    """Small read-only queries over ClickHouse's HTTP interface (no session, no proxy)."""

    def __init__(self, url: str, database: str, headers: dict[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.database = database
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        self._base = f"{parts.scheme}://{host}:{parts.port or 8123}/"
        self._headers = dict(headers or {})
        if parts.username and parts.password != "***":
            user = urllib.parse.unquote(parts.username)
            token = f"{user}:{urllib.parse.unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.failures = 0
        self.last_error = ""

    def query(self, sql: str, timeout: float = 10.0) -> list[list[str]]:
        """Rows of a query's TabSeparated answer; raises on failure (and remembers it)."""
        try:
            return self._query(sql, timeout)
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            raise

    def command(self, sql: str, timeout: float = 10.0) -> None:
        """Run a statement that returns no rows (e.g. ``SYSTEM FLUSH LOGS``)."""
        self._query(sql, timeout, output_format="")

    def _query(
        self, sql: str, timeout: float, output_format: str = "TabSeparated"
    ) -> list[list[str]]:
        request = urllib.request.Request(
            self._base + "?" + urllib.parse.urlencode({"database": self.database}),
            data=(sql + (f" FORMAT {output_format}" if output_format else "")).encode(),
            headers=self._headers,
            method="POST",
        )
        with self._opener.open(request, timeout=timeout) as response:
            text = response.read().decode()
        return [line.split("\t") for line in text.splitlines()]

    def counts(self) -> dict[str, int] | None:
        """Rows per receiver table (0 for a table that does not exist yet); None if the query
        failed (see ``last_error``)."""
        names = ", ".join(f"'{t}'" for t in ALL_TABLES)
        try:
            rows = self.query(
                "SELECT table, sum(rows) FROM system.parts WHERE active AND "
                f"database = currentDatabase() AND table IN ({names}) GROUP BY table",
                timeout=30,
            )
        except Exception:
            return None
        found = {table: int(n) for table, n in rows}
        return {table: found.get(table, 0) for table in ALL_TABLES}


# --- the receiver under test -------------------------------------------------------------


class ReceiverUnderTest:
    """``otel-receiver serve`` with the embedded ClickHouse, in a temporary directory, on
    OS-assigned ports; or a receiver that is already running."""

    def __init__(self, workdir: Path, env: dict[str, str], args: Sequence[str]) -> None:
        self.workdir = workdir
        self.env = env
        self.args = list(args)
        self.log_path = workdir / "receiver.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started: dict[str, Any] = {}

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "OTEL_RECEIVER_EMBEDDED_HTTP_PORT": "0",
            "OTEL_RECEIVER_EMBEDDED_TCP_PORT": "0",
            "OTEL_RECEIVER_METRICS_LISTEN": "127.0.0.1:0",
            "OTEL_RECEIVER_UI_LISTEN": "127.0.0.1:0",  # on, as in a user's serve; never 4319
            **self.env,
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "receiver.cli",
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
            str(self.workdir / "data"),
            *self.args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self.started:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the receiver exited with {self.process.returncode} during start-up:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise BenchError(f"the receiver did not start in {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.05)
            for event in self.events():
                if event.get("event") == "receiver_started":
                    self.started = event

    def events(self) -> Iterator[dict[str, Any]]:
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    yield json.loads(line)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the clients -------------------------------------------------------------------------


@dataclass
class ClientConfig:
    protocol: str
    target: str
    pool_path: str
    inflight: int
    rate: float | None  # spans/s for this client, None: as fast as possible
    items: int | None  # items this client sends, None: until the deadline
    offset: int  # where in the pool this client starts


# Per-client progress counters in shared memory: accepted items per signal, requests, errors.
_SLOTS = 6  # spans, logs, points, requests ok, requests failed, rejected items


def _client_main(
    index: int,
    config: ClientConfig,
    progress: Any,
    start_at: Any,
    stop_at: Any,
    results: Any,
) -> None:
    """A client process: send requests from the pool until told to stop; report latencies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(config.pool_path, "rb") as f:
        pool: list[Request] = pickle.load(f)
    cpu_before = time.process_time()
    latencies: list[tuple[float, float, str]] = []
    errors: Counter[str] = Counter()
    asyncio.run(_client_loop(index, config, pool, progress, start_at, stop_at, latencies, errors))
    results.put(
        {
            "index": index,
            "latencies": latencies,
            "errors": dict(errors),
            "cpu_seconds": time.process_time() - cpu_before,
        }
    )


def _response_types() -> dict[str, Any]:
    from receiver.ingest.otlp import SERVICES

    return {signal: spec.response_type for signal, spec in SERVICES.items()}


async def _client_loop(
    index: int,
    config: ClientConfig,
    pool: list[Request],
    progress: Any,
    start_at: Any,
    stop_at: Any,
    latencies: list[tuple[float, float, str]],
    errors: Counter[str],
) -> None:
    from receiver.ingest.otlp import SERVICES

    responses = _response_types()
    base = index * _SLOTS
    slot = {"traces": 0, "logs": 1, "metrics": 2}
    position = config.offset
    remaining = config.items
    schedule = 0.0

    while start_at.value == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, start_at.value - time.monotonic()))
    schedule = time.monotonic()

    if config.protocol == "grpc":
        import grpc

        channel = grpc.aio.insecure_channel(
            config.target,
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ],
        )
        stubs = {
            signal: channel.unary_unary(
                f"/{SERVICES[signal].service}/Export",
                request_serializer=None,
                response_deserializer=responses[signal].FromString,
            )
            for signal in SIGNALS
        }

        async def send(request: Request) -> Any:
            return await stubs[request.signal](request.body, timeout=120)

        async def close() -> None:
            await channel.close()

    else:
        import aiohttp

        session = aiohttp.ClientSession(
            base_url=f"http://{config.target}",
            connector=aiohttp.TCPConnector(limit=config.inflight),
            timeout=aiohttp.ClientTimeout(total=120),
        )
        headers = {"Content-Type": "application/x-protobuf"}

        async def send(request: Request) -> Any:
            async with session.post(
                SERVICES[request.signal].http_path, data=request.body, headers=headers
            ) as answer:
                body = await answer.read()
                if answer.status != 200:
                    raise _HttpFailure(f"HTTP {answer.status}")
                return responses[request.signal].FromString(body)

        async def close() -> None:
            await session.close()

    def next_request() -> Request | None:
        nonlocal position, remaining, schedule
        if time.monotonic() >= stop_at.value:
            return None
        if remaining is not None and remaining <= 0:
            return None
        request = pool[position % len(pool)]
        position += 1
        if remaining is not None:
            remaining -= request.items
        return request

    async def worker() -> None:
        nonlocal schedule
        while (request := next_request()) is not None:
            if config.rate and request.signal == "traces":
                now = time.monotonic()
                schedule = max(schedule, now - 1.0) + request.items / config.rate
                await asyncio.sleep(max(0.0, schedule - now))
            began = time.monotonic()
            try:
                answer = await send(request)
            except Exception as exc:  # RPC or HTTP failure: count it, back off, move on
                code = getattr(exc, "code", None)
                errors[code().name if callable(code) else type(exc).__name__] += 1
                progress[base + 4] += 1
                await asyncio.sleep(0.1)
                continue
            done = time.monotonic()
            rejected = 0
            if answer.HasField("partial_success"):
                rejected = getattr(answer.partial_success, SERVICES[request.signal].rejected_field)
            progress[base + slot[request.signal]] += request.items - rejected
            progress[base + 3] += 1
            progress[base + 5] += rejected
            latencies.append((done, done - began, request.signal))

    try:
        await asyncio.gather(*(worker() for _ in range(config.inflight)))
    finally:
        await close()


class _HttpFailure(Exception):
    pass


# --- export-to-queryable probes ----------------------------------------------------------


class Prober:
    """Sends one tagged span every ``interval`` seconds, through the same front end as the
    load, and polls ClickHouse until each is queryable.

    A probe counts as queryable when the answer of the first query that finds it arrives
    (an upper bound, at most ``poll`` seconds late). Polling costs ClickHouse CPU, which the
    ClickHouse CPU figure includes, so a poll reads as little as it can: only parts holding
    spans that started no earlier than the oldest probe still waiting (each part's min/max
    ``Timestamp``), on one thread. Without that bound a poll read a granule of every part,
    8-10 ms each (0.8-1.0 us per span at 48,000 spans/s).
    """

    def __init__(
        self,
        protocol: str,
        target: str,
        clickhouse: ClickHouseProbe,
        interval: float,
        poll: float = 0.2,
    ) -> None:
        self.protocol = protocol
        self.target = target
        self.clickhouse = clickhouse
        self.interval = interval
        self.poll = poll
        self.tag = f"probe-{uuid.uuid4().hex[:12]}"
        self.sent: dict[str, float] = {}  # span id hex -> monotonic send time
        self.seen: dict[str, float] = {}  # span id hex -> monotonic time first queryable
        self._started_ns: dict[str, int] = {}  # span id hex -> the span's start, Unix ns
        self.failed = 0
        self._stop_sending = threading.Event()
        self._stop_polling = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(64, thread_name_prefix="probe")
        self._channel: Any = None
        self._send: Any = None

    def start(self) -> None:
        if self.protocol == "grpc":
            import grpc

            from receiver.ingest.otlp import SERVICES

            self._channel = grpc.insecure_channel(self.target)
            stub = self._channel.unary_unary(
                f"/{SERVICES['traces'].service}/Export", request_serializer=None
            )

            def send(body: bytes) -> None:
                # Non-blocking: a probe must leave now even while earlier ones wait for
                # their batch, or the queue would inflate the measured latency.
                stub.future(body, timeout=60).add_done_callback(self._done)

            self._send = send
        else:
            url = f"http://{self.target}/v1/traces"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

            def post(body: bytes) -> None:
                request = urllib.request.Request(
                    url, data=body, headers={"Content-Type": "application/x-protobuf"}
                )
                try:
                    with opener.open(request, timeout=60) as answer:
                        answer.read()
                except Exception:
                    with self._lock:
                        self.failed += 1

            self._send = lambda body: self._pool.submit(post, body)
        for target in (self._send_loop, self._poll_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _done(self, future: Any) -> None:
        if future.exception() is not None:
            with self._lock:
                self.failed += 1

    def _send_loop(self) -> None:
        while not self._stop_sending.wait(self.interval):
            span_id = os.urandom(8)
            start_ns = time.time_ns()
            body = probe_request(span_id, os.urandom(16), self.tag, start_ns)
            with self._lock:
                self.sent[span_id.hex()] = time.monotonic()
                self._started_ns[span_id.hex()] = start_ns
            self._send(body)

    def _poll_loop(self) -> None:
        while not self._stop_polling.is_set():
            with self._lock:
                waiting = [ns for s, ns in self._started_ns.items() if s not in self.seen]
            if waiting:
                sql = (
                    "SELECT SpanId FROM otel_traces WHERE ServiceName = "
                    f"'{PROBE_SERVICE}' AND SpanName = '{self.tag}' "
                    f"AND Timestamp >= fromUnixTimestamp64Nano({min(waiting)}) "
                    "SETTINGS max_threads = 1"
                )
                with contextlib.suppress(Exception):
                    rows = self.clickhouse.query(sql, timeout=5)
                    now = time.monotonic()
                    with self._lock:
                        for (span_id,) in rows:
                            self.seen.setdefault(span_id, now)
            self._stop_polling.wait(self.poll)

    def stop(self, settle: float = 10.0) -> None:
        """Stop sending; keep polling until every probe sent is found or ``settle`` passes."""
        self._stop_sending.set()
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.seen) >= len(self.sent) - self.failed:
                    break
            time.sleep(0.05)
        self._stop_polling.set()
        for thread in self._threads:
            thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._channel is not None:
            self._channel.close()

    def latencies(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [
                self.seen[s] - sent
                for s, sent in self.sent.items()
                if start <= sent <= end and s in self.seen
            ]


# --- the run -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Snapshot:
    time: float
    accepted: dict[str, int]
    counts: dict[str, int] | None
    receiver_cpu: float | None
    clickhouse_cpu: float | None
    clients_requests: int = 0
    failed: int = 0
    clients_cpu: float | None = None
    machine_busy: float | None = None
    wall: float = 0.0  # Unix time, for the ClickHouse breakdown's log queries


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    receiver: ReceiverUnderTest | None = None
    receiver_pid: int | None = None
    clickhouse_pid: int | None = None
    clickhouse: ClickHouseProbe | None = None
    target: str = ""
    rss_max_kb: dict[str, int] = field(default_factory=dict)
    client_pids: list[int] = field(default_factory=list)


def _accepted(progress: Any, clients: int) -> tuple[dict[str, int], int, int, int]:
    values = list(progress)
    per_signal = {
        "traces": sum(values[i * _SLOTS + 0] for i in range(clients)),
        "logs": sum(values[i * _SLOTS + 1] for i in range(clients)),
        "metrics": sum(values[i * _SLOTS + 2] for i in range(clients)),
    }
    ok = sum(values[i * _SLOTS + 3] for i in range(clients))
    failed = sum(values[i * _SLOTS + 4] for i in range(clients))
    rejected = sum(values[i * _SLOTS + 5] for i in range(clients))
    return per_signal, ok, failed, rejected


def _snapshot(run: Run, progress: Any, clients: int) -> Snapshot:
    accepted, ok, failed, _ = _accepted(progress, clients)
    counts = run.clickhouse.counts() if run.clickhouse is not None else None
    client_times = [cpu_seconds(pid) for pid in run.client_pids]
    return Snapshot(
        time.monotonic(),
        accepted,
        counts,
        cpu_seconds(run.receiver_pid) if run.receiver_pid else None,
        cpu_seconds(run.clickhouse_pid) if run.clickhouse_pid else None,
        ok,
        failed,
        sum(t for t in client_times if t is not None),
        system_busy_seconds(),
        time.time(),
    )


def _sample_memory(run: Run, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        for name, pid in (("receiver", run.receiver_pid), ("clickhouse", run.clickhouse_pid)):
            if pid:
                rss = memory_kb(pid, "VmRSS")
                if rss:
                    run.rss_max_kb[name] = max(run.rss_max_kb.get(name, 0), rss)


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"otlp-bench: {message}", file=sys.stderr, flush=True)


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    signals = tuple(s.strip() for s in args.signals.split(",") if s.strip())
    for s in signals:
        if s not in SIGNALS:
            raise BenchError(f"--signals: unknown signal {s!r} (traces, logs, metrics)")
    workdir = Path(tempfile.mkdtemp(prefix="otlp-bench-"))
    run = Run(args, workdir)
    try:
        return _run(run, signals)
    finally:
        if run.receiver:
            _log(args, "stopping the receiver")
            run.receiver.stop()
        if args.keep_data:
            _log(args, f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(run: Run, signals: tuple[str, ...]) -> dict[str, Any]:
    args = run.args
    began = time.monotonic()
    captures = load_captures(Path(args.fixtures), signals)
    pool = build_pool(captures, args.pool_sessions, seed=args.seed)
    pool_path = run.workdir / "pool.pickle"
    with pool_path.open("wb") as f:
        pickle.dump(pool, f, protocol=pickle.HIGHEST_PROTOCOL)
    pool_items = Counter()
    for request in pool:
        pool_items[request.signal] += request.items
    _log(
        args,
        f"pool: {len(pool)} requests, {sum(len(r.body) for r in pool) / 1e6:.1f} MB, "
        + ", ".join(f"{n} {ITEM_NAMES[s]}" for s, n in pool_items.items())
        + f" (built in {time.monotonic() - began:.1f} s)",
    )

    if args.target:
        run.target = args.target
        run.receiver_pid = args.receiver_pid
        run.clickhouse_pid = args.clickhouse_pid or (
            find_clickhouse_child(args.receiver_pid) if args.receiver_pid else None
        )
        if args.clickhouse_url:
            run.clickhouse = ClickHouseProbe(args.clickhouse_url, args.database)
    else:
        env = dict(item.split("=", 1) for item in args.receiver_env)
        run.receiver = ReceiverUnderTest(run.workdir, env, args.receiver_arg)
        if args.clickhouse_breakdown:
            clickhouse_breakdown.prepare(run.workdir / "data")
        _log(args, "starting otel-receiver serve with the embedded ClickHouse")
        run.receiver.start()
        started = run.receiver.started
        port = started["grpc_port"] if args.protocol == "grpc" else started["http_port"]
        run.target = f"127.0.0.1:{port}"
        run.receiver_pid = run.receiver.pid
        run.clickhouse_pid = find_clickhouse_child(run.receiver.pid) if run.receiver.pid else None
        run.clickhouse = ClickHouseProbe(
            started["clickhouse_url"], args.database, _embedded_headers(run.workdir / "data")
        )
    _log(
        args,
        f"target {args.protocol}://{run.target}; receiver pid {run.receiver_pid}, "
        f"ClickHouse pid {run.clickhouse_pid}",
    )
    return _measure(run, pool, pool_path, signals)


def _embedded_headers(data_dir: Path) -> dict[str, str]:
    """How to log in to the embedded ClickHouse of a receiver started with ``data_dir``: its
    generated password's user, when this version of the receiver has one."""
    try:
        from receiver.store.credentials import embedded_credentials
    except ImportError:
        return {}
    return embedded_credentials(data_dir / "clickhouse").http_headers()


def _measure(
    run: Run, pool: list[Request], pool_path: Path, signals: tuple[str, ...]
) -> dict[str, Any]:
    args = run.args
    clients = args.clients
    ctx = mp.get_context("spawn")
    progress = ctx.RawArray("q", clients * _SLOTS)
    start_at = ctx.RawValue("d", 0.0)
    stop_at = ctx.RawValue("d", float("inf"))
    results = ctx.Queue()
    processes = []
    for index in range(clients):
        config = ClientConfig(
            protocol=args.protocol,
            target=run.target,
            pool_path=str(pool_path),
            inflight=args.inflight,
            rate=args.rate / clients if args.rate else None,
            items=math.ceil(args.items / clients) if args.items else None,
            offset=(len(pool) * index) // clients,
        )
        process = ctx.Process(
            target=_client_main,
            args=(index, config, progress, start_at, stop_at, results),
            daemon=True,
        )
        process.start()
        processes.append(process)
        run.client_pids.append(process.pid)

    memory_stop = threading.Event()
    sampler = threading.Thread(target=_sample_memory, args=(run, memory_stop), daemon=True)
    sampler.start()
    prober = None
    if run.clickhouse is not None and "traces" in signals and args.probe_interval > 0:
        prober = Prober(args.protocol, run.target, run.clickhouse, args.probe_interval)

    baseline = _snapshot(run, progress, clients)
    # Give the clients time to import and load the pool before the clock starts.
    start = time.monotonic() + args.client_startup
    start_at.value = start
    warmup = args.warmup if args.warmup is not None else (0.0 if args.items else 3.0)
    if not args.items:
        stop_at.value = start + warmup + args.duration
    time.sleep(max(0.0, start - time.monotonic()))
    if prober:
        prober.start()
    _log(args, f"load running: {clients} client(s) x {args.inflight} requests in flight")
    time.sleep(warmup)
    first = _snapshot(run, progress, clients)
    reports: list[dict[str, Any]] = []
    if args.items:
        # Each client stops after its share and reports; the window ends with the last.
        _collect_reports(results, processes, clients, reports, timeout=3600)
        last = _snapshot(run, progress, clients)
    else:
        time.sleep(max(0.0, stop_at.value - time.monotonic()))
        last = _snapshot(run, progress, clients)
    stop_at.value = 0.0  # every client stops issuing requests
    _collect_reports(results, processes, clients, reports, timeout=180)
    for process in processes:
        process.join(10)
    if prober:
        prober.stop(settle=args.settle)
    final_accepted, ok_total, failed_total, rejected_total = _accepted(progress, clients)
    accepted_total = sum(final_accepted.values())
    probes = len(prober.sent) - prober.failed if prober else 0
    drained = _drain(run, baseline, accepted_total + probes, args.settle)
    drained["probes"] = probes
    memory_stop.set()
    sampler.join(2)

    window = last.time - first.time
    result = _report(
        run,
        signals,
        pool,
        baseline,
        first,
        last,
        window,
        reports,
        prober,
        drained,
        final_accepted,
        ok_total,
        failed_total,
        rejected_total,
    )
    if args.clickhouse_breakdown and run.clickhouse is not None:
        result["clickhouse_breakdown"] = clickhouse_breakdown.collect(
            run.clickhouse, first.wall, last.wall
        )
    return result


def _collect_reports(
    results: Any, processes: list[Any], count: int, reports: list[Any], timeout: float
) -> None:
    """Gather the clients' final reports; raise BenchError if a client died or hung."""
    deadline = time.monotonic() + timeout
    while len(reports) < count:
        try:
            reports.append(results.get(timeout=0.1))
            continue
        except queue.Empty:
            pass
        if not any(p.is_alive() for p in processes):
            try:  # the last reports may still be on their way through the pipe
                reports.append(results.get(timeout=2))
                continue
            except queue.Empty:
                raise BenchError("a client process died; see its traceback above") from None
        if time.monotonic() > deadline:
            raise BenchError(f"the clients did not finish within {timeout:g} s")


def _drain(run: Run, baseline: Snapshot, accepted: int, settle: float) -> dict[str, Any]:
    """Wait until every acknowledged item is queryable (or ``settle`` seconds pass)."""
    if run.clickhouse is None or baseline.counts is None:
        return {"landed": None, "waited_seconds": 0.0}
    began = time.monotonic()
    landed = None
    while True:
        counts = run.clickhouse.counts()
        if counts is not None:
            landed = sum(counts.values()) - sum(baseline.counts.values())
        if (landed is not None and landed >= accepted) or time.monotonic() - began > settle:
            return {"landed": landed, "waited_seconds": round(time.monotonic() - began, 2)}
        time.sleep(0.2)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def _ms(values: Sequence[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(value * 1000, 1)


def _target(
    name: str, value: Any, unit: str, target: str, met: bool | None, note: str = ""
) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "target": target, "met": met, "note": note}


def _report(
    run: Run,
    signals: tuple[str, ...],
    pool: list[Request],
    baseline: Snapshot,
    first: Snapshot,
    last: Snapshot,
    window: float,
    reports: list[dict[str, Any]],
    prober: Prober | None,
    drained: dict[str, Any],
    final_accepted: dict[str, int],
    ok_total: int,
    failed_total: int,
    rejected_total: int,
) -> dict[str, Any]:
    """Every figure of the run, measured over the window between ``first`` and ``last``."""
    args = run.args
    accepted = {ITEM_NAMES[s]: last.accepted[s] - first.accepted[s] for s in SIGNALS}
    accepted["total"] = sum(accepted.values())

    landed: dict[str, Any] = {k: None for k in ("spans", "logs", "points", "total")}
    if first.counts is not None and last.counts is not None:
        per_table = {t: last.counts[t] - first.counts[t] for t in ALL_TABLES}
        for s in SIGNALS:
            landed[ITEM_NAMES[s]] = round(sum(per_table[t] for t in TABLES[s]) / window, 1)
        landed["total"] = round(sum(per_table.values()) / window, 1)
        landed["tables"] = {t: round(n / window, 1) for t, n in per_table.items() if n}

    cpu = {
        "receiver": _delta(first.receiver_cpu, last.receiver_cpu),
        "clickhouse": _delta(first.clickhouse_cpu, last.clickhouse_cpu),
        "clients": _delta(first.clients_cpu, last.clients_cpu),
    }
    machine_busy = _delta(first.machine_busy, last.machine_busy)
    # Everything else that ran on the machine meanwhile: the noise these figures survived.
    other = (
        None
        if machine_busy is None
        else max(machine_busy - sum(v for v in cpu.values() if v is not None), 0.0)
    )

    def per_item(seconds: float | None) -> float | None:
        if seconds is None or not accepted["total"]:
            return None
        return round(seconds / accepted["total"] * 1e6, 2)

    def cores(seconds: float | None) -> float | None:
        return None if seconds is None or window <= 0 else round(seconds / window, 3)

    latencies: list[float] = []
    by_signal: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report["errors"])
        for done, latency, signal_name in report["latencies"]:
            if first.time <= done <= last.time:
                latencies.append(latency)
                by_signal.setdefault(signal_name, []).append(latency)

    queryable = prober.latencies(first.time, last.time) if prober else []
    probes_sent = (
        sum(1 for t in prober.sent.values() if first.time <= t <= last.time) if prober else 0
    )

    def peak(name: str, pid: int | None) -> float | None:
        hwm = memory_kb(pid, "VmHWM") if pid else None
        sampled = run.rss_max_kb.get(name)
        return _mb(max(filter(None, [hwm, sampled]), default=None))

    rss = {
        "receiver": peak("receiver", run.receiver_pid),
        "clickhouse": peak("clickhouse", run.clickhouse_pid),
        "receiver_sampled_max": _mb(run.rss_max_kb.get("receiver")),
        "clickhouse_sampled_max": _mb(run.rss_max_kb.get("clickhouse")),
    }

    receiver_us = per_item(cpu["receiver"])
    spans_landed = landed["spans"]
    queryable_p99 = _ms(queryable, 99)
    mix = "realistic mix" if set(signals) == set(SIGNALS) else "+".join(signals)
    at_rate = args.rate is not None and abs(args.rate - TARGET_QUERYABLE_AT_RATE) <= 1
    traces_only = list(signals) == ["traces"]
    receiver_target = TARGET_RECEIVER_CPU_US["traces" if traces_only else "mix"]
    clickhouse_us = per_item(cpu["clickhouse"])
    targets = [
        _target(
            f"receiver CPU per item ({mix})",
            receiver_us,
            "µs",
            f"<= {receiver_target:g}",
            None if receiver_us is None else receiver_us <= receiver_target,
        ),
        _target(
            "ClickHouse CPU per span (traces only)",
            clickhouse_us,
            "µs",
            f"<= {TARGET_CLICKHOUSE_CPU_US:g}",
            None
            if clickhouse_us is None or not traces_only
            else clickhouse_us <= TARGET_CLICKHOUSE_CPU_US,
            "" if traces_only else "judged only with --signals traces",
        ),
        _target(
            "spans landed per second (traces only)",
            spans_landed,
            "spans/s",
            f">= {TARGET_SPANS_LANDED_PER_S:,}",
            None
            if spans_landed is None or not traces_only
            else spans_landed >= TARGET_SPANS_LANDED_PER_S,
            "" if traces_only else "judged only with --signals traces",
        ),
        _target(
            "export-to-queryable p99",
            queryable_p99,
            "ms",
            f"<= {TARGET_QUERYABLE_P99_S * 1000:g} at {TARGET_QUERYABLE_AT_RATE:,} spans/s",
            None
            if queryable_p99 is None or not at_rate
            else queryable_p99 <= TARGET_QUERYABLE_P99_S * 1000,
            "" if at_rate else "judged only with --rate 10000",
        ),
        _target(
            "receiver peak RSS",
            rss["receiver"],
            "MB",
            f"<= {TARGET_RECEIVER_RSS_MB:g}",
            None if rss["receiver"] is None else rss["receiver"] <= TARGET_RECEIVER_RSS_MB,
        ),
    ]
    return {
        "tool": "otlp-bench",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": ["otlp-bench", *args.argv],
        "machine": machine(),
        "config": {
            "protocol": args.protocol,
            "clients": args.clients,
            "inflight_per_client": args.inflight,
            "duration_seconds": None if args.items else args.duration,
            "items": args.items,
            "warmup_seconds": round(first.time - baseline.time, 2),
            "rate_spans_per_second": args.rate,
            "signals": list(signals),
            "target": run.target,
            "self_started_receiver": run.receiver is not None,
            "receiver_env": list(args.receiver_env),
            "receiver_args": list(args.receiver_arg),
            "pool": {
                "requests": len(pool),
                "sessions": args.pool_sessions,
                "bytes": sum(len(r.body) for r in pool),
                "items": {
                    ITEM_NAMES[s]: sum(r.items for r in pool if r.signal == s) for s in signals
                },
            },
        },
        "window_seconds": round(window, 3),
        "accepted": accepted,
        "accepted_per_second": {k: round(v / window, 1) for k, v in accepted.items()},
        "landed_per_second": landed,
        "receiver_cpu_us_per_item": receiver_us,
        "clickhouse_cpu_us_per_item": clickhouse_us,
        "client_cpu_us_per_item": per_item(cpu["clients"]),
        "receiver_cpu_cores": cores(cpu["receiver"]),
        "clickhouse_cpu_cores": cores(cpu["clickhouse"]),
        "clients_cpu_cores": cores(cpu["clients"]),
        "other_cpu_cores": cores(other),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "export_latency_ms": {
            "p50": _ms(latencies, 50),
            "p99": _ms(latencies, 99),
            "count": len(latencies),
            "by_signal": {
                s: {"p50": _ms(v, 50), "p99": _ms(v, 99), "count": len(v)}
                for s, v in sorted(by_signal.items())
            },
        },
        "export_to_queryable_ms": {
            "p50": _ms(queryable, 50),
            "p99": queryable_p99,
            "count": len(queryable),
            "sent": probes_sent,
        },
        "rss_peak_mb": rss,
        "clickhouse_queries": {
            "failed": run.clickhouse.failures if run.clickhouse else None,
            "last_error": run.clickhouse.last_error if run.clickhouse else None,
        },
        "requests": {
            "ok": last.clients_requests - first.clients_requests,
            "failed": last.failed - first.failed,
            "ok_total": ok_total,
            "failed_total": failed_total,
            "rejected_items_total": rejected_total,
            "errors": dict(errors),
        },
        "drain": {
            "accepted_total": sum(final_accepted.values()),
            "probes_total": drained["probes"],
            "landed_total": drained["landed"],
            "waited_seconds": drained["waited_seconds"],
        },
        "targets": targets,
    }


# --- output ------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(result: dict[str, Any]) -> str:
    acc = result["accepted_per_second"]
    landed = result["landed_per_second"]
    lat = result["export_latency_ms"]
    q = result["export_to_queryable_ms"]
    rss = result["rss_peak_mb"]
    cfg = result["config"]
    rows = [
        ("window", f"{_fmt(result['window_seconds'], 1)} s"),
        ("accepted spans/s", _fmt(acc["spans"])),
        ("accepted logs/s", _fmt(acc["logs"])),
        ("accepted points/s", _fmt(acc["points"])),
        ("accepted items/s (total)", _fmt(acc["total"])),
        ("landed spans/s", _fmt(landed.get("spans"))),
        ("landed logs/s", _fmt(landed.get("logs"))),
        ("landed points/s", _fmt(landed.get("points"))),
        ("landed rows/s (total)", _fmt(landed.get("total"))),
        ("receiver CPU µs/item", _fmt(result["receiver_cpu_us_per_item"], 2)),
        ("ClickHouse CPU µs/item", _fmt(result["clickhouse_cpu_us_per_item"], 2)),
        ("client CPU µs/item", _fmt(result["client_cpu_us_per_item"], 2)),
        ("receiver CPU (cores)", _fmt(result["receiver_cpu_cores"], 2)),
        ("ClickHouse CPU (cores)", _fmt(result["clickhouse_cpu_cores"], 2)),
        ("clients CPU (cores)", _fmt(result["clients_cpu_cores"], 2)),
        ("other processes CPU (cores)", _fmt(result["other_cpu_cores"], 2)),
        ("export latency p50 / p99", f"{_fmt(lat['p50'])} / {_fmt(lat['p99'])} ms"),
        (
            "export-to-queryable p50 / p99",
            f"{_fmt(q['p50'])} / {_fmt(q['p99'])} ms ({q['count']} probes)",
        ),
        ("receiver peak RSS", f"{_fmt(rss['receiver'])} MB"),
        ("ClickHouse peak RSS", f"{_fmt(rss['clickhouse'])} MB"),
        (
            "requests ok / failed",
            f"{_fmt(result['requests']['ok'])} / {_fmt(result['requests']['failed'])}",
        ),
        (
            "accepted + probes / landed (after drain)",
            f"{_fmt(result['drain']['accepted_total'])} + {_fmt(result['drain']['probes_total'])}"
            f" / {_fmt(result['drain']['landed_total'])}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    head = (
        f"otlp-bench {cfg['protocol']} {cfg['clients']}x{cfg['inflight_per_client']} "
        f"({', '.join(cfg['signals'])})"
        + (f" at {cfg['rate_spans_per_second']:g} spans/s" if cfg["rate_spans_per_second"] else "")
    )
    lines = [head, "-" * len(head)]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append("targets:")
    for t in result["targets"]:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        note = f"  ({t['note']})" if t["note"] else ""
        lines.append(
            f"  {verdict:<6} {t['name']}: {_fmt(t['value'])} {t['unit']} (target {t['target']})"
            + note
        )
    if result["requests"]["errors"]:
        lines.append(f"errors: {result['requests']['errors']}")
    if result["clickhouse_queries"]["failed"]:
        lines.append(
            f"ClickHouse queries failed: {result['clickhouse_queries']['failed']}, last: "
            + result["clickhouse_queries"]["last_error"]
        )
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otlp-bench",
        description=(
            "Load generator and meter for the receiver: replays a realistic mix of Claude "
            "Code and Codex traces, logs and metrics and measures throughput, CPU per item, "
            "latency and memory. By default it starts `otel-receiver serve` with the "
            "embedded ClickHouse in a temporary directory."
        ),
    )
    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, default=20.0, help="seconds measured (20)")
    load.add_argument(
        "--items", type=int, help="send this many items (spans+logs+points) instead of a duration"
    )
    load.add_argument(
        "--warmup", type=float, help="seconds of load before measuring (3; 0 with --items)"
    )
    load.add_argument("--clients", type=int, default=2, help="client processes (2)")
    load.add_argument(
        "--inflight", type=int, default=64, help="concurrent requests per client (64)"
    )
    load.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    load.add_argument(
        "--rate", type=float, help="target spans/s over all clients (default: as fast as possible)"
    )
    load.add_argument(
        "--signals", default="traces,logs,metrics", help="which signals of the mix to send"
    )
    load.add_argument(
        "--pool-sessions",
        type=int,
        default=64,
        help="fresh copies of the captured session serialised before the run (64)",
    )
    load.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="the fixtures/real folder")
    load.add_argument("--seed", type=int, help="random seed for the pool")
    target = parser.add_argument_group("receiver")
    target.add_argument(
        "--target", metavar="HOST:PORT", help="a running receiver (gRPC or HTTP port per protocol)"
    )
    target.add_argument(
        "--clickhouse-url", help="with --target: ClickHouse HTTP URL to count landed rows"
    )
    target.add_argument("--database", default="otel", help="ClickHouse database (otel)")
    target.add_argument("--receiver-pid", type=int, help="with --target: for CPU and RSS")
    target.add_argument("--clickhouse-pid", type=int, help="with --target: for CPU and RSS")
    target.add_argument(
        "--receiver-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the receiver it starts (repeatable)",
    )
    target.add_argument(
        "--receiver-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `otel-receiver serve` (repeatable)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="FILE", help="write the results as JSON")
    out.add_argument("--quiet", action="store_true", help="print only the table")
    out.add_argument(
        "--probe-interval",
        type=float,
        default=0.25,
        help="seconds between export-to-queryable probe spans (0.25; 0 disables)",
    )
    out.add_argument(
        "--settle", type=float, default=30.0, help="seconds to wait for rows to land after load"
    )
    out.add_argument("--client-startup", type=float, default=2.0, help=argparse.SUPPRESS)
    out.add_argument("--keep-data", action="store_true", help="keep the temporary directory")
    out.add_argument(
        "--clickhouse-breakdown",
        action="store_true",
        help="turn on the embedded ClickHouse's query and part logs and print its CPU by "
        "query kind and merges (a receiver it starts itself; costs ClickHouse a little CPU)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.clients < 1 or args.inflight < 1:
        print("otlp-bench: --clients and --inflight must be at least 1", file=sys.stderr)
        return 2
    if args.items is not None and args.items < 1:
        print("otlp-bench: --items must be at least 1", file=sys.stderr)
        return 2
    for item in args.receiver_env:
        if "=" not in item:
            print(f"otlp-bench: --receiver-env expects NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
    try:
        result = run_bench(args)
    except BenchError as exc:
        print(f"otlp-bench: {exc}", file=sys.stderr)
        return 1
    print(render_table(result))
    if "clickhouse_breakdown" in result:
        cpu = result["clickhouse_cpu_cores"]
        print(
            clickhouse_breakdown.render(
                result["clickhouse_breakdown"],
                None if cpu is None else cpu * result["window_seconds"],
                result["accepted"]["total"],
            )
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
