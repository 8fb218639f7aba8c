"""Decode: OTLP Export requests into rows of the collector ClickHouse exporter's tables.

One function per signal turns the protobuf bytes a client sent into row tuples, one per span,
log record or metric point, in the column order of ``TABLE_COLUMNS`` (the same order as the
DDL in ``schema/``), so a reader can hold the DDL next to the tuple that fills it. Items that
cannot be stored (bad ids, timestamps ClickHouse cannot hold) are counted and explained, not
stored; the rest of the request still is (OTLP partial success).

Timestamps stay integers of nanoseconds end to end: a float or ``datetime`` would lose them.

Speed (this is the receiver's hottest code; see docs/BENCHMARKS.md): requests are parsed with
a twin of the OTLP schema in which every attribute list (``repeated KeyValue``) is read as
``repeated bytes``, which is wire-compatible. Parsing then builds no Python object per
attribute, and ``wire_attributes`` turns each serialized KeyValue into its (key, string) pair
through a cache (``receiver.ingest.anyvalue``). The twin keeps every other field's type, so protobuf
checks the request as before; a KeyValue is checked when first converted, and every attribute
list is converted (also those of rejected items), so a request is refused exactly when the
plain schema would refuse it, with protobuf's own error message. The common case of each
check (valid ids, timestamps in range) is tested inline; the messages come from the same
``_span_problem``-style functions as before.

Compiled fast path (``_fastdecode.c``, chosen by ``receiver.ingest.fastpath``): limits and
decode in one C pass over the request bytes, for the ordinary request only. It answers with
exactly the rows this module would give, or with None for anything unusual (a limit that would
act, an invalid item, malformed or unexpected wire data, a field it does not read), and the
request then takes the Python path (``Limits.screen``, then the functions here), which words
every error, rejection and truncation. Scalar attributes (string, int, bool) are read in C and
their (key, string) pairs kept in a bounded cache keyed by their bytes, so repeated keys and
values are shared objects; other values go through ``wire_pair``. The tests run this module's
tests on both paths and fuzz the C against it (``tests/test_fastdecode.py``).

Row values are shared, so nothing downstream may change one in place (processors build new
values instead): a resource's attribute dict is shared by all its rows, and every empty array
column (no events, links or exemplars: nearly all rows) is the one ``EMPTY`` list, which
refuses changes. That is for the garbage collector: rows wait in batches for about a second,
and six fresh empty lists per span made collections cost about 20 µs per item.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.ingest.anyvalue import (
    NestingTooDeep,
    any_value_to_str,
    deep_values_verified,
    wire_attributes,
)
from receiver.store.tables import (
    LOGS,
    METRICS_EXPONENTIAL_HISTOGRAM,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
    METRICS_SUM,
    METRICS_SUMMARY,
    TRACES,
)

Row = tuple[Any, ...]

# DateTime64(9) holds nanoseconds since the epoch in a signed 64-bit integer.
MAX_TIMESTAMP_NS = 2**63 - 1

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
_MAX_REASONS = 5


@dataclass
class Decoded:
    """Rows per table from one request, and what was rejected and why."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason not in self.reasons and len(self.reasons) < _MAX_REASONS:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        """The OTLP partial-success ``error_message``: empty when nothing was rejected."""
        if not self.rejected:
            return ""
        return f"rejected {self.rejected} item(s): " + "; ".join(self.reasons)

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def _id_problem(value: bytes, size: int, name: str, required: bool) -> str | None:
    """Why an id is unusable, or None. Absent optional ids are fine; all-zero ids are absent."""
    if not value:
        return f"{name} is empty" if required else None
    if len(value) != size:
        return f"{name} must be {size} bytes, got {len(value)}"
    if required and not any(value):
        return f"{name} is all zeros"
    return None


def _timestamp_problem(*pairs: tuple[str, int]) -> str | None:
    for name, value in pairs:
        if value > MAX_TIMESTAMP_NS:
            return f"{name} {value} is beyond 2262-04-11, the latest time ClickHouse can store"
    return None


def _hex_id(value: bytes) -> str:
    """Lower-case hex, empty when absent or all zeros (the exporter's rule)."""
    return value.hex() if any(value) else ""


# --- the wire twin of the OTLP schema ------------------------------------------------------

_KEY_VALUE = ".opentelemetry.proto.common.v1.KeyValue"
_KEY_VALUE_LIST = ".opentelemetry.proto.common.v1.KeyValueList"


def _wire_request_types() -> dict[str, Any]:
    """The three Export request classes, with attribute lists read as ``repeated bytes``.

    Built from the installed OTLP descriptors into a private descriptor pool, under the same
    names, so protobuf's error messages name the same types. KeyValues inside AnyValue
    (``KeyValueList.values``) stay messages: log bodies are read as AnyValue.
    """
    files: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def collect(file: Any) -> None:
        if file.name in seen:
            return
        for dependency in file.dependencies:
            collect(dependency)
        seen.add(file.name)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        files.append(proto)

    def flatten(message: descriptor_pb2.DescriptorProto, scope: str) -> None:
        name = f"{scope}.{message.name}"
        for f in message.field:
            if f.type_name == _KEY_VALUE and name != _KEY_VALUE_LIST:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                f.ClearField("type_name")
        for nested in message.nested_type:
            flatten(nested, name)

    for module in (trace_service_pb2, logs_service_pb2, metrics_service_pb2):
        collect(module.DESCRIPTOR)
    pool = descriptor_pool.DescriptorPool()
    for proto in files:
        for message in proto.message_type:
            flatten(message, "." + proto.package)
        pool.AddSerializedFile(proto.SerializeToString())
    return {
        signal: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(plain.DESCRIPTOR.full_name)
        )
        for signal, plain in PLAIN_REQUESTS.items()
    }


