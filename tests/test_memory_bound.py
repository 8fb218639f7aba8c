"""Bounded memory: concurrent requests of the largest accepted size over gRPC and HTTP against a
real receiver keep its peak RSS under the bound README "Memory" documents, every request gets a
valid OTLP answer (OK or retry later), and what was acknowledged is stored."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf.internal.encoder import _VarintBytes
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from receiver.config import Settings
from receiver.ingest import http_frontend
from receiver.ingest.admission import ROWS_PER_BYTE, Admission
from receiver.query.status import scrape

from .receiver_process import ReceiverProcess, wait_for

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS = 3_900  # of ~4 KiB each: a 15 MiB request, under the 16 MiB default limit
PER_TRANSPORT = int(os.environ.get("MEMORY_TEST_REQUESTS", "4"))
# README "Memory": peak RSS <= idle + 5 x max(limits.max_inflight_bytes, largest accepted
# request), ~490 MB with the defaults.
EXPANSION = float(os.environ.get("MEMORY_TEST_EXPANSION", "5"))
_DEFAULTS = Settings()
BUDGET_MB = (
    max(
        _DEFAULTS.limits_max_inflight_bytes,
        _DEFAULTS.grpc_max_receive_bytes,
        _DEFAULTS.http_max_receive_bytes,
    )
    / 1e6
)


def _spans_bytes() -> bytes:
    """Serialized ``scope_spans`` of one ResourceSpans, shared by every request."""
    now = time.time_ns()
    filler = AnyValue(string_value="x" * 4000)
    spans = [
        Span(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name="large",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
            attributes=[KeyValue(key="filler", value=filler)],
        )
        for _ in range(SPANS)
    ]
    scope = ScopeSpans(scope=InstrumentationScope(name="memory"), spans=spans)
    return ResourceSpans(scope_spans=[scope]).SerializeToString()


def _request(service: str, spans: bytes) -> bytes:
    """An ExportTraceServiceRequest of ``spans`` for ``service``, built by concatenating
    serialized fields (protobuf merges them) so that eight large requests cost little to make."""
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
    )
    resource_spans = ResourceSpans(resource=resource).SerializeToString() + spans
    return b"\x0a" + _VarintBytes(len(resource_spans)) + resource_spans


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM")}


def _send_grpc(target: str, body: bytes) -> str:
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    try:
        channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)(
            body, timeout=90
        )
        return "ok"
    except grpc.RpcError as exc:
        details = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
        retry = False
        if details:
            for detail in status_pb2.Status.FromString(details).details:
                retry = retry or detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
        return f"{exc.code().name}{' +RetryInfo' if retry else ''}"
    finally:
        channel.close()


def _send_http(url: str, body: bytes, gzip: bool) -> str:
    headers = {"Content-Type": "application/x-protobuf"}
    if gzip:  # charged the largest body until inflated, then its size
        headers["Content-Encoding"] = "gzip"
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        body = compressor.compress(body) + compressor.flush()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            ExportTraceServiceResponse.FromString(response.read())
            return "ok"
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After")
        return f"{exc.code}{' +Retry-After' if retry_after else ''}"


def test_concurrent_largest_requests_stay_under_the_rss_bound(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> None:
    receiver = ReceiverProcess.serving(tmp_path, clickhouse_url, database).start()
    try:
        assert receiver.process is not None
        pid = receiver.process.pid
        spans = _spans_bytes()
        bodies = {
            f"mem-{transport}-{i}": _request(f"mem-{transport}-{i}", spans)
            for transport in ("grpc", "http")
            for i in range(PER_TRANSPORT)
        }
        assert all(14 << 20 < len(b) < 16 << 20 for b in bodies.values())
        idle = _status(pid)
        answers: dict[str, str] = {}

        def send(service: str) -> None:
            if service.startswith("mem-grpc"):
                answers[service] = _send_grpc(receiver.grpc_target, bodies[service])
            else:
                gzip = int(service.rsplit("-", 1)[1]) % 2 == 1
                url = f"{receiver.http_url}/v1/traces"
                answers[service] = _send_http(url, bodies[service], gzip)

        started = time.monotonic()
        threads = [threading.Thread(target=send, args=(s,)) for s in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        peak = _status(pid)["VmHWM"]
        print(
            f"\nidle RSS {idle['VmRSS']} MB, peak RSS {peak} MB "
            f"({len(bodies)} requests of {len(spans) >> 20} MiB at once, "
            f"{time.monotonic() - started:.1f} s): {sorted(answers.items())}"
        )

        assert len(answers) == len(bodies), "a client got no answer"
        retryable = {"UNAVAILABLE +RetryInfo", "503 +Retry-After"}
        assert set(answers.values()) <= {"ok"} | retryable, answers
        acknowledged = [s for s, a in answers.items() if a == "ok"]
        assert acknowledged, "the gate admitted nothing"
        bound = idle["VmRSS"] + EXPANSION * BUDGET_MB
        assert peak < bound, f"peak RSS {peak} MB over the documented bound {bound:.0f} MB"

        def stored() -> dict[str, int]:
            rows = client.query(
                f"SELECT ServiceName, count() FROM {database}.otel_traces GROUP BY ServiceName"
            ).result_rows
            return dict(rows)

        expected = {s: SPANS for s in acknowledged}
        wait_for(lambda: stored() == expected, 60, f"acknowledged requests stored: {expected}")

        metrics = scrape(f"http://127.0.0.1:{receiver.metrics_port}/metrics")
        refusals = sum(
            value
            for labels, value in metrics["otel_receiver_requests_rejected_total"]
            if labels["reason"] in ("inflight_bytes", "inflight_requests")
        )
        assert refusals == len(answers) - len(acknowledged)
        assert metrics["otel_receiver_inflight_bytes"] == [({}, 0.0)]
        assert metrics["otel_receiver_inflight_requests"] == [({}, 0.0)]
    finally:
        receiver.stop()


def test_one_gate_for_grpc_http_and_hooks_held_by_a_slow_upload(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> None:
    """An HTTP body still being uploaded holds its admission: with room for one request, a
    gRPC export and a hook call meanwhile are told to retry, then get in once it is gone."""
    receiver = ReceiverProcess.serving(
        tmp_path, clickhouse_url, database, OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_REQUESTS="1"
    ).start()
    metrics_url = f"http://127.0.0.1:{receiver.metrics_port}/metrics"

    def inflight() -> float:
        return scrape(metrics_url)["otel_receiver_inflight_requests"][0][1]

    now = time.time_ns()
    span = Span(
        trace_id=os.urandom(16),
        span_id=os.urandom(8),
        name="small",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1000,
    )
    spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])]).SerializeToString()
    small = _request("mem-small", spans)
    hook = b'{"hook_event_name": "Stop", "session_id": "mem-session"}'
    try:
        slow = socket.create_connection(("127.0.0.1", receiver.http_port))
        slow.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 1000\r\n\r\n" + small[:10]
        )
        wait_for(lambda: inflight() == 1, 10, "the slow upload admitted")
        # Its Content-Length is its size: charged with its rows from the start.
        charged = scrape(metrics_url)["otel_receiver_inflight_bytes"][0][1]
        assert charged == 1000 * (1 + ROWS_PER_BYTE)
        assert _send_grpc(receiver.grpc_target, small) == "UNAVAILABLE +RetryInfo"
        request = urllib.request.Request(
            f"{receiver.http_url}/v1/hooks",
            data=hook,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"]
        assert "limits.max_inflight_requests" in refused.value.read().decode()
        slow.close()
        wait_for(lambda: inflight() == 0, 10, "the abandoned upload released")
        assert _send_grpc(receiver.grpc_target, small) == "ok"
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        rejected = scrape(metrics_url)["otel_receiver_requests_rejected_total"]
        by_signal = {k["signal"]: v for k, v in rejected if k["reason"] == "inflight_requests"}
        assert by_signal == {"traces": 1.0, "logs": 1.0}
        wait_for(
            lambda: (
                client.command(
                    f"SELECT count() FROM {database}.otel_traces WHERE ServiceName = 'mem-small'"
                )
                == 1
            ),
            30,
            "the admitted export stored",
        )
    finally:
        receiver.stop()


def test_a_stalled_http_upload_gets_408_and_gives_its_admission_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_frontend, "READ_TIMEOUT", 0.3)

    async def main() -> None:
        gate = Admission(max_bytes=1 << 20, max_requests=4)
        front = http_frontend.HttpFrontEnd(
            None,  # type: ignore[arg-type]  # no request gets past the body here
            "127.0.0.1:0",
            1 << 20,
            shutdown_timeout=0.5,
            admission=gate,
        )
        await front.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
            writer.write(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: 1000\r\n\r\n0123456789"
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 10)
            assert status.startswith(b"HTTP/1.1 408"), status
            assert (gate.bytes, gate.requests) == (0, 0)
            writer.close()
        finally:
            await front.stop()

    asyncio.run(main())
