"""Fuzzing both front ends of a real receiver with hypothesis.

Structure-aware: OTLP requests of every signal built with hostile values (huge strings,
deep nesting, empty, zero and wrong-length ids, extreme timestamps, NaN and infinities,
many attributes). Raw: random bytes, and the real Claude Code / Codex captures with flipped
bits, truncated or spliced. Checked for every case: the receiver answers within the
deadline, with a valid OTLP answer (an Export response, or one of the documented error
statuses with a parseable ``google.rpc.Status``); at the end it is still alive and serving.

The normal suite runs a bounded number of cases (``FUZZ_EXAMPLES``, default 30 per test);
``make fuzz`` runs 100k+ (README "Operations", fuzzing).
"""

from __future__ import annotations

import http.client
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from receiver.ingest.otlp import SERVICES

from .capture_files import FIXTURES, signal_of
from .receiver_process import ReceiverProcess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
DEADLINE_S = 15.0  # no answer within this: a hang
GRPC_OK_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
}
HTTP_ERRORS = {400, 413, 415, 429, 503}
CAPTURES = sorted(FIXTURES.glob("*/*.pb"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # per-request deadlines below; hypothesis' own would flag slow inserts
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ----------------------------------------------------------------------------

NOW = time.time_ns()
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.integers(0, 300_000).map(lambda n: "x" * n),  # huge
    st.sampled_from(["", "\x00", "\u2028", "service.name", "[[[[", '{"a":', "\ud7ff" * 10]),
)
ids = st.one_of(
    st.just(b""),
    st.sampled_from([b"\x00" * 16, b"\x00" * 8, b"\xff" * 16, b"\xff" * 8]),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=8, max_size=8),
    st.binary(max_size=40),
)
timestamps = st.one_of(
    st.just(0),
    st.just(2**64 - 1),
    st.just(2**63),
    st.just(2**63 - 1),
    st.integers(NOW - 10**15, NOW + 10**12),
    st.integers(0, 2**64 - 1),
)
doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324]),
)


def _wrap_array(values: list[AnyValue]) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=values))


def _wrap_kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))


scalars = st.one_of(
    texts.map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    doubles.map(lambda d: AnyValue(double_value=d)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=64).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(_wrap_array),
        st.lists(st.tuples(texts, children), max_size=4).map(_wrap_kvlist),
    ),
    max_leaves=12,
)


def _deep(depth: int) -> AnyValue:
    value = AnyValue(string_value="bottom")
    for level in range(depth):
        value = _wrap_array([value]) if level % 2 else _wrap_kvlist([("k", value)])
    return value


# 30 levels: deeper than any limit, still under protobuf's own nesting limit of 100 messages.
values = st.one_of(any_values, st.integers(1, 30).map(_deep))
attributes = st.one_of(
    st.lists(st.builds(KeyValue, key=texts, value=values), max_size=6),
    st.integers(0, 400).map(
        lambda n: [KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(n)]
    ),
)
spans = st.builds(
    Span,
    trace_id=ids,
    span_id=ids,
    parent_span_id=ids,
    name=texts,
    kind=st.integers(0, 2**31 - 1),
    start_time_unix_nano=timestamps,
    end_time_unix_nano=timestamps,
    attributes=attributes,
    events=st.lists(
        st.builds(Span.Event, time_unix_nano=timestamps, name=texts, attributes=attributes),
        max_size=3,
    ),
    links=st.lists(st.builds(Span.Link, trace_id=ids, span_id=ids), max_size=3),
    status=st.builds(Status, code=st.integers(0, 2**31 - 1), message=texts),
)
log_records = st.builds(
    LogRecord,
    time_unix_nano=timestamps,
    observed_time_unix_nano=timestamps,
    severity_number=st.integers(0, 24),
    severity_text=texts,
    body=values,
    attributes=attributes,
    trace_id=ids,
    span_id=ids,
    event_name=texts,
)
number_points = st.builds(
    NumberDataPoint,
    time_unix_nano=timestamps,
    start_time_unix_nano=timestamps,
    as_double=doubles,
    attributes=attributes,
)
histogram_points = st.builds(
    HistogramDataPoint,
    time_unix_nano=timestamps,
    count=st.integers(0, 2**64 - 1),
    sum=doubles,
    bucket_counts=st.lists(st.integers(0, 2**64 - 1), max_size=5),
    explicit_bounds=st.lists(doubles, max_size=5),
    min=doubles,
    max=doubles,
)
metrics = st.one_of(
    st.builds(
        Metric,
        name=texts,
        gauge=st.builds(Gauge, data_points=st.lists(number_points, max_size=3)),
    ),
    st.builds(
        Metric,
        name=texts,
        sum=st.builds(
            Sum,
            data_points=st.lists(number_points, max_size=3),
            aggregation_temporality=st.integers(0, 2),
            is_monotonic=st.booleans(),
        ),
    ),
    st.builds(
        Metric,
        name=texts,
        histogram=st.builds(Histogram, data_points=st.lists(histogram_points, max_size=3)),
    ),
)