PLAIN_REQUESTS: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
WIRE_REQUESTS = _wire_request_types()


def _decoder(signal: str) -> Callable[[Callable[[Any], Decoded]], Callable[..., Decoded]]:
    """Wrap a row builder into ``decode_<signal>(body, request=None)``: parse with the wire
    twin (unless ``request``, the twin already parsed from ``body``, is given); when an
    attribute turns out malformed (or too deeply nested to judge alone), let the plain schema
    judge the whole request, so the answer and its error message are the same as ever."""
    wire = WIRE_REQUESTS[signal]
    plain = PLAIN_REQUESTS[signal]

    def wrap(build: Callable[[Any], Decoded]) -> Callable[..., Decoded]:
        def decode(body: bytes, request: Any = None) -> Decoded:
            try:
                if request is None:
                    request = wire.FromString(body)
                return build(request)
            except DecodeError:
                plain.FromString(body)  # raises protobuf's own error for the whole request
                raise
            except NestingTooDeep:
                plain.FromString(body)  # raises if protobuf refuses the nesting
                with deep_values_verified():
                    return build(request)

        decode.__name__ = build.__name__
        decode.__qualname__ = build.__qualname__
        decode.__doc__ = build.__doc__
        return decode

    return wrap


class _Empty(list[Any]):
    """The shared empty list of array columns: equal to ``[]``, but it refuses changes (a
    change would reach every row that holds it)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("decoded row values are shared: build a new list instead")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> Any:
        return (list, ())


EMPTY: list[Any] = _Empty()
_EMPTY_EXEMPLARS = (EMPTY, EMPTY, EMPTY, EMPTY, EMPTY)
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def _span_problem(span: Any) -> str | None:
    problem = (
        _id_problem(span.trace_id, 16, "trace_id", required=True)
        or _id_problem(span.span_id, 8, "span_id", required=True)
        or _id_problem(span.parent_span_id, 8, "parent_span_id", required=False)
        or _timestamp_problem(
            ("start_time_unix_nano", span.start_time_unix_nano),
            ("end_time_unix_nano", span.end_time_unix_nano),
            *(("event time_unix_nano", event.time_unix_nano) for event in span.events),
        )
    )
    for link in span.links:
        problem = (
            problem
            or _id_problem(link.trace_id, 16, "link trace_id", required=True)
            or _id_problem(link.span_id, 8, "link span_id", required=True)
        )
    return problem


def _links_valid(links: Any) -> bool:
    for link in links:
        trace_id = link.trace_id
        span_id = link.span_id
        if (
            len(trace_id) != 16
            or trace_id == _ZERO_TRACE_ID
            or len(span_id) != 8
            or span_id == _ZERO_SPAN_ID
        ):
            return False
    return True


def _check_span_attributes(span: Any) -> None:
    """Convert (and so check) the attribute lists of a span that is not stored."""
    wire_attributes(span.attributes)
    for event in span.events:
        wire_attributes(event.attributes)
    for link in span.links:
        wire_attributes(link.attributes)


@_decoder("traces")
def decode_traces(request: Any) -> Decoded:
    """Rows for ``otel_traces`` from an ExportTraceServiceRequest."""
    decoded = Decoded()
    rows: list[Row] = []
    append = rows.append
    max_ns = MAX_TIMESTAMP_NS
    for resource_spans in request.resource_spans:
        resource_attributes = wire_attributes(resource_spans.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            wire_attributes(scope.attributes)  # not stored for spans, but checked
            scope_name = scope.name
            scope_version = scope.version
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                parent_span_id = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                events = span.events
                links = span.links
                if not (
                    len(trace_id) == 16
                    and trace_id != _ZERO_TRACE_ID
                    and len(span_id) == 8
                    and span_id != _ZERO_SPAN_ID
                    and (not parent_span_id or len(parent_span_id) == 8)
                    and start <= max_ns
                    and end <= max_ns
                    and (not events or all(e.time_unix_nano <= max_ns for e in events))
                    and (not links or _links_valid(links))
                ):
                    problem = _span_problem(span)
                    if problem:
                        _check_span_attributes(span)
                        decoded.reject(problem)
                        continue
                kind = span.kind
                status = span.status
                code = status.code
                if events:
                    event_times = [e.time_unix_nano for e in events]
                    event_names = [e.name for e in events]
                    event_attributes = [wire_attributes(e.attributes) for e in events]
                else:
                    event_times = event_names = event_attributes = EMPTY
                if links:
                    link_trace_ids = [link.trace_id.hex() for link in links]
                    link_span_ids = [link.span_id.hex() for link in links]
                    link_states = [link.trace_state for link in links]
                    link_attributes = [wire_attributes(link.attributes) for link in links]
                else:
                    link_trace_ids = link_span_ids = link_states = link_attributes = EMPTY
                append(
                    (
                        start,  # Timestamp
                        trace_id.hex(),  # TraceId
                        span_id.hex(),  # SpanId
                        parent_span_id.hex()
                        if parent_span_id and parent_span_id != _ZERO_SPAN_ID
                        else "",  # ParentSpanId
                        span.trace_state,  # TraceState
                        span.name,  # SpanName
                        SPAN_KINDS[kind] if kind < 6 else "Unspecified",  # SpanKind
                        service_name,  # ServiceName
                        resource_attributes,  # ResourceAttributes
                        scope_name,  # ScopeName
                        scope_version,  # ScopeVersion
                        wire_attributes(span.attributes),  # SpanAttributes
                        end - start if end > start else 0,  # Duration
                        STATUS_CODES[code] if code < 3 else "Unset",  # StatusCode
                        status.message,  # StatusMessage
                        event_times,  # Events.Timestamp
                        event_names,  # Events.Name
                        event_attributes,  # Events.Attributes
                        link_trace_ids,  # Links.TraceId
                        link_span_ids,  # Links.SpanId
                        link_states,  # Links.TraceState
                        link_attributes,  # Links.Attributes
                    )
                )
    if rows:
        decoded.rows[TRACES] = rows
    return decoded


_SOURCE_LOCATION = re.compile(r"event \S+:\d+")


def log_event_name(record_event_name: str, body: str, attributes: dict[str, str]) -> str:
    """The meaningful, namespaced event name of a log record.

    A real ``LogRecord.event_name`` wins. Codex fills that field with a source location
    (``event <file>:<line>``) and puts the name (``codex.api_request``) in the ``event.name``
    attribute. Claude Code leaves the field empty, puts the short name (``user_prompt``) in
    ``event.name`` and the documented full name (``claude_code.user_prompt``) in the body.
    """
    if record_event_name and not _SOURCE_LOCATION.fullmatch(record_event_name):
        return record_event_name
    name = attributes.get("event.name")
    if not name:
        return record_event_name
    if body.endswith("." + name) and " " not in body:
        return body
    return name


def _log_problem(record: Any) -> str | None:
    return (
        _id_problem(record.trace_id, 16, "trace_id", required=False)
        or _id_problem(record.span_id, 8, "span_id", required=False)
        or _timestamp_problem(
            ("time_unix_nano", record.time_unix_nano),
            ("observed_time_unix_nano", record.observed_time_unix_nano),
        )
    )


@_decoder("logs")
def decode_logs(request: Any) -> Decoded:
    """Rows for ``otel_logs`` from an ExportLogsServiceRequest."""
    decoded = Decoded()
    rows: list[Row] = []
    max_ns = MAX_TIMESTAMP_NS
    for resource_logs in request.resource_logs:
        resource_attributes = wire_attributes(resource_logs.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        resource_schema_url = resource_logs.schema_url
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_attributes = wire_attributes(scope.attributes)
            scope_schema_url = scope_logs.schema_url
            scope_name = scope.name
            scope_version = scope.version
            for record in scope_logs.log_records:
                trace_id = record.trace_id
                span_id = record.span_id
                time_ns = record.time_unix_nano
                observed_ns = record.observed_time_unix_nano
                if not (
                    (not trace_id or len(trace_id) == 16)
                    and (not span_id or len(span_id) == 8)
                    and time_ns <= max_ns
                    and observed_ns <= max_ns
                ):
                    problem = _log_problem(record)
                    if problem:
                        wire_attributes(record.attributes)
                        decoded.reject(problem)
                        continue
                attributes = wire_attributes(record.attributes)
                body = any_value_to_str(record.body)
                rows.append(
                    (
                        time_ns or observed_ns,  # Timestamp
                        _hex_id(trace_id),  # TraceId
                        _hex_id(span_id),  # SpanId
                        record.flags & 0xFF,  # TraceFlags
                        record.severity_text,  # SeverityText
                        record.severity_number,  # SeverityNumber
                        service_name,  # ServiceName
                        body,  # Body
                        resource_schema_url,  # ResourceSchemaUrl
                        resource_attributes,  # ResourceAttributes
                        scope_schema_url,  # ScopeSchemaUrl
                        scope_name,  # ScopeName
                        scope_version,  # ScopeVersion
                        scope_attributes,  # ScopeAttributes
                        attributes,  # LogAttributes
                        log_event_name(record.event_name, body, attributes),  # EventName
                    )
                )
    if rows:
        decoded.rows[LOGS] = rows
    return decoded


def _number(point: Any) -> float:
    """A NumberDataPoint's or Exemplar's value as the exporter's Float64."""
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


