"""A bounded OTLP/gRPC span load for fault tests: it records exactly which spans the
receiver acknowledged, so a test can check each of them was stored exactly once."""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def spans_request(span_ids: list[bytes], name: str = "load") -> bytes:
    now = time.time_ns()
    trace_id = os.urandom(16)
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value="load"))]
                ),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        spans=[
                            trace_pb2.Span(
                                trace_id=trace_id,
                                span_id=span_id,
                                name=name,
                                start_time_unix_nano=now,
                                end_time_unix_nano=now + 1_000,
                            )
                            for span_id in span_ids
                        ]
                    )
                ],
            )
        ]
    ).SerializeToString()


DAY_NS = 86_400 * 10**9


def spans_on_days(span_ids: list[bytes], days_ago: list[int]) -> bytes:
    """One request whose i-th span starts ``days_ago[i]`` days from now (negative: future)."""
    request = ExportTraceServiceRequest.FromString(spans_request(span_ids, name="clock"))
    for span, days in zip(request.resource_spans[0].scope_spans[0].spans, days_ago, strict=True):
        span.start_time_unix_nano -= days * DAY_NS
        span.end_time_unix_nano -= days * DAY_NS
    return request.SerializeToString()


class SpanLoad(threading.Thread):
    """Sends requests of fresh spans until stopped or ``max_seconds`` pass; never resends a
    span it was not acknowledged for, so acknowledged spans must be stored exactly once."""

    def __init__(
        self,
        target: str,
        spans_per_request: int = 20,
        max_seconds: float = 120.0,
        pause: float = 0.01,
    ) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.spans_per_request = spans_per_request
        self.max_seconds = max_seconds
        self.pause = pause
        self.acked: list[str] = []
        self.errors: collections.Counter[grpc.StatusCode] = collections.Counter()
        self._prefix = os.urandom(3)
        self._counter = itertools.count()
        self._stopping = threading.Event()

    def _next_ids(self) -> list[bytes]:
        return [
            self._prefix + next(self._counter).to_bytes(5, "big")
            for _ in range(self.spans_per_request)
        ]

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            export = channel.unary_unary(
                EXPORT,
                request_serializer=None,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            while not self._stopping.is_set() and time.monotonic() < deadline:
                ids = self._next_ids()
                try:
                    export(spans_request(ids), timeout=15)
                except grpc.RpcError as exc:
                    self.errors[exc.code()] += 1
                    self._stopping.wait(0.1)
                    continue
                self.acked.extend(i.hex() for i in ids)
                self._stopping.wait(self.pause)

    def wait_for_acks(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acked)} of {count} spans acknowledged")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopping.set()
        self.join(30)
