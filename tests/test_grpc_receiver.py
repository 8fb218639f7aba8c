"""The gRPC front end with real OTLP bytes: the Claude Code / Codex captures, gzip, health,
bad input and partial success, against a real receiver process and a real ClickHouse."""

from __future__ import annotations

import time

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.ingest.otlp import SERVICES

from .capture_files import FIXTURES, signal_of
from .clickhouse_rows import count
from .receiver_process import ReceiverProcess, wait_for

RESPONSES = {
    "traces": ExportTraceServiceResponse,
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}


def export(channel: grpc.Channel, signal: str, body: bytes, **kwargs: object) -> object:
    """Call ``Export`` with raw request bytes, as any OTLP client's wire bytes."""
    method = f"/{SERVICES[signal][0]}/Export"
    call = channel.unary_unary(
        method, request_serializer=None, response_deserializer=RESPONSES[signal].FromString
    )
    return call(body, timeout=10, **kwargs)


def test_real_claude_and_codex_capture_replayed_in_arrival_order(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        for path in sorted((FIXTURES / "main_grpc").glob("*.pb")):
            response = export(channel, signal_of(path), path.read_bytes())
            assert not response.HasField("partial_success"), path.name

    expected = {
        "otel_traces": 418,
        "otel_logs": 24,
        "otel_metrics_sum": 66,
        "otel_metrics_histogram": 121,
    }
    wait_for(
        lambda: all(count(client, database, t) == n for t, n in expected.items()),
        10,
        "all capture rows",
    )
    session = "b08ba7ad-8bff-4a48-8d31-9ae659a67575"
    thread = "01a2019b-153d-7720-b50e-f5249e2b83da"
    q = client.query
    assert (
        count(client, database, "otel_traces", f"SpanAttributes['session.id'] = '{session}'") == 6
    )
    assert (
        count(client, database, "otel_logs", f"LogAttributes['conversation.id'] = '{thread}'") == 12
    )
    events = {r[0] for r in q(f"SELECT DISTINCT EventName FROM {database}.otel_logs").result_rows}
    assert {
        "claude_code.user_prompt",
        "claude_code.tool_result",
        "codex.api_request",
        "codex.sse_event",
        "codex.turn_ttft",
    } <= events
    tokens = dict(
        q(
            f"SELECT Attributes['type'], sum(Value) FROM {database}.otel_metrics_sum "
            "WHERE MetricName = 'claude_code.token.usage' GROUP BY 1"
        ).result_rows
    )
    assert tokens == {"input": 246.0, "output": 34.0, "cacheRead": 0.0, "cacheCreation": 0.0}
    temporality = q(
        f"SELECT DISTINCT AggregationTemporality FROM {database}.otel_metrics_sum "
        "UNION DISTINCT SELECT DISTINCT AggregationTemporality FROM "
        f"{database}.otel_metrics_histogram"
    ).result_rows
    assert temporality == [(1,)]  # DELTA from both clients
    parent = q(
        f"SELECT p.SpanName FROM {database}.otel_traces c JOIN {database}.otel_traces p "
        "ON c.ParentSpanId = p.SpanId WHERE c.SpanName = 'codex.exec'"
    ).result_rows
    assert parent == [("claude_code.tool.execution",)]
    lookup = q(f"SELECT count() FROM {database}.otel_traces_trace_id_ts").result_rows[0][0]
    assert lookup > 0


def test_gzip_compressed_requests_are_accepted(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    body = (FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb").read_bytes()
    with grpc.insecure_channel(receiver.grpc_target, compression=grpc.Compression.Gzip) as ch:
        export(ch, "traces", body)
    wait_for(lambda: count(client, database, "otel_traces") == 6, 10, "gzip spans")


def test_health_service_reports_serving(receiver: ReceiverProcess) -> None:
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "opentelemetry.proto.collector.trace.v1.TraceService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def span(span_id: bytes, trace_id: bytes = b"\x01" * 16) -> trace_pb2.Span:
    now = time.time_ns()  # rows older than the table TTL are dropped on insert
    return trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        name="s",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1000,
    )


def request(*spans: trace_pb2.Span) -> bytes:
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=list(spans))])
        ]
    ).SerializeToString()


def test_bad_input_gets_otlp_answers_and_the_daemon_keeps_serving(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as undecodable:
            export(channel, "traces", b"\x0a\xff\xff\xff\xff\x0f garbage")
        assert undecodable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ExportTraceServiceRequest" in undecodable.value.details()

        empty = export(channel, "traces", b"")
        assert not empty.HasField("partial_success")

        partial = export(
            channel,
            "traces",
            request(span(b"\x02" * 8), span(b"\x03" * 5), span(b"\x04" * 8, trace_id=b"\x01" * 3)),
        )
        assert partial.partial_success.rejected_spans == 2
        assert "span_id must be 8 bytes, got 5" in partial.partial_success.error_message
        assert "trace_id must be 16 bytes, got 3" in partial.partial_success.error_message

        for signal in ("logs", "metrics"):
            with pytest.raises(grpc.RpcError) as wrong:
                export(channel, signal, b"\xff")
            assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        export(channel, "traces", request(span(b"\x05" * 8)))
    wait_for(lambda: count(client, database, "otel_traces") == 2, 10, "the two good spans")
    assert receiver.process.poll() is None


def test_messages_over_the_receive_limit_are_refused(
    tmp_path, clickhouse_url: str, client: Client, database: str
) -> None:
    small = ReceiverProcess.serving(
        tmp_path / "small", clickhouse_url, database, OTEL_RECEIVER_GRPC_MAX_RECEIVE_BYTES="4096"
    ).start()
    try:
        body = (FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb").read_bytes()
        assert len(body) > 4096
        with grpc.insecure_channel(small.grpc_target) as channel:
            with pytest.raises(grpc.RpcError) as too_big:
                export(channel, "traces", body)
            assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            export(channel, "traces", request(span(b"\x06" * 8)))
    finally:
        assert small.stop() == 0