_NO_EXEMPLARS: tuple[()] = ()


def _exemplar_columns(exemplars: Any) -> tuple[list[Any], ...]:
    if not exemplars:
        return _EMPTY_EXEMPLARS
    return (
        [wire_attributes(e.filtered_attributes) for e in exemplars],  # .FilteredAttributes
        [e.time_unix_nano for e in exemplars],  # Exemplars.TimeUnix
        [_number(e) for e in exemplars],  # Exemplars.Value
        [_hex_id(e.span_id) for e in exemplars],  # Exemplars.SpanId
        [_hex_id(e.trace_id) for e in exemplars],  # Exemplars.TraceId
    )


def _point_problem(point: Any, exemplars: Any) -> str | None:
    problem = _timestamp_problem(
        ("start_time_unix_nano", point.start_time_unix_nano),
        ("time_unix_nano", point.time_unix_nano),
        *(("exemplar time_unix_nano", e.time_unix_nano) for e in exemplars),
    )
    for exemplar in exemplars:
        problem = (
            problem
            or _id_problem(exemplar.trace_id, 16, "exemplar trace_id", required=False)
            or _id_problem(exemplar.span_id, 8, "exemplar span_id", required=False)
        )
    return problem


def _exemplars_valid(exemplars: Any) -> bool:
    for exemplar in exemplars:
        trace_id = exemplar.trace_id
        span_id = exemplar.span_id
        if (
            exemplar.time_unix_nano > MAX_TIMESTAMP_NS
            or (trace_id and len(trace_id) != 16)
            or (span_id and len(span_id) != 8)
        ):
            return False
    return True


