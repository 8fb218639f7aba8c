"""Decoding of every OTLP field into the exporter's columns, and the rejection rules."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.ingest.decode import MAX_TIMESTAMP_NS, Decoded
from receiver.store.tables import TABLE_COLUMNS

from .capture_files import FIXTURES, signal_of
from .decoder_paths import decode, decoder_path  # noqa: F401 (autouse: each test on both paths)

pytestmark = pytest.mark.unit


def decode_traces(body: bytes) -> Decoded:
    return decode("traces", body)


def decode_logs(body: bytes) -> Decoded:
    return decode("logs", body)


def decode_metrics(body: bytes) -> Decoded:
    return decode("metrics", body)


TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(1, 9))
PARENT_ID = bytes(range(11, 19))
T0 = 1_795_323_269_197_008_236  # nanosecond precision that a float would lose


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


RESOURCE = Resource(attributes=[kv("service.name", string_value="svc"), kv("k", int_value=7)])
SCOPE = InstrumentationScope(
    name="scope", version="1.2", attributes=[kv("sa", bool_value=True)], dropped_attributes_count=3
)


def as_dicts(decoded: Any, table: str) -> list[dict[str, Any]]:
    return [dict(zip(TABLE_COLUMNS[table], row, strict=True)) for row in decoded.rows[table]]


def traces_request(*spans: trace_pb2.Span) -> bytes:
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=RESOURCE,
                scope_spans=[trace_pb2.ScopeSpans(scope=SCOPE, spans=list(spans))],
            )
        ]
    ).SerializeToString()


def full_span(**overrides: Any) -> trace_pb2.Span:
    fields: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "parent_span_id": PARENT_ID,
        "trace_state": "a=b",
        "name": "GET /x",
        "kind": trace_pb2.Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 1_500,
        "attributes": [kv("http.status_code", int_value=200), kv("ratio", double_value=0.5)],
        "events": [
            trace_pb2.Span.Event(
                time_unix_nano=T0 + 1, name="ev", attributes=[kv("e", string_value="1")]
            )
        ],
        "links": [
            trace_pb2.Span.Link(
                trace_id=bytes(16 * [0xAB]),
                span_id=bytes(8 * [0xCD]),
                trace_state="l=1",
                attributes=[kv("la", int_value=1)],
            )
        ],
        "status": trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
    }
    fields.update(overrides)
    return trace_pb2.Span(**fields)


def test_span_fields_land_in_their_columns() -> None:
    (row,) = as_dicts(decode_traces(traces_request(full_span())), "otel_traces")
    assert row == {
        "Timestamp": T0,
        "TraceId": TRACE_ID.hex(),
        "SpanId": SPAN_ID.hex(),
        "ParentSpanId": PARENT_ID.hex(),
        "TraceState": "a=b",
        "SpanName": "GET /x",
        "SpanKind": "Server",
        "ServiceName": "svc",
        "ResourceAttributes": {"service.name": "svc", "k": "7"},
        "ScopeName": "scope",
        "ScopeVersion": "1.2",
        "SpanAttributes": {"http.status_code": "200", "ratio": "0.5"},
        "Duration": 1_500,
        "StatusCode": "Error",
        "StatusMessage": "boom",
        "Events.Timestamp": [T0 + 1],
        "Events.Name": ["ev"],
        "Events.Attributes": [{"e": "1"}],
        "Links.TraceId": ["ab" * 16],
        "Links.SpanId": ["cd" * 8],
        "Links.TraceState": ["l=1"],
        "Links.Attributes": [{"la": "1"}],
    }


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (0, "Unspecified"),
        (1, "Internal"),
        (2, "Server"),
        (3, "Client"),
        (4, "Producer"),
        (5, "Consumer"),
    ],
)
def test_span_kinds(kind: int, text: str) -> None:
    (row,) = as_dicts(decode_traces(traces_request(full_span(kind=kind))), "otel_traces")
    assert row["SpanKind"] == text


@pytest.mark.parametrize(("code", "text"), [(0, "Unset"), (1, "Ok"), (2, "Error")])
def test_status_codes(code: int, text: str) -> None:
    span = full_span(status=trace_pb2.Status(code=code))
    (row,) = as_dicts(decode_traces(traces_request(span)), "otel_traces")
    assert row["StatusCode"] == text


def test_root_span_has_empty_parent_and_end_before_start_gives_zero_duration() -> None:
    span = full_span(parent_span_id=b"", end_time_unix_nano=T0 - 5)
    (row,) = as_dicts(decode_traces(traces_request(span)), "otel_traces")
    assert row["ParentSpanId"] == ""
    assert row["Duration"] == 0


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"trace_id": b"\x01" * 15}, "trace_id must be 16 bytes, got 15"),
        ({"trace_id": b""}, "trace_id is empty"),
        ({"trace_id": bytes(16)}, "trace_id is all zeros"),
        ({"span_id": b"\x01" * 9}, "span_id must be 8 bytes, got 9"),
        ({"parent_span_id": b"\x01" * 4}, "parent_span_id must be 8 bytes, got 4"),
        ({"end_time_unix_nano": MAX_TIMESTAMP_NS + 1}, "end_time_unix_nano"),
        ({"links": [trace_pb2.Span.Link(trace_id=b"x", span_id=SPAN_ID)]}, "link trace_id"),
    ],
)
def test_invalid_spans_are_rejected_with_a_reason_and_the_rest_kept(
    overrides: dict[str, Any], reason: str
) -> None:
    good = full_span()
    decoded = decode_traces(traces_request(full_span(**overrides), good))
    assert decoded.rejected == 1
    assert reason in decoded.message
    assert len(decoded.rows["otel_traces"]) == 1


def test_empty_request_decodes_to_nothing() -> None:
    decoded = decode_traces(b"")
    assert decoded.rows == {} and decoded.rejected == 0 and decoded.message == ""


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_traces(b"\xff\xff\xff\xff")


def logs_request(*records: logs_pb2.LogRecord) -> bytes:
    return ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=RESOURCE,
                schema_url="https://res/1",
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=SCOPE, schema_url="https://scope/1", log_records=list(records)
                    )
                ],
            )
        ]
    ).SerializeToString()


def test_log_fields_land_in_their_columns() -> None:
    record = logs_pb2.LogRecord(
        time_unix_nano=T0,
        observed_time_unix_nano=T0 + 9,
        severity_number=logs_pb2.SEVERITY_NUMBER_WARN,
        severity_text="WARN",
        body=AnyValue(int_value=42),
        attributes=[kv("a", string_value="b")],
        flags=0x101,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        event_name="my.event",
    )
    (row,) = as_dicts(decode_logs(logs_request(record)), "otel_logs")
    assert row == {
        "Timestamp": T0,
        "TraceId": TRACE_ID.hex(),
        "SpanId": SPAN_ID.hex(),
        "TraceFlags": 1,
        "SeverityText": "WARN",
        "SeverityNumber": 13,
        "ServiceName": "svc",
        "Body": "42",
        "ResourceSchemaUrl": "https://res/1",
        "ResourceAttributes": {"service.name": "svc", "k": "7"},
        "ScopeSchemaUrl": "https://scope/1",
        "ScopeName": "scope",
        "ScopeVersion": "1.2",
        "ScopeAttributes": {"sa": "true"},
        "LogAttributes": {"a": "b"},
        "EventName": "my.event",
    }


def test_log_without_time_uses_observed_time_and_allows_missing_trace_context() -> None:
    record = logs_pb2.LogRecord(observed_time_unix_nano=T0, body=AnyValue(string_value="x"))
    (row,) = as_dicts(decode_logs(logs_request(record)), "otel_logs")
    assert row["Timestamp"] == T0
    assert row["TraceId"] == "" and row["SpanId"] == ""


def test_log_with_malformed_trace_id_is_rejected() -> None:
    bad = logs_pb2.LogRecord(time_unix_nano=T0, trace_id=b"abc")
    decoded = decode_logs(logs_request(bad, logs_pb2.LogRecord(time_unix_nano=T0)))
    assert decoded.rejected == 1 and "trace_id must be 16 bytes" in decoded.message
    assert len(decoded.rows["otel_logs"]) == 1


def metrics_request(*metrics: metrics_pb2.Metric) -> bytes:
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=RESOURCE,
                schema_url="https://res/1",
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=SCOPE, schema_url="https://scope/1", metrics=list(metrics)
                    )
                ],
            )
        ]
    ).SerializeToString()


EXEMPLAR = metrics_pb2.Exemplar(
    filtered_attributes=[kv("f", string_value="v")],
    time_unix_nano=T0 + 3,
    as_int=5,
    span_id=SPAN_ID,
    trace_id=TRACE_ID,
)
EXEMPLAR_COLUMNS = {
    "Exemplars.FilteredAttributes": [{"f": "v"}],
    "Exemplars.TimeUnix": [T0 + 3],
    "Exemplars.Value": [5.0],
    "Exemplars.SpanId": [SPAN_ID.hex()],
    "Exemplars.TraceId": [TRACE_ID.hex()],
}
POINT_BASE = {
    "attributes": [kv("p", string_value="q")],
    "start_time_unix_nano": T0,
    "time_unix_nano": T0 + 10,
    "flags": 1,
    "exemplars": [EXEMPLAR],
}
COMMON_COLUMNS = {
    "ResourceAttributes": {"service.name": "svc", "k": "7"},
    "ResourceSchemaUrl": "https://res/1",
    "ScopeName": "scope",
    "ScopeVersion": "1.2",
    "ScopeAttributes": {"sa": "true"},
    "ScopeDroppedAttrCount": 3,
    "ScopeSchemaUrl": "https://scope/1",
    "ServiceName": "svc",
    "MetricDescription": "d",
    "MetricUnit": "ms",
    "Attributes": {"p": "q"},
    "StartTimeUnix": T0,
    "TimeUnix": T0 + 10,
}


def test_every_metric_point_type() -> None:
    delta = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    cumulative = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    meta = {"description": "d", "unit": "ms"}
    body = metrics_request(
        metrics_pb2.Metric(
            name="g",
            **meta,
            gauge=metrics_pb2.Gauge(
                data_points=[metrics_pb2.NumberDataPoint(as_double=1.25, **POINT_BASE)]
            ),
        ),
        metrics_pb2.Metric(
            name="s",
            **meta,
            sum=metrics_pb2.Sum(
                aggregation_temporality=delta,
                is_monotonic=True,
                data_points=[metrics_pb2.NumberDataPoint(as_int=7, **POINT_BASE)],
            ),
        ),
        metrics_pb2.Metric(
            name="h",
            **meta,
            histogram=metrics_pb2.Histogram(
                aggregation_temporality=cumulative,
                data_points=[
                    metrics_pb2.HistogramDataPoint(
                        count=3,
                        sum=6.5,
                        bucket_counts=[1, 2, 0],
                        explicit_bounds=[1.0, 5.0],
                        min=0.5,
                        max=4.0,
                        **POINT_BASE,
                    )
                ],
            ),
        ),
        metrics_pb2.Metric(
            name="e",
            **meta,
            exponential_histogram=metrics_pb2.ExponentialHistogram(
                aggregation_temporality=delta,
                data_points=[
                    metrics_pb2.ExponentialHistogramDataPoint(
                        count=4,
                        sum=9.0,
                        scale=2,
                        zero_count=1,
                        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                            offset=-1, bucket_counts=[1, 2]
                        ),
                        negative=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                            offset=3, bucket_counts=[0]
                        ),
                        min=0.0,
                        max=3.0,
                        **POINT_BASE,
                    )
                ],
            ),
        ),
        metrics_pb2.Metric(
            name="q",
            **meta,
            summary=metrics_pb2.Summary(
                data_points=[
                    metrics_pb2.SummaryDataPoint(
                        count=2,
                        sum=3.0,
                        quantile_values=[
                            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
                            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=2.0),
                        ],
                        attributes=POINT_BASE["attributes"],
                        start_time_unix_nano=T0,
                        time_unix_nano=T0 + 10,
                        flags=1,
                    )
                ]
            ),
        ),
    )
    decoded = decode_metrics(body)
    assert decoded.rejected == 0
    (gauge,) = as_dicts(decoded, "otel_metrics_gauge")
    assert gauge == {
        **COMMON_COLUMNS,
        "MetricName": "g",
        "Value": 1.25,
        "Flags": 1,
        **EXEMPLAR_COLUMNS,
    }
    (total,) = as_dicts(decoded, "otel_metrics_sum")
    assert total == {
        **COMMON_COLUMNS,
        "MetricName": "s",
        "Value": 7.0,
        "Flags": 1,
        **EXEMPLAR_COLUMNS,
        "AggregationTemporality": 1,
        "IsMonotonic": True,
    }
    (histogram,) = as_dicts(decoded, "otel_metrics_histogram")
    assert histogram == {
        **COMMON_COLUMNS,
        "MetricName": "h",
        "Count": 3,
        "Sum": 6.5,
        "BucketCounts": [1, 2, 0],
        "ExplicitBounds": [1.0, 5.0],
        **EXEMPLAR_COLUMNS,
        "Flags": 1,
        "Min": 0.5,
        "Max": 4.0,
        "AggregationTemporality": 2,
    }
    (exponential,) = as_dicts(decoded, "otel_metrics_exponential_histogram")
    assert exponential == {
        **COMMON_COLUMNS,
        "MetricName": "e",
        "Count": 4,
        "Sum": 9.0,
        "Scale": 2,
        "ZeroCount": 1,
        "PositiveOffset": -1,
        "PositiveBucketCounts": [1, 2],
        "NegativeOffset": 3,
        "NegativeBucketCounts": [0],
        **EXEMPLAR_COLUMNS,
        "Flags": 1,
        "Min": 0.0,
        "Max": 3.0,
        "AggregationTemporality": 1,
    }
    (summary,) = as_dicts(decoded, "otel_metrics_summary")
    assert summary == {
        **COMMON_COLUMNS,
        "MetricName": "q",
        "Count": 2,
        "Sum": 3.0,
        "ValueAtQuantiles.Quantile": [0.5, 0.99],
        "ValueAtQuantiles.Value": [1.0, 2.0],
        "Flags": 1,
    }


def test_metric_point_with_bad_exemplar_id_is_rejected() -> None:
    bad = metrics_pb2.NumberDataPoint(
        as_int=1, time_unix_nano=T0, exemplars=[metrics_pb2.Exemplar(span_id=b"123")]
    )
    good = metrics_pb2.NumberDataPoint(as_int=2, time_unix_nano=T0)
    decoded = decode_metrics(
        metrics_request(
            metrics_pb2.Metric(name="g", gauge=metrics_pb2.Gauge(data_points=[bad, good]))
        )
    )
    assert decoded.rejected == 1 and "exemplar span_id" in decoded.message
    assert [row["Value"] for row in as_dicts(decoded, "otel_metrics_gauge")] == [2.0]


DECODE = {"traces": decode_traces, "logs": decode_logs, "metrics": decode_metrics}


def decode_capture(folder: str) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((FIXTURES / folder).glob("*.pb")):
        decoded = DECODE[signal_of(path)](path.read_bytes())
        assert decoded.rejected == 0, path
        for table in decoded.rows:
            tables.setdefault(table, []).extend(as_dicts(decoded, table))
    return tables


def test_real_capture_row_counts_and_key_values() -> None:
    tables = decode_capture("main_grpc")
    assert {t: len(rows) for t, rows in tables.items()} == {
        "otel_traces": 418,
        "otel_metrics_sum": 66,
        "otel_metrics_histogram": 121,
        "otel_logs": 24,
    }
    spans = {row["SpanName"]: row for row in tables["otel_traces"]}
    execution = spans["claude_code.tool.execution"]
    assert spans["codex.exec"]["ParentSpanId"] == execution["SpanId"]
    assert spans["codex.exec"]["TraceId"] == execution["TraceId"]
    assert spans["codex.exec"]["SpanAttributes"]["thread.id"] == (
        "01a2019b-153d-7720-b50e-f5249e2b83da"
    )
    assert spans["codex.exec"]["ServiceName"] == "codex_exec"
    assert execution["SpanAttributes"]["session.id"] == "b08ba7ad-8bff-4a48-8d31-9ae659a67575"
    assert spans["claude_code.interaction"]["SpanAttributes"]["parent.source"] == "env"
    events = {row["EventName"] for row in tables["otel_logs"]}
    assert {
        "claude_code.user_prompt",
        "claude_code.api_request",
        "codex.api_request",
        "codex.sse_event",
    } <= events
    codex_logs = [r for r in tables["otel_logs"] if r["ServiceName"] == "codex_exec"]
    assert {
        r["LogAttributes"].get("conversation.id")
        for r in codex_logs
        if r["EventName"].startswith("codex.")
    } == {"01a2019b-153d-7720-b50e-f5249e2b83da"}
    tokens = [r for r in tables["otel_metrics_sum"] if r["MetricName"] == "claude_code.token.usage"]
    by_type = {}
    for r in tokens:
        by_type[r["Attributes"]["type"]] = by_type.get(r["Attributes"]["type"], 0) + r["Value"]
    assert by_type == {"input": 246.0, "output": 34.0, "cacheRead": 0.0, "cacheCreation": 0.0}
    assert {r["AggregationTemporality"] for r in tables["otel_metrics_sum"]} == {1}  # DELTA
