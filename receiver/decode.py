"""Decode: OTLP Export requests into rows of the collector ClickHouse exporter's tables.

One function per signal turns the protobuf bytes a client sent into row tuples, one per span,
log record or metric point, in the column order of ``TABLE_COLUMNS`` (the same order as the
DDL in ``schema/``), so a reader can hold the DDL next to the tuple that fills it. Items that
cannot be stored (bad ids, timestamps ClickHouse cannot hold) are counted and explained, not
stored; the rest of the request still is (OTLP partial success).

Timestamps stay integers of nanoseconds end to end: a float or ``datetime`` would lose them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.anyvalue import any_value_to_str, attributes_to_map
from receiver.tables import (
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


def decode_traces(body: bytes) -> Decoded:
    """Rows for ``otel_traces`` from an ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest.FromString(body)
    decoded = Decoded()
    rows: list[Row] = []
    for resource_spans in request.resource_spans:
        resource_attributes = attributes_to_map(resource_spans.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                problem = _span_problem(span)
                if problem:
                    decoded.reject(problem)
                    continue
                rows.append(
                    (
                        span.start_time_unix_nano,  # Timestamp
                        span.trace_id.hex(),  # TraceId
                        span.span_id.hex(),  # SpanId
                        _hex_id(span.parent_span_id),  # ParentSpanId
                        span.trace_state,  # TraceState
                        span.name,  # SpanName
                        SPAN_KINDS[span.kind] if span.kind < 6 else "Unspecified",  # SpanKind
                        service_name,  # ServiceName
                        resource_attributes,  # ResourceAttributes
                        scope.name,  # ScopeName
                        scope.version,  # ScopeVersion
                        attributes_to_map(span.attributes),  # SpanAttributes
                        max(span.end_time_unix_nano - span.start_time_unix_nano, 0),  # Duration
                        STATUS_CODES[span.status.code] if span.status.code < 3 else "Unset",
                        span.status.message,  # StatusMessage
                        [e.time_unix_nano for e in span.events],  # Events.Timestamp
                        [e.name for e in span.events],  # Events.Name
                        [attributes_to_map(e.attributes) for e in span.events],  # Events.Attributes
                        [link.trace_id.hex() for link in span.links],  # Links.TraceId
                        [link.span_id.hex() for link in span.links],  # Links.SpanId
                        [link.trace_state for link in span.links],  # Links.TraceState
                        [attributes_to_map(link.attributes) for link in span.links],  # Links.Attrs
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


def decode_logs(body: bytes) -> Decoded:
    """Rows for ``otel_logs`` from an ExportLogsServiceRequest."""
    request = ExportLogsServiceRequest.FromString(body)
    decoded = Decoded()
    rows: list[Row] = []
    for resource_logs in request.resource_logs:
        resource_attributes = attributes_to_map(resource_logs.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            scope_attributes = attributes_to_map(scope.attributes)
            for record in scope_logs.log_records:
                problem = (
                    _id_problem(record.trace_id, 16, "trace_id", required=False)
                    or _id_problem(record.span_id, 8, "span_id", required=False)
                    or _timestamp_problem(
                        ("time_unix_nano", record.time_unix_nano),
                        ("observed_time_unix_nano", record.observed_time_unix_nano),
                    )
                )
                if problem:
                    decoded.reject(problem)
                    continue
                attributes = attributes_to_map(record.attributes)
                body = any_value_to_str(record.body)
                rows.append(
                    (
                        record.time_unix_nano or record.observed_time_unix_nano,  # Timestamp
                        _hex_id(record.trace_id),  # TraceId
                        _hex_id(record.span_id),  # SpanId
                        record.flags & 0xFF,  # TraceFlags
                        record.severity_text,  # SeverityText
                        record.severity_number,  # SeverityNumber
                        service_name,  # ServiceName
                        body,  # Body
                        resource_logs.schema_url,  # ResourceSchemaUrl
                        resource_attributes,  # ResourceAttributes
                        scope_logs.schema_url,  # ScopeSchemaUrl
                        scope.name,  # ScopeName
                        scope.version,  # ScopeVersion
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


def _exemplar_columns(point: Any) -> tuple[list[Any], ...]:
    exemplars = point.exemplars
    return (
        [attributes_to_map(e.filtered_attributes) for e in exemplars],  # .FilteredAttributes
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


def decode_metrics(body: bytes) -> Decoded:
    """Rows for the five ``otel_metrics_*`` tables from an ExportMetricsServiceRequest."""
    request = ExportMetricsServiceRequest.FromString(body)
    decoded = Decoded()
    tables: dict[str, list[Row]] = {}
    for resource_metrics in request.resource_metrics:
        resource_attributes = attributes_to_map(resource_metrics.resource.attributes)
        service_name = resource_attributes.get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_attributes = attributes_to_map(scope.attributes)
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
                for point in data.data_points:
                    problem = _point_problem(point, () if kind == "summary" else point.exemplars)
                    if problem:
                        decoded.reject(problem)
                        continue
                    out.append(common + point_columns(point, data))
    decoded.rows = {table: rows for table, rows in tables.items() if rows}
    return decoded


def _times(point: Any) -> tuple[Any, ...]:
    return (
        attributes_to_map(point.attributes),  # Attributes
        point.start_time_unix_nano,  # StartTimeUnix
        point.time_unix_nano,  # TimeUnix
    )


def _gauge_point(point: Any, data: Any) -> Row:
    return (
        *_times(point),
        _number(point),  # Value
        point.flags,  # Flags
        *_exemplar_columns(point),  # Exemplars.*
    )


def _sum_point(point: Any, data: Any) -> Row:
    return (
        *_gauge_point(point, data),
        data.aggregation_temporality,  # AggregationTemporality
        data.is_monotonic,  # IsMonotonic
    )


def _histogram_point(point: Any, data: Any) -> Row:
    return (
        *_times(point),
        point.count,  # Count
        point.sum,  # Sum
        list(point.bucket_counts),  # BucketCounts
        list(point.explicit_bounds),  # ExplicitBounds
        *_exemplar_columns(point),  # Exemplars.*
        point.flags,  # Flags
        point.min,  # Min
        point.max,  # Max
        data.aggregation_temporality,  # AggregationTemporality
    )


def _exponential_histogram_point(point: Any, data: Any) -> Row:
    return (
        *_times(point),
        point.count,  # Count
        point.sum,  # Sum
        point.scale,  # Scale
        point.zero_count,  # ZeroCount
        point.positive.offset,  # PositiveOffset
        list(point.positive.bucket_counts),  # PositiveBucketCounts
        point.negative.offset,  # NegativeOffset
        list(point.negative.bucket_counts),  # NegativeBucketCounts
        *_exemplar_columns(point),  # Exemplars.*
        point.flags,  # Flags
        point.min,  # Min
        point.max,  # Max
        data.aggregation_temporality,  # AggregationTemporality
    )


def _summary_point(point: Any, data: Any) -> Row:
    return (
        *_times(point),
        point.count,  # Count
        point.sum,  # Sum
        [q.quantile for q in point.quantile_values],  # ValueAtQuantiles.Quantile
        [q.value for q in point.quantile_values],  # ValueAtQuantiles.Value
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