@_decoder("metrics")
def decode_metrics(request: Any) -> Decoded:
    """Rows for the five ``otel_metrics_*`` tables from an ExportMetricsServiceRequest."""
    decoded = Decoded()
    tables: dict[str, list[Row]] = {}
    max_ns = MAX_TIMESTAMP_NS
    for resource_metrics in request.resource_metrics:
        resource_attributes = wire_attributes(resource_metrics.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_attributes = wire_attributes(scope.attributes)
            for metric in scope_metrics.metrics:
                common = (
                    resource_attributes,  # ResourceAttributes
                    resource_metrics.schema_url,  # ResourceSchemaUrl
                    scope.name,  # ScopeName
                    scope.version,  # ScopeVersion
                    scope_attributes,  # ScopeAttributes
                    scope.dropped_attributes_count,  # ScopeDroppedAttrCount
                    scope_metrics.schema_url,  # ScopeSchemaUrl
                    service_name,  # ServiceName
                    metric.name,  # MetricName
                    metric.description,  # MetricDescription
                    metric.unit,  # MetricUnit
                )
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                table, point_columns = _POINT_DECODERS[kind]
                out = tables.setdefault(table, [])
                summary = kind == "summary"
                for point in data.data_points:
                    exemplars = _NO_EXEMPLARS if summary else point.exemplars
                    if not (
                        point.start_time_unix_nano <= max_ns
                        and point.time_unix_nano <= max_ns
                        and (not exemplars or _exemplars_valid(exemplars))
                    ):
                        problem = _point_problem(point, exemplars)
                        if problem:
                            wire_attributes(point.attributes)
                            for exemplar in exemplars:
                                wire_attributes(exemplar.filtered_attributes)
                            decoded.reject(problem)
                            continue
                    out.append(common + point_columns(point, data, exemplars))
    decoded.rows = {table: rows for table, rows in tables.items() if rows}
    return decoded


def _gauge_point(point: Any, data: Any, exemplars: Any) -> Row:
    return (
        wire_attributes(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
        _number(point),  # Value
        point.flags,  # Flags
        *_exemplar_columns(exemplars),  # Exemplars.*
    )


def _sum_point(point: Any, data: Any, exemplars: Any) -> Row:
    return (
        wire_attributes(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
        _number(point),  # Value
        point.flags,  # Flags
        *_exemplar_columns(exemplars),  # Exemplars.*
        data.aggregation_temporality,  # AggregationTemporality
        data.is_monotonic,  # IsMonotonic
    )


def _histogram_point(point: Any, data: Any, exemplars: Any) -> Row:
    return (
        wire_attributes(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
        point.count,  # Count
        point.sum,  # Sum
        point.bucket_counts[:],  # BucketCounts
        point.explicit_bounds[:],  # ExplicitBounds
        *_exemplar_columns(exemplars),  # Exemplars.*
        point.flags,  # Flags
        point.min,  # Min
        point.max,  # Max
        data.aggregation_temporality,  # AggregationTemporality
    )


def _exponential_histogram_point(point: Any, data: Any, exemplars: Any) -> Row:
    positive = point.positive
    negative = point.negative
    return (
        wire_attributes(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
        point.count,  # Count
        point.sum,  # Sum
        point.scale,  # Scale
        point.zero_count,  # ZeroCount
        positive.offset,  # PositiveOffset
        positive.bucket_counts[:],  # PositiveBucketCounts
        negative.offset,  # NegativeOffset
        negative.bucket_counts[:],  # NegativeBucketCounts
        *_exemplar_columns(exemplars),  # Exemplars.*
        point.flags,  # Flags
        point.min,  # Min
        point.max,  # Max
        data.aggregation_temporality,  # AggregationTemporality
    )


def _summary_point(point: Any, data: Any, exemplars: Any) -> Row:
    quantiles = point.quantile_values
    return (
        wire_attributes(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
        point.count,  # Count
        point.sum,  # Sum
        [q.quantile for q in quantiles],  # ValueAtQuantiles.Quantile
        [q.value for q in quantiles],  # ValueAtQuantiles.Value
        point.flags,  # Flags
    )


_POINT_DECODERS = {
    "gauge": (METRICS_GAUGE, _gauge_point),
    "sum": (METRICS_SUM, _sum_point),
    "histogram": (METRICS_HISTOGRAM, _histogram_point),
    "exponential_histogram": (METRICS_EXPONENTIAL_HISTOGRAM, _exponential_histogram_point),
    "summary": (METRICS_SUMMARY, _summary_point),
}

DECODERS = {"traces": decode_traces, "logs": decode_logs, "metrics": decode_metrics}
