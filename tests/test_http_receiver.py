"""The OTLP/HTTP front end against a real receiver process and a real ClickHouse: the
OpenTelemetry SDK's HTTP exporters, OTLP/JSON bodies, the real Claude Code OTLP/JSON capture,
identical rows across transports, and every error status the OTLP/HTTP specification gives."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from receiver.config import Settings
from receiver.ingest.http_frontend import json_to_protobuf
from receiver.ingest.otlp import SERVICES
from receiver.query.status import scrape
from receiver.store.schema import apply_schema

from .capture_files import FIXTURES, signal_of
from .clickhouse_rows import count, rows, wait_rows
from .receiver_process import ReceiverProcess, wait_for

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RESOURCE = Resource.create({"service.name": "sdk-http-test", "deployment.environment": "ci"})
METRIC_TABLES = [
    "otel_metrics_gauge",
    "otel_metrics_sum",
    "otel_metrics_histogram",
    "otel_metrics_exponential_histogram",
    "otel_metrics_summary",
]


# --- helpers ---------------------------------------------------------------------------------


class Reply(NamedTuple):
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def status_message(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` body, in whichever encoding the server chose."""
        if self.headers["Content-Type"].startswith(PROTOBUF):
            return status_pb2.Status.FromString(self.body)
        return json_format.Parse(self.body, status_pb2.Status())