def _request(signal: str, resources: list[Any]) -> bytes:
    message = SERVICES[signal].request_type()
    getattr(
        message,
        {"traces": "resource_spans", "logs": "resource_logs"}.get(signal, "resource_metrics"),
    ).extend(resources)
    return message.SerializeToString()


def _resource(attrs: list[KeyValue]) -> dict[str, Any]:
    return {"attributes": attrs}


requests = st.one_of(
    st.lists(
        st.builds(
            lambda a, s: ResourceSpans(resource=_resource(a), scope_spans=[ScopeSpans(spans=s)]),
            attributes,
            st.lists(spans, max_size=4),
        ),
        max_size=2,
    ).map(lambda r: ("traces", _request("traces", r))),
    st.lists(
        st.builds(
            lambda a, s: ResourceLogs(resource=_resource(a), scope_logs=[ScopeLogs(log_records=s)]),
            attributes,
            st.lists(log_records, max_size=4),
        ),
        max_size=2,
    ).map(lambda r: ("logs", _request("logs", r))),
    st.lists(
        st.builds(
            lambda a, m: ResourceMetrics(
                resource=_resource(a), scope_metrics=[ScopeMetrics(metrics=m)]
            ),
            attributes,
            st.lists(metrics, max_size=3),
        ),
        max_size=2,
    ).map(lambda r: ("metrics", _request("metrics", r))),
)


