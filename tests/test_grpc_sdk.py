"""The OpenTelemetry Python SDK exports over OTLP/gRPC to a real receiver process; the rows in
the real ClickHouse hold exactly what the SDK sent."""

from __future__ import annotations

import logging

from clickhouse_connect.driver.client import Client
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
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

from .clickhouse_rows import rows, wait_rows
from .receiver_process import ReceiverProcess

RESOURCE = Resource.create({"service.name": "sdk-test", "deployment.environment": "ci"})


def test_sdk_spans_are_stored_exactly(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    sent = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(sent))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_target, insecure=True))
    )
    tracer = provider.get_tracer("test.scope", "9.9")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.status_code", 200)
        parent.set_attribute("ratio", 0.25)
        parent.set_attribute("flag", True)
        parent.set_attribute("tags", ["a", "b"])
        parent.add_event("cache.miss", {"key": "k1", "size": 3})
        parent.set_status(Status(StatusCode.ERROR, "it broke"))
        for kind in (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with tracer.start_as_current_span(
                f"child-{kind.name}", kind=kind, links=[Link(parent.get_span_context(), {"l": 1})]
            ) as child:
                child.set_status(Status(StatusCode.OK))
    provider.shutdown()

    stored = wait_rows(client, database, "SELECT * FROM {db}.otel_traces ORDER BY SpanName", 5)
    by_name = {row["SpanName"]: row for row in stored}
    for span in sent.get_finished_spans():
        row = by_name[span.name]
        ctx = span.get_span_context()
        assert row["TraceId"] == f"{ctx.trace_id:032x}"
        assert row["SpanId"] == f"{ctx.span_id:016x}"
        assert row["ParentSpanId"] == (f"{span.parent.span_id:016x}" if span.parent else "")
        assert row["Duration"] == span.end_time - span.start_time
        assert row["ServiceName"] == "sdk-test"
        assert row["ResourceAttributes"]["deployment.environment"] == "ci"
        assert (row["ScopeName"], row["ScopeVersion"]) == ("test.scope", "9.9")
    parent_row = by_name["parent"]
    assert parent_row["SpanKind"] == "Server"
    assert parent_row["StatusCode"] == "Error" and parent_row["StatusMessage"] == "it broke"
    assert parent_row["SpanAttributes"] == {
        "http.status_code": "200",
        "ratio": "0.25",
        "flag": "true",
        "tags": '["a","b"]',
    }
    assert parent_row["Events.Name"] == ["cache.miss"]
    assert parent_row["Events.Attributes"] == [{"key": "k1", "size": "3"}]
    assert {
        by_name[f"child-{k}"]["SpanKind"] for k in ("INTERNAL", "CLIENT", "PRODUCER", "CONSUMER")
    } == {"Internal", "Client", "Producer", "Consumer"}
    child = by_name["child-CLIENT"]
    assert child["StatusCode"] == "Ok"
    assert child["Links.SpanId"] == [parent_row["SpanId"]]
    assert child["Links.TraceId"] == [parent_row["TraceId"]]
    assert child["Links.Attributes"] == [{"l": "1"}]
    # Nanosecond-exact timestamps: compare as integers, not datetimes.
    exact = rows(
        client,
        database,
        "SELECT SpanName, toUnixTimestamp64Nano(Timestamp) AS ns, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS ev "
        "FROM {db}.otel_traces",
    )
    spans = {s.name: s for s in sent.get_finished_spans()}
    for row in exact:
        assert row["ns"] == spans[row["SpanName"]].start_time
    assert next(r for r in exact if r["SpanName"] == "parent")["ev"] == [
        spans["parent"].events[0].timestamp
    ]


def test_sdk_log_records_are_stored_exactly(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=receiver.grpc_target, insecure=True))
    )
    logger = logging.getLogger("sdk.test.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("op") as span:
        logger.warning("disk %s is full", "sda", extra={"disk.free": 0})
    logger.info("plain")
    logger.removeHandler(handler)
    provider.shutdown()

    stored = wait_rows(client, database, "SELECT * FROM {db}.otel_logs ORDER BY Timestamp", 2)
    warning, info = stored
    ctx = span.get_span_context()
    assert warning["Body"] == "disk sda is full"
    assert warning["SeverityText"] == "WARN" and warning["SeverityNumber"] == 13
    assert warning["TraceId"] == f"{ctx.trace_id:032x}"
    assert warning["SpanId"] == f"{ctx.span_id:016x}"
    assert warning["TraceFlags"] == int(ctx.trace_flags)  # sampled (+ W3C random) = 1 or 3
    assert warning["TraceFlags"] & 1
    assert warning["LogAttributes"]["disk.free"] == "0"
    assert warning["ServiceName"] == "sdk-test"
    assert warning["ScopeName"] == "sdk.test.logs"
    assert info["SeverityNumber"] == 9 and info["TraceId"] == "" and info["Body"] == "plain"


def test_sdk_metrics_of_every_instrument_kind(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    # Counters and histograms as delta, like Claude Code and Codex send them.
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    exporter = OTLPMetricExporter(
        endpoint=receiver.grpc_target, insecure=True, preferred_temporality=delta
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    sent = InMemoryMetricReader()
    views = [
        View(
            instrument_name="exp.latency",
            aggregation=ExponentialBucketHistogramAggregation(max_size=20),
        )
    ]
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader, sent], views=views)
    meter = provider.get_meter("test.meter", "1.0")
    meter.create_counter("requests", unit="1", description="reqs").add(5, {"route": "/a"})
    updown = meter.create_up_down_counter("queue.depth")
    updown.add(10)
    updown.add(-3)
    histogram = meter.create_histogram("latency", unit="ms")
    for value in (1.0, 7.0, 120.0):
        histogram.record(value, {"route": "/a"})
    exponential = meter.create_histogram("exp.latency", unit="ms")
    for value in (0.5, 2.0, 2.0, 9.0):
        exponential.record(value)
    meter.create_observable_gauge(
        "temperature", callbacks=[lambda options: [Observation(21.5, {"room": "x"})]]
    )
    provider.force_flush()
    provider.shutdown()

    # Delta points are exported once; the cumulative up-down counter again at shutdown.
    sums = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_sum ORDER BY TimeUnix", 2)
    (requests,) = [row for row in sums if row["MetricName"] == "requests"]
    queue = [row for row in sums if row["MetricName"] == "queue.depth"][-1]
    assert requests["Value"] == 5.0
    assert requests["Attributes"] == {"route": "/a"}
    assert requests["AggregationTemporality"] == 1 and requests["IsMonotonic"] is True
    assert (requests["MetricUnit"], requests["MetricDescription"]) == ("1", "reqs")
    assert (requests["ScopeName"], requests["ScopeVersion"]) == ("test.meter", "1.0")
    assert queue["Value"] == 7.0
    assert queue["AggregationTemporality"] == 2 and queue["IsMonotonic"] is False

    (hist,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_histogram", 1)
    assert hist["MetricName"] == "latency" and hist["Count"] == 3 and hist["Sum"] == 128.0
    assert (hist["Min"], hist["Max"]) == (1.0, 120.0)
    assert hist["ExplicitBounds"][:3] == [0.0, 5.0, 10.0]
    assert sum(hist["BucketCounts"]) == 3 and hist["AggregationTemporality"] == 1

    (exp,) = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_exponential_histogram", 1)
    assert exp["MetricName"] == "exp.latency" and exp["Count"] == 4 and exp["Sum"] == 13.5
    assert exp["ZeroCount"] == 0 and sum(exp["PositiveBucketCounts"]) == 4
    sent_exp = next(
        m
        for rm in sent.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "exp.latency"
    )
    point = sent_exp.data.data_points[0]
    assert exp["Scale"] == point.scale and exp["PositiveOffset"] == point.positive.offset
    assert exp["PositiveBucketCounts"] == list(point.positive.bucket_counts)

    # Observed at the flush and again at shutdown.
    gauge = wait_rows(client, database, "SELECT * FROM {db}.otel_metrics_gauge", 1)[-1]
    assert gauge["MetricName"] == "temperature" and gauge["Value"] == 21.5
    assert gauge["Attributes"] == {"room": "x"}