def call(
    receiver: ReceiverProcess,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Reply:
    """One HTTP request on a fresh connection; ``chunked`` sends no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=60)
    try:
        if chunked:
            pieces = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
            connection.request(method, path, pieces, headers or {}, encode_chunked=True)
        else:
            connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def post(
    receiver: ReceiverProcess,
    signal: str,
    body: bytes,
    content_type: str = PROTOBUF,
    **headers: str,
) -> Reply:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return call(receiver, "POST", f"/v1/{signal}", body, {"Content-Type": content_type, **extra})


def assert_serving(receiver: ReceiverProcess) -> None:
    """The daemon is alive and answers both health and a real export."""
    assert receiver.process is not None and receiver.process.poll() is None
    health = call(receiver, "GET", "/health")
    assert health.status == 200 and health.json() == {"status": "SERVING"}
    assert post(receiver, "traces", b"").status == 200


def gzip_bomb(mib: int) -> bytes:
    """A valid gzip stream of ``mib`` MiB of zeros (about 1 KiB per MiB), built without
    compressing them all: after a full flush, the compressed MiB is self-contained and can be
    repeated; the trailer carries the CRC and size of the whole."""
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    trailer = struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return head + segment * (mib - 1) + final_block + trailer


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


# --- the OpenTelemetry SDK's OTLP/HTTP exporters -----------------------------------------------


def test_sdk_http_span_exporter_rows_are_exact(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    sent = InMemorySpanExporter()
    exporter = OTLPSpanExporter(endpoint=f"{receiver.http_url}/v1/traces")
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(sent))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("http.scope", "2.0")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.status_code", 503)
        parent.set_attribute("ratio", 0.5)
        parent.set_attribute("flag", False)
        parent.set_attribute("tags", ["x", "y"])
        parent.add_event("retry", {"attempt": 2})
        parent.set_status(Status(StatusCode.ERROR, "upstream down"))
        with tracer.start_as_current_span(
            "child", kind=SpanKind.CLIENT, links=[Link(parent.get_span_context(), {"l": "v"})]
        ) as child:
            child.set_status(Status(StatusCode.OK))
    provider.shutdown()

    stored = wait_rows(
        client,
        database,
        "SELECT *, toUnixTimestamp64Nano(Timestamp) AS ns, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_ns "
        "FROM {db}.otel_traces ORDER BY SpanName",
        2,
    )
    assert len(stored) == 2
    by_name = {row["SpanName"]: row for row in stored}
    for span in sent.get_finished_spans():
        row = by_name[span.name]
        ctx = span.get_span_context()
        assert row["TraceId"] == f"{ctx.trace_id:032x}"
        assert row["SpanId"] == f"{ctx.span_id:016x}"
        assert row["ParentSpanId"] == (f"{span.parent.span_id:016x}" if span.parent else "")
        assert row["ns"] == span.start_time
        assert row["Duration"] == span.end_time - span.start_time
        assert row["ServiceName"] == "sdk-http-test"
        assert row["ResourceAttributes"]["deployment.environment"] == "ci"
        assert (row["ScopeName"], row["ScopeVersion"]) == ("http.scope", "2.0")
    parent_row, child_row = by_name["parent"], by_name["child"]
    assert parent_row["SpanKind"] == "Server" and child_row["SpanKind"] == "Client"
    assert (parent_row["StatusCode"], parent_row["StatusMessage"]) == ("Error", "upstream down")
    assert child_row["StatusCode"] == "Ok"
    assert parent_row["SpanAttributes"] == {
        "http.status_code": "503",
        "ratio": "0.5",
        "flag": "false",
        "tags": '["x","y"]',
    }
    assert parent_row["Events.Name"] == ["retry"]
    assert parent_row["Events.Attributes"] == [{"attempt": "2"}]
    parent_span = next(s for s in sent.get_finished_spans() if s.name == "parent")
    assert parent_row["event_ns"] == [parent_span.events[0].timestamp]
    assert child_row["Links.TraceId"] == [parent_row["TraceId"]]
    assert child_row["Links.SpanId"] == [parent_row["SpanId"]]
    assert child_row["Links.Attributes"] == [{"l": "v"}]


def test_sdk_http_log_exporter_rows_are_exact_gzip(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    exporter = OTLPLogExporter(
        endpoint=f"{receiver.http_url}/v1/logs", compression=Compression.Gzip
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("sdk.http.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    with TracerProvider().get_tracer("t").start_as_current_span("op") as span:
        logger.error("queue %s overflowed", "q1", extra={"queue.size": 128})
    logger.info("fine")
    logger.removeHandler(handler)
    provider.shutdown()

    error, info = wait_rows(client, database, "SELECT * FROM {db}.otel_logs ORDER BY Timestamp", 2)
    ctx = span.get_span_context()
    assert error["Body"] == "queue q1 overflowed"
    assert (error["SeverityText"], error["SeverityNumber"]) == ("ERROR", 17)
    assert error["TraceId"] == f"{ctx.trace_id:032x}"
    assert error["SpanId"] == f"{ctx.span_id:016x}"
    assert error["TraceFlags"] == int(ctx.trace_flags)  # sampled, and random in newer SDKs
    assert error["LogAttributes"]["queue.size"] == "128"
    assert error["ServiceName"] == "sdk-http-test"
    assert error["ScopeName"] == "sdk.http.logs"
    assert (info["Body"], info["SeverityNumber"], info["TraceId"], info["SpanId"]) == (
        "fine",
        9,
        "",
        "",
    )


def test_sdk_http_metric_exporter_rows_are_exact_deflate(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    exporter = OTLPMetricExporter(
        endpoint=f"{receiver.http_url}/v1/metrics",
        compression=Compression.Deflate,
        preferred_temporality=delta,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    sent = InMemoryMetricReader()
    views = [
        View(instrument_name="exp.size", aggregation=ExponentialBucketHistogramAggregation(20))
    ]
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader, sent], views=views)
    meter = provider.get_meter("http.meter", "3.1")
    meter.create_counter("jobs", unit="1", description="jobs run").add(4, {"queue": "a"})
    updown = meter.create_up_down_counter("inflight")
    updown.add(6)
    updown.add(-2)
    histogram = meter.create_histogram("wait", unit="ms")
    for value in (2.0, 30.0):
        histogram.record(value, {"queue": "a"})
    exponential = meter.create_histogram("exp.size", unit="By")
    for value in (1.0, 4.0, 4.0):
        exponential.record(value)
    meter.create_observable_gauge(
        "load", callbacks=[lambda options: [Observation(0.75, {"cpu": "0"})]]
    )
    provider.shutdown()  # one collection, one export

    inflight, jobs = wait_rows(
        client, database, "SELECT * FROM {db}.otel_metrics_sum ORDER BY MetricName", 2
    )
    assert (jobs["MetricName"], jobs["Value"], jobs["Attributes"]) == ("jobs", 4.0, {"queue": "a"})
    assert (jobs["MetricUnit"], jobs["MetricDescription"]) == ("1", "jobs run")
    assert (jobs["AggregationTemporality"], jobs["IsMonotonic"]) == (1, True)
    assert (jobs["ScopeName"], jobs["ScopeVersion"], jobs["ServiceName"]) == (
        "http.meter",
        "3.1",
        "sdk-http-test",
    )
    assert (inflight["MetricName"], inflight["Value"]) == ("inflight", 4.0)
    assert (inflight["AggregationTemporality"], inflight["IsMonotonic"]) == (2, False)

    (hist,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_histogram", 1)
    assert (hist["MetricName"], hist["Count"], hist["Sum"]) == ("wait", 2, 32.0)
    assert (hist["Min"], hist["Max"], hist["AggregationTemporality"]) == (2.0, 30.0, 1)
    assert hist["ExplicitBounds"][:3] == [0.0, 5.0, 10.0] and sum(hist["BucketCounts"]) == 2

    (exp,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_exponential_histogram", 1)
    point = next(
        m
        for rm in sent.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "exp.size"
    ).data.data_points[0]
    assert (exp["MetricName"], exp["Count"], exp["Sum"]) == ("exp.size", 3, 9.0)
    assert exp["Scale"] == point.scale and exp["PositiveOffset"] == point.positive.offset
    assert exp["PositiveBucketCounts"] == list(point.positive.bucket_counts)

    (gauge,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_gauge", 1)
    assert (gauge["MetricName"], gauge["Value"], gauge["Attributes"]) == (
        "load",
        0.75,
        {"cpu": "0"},
    )


# --- OTLP/JSON ----------------------------------------------------------------------------------
# Bodies written after the OTLP specification's examples (opentelemetry-proto, examples/):
# lowerCamelCase keys, hex ids (upper case, as the examples write them), integer enums, 64-bit
# integers as JSON numbers or strings, and fields this receiver does not know.

# An hour ago, on a whole second: rows older than the tables' TTL would be dropped.
T0 = (time.time_ns() // 10**9 - 3600) * 10**9
TRACE_ID = "5B8EFFF798038103D269B633813FC60C"
SPAN_ID = "EEE19B7EC3C1B174"
PARENT_ID = "EEE19B7EC3C1B173"
LINKED_TRACE = "0AF7651916CD43DD8448EB211C80319C"
LINKED_SPAN = "B7AD6B7169203331"

RESOURCE_JSON = {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]}
SCOPE_JSON = {
    "name": "my.library",
    "version": "1.0.0",
    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attr"}}],
}
ATTRIBUTES_JSON = [
    {"key": "string.attribute", "value": {"stringValue": "some string"}},
    {"key": "boolean.attribute", "value": {"boolValue": True}},
    {"key": "int.attribute", "value": {"intValue": "10"}},
    {"key": "double.attribute", "value": {"doubleValue": 637.704}},
    {
        "key": "array.attribute",
        "value": {"arrayValue": {"values": [{"stringValue": "many"}, {"stringValue": "values"}]}},
    },
    {
        "key": "map.attribute",
        "value": {
            "kvlistValue": {"values": [{"key": "some.map.key", "value": {"stringValue": "v"}}]}
        },
    },
    {"key": "bytes.attribute", "value": {"bytesValue": "aGVsbG8="}},  # base64, not hex
]
ATTRIBUTES_STORED = {
    "string.attribute": "some string",
    "boolean.attribute": "true",
    "int.attribute": "10",
    "double.attribute": "637.704",
    "array.attribute": '["many","values"]',
    "map.attribute": '{"some.map.key":"v"}',
    "bytes.attribute": "aGVsbG8=",
}

TRACES_JSON = {
    "resourceSpans": [
        {
            "resource": RESOURCE_JSON,
            "scopeSpans": [
                {
                    "scope": SCOPE_JSON,
                    "spans": [
                        {
                            "traceId": TRACE_ID,
                            "spanId": SPAN_ID,
                            "parentSpanId": PARENT_ID,
                            "name": "I'm a server span",
                            "startTimeUnixNano": T0,
                            "endTimeUnixNano": str(T0 + 1_000_000_123),
                            "kind": 2,
                            "attributes": ATTRIBUTES_JSON,
                            "events": [
                                {
                                    "timeUnixNano": str(T0 + 500_000_000),
                                    "name": "an event",
                                    "attributes": [
                                        {"key": "e", "value": {"intValue": 7}},
                                    ],
                                }
                            ],
                            "links": [
                                {
                                    "traceId": LINKED_TRACE,
                                    "spanId": LINKED_SPAN,
                                    "attributes": [
                                        {"key": "l", "value": {"stringValue": "link"}},
                                    ],
                                }
                            ],
                            "status": {"code": 2, "message": "it failed"},
                            "aFieldFromTheFuture": {"ignored": True},
                        },
                        {
                            "traceId": TRACE_ID.lower(),
                            "spanId": PARENT_ID.lower(),
                            "parentSpanId": "",
                            "name": "I'm a client span",
                            "startTimeUnixNano": str(T0 - 1_000_000_000),
                            "endTimeUnixNano": str(T0 + 2_000_000_000),
                            "kind": 3,
                            "status": {"code": 1},
                        },
                    ],
                }
            ],
        }
    ],
    "unknownTopLevel": [1, 2, 3],
}

LOGS_JSON = {
    "resourceLogs": [
        {
            "resource": RESOURCE_JSON,
            "scopeLogs": [
                {
                    "scope": SCOPE_JSON,
                    "logRecords": [
                        {
                            "timeUnixNano": str(T0 + 300_000_000),
                            "observedTimeUnixNano": T0 + 300_000_001,
                            "severityNumber": 10,
                            "severityText": "Information",
                            "traceId": TRACE_ID,
                            "spanId": SPAN_ID,
                            "flags": 1,
                            "eventName": "my.event",
                            "body": {"stringValue": "Example log record"},
                            "attributes": ATTRIBUTES_JSON,
                            "someNewField": "ignored",
                        },
                        {
                            "observedTimeUnixNano": str(T0 + 400_000_000),
                            "severityNumber": 17,
                            "body": {
                                "kvlistValue": {
                                    "values": [{"key": "k", "value": {"doubleValue": 1.5}}]
                                }
                            },
                        },
                    ],
                }
            ],
        }
    ]
}

EXEMPLAR_JSON = {
    "timeUnixNano": str(T0 + 300_000_000),
    "asDouble": 2.5,
    "traceId": TRACE_ID,
    "spanId": SPAN_ID,
    "filteredAttributes": [{"key": "f", "value": {"stringValue": "x"}}],
}
INT_EXEMPLAR_JSON = {**{k: v for k, v in EXEMPLAR_JSON.items() if k != "asDouble"}, "asInt": "3"}
POINT_ATTRIBUTES = [{"key": "my.attr", "value": {"stringValue": "some value"}}]
METRICS_JSON = {
    "resourceMetrics": [
        {
            "resource": RESOURCE_JSON,
            "scopeMetrics": [
                {
                    "scope": SCOPE_JSON,
                    "metrics": [
                        {
                            "name": "my.counter",
                            "unit": "1",
                            "description": "I am a Counter",
                            "sum": {
                                "aggregationTemporality": 1,
                                "isMonotonic": True,
                                "dataPoints": [
                                    {
                                        "asDouble": 5,
                                        "startTimeUnixNano": T0 + 300_000_000,
                                        "timeUnixNano": str(T0 + 300_000_000),
                                        "attributes": POINT_ATTRIBUTES,
                                        "exemplars": [EXEMPLAR_JSON],
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.gauge",
                            "unit": "1",
                            "description": "I am a Gauge",
                            "gauge": {
                                "dataPoints": [
                                    {
                                        "asInt": "10",
                                        "timeUnixNano": str(T0 + 300_000_000),
                                        "attributes": POINT_ATTRIBUTES,
                                    }
                                ]
                            },
                        },
                        {
                            "name": "my.histogram",
                            "unit": "1",
                            "description": "I am a Histogram",
                            "histogram": {
                                "aggregationTemporality": 2,
                                "dataPoints": [
                                    {
                                        "startTimeUnixNano": str(T0 + 300_000_000),
                                        "timeUnixNano": str(T0 + 300_000_000),
                                        "count": "3",
                                        "sum": 3,
                                        "bucketCounts": ["1", 1, "1"],
                                        "explicitBounds": [1, 2],
                                        "min": 1,
                                        "max": 1,
                                        "attributes": POINT_ATTRIBUTES,
                                        "exemplars": [EXEMPLAR_JSON],
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.exponential",
                            "exponentialHistogram": {
                                "aggregationTemporality": 1,
                                "dataPoints": [
                                    {
                                        "timeUnixNano": str(T0 + 300_000_000),
                                        "count": "4",
                                        "sum": 10.5,
                                        "scale": -1,
                                        "zeroCount": "1",
                                        "positive": {"offset": 2, "bucketCounts": ["2", "1"]},
                                        "negative": {"offset": -1, "bucketCounts": []},
                                        "exemplars": [INT_EXEMPLAR_JSON],
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.summary",
                            "summary": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": str(T0 + 300_000_000),
                                        "count": "2",
                                        "sum": 7,
                                        "quantileValues": [
                                            {"quantile": 0.5, "value": 3},
                                            {"quantile": 1, "value": 4},
                                        ],
                                    }
                                ]
                            },
                        },
                    ],
                }
            ],
        }
    ]
}


def post_json(receiver: ReceiverProcess, signal: str, document: Any) -> Reply:
    reply = post(receiver, signal, json.dumps(document).encode(), JSON)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith(JSON)
    assert reply.json() == {}  # no partialSuccess: everything was stored
    return reply


def test_otlp_json_traces_ids_are_hex(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    post_json(receiver, "traces", TRACES_JSON)
    server, client_span = wait_rows(
        client,
        database,
        "SELECT *, toUnixTimestamp64Nano(Timestamp) AS ns, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_ns "
        "FROM {db}.otel_traces ORDER BY SpanKind DESC",
        2,
    )
    assert server["TraceId"] == TRACE_ID.lower() and server["SpanId"] == SPAN_ID.lower()
    assert server["ParentSpanId"] == PARENT_ID.lower()
    assert (server["SpanName"], server["SpanKind"]) == ("I'm a server span", "Server")
    assert server["ns"] == T0 and server["Duration"] == 1000000123
    assert (server["StatusCode"], server["StatusMessage"]) == ("Error", "it failed")
    assert server["ServiceName"] == "my.service"
    assert (server["ScopeName"], server["ScopeVersion"]) == ("my.library", "1.0.0")
    assert server["SpanAttributes"] == ATTRIBUTES_STORED
    assert server["Events.Name"] == ["an event"] and server["event_ns"] == [T0 + 500_000_000]
    assert server["Events.Attributes"] == [{"e": "7"}]
    assert server["Links.TraceId"] == [LINKED_TRACE.lower()]
    assert server["Links.SpanId"] == [LINKED_SPAN.lower()]
    assert server["Links.Attributes"] == [{"l": "link"}]
    assert client_span["SpanKind"] == "Client" and client_span["StatusCode"] == "Ok"
    assert client_span["TraceId"] == TRACE_ID.lower() and client_span["ParentSpanId"] == ""
    assert client_span["SpanId"] == PARENT_ID.lower()


def test_otlp_json_logs_ids_are_hex(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    post_json(receiver, "logs", LOGS_JSON)
    first, second = wait_rows(
        client,
        database,
        "SELECT *, toUnixTimestamp64Nano(Timestamp) AS ns FROM {db}.otel_logs ORDER BY ns",
        2,
    )
    assert first["TraceId"] == TRACE_ID.lower() and first["SpanId"] == SPAN_ID.lower()
    assert first["ns"] == T0 + 300_000_000 and first["TraceFlags"] == 1
    assert (first["SeverityText"], first["SeverityNumber"]) == ("Information", 10)
    assert (first["Body"], first["EventName"]) == ("Example log record", "my.event")
    assert first["LogAttributes"] == ATTRIBUTES_STORED
    assert first["ScopeAttributes"] == {"my.scope.attribute": "some scope attr"}
    assert first["ServiceName"] == "my.service"
    assert second["ns"] == T0 + 400_000_000  # observed time when time is absent
    assert (second["TraceId"], second["SpanId"], second["SeverityNumber"]) == ("", "", 17)
    assert second["Body"] == '{"k":1.5}'


def test_otlp_json_metrics_of_every_kind_exemplar_ids_are_hex(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    post_json(receiver, "metrics", METRICS_JSON)
    exemplar = {
        "Exemplars.TraceId": [TRACE_ID.lower()],
        "Exemplars.SpanId": [SPAN_ID.lower()],
        "Exemplars.FilteredAttributes": [{"f": "x"}],
    }
    (total,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_sum", 1)
    assert (total["MetricName"], total["Value"], total["MetricDescription"]) == (
        "my.counter",
        5.0,
        "I am a Counter",
    )
    assert (total["AggregationTemporality"], total["IsMonotonic"]) == (1, True)
    assert total["Attributes"] == {"my.attr": "some value"}
    assert {k: total[k] for k in exemplar} == exemplar and total["Exemplars.Value"] == [2.5]
    assert total["ScopeAttributes"] == {"my.scope.attribute": "some scope attr"}

    (gauge,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_gauge", 1)
    assert (gauge["MetricName"], gauge["Value"]) == ("my.gauge", 10.0)

    (hist,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_histogram", 1)
    assert (hist["Count"], hist["Sum"], hist["Min"], hist["Max"]) == (3, 3.0, 1.0, 1.0)
    assert (hist["BucketCounts"], hist["ExplicitBounds"]) == ([1, 1, 1], [1.0, 2.0])
    assert hist["AggregationTemporality"] == 2
    assert {k: hist[k] for k in exemplar} == exemplar

    (exp,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_exponential_histogram", 1)
    assert (exp["Count"], exp["Sum"], exp["Scale"], exp["ZeroCount"]) == (4, 10.5, -1, 1)
    assert (exp["PositiveOffset"], exp["PositiveBucketCounts"]) == (2, [2, 1])
    assert (exp["NegativeOffset"], exp["NegativeBucketCounts"]) == (-1, [])
    assert {k: exp[k] for k in exemplar} == exemplar and exp["Exemplars.Value"] == [3.0]

    (summary,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_summary", 1)
    assert (summary["Count"], summary["Sum"]) == (2, 7.0)
    assert summary["ValueAtQuantiles.Quantile"] == [0.5, 1.0]
    assert summary["ValueAtQuantiles.Value"] == [3.0, 4.0]


@pytest.mark.unit
def test_json_conversion_keeps_every_id_and_nothing_else_changes() -> None:
    """Unit level: hex ids become the same bytes protobuf clients send; bytesValue stays
    base64; snake_case keys (which protobuf's JSON parser also takes) get the same rule."""
    request = SERVICES["traces"].request_type.FromString(
        json_to_protobuf("traces", _dump(TRACES_JSON))
    )
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_ID) and span.span_id == bytes.fromhex(SPAN_ID)
    assert span.parent_span_id == bytes.fromhex(PARENT_ID)
    assert span.links[0].trace_id == bytes.fromhex(LINKED_TRACE)
    assert span.attributes[6].value.bytes_value == b"hello"
    snake = {"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_ID}]}]}]}
    request = SERVICES["traces"].request_type.FromString(json_to_protobuf("traces", _dump(snake)))
    assert request.resource_spans[0].scope_spans[0].spans[0].trace_id == bytes.fromhex(TRACE_ID)
    metrics = SERVICES["metrics"].request_type.FromString(
        json_to_protobuf("metrics", _dump(METRICS_JSON))
    )
    for metric in metrics.resource_metrics[0].scope_metrics[0].metrics[:4]:
        kind = metric.WhichOneof("data")
        point = getattr(metric, kind).data_points[0]
        if kind != "gauge":
            assert point.exemplars[0].span_id == bytes.fromhex(SPAN_ID), kind


def _dump(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- the real Claude Code OTLP/JSON capture ------------------------------------------------------


def test_real_claude_code_http_json_capture(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    for path in sorted((FIXTURES / "http_json_claude").glob("*.json")):
        reply = post(receiver, signal_of(path), path.read_bytes(), JSON)
        assert reply.status == 200 and reply.json() == {}, (path.name, reply.body)

    session = "eba1b63c-d1f3-4df3-bc70-dbfd63904930"
    expected = {
        ("otel_traces", "SpanAttributes"): 6,
        ("otel_logs", "LogAttributes"): 10,
        ("otel_metrics_sum", "Attributes"): 7,
    }
    wait_for(
        lambda: all(count(client, database, t) == n for (t, _), n in expected.items()),
        10,
        "all Claude Code rows",
    )
    for (table, column), n in expected.items():
        assert count(client, database, table, f"{column}['session.id'] = '{session}'") == n
        assert count(client, database, table, "ServiceName = 'claude-code'") == n
    tree = rows(
        client,
        database,
        "SELECT SpanName, TraceId, ParentSpanId FROM {db}.otel_traces "
        "WHERE SpanName = 'claude_code.interaction'",
    )
    # facts.txt: the interaction span continues the inbound TRACEPARENT, ids as hex.
    assert tree == [
        {
            "SpanName": "claude_code.interaction",
            "TraceId": "3661c85dd1ac043aa98d5f4ef0e9bd17",
            "ParentSpanId": "5109339d5c44b5d9",
        }
    ]
    events = {
        r["EventName"] for r in rows(client, database, "SELECT EventName FROM {db}.otel_logs")
    }
    assert "claude_code.user_prompt" in events or "claude_code.api_request" in events


# --- one code path: identical rows from every transport -------------------------------------------


def snapshot(client: Client, database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (order-free), and the trace lookup aggregated by trace."""
    tables = ["otel_traces", "otel_logs", *METRIC_TABLES]
    found = {
        table: sorted(client.query(f"SELECT * FROM {database}.{table}").result_rows, key=repr)
        for table in tables
    }
    found["otel_traces_trace_id_ts"] = client.query(
        f"SELECT TraceId, min(Start), max(End) FROM {database}.otel_traces_trace_id_ts "
        "GROUP BY TraceId ORDER BY TraceId"
    ).result_rows
    return found


def test_same_payload_gives_identical_rows_over_grpc_http_protobuf_and_http_json(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    captures = sorted((FIXTURES / "main_grpc").glob("*.pb"))
    as_json: dict[int, bytes] = {}  # the capture's own OTLP/JSON rendering, hex ids
    for path in (FIXTURES / "main_grpc" / "decoded").glob("*_*.json"):
        if path.stem.split("_")[1] in SERVICES:
            for entry in json.loads(path.read_text()):
                as_json[entry["capture"]["seq"]] = json.dumps(entry["request"]).encode()
    assert sorted(as_json) == [int(p.name[:3]) for p in captures]

    def send_grpc() -> None:
        with grpc.insecure_channel(receiver.grpc_target) as channel:
            for path in captures:
                method = f"/{SERVICES[signal_of(path)].service}/Export"
                channel.unary_unary(method)(path.read_bytes(), timeout=10)

    def send_http_protobuf() -> None:
        for path in captures:
            assert post(receiver, signal_of(path), path.read_bytes()).status == 200

    def send_http_json() -> None:
        for path in captures:
            body = as_json[int(path.name[:3])]
            assert post(receiver, signal_of(path), body, JSON).status == 200

    snapshots = []
    for send in (send_grpc, send_http_protobuf, send_http_json):
        send()
        wait_for(lambda: count(client, database, "otel_traces") == 418, 10, "all spans")
        snapshots.append(snapshot(client, database))
        for table in ("otel_traces", "otel_traces_trace_id_ts", "otel_logs", *METRIC_TABLES):
            client.command(f"TRUNCATE TABLE {database}.{table}")
    grpc_rows, protobuf_rows, json_rows = snapshots
    sizes = {table: len(found) for table, found in grpc_rows.items()}
    assert sizes.pop("otel_traces_trace_id_ts") > 0
    assert sizes == {
        "otel_traces": 418,
        "otel_logs": 24,
        "otel_metrics_gauge": 0,
        "otel_metrics_sum": 66,
        "otel_metrics_histogram": 121,
        "otel_metrics_exponential_histogram": 0,
        "otel_metrics_summary": 0,
    }
    for table in grpc_rows:
        assert protobuf_rows[table] == grpc_rows[table], table
        assert json_rows[table] == grpc_rows[table], table


# --- answers and errors ---------------------------------------------------------------------------


def bad_span_request() -> bytes:
    """Two good spans and one whose span id is 5 bytes, as OTLP/JSON."""
    spans = [
        {"traceId": "01" * 16, "spanId": "02" * 8, "name": "ok", "startTimeUnixNano": str(T0)},
        {"traceId": "01" * 16, "spanId": "03" * 5, "name": "bad", "startTimeUnixNano": str(T0)},
        {"traceId": "01" * 16, "spanId": "04" * 8, "name": "ok2", "startTimeUnixNano": str(T0)},
    ]
    return _dump({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def test_partial_success_in_protobuf_and_json(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    as_json = post(receiver, "traces", bad_span_request(), "application/json; charset=utf-8")
    assert as_json.status == 200 and as_json.headers["Content-Type"].startswith(JSON)
    assert as_json.json() == {
        "partialSuccess": {
            "rejectedSpans": "1",
            "errorMessage": "rejected 1 item(s): span_id must be 8 bytes, got 5",
        }
    }
    protobuf_body = (
        SERVICES["traces"]
        .request_type.FromString(json_to_protobuf("traces", bad_span_request()))
        .SerializeToString()
    )
    as_protobuf = post(receiver, "traces", protobuf_body)
    assert as_protobuf.status == 200 and as_protobuf.headers["Content-Type"] == PROTOBUF
    response = ExportTraceServiceResponse.FromString(as_protobuf.body)
    assert response.partial_success.rejected_spans == 1
    assert "span_id must be 8 bytes, got 5" in response.partial_success.error_message
    wait_for(lambda: count(client, database, "otel_traces") == 4, 10, "the four good spans")
    empty = post(receiver, "logs", b"", JSON)
    assert empty.status == 200 and empty.json() == {}
    assert_serving(receiver)


def test_undecodable_bodies_get_400_with_a_status_in_the_request_content_type(
    receiver: ReceiverProcess,
) -> None:
    garbage = post(receiver, "traces", b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert garbage.status == 400 and garbage.headers["Content-Type"] == PROTOBUF
    status = garbage.status_message()
    assert status.code == 3 and "ExportTraceServiceRequest" in status.message

    for signal, body in [("logs", b"{not json"), ("metrics", b"[1, 2]"), ("traces", b'"x"')]:
        reply = post(receiver, signal, body, JSON)
        assert reply.status == 400 and reply.headers["Content-Type"].startswith(JSON)
        assert reply.json()["code"] == 3
        assert SERVICES[signal].request_name in reply.json()["message"]

    wrong_type = post(receiver, "traces", _dump({"resourceSpans": {"not": "a list"}}), JSON)
    assert wrong_type.status == 400 and "ExportTraceServiceRequest" in wrong_type.json()["message"]
    assert_serving(receiver)


@pytest.mark.parametrize(
    ("signal", "document", "field"),
    [
        (
            "traces",
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]},
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
        ),
        (
            "traces",
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"links": [{"spanId": "abc"}]}]}]}]},
            "resourceSpans[0].scopeSpans[0].spans[0].links[0].spanId",
        ),
        (
            "logs",
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [{}, {"spanId": 12}]}]}]},
            "resourceLogs[0].scopeLogs[0].logRecords[1].spanId",
        ),
        (
            "metrics",
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "histogram": {
                                            "dataPoints": [{"exemplars": [{"traceId": "AAECAw=="}]}]
                                        }
                                    }
                                ]
                            }
                        ]
                    }
                ]
            },
            "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0]"
            ".exemplars[0].traceId",
        ),
    ],
)
def test_ids_that_are_not_hex_get_400_naming_the_field(
    receiver: ReceiverProcess, signal: str, document: Any, field: str
) -> None:
    reply = post(receiver, signal, _dump(document), JSON)
    assert reply.status == 400
    message = reply.json()["message"]
    assert message.startswith(field + ":") and "not a hex string" in message
    assert_serving(receiver)


def test_bad_compressed_data_gets_400(receiver: ReceiverProcess) -> None:
    body = gzip.compress(_dump(TRACES_JSON))
    for broken in (body[:-12], b"\x1f\x8b\x08\x00garbage!", body + b"trailing junk"):
        reply = post(receiver, "traces", broken, JSON, Content_Encoding="gzip")
        assert reply.status == 400, broken[-20:]
        assert reply.json()["code"] == 3
    assert_serving(receiver)


def test_gzip_and_deflate_bodies_are_accepted(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    body = (FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb").read_bytes()
    assert post(receiver, "traces", gzip.compress(body), Content_Encoding="gzip").status == 200
    assert post(receiver, "traces", zlib.compress(body), Content_Encoding="deflate").status == 200
    json_gzip = gzip.compress(
        (FIXTURES / "http_json_claude" / "005_http_claude_logs.json").read_bytes()
    )
    assert post(receiver, "logs", json_gzip, JSON, Content_Encoding="gzip").status == 200
    wait_for(lambda: count(client, database, "otel_traces") == 12, 10, "both copies of the spans")
    wait_for(lambda: count(client, database, "otel_logs") == 10, 10, "the gzip JSON logs")


def test_unknown_content_type_or_encoding_gets_415(receiver: ReceiverProcess) -> None:
    for content_type in ("text/plain", "application/protobuf", ""):
        reply = post(receiver, "traces", b"{}", content_type)
        assert reply.status == 415, content_type
        assert reply.headers["Content-Type"].startswith(JSON)  # no better choice
        assert "application/x-protobuf" in reply.json()["message"]
    brotli = post(receiver, "traces", b"{}", JSON, Content_Encoding="br")
    assert brotli.status == 415 and "Content-Encoding" in brotli.json()["message"]
    assert "gzip" in brotli.headers["Accept-Encoding"]
    assert_serving(receiver)


def test_other_paths_get_404_and_other_methods_405(receiver: ReceiverProcess) -> None:
    for path in ("/", "/v1/trace", "/v1/traces/", "/v2/traces", "/v1/profiles"):
        reply = call(receiver, "POST", path, b"", {"Content-Type": PROTOBUF})
        assert reply.status == 404, path
        assert reply.status_message().code == 5
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        reply = call(receiver, method, "/v1/metrics", b"", {"Content-Type": JSON})
        assert reply.status == 405 and reply.headers["Allow"] == "POST", method
        assert reply.json()["code"] == 12
    health_post = call(receiver, "POST", "/health")
    assert health_post.status == 405 and "GET" in health_post.headers["Allow"]
    assert_serving(receiver)


def test_every_rejected_request_is_counted(receiver: ReceiverProcess) -> None:
    """``otel_receiver_requests_rejected_total`` counts each refused request once, by reason,
    those refused before decoding (415, bad JSON or ids, bad compressed data, 405) too."""

    def rejected() -> dict[str, float]:
        samples = scrape(f"http://127.0.0.1:{receiver.metrics_port}/metrics")
        return {
            labels["reason"]: value
            for labels, value in samples.get("otel_receiver_requests_rejected_total", [])
            if labels.get("signal") == "traces"
        }

    bad_ids = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "name": "x"}]}]}]}
    before = rejected()
    assert post(receiver, "traces", b"{not json", JSON).status == 400
    assert post(receiver, "traces", _dump(bad_ids), JSON).status == 400
    assert post(receiver, "traces", b"\x1f\x8bjunk", JSON, Content_Encoding="gzip").status == 400
    assert post(receiver, "traces", b"\xff\xff\xff\xff").status == 400  # undecodable protobuf
    assert post(receiver, "traces", b"{}", "text/plain").status == 415
    assert post(receiver, "traces", b"{}", JSON, Content_Encoding="br").status == 415
    assert call(receiver, "GET", "/v1/traces").status == 405
    after = rejected()
    grown = {reason: after[reason] - before.get(reason, 0) for reason in after}
    assert grown == {"undecodable": 4, "unsupported_media_type": 2, "method_not_allowed": 1}


def test_health_endpoint(receiver: ReceiverProcess) -> None:
    reply = call(receiver, "GET", "/health")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith(JSON)
    assert reply.json() == {"status": "SERVING"}
    assert call(receiver, "HEAD", "/health").status == 200


def test_bodies_over_the_limit_get_413(
    tmp_path: Path, clickhouse_url: str, client: Client, database: str
) -> None:
    small = ReceiverProcess.serving(
        tmp_path / "small",
        clickhouse_url,
        database,
        data_dir=tmp_path / "data",
        OTEL_RECEIVER_HTTP_MAX_RECEIVE_BYTES="4096",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    try:
        body = (FIXTURES / "main_grpc" / "006_grpc_claude_traces.pb").read_bytes()
        assert len(body) > 4096 and len(gzip.compress(body)) < 4096
        plain = post(small, "traces", body)  # refused from its Content-Length
        chunked = call(small, "POST", "/v1/traces", body, {"Content-Type": PROTOBUF}, chunked=True)
        inflated = post(small, "traces", gzip.compress(body), Content_Encoding="gzip")
        for reply in (plain, chunked, inflated):
            assert reply.status == 413
            assert reply.status_message().code == 8  # RESOURCE_EXHAUSTED
            assert "4096 bytes" in reply.status_message().message
        json_reply = post(small, "logs", b" " * 5000, JSON)
        assert json_reply.status == 413 and json_reply.json()["code"] == 8
        assert_serving(small)
        assert count(client, database, "otel_traces") == 0
    finally:
        assert small.stop() == 0


def test_gzip_bomb_is_refused_without_inflating_it(receiver: ReceiverProcess) -> None:
    assert gzip.decompress(gzip_bomb(3)) == bytes(3 << 20)  # the bomb is valid gzip
    bomb = gzip_bomb(2048)  # 2 GiB of zeros in about 2 MiB
    assert len(bomb) < 4 << 20
    assert receiver.process is not None
    before = peak_rss_bytes(receiver.process.pid)
    for chunked in (False, True):
        reply = call(
            receiver,
            "POST",
            "/v1/traces",
            bomb,
            {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
            chunked=chunked,
        )
        assert reply.status == 413
        assert "16777216 bytes" in reply.status_message().message
    grown = peak_rss_bytes(receiver.process.pid) - before
    assert grown < 512 << 20, f"peak memory grew by {grown >> 20} MiB"
    assert_serving(receiver)


def test_storage_unavailable_gets_503_with_retry_after(
    tmp_path: Path, clickhouse_url: str, client: Client, database: str
) -> None:
    # No spool: when ClickHouse cannot take a batch, the request cannot be made durable.
    receiver = ReceiverProcess.serving(
        tmp_path / "nospool",
        clickhouse_url,
        database,
        data_dir=tmp_path / "data",
        OTEL_RECEIVER_SPOOL_MAX_BYTES="0",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    try:
        logs = (FIXTURES / "http_json_claude" / "005_http_claude_logs.json").read_bytes()
        client.command(f"DROP TABLE {database}.otel_logs")
        for content_type in (JSON, PROTOBUF):
            body = logs if content_type == JSON else json_to_protobuf("logs", logs)
            reply = post(receiver, "logs", body, content_type)
            assert reply.status == 503, reply.body
            assert int(reply.headers["Retry-After"]) >= 1
            status = reply.status_message()
            assert status.code == 14 and "UNKNOWN_TABLE" in status.message  # UNAVAILABLE
        # A missing table is a configuration error (receiver.store.errors): never spooled,
        # the receiver reports itself unhealthy until it is back; other signals still flow.
        assert call(receiver, "GET", "/health").status == 503
        assert post(receiver, "traces", b"").status == 200
        apply_schema(client, database, Settings())  # the table comes back
        assert post(receiver, "logs", logs, JSON).status == 200
        wait_for(lambda: count(client, database, "otel_logs") == 10, 10, "logs after recovery")
        assert_serving(receiver)
    finally:
        assert receiver.stop() == 0


def test_busy_port_is_a_configuration_error_naming_http_listen(
    tmp_path: Path, clickhouse_url: str, client: Client, database: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "receiver.cli",
                "serve",
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                f"127.0.0.1:{port}",
                "--clickhouse-url",
                clickhouse_url,
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=tmp_path,
            env={**os.environ, "OTEL_RECEIVER_CLICKHOUSE_DATABASE": database},
            capture_output=True,
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    message = result.stderr.decode()
    assert "invalid configuration: http_listen" in message and f"127.0.0.1:{port}" in message


def test_http_can_be_disabled(
    tmp_path: Path, clickhouse_url: str, client: Client, database: str
) -> None:
    receiver = ReceiverProcess.serving(
        tmp_path / "nohttp",
        clickhouse_url,
        database,
        "--http-listen",
        "",
        data_dir=tmp_path / "data",
    ).start()
    try:
        assert receiver.http_port is None
        assert receiver.event("receiver_started")["http_listen"] == ""
    finally:
        assert receiver.stop() == 0