@st.composite
def mutated_captures(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(CAPTURES))
    data = bytearray(path.read_bytes())
    how = draw(st.sampled_from(["flip", "truncate", "splice", "insert"]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            index = rng.randrange(len(data))
            data[index] ^= 1 << rng.randrange(8)
    elif how == "truncate":
        del data[rng.randrange(len(data)) :]
    elif how == "splice":
        other = draw(st.sampled_from(CAPTURES)).read_bytes()
        cut = rng.randrange(len(data))
        data = data[:cut] + other[rng.randrange(len(other)) :]
    else:
        index = rng.randrange(len(data) + 1)
        data[index:index] = draw(st.binary(min_size=1, max_size=32))
    signal = draw(st.sampled_from([signal_of(path), "traces", "logs", "metrics"]))
    return signal, bytes(data)


raw = st.tuples(st.sampled_from(["traces", "logs", "metrics"]), st.binary(max_size=4096))

# -- the receiver and the checks ---------------------------------------------------------------


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_url: str
) -> Iterator[ReceiverProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    process = ReceiverProcess.serving(
        tmp / "receiver",
        clickhouse_url,
        "test_fuzz",
        data_dir=tmp / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.005",
        OTEL_RECEIVER_GRPC_MAX_RECEIVE_BYTES=str(4 * 1024 * 1024),
        OTEL_RECEIVER_HTTP_MAX_RECEIVE_BYTES=str(4 * 1024 * 1024),
    )
    process.start()
    yield process
    assert process.process is not None and process.process.poll() is None, process.log()
    assert process.stop() == 0
    fatal = [e for e in process.events() if e.get("level") in ("critical",)]
    assert not fatal, fatal


class Clients:
    """One gRPC channel and one keep-alive HTTP connection, reused across cases."""

    def __init__(self, receiver: ReceiverProcess) -> None:
        self.receiver = receiver
        self.channel = grpc.insecure_channel(receiver.grpc_target)
        self.http: http.client.HTTPConnection | None = None

    def grpc(self, signal: str, body: bytes) -> None:
        spec = SERVICES[signal]
        export = self.channel.unary_unary(
            f"/{spec.service}/Export",
            request_serializer=lambda raw: raw,
            response_deserializer=spec.response_type.FromString,
        )
        try:
            response = export(body, timeout=DEADLINE_S)
        except grpc.RpcError as error:
            assert error.code() in GRPC_OK_ERRORS, (error.code(), error.details())
            assert error.details(), "an error answer says why"
            return
        rejected = getattr(response.partial_success, spec.rejected_field)
        assert rejected >= 0
        assert bool(rejected) == bool(response.partial_success.error_message)

    def post(self, signal: str, body: bytes, content_type: str) -> None:
        for attempt in range(2):
            if self.http is None:
                self.http = http.client.HTTPConnection(
                    "127.0.0.1", self.receiver.http_port, timeout=DEADLINE_S
                )
            try:
                self.http.request(
                    "POST",
                    SERVICES[signal].http_path,
                    body=body,
                    headers={"Content-Type": content_type},
                )
                response = self.http.getresponse()
                answer = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # The server may close a keep-alive connection after an error answer.
                self.http.close()
                self.http = None
                if attempt:
                    raise
        status = response.status
        json = content_type == "application/json"
        if status == 200:
            if json:
                import json as jsonlib

                assert isinstance(jsonlib.loads(answer), dict)
            else:
                SERVICES[signal].response_type.FromString(answer)
            return
        assert status in HTTP_ERRORS, (status, answer[:300])
        if json:
            import json as jsonlib

            assert "message" in jsonlib.loads(answer)
        else:
            assert status_pb2.Status.FromString(answer).message
        if status == 503:
            assert response.getheader("Retry-After")

    def close(self) -> None:
        self.channel.close()
        if self.http is not None:
            self.http.close()


@pytest.fixture(scope="module")
def clients(target: ReceiverProcess) -> Iterator[Clients]:
    made = Clients(target)
    yield made
    made.close()
    _still_serving(target)


def _still_serving(receiver: ReceiverProcess) -> None:
    """After the fuzzing: alive, healthy, and storing a valid request."""
    assert receiver.process is not None and receiver.process.poll() is None
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=10)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    valid = next(p for p in CAPTURES if signal_of(p) == "traces")
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        spec = SERVICES["traces"]
        export = channel.unary_unary(
            f"/{spec.service}/Export",
            request_serializer=lambda raw: raw,
            response_deserializer=spec.response_type.FromString,
        )
        export(Path(valid).read_bytes(), timeout=DEADLINE_S)


@FUZZ
@given(case=requests)
def test_structured_grpc(clients: Clients, case: tuple[str, bytes]) -> None:
    clients.grpc(*case)


@FUZZ
@given(case=requests, json=st.booleans())
def test_structured_http(clients: Clients, case: tuple[str, bytes], json: bool) -> None:
    signal, body = case
    if json:
        from google.protobuf import json_format

        message = SERVICES[signal].request_type.FromString(body)
        try:
            text = json_format.MessageToJson(message, indent=None)
        except ValueError:
            return  # NaN in a strict JSON encoder: not representable
        clients.post(signal, text.encode(), "application/json")
    else:
        clients.post(signal, body, "application/x-protobuf")


@FUZZ
@given(case=st.one_of(mutated_captures(), raw))
def test_raw_bytes_grpc(clients: Clients, case: tuple[str, bytes]) -> None:
    clients.grpc(*case)


@FUZZ
@given(
    case=st.one_of(mutated_captures(), raw),
    content_type=st.sampled_from(["application/x-protobuf", "application/json"]),
)
def test_raw_bytes_http(clients: Clients, case: tuple[str, bytes], content_type: str) -> None:
    clients.post(case[0], case[1], content_type)
