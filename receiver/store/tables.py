"""The receiver's tables and the columns it fills, in DDL order (see ``schema/``).

Columns the DDL fills by itself (defaults, materialized columns) are not listed: inserts name
exactly these columns, so the decoder's row tuples and the inserts can never disagree.
"""

from __future__ import annotations

TRACES = "otel_traces"
LOGS = "otel_logs"
METRICS_GAUGE = "otel_metrics_gauge"
METRICS_SUM = "otel_metrics_sum"
METRICS_HISTOGRAM = "otel_metrics_histogram"
METRICS_EXPONENTIAL_HISTOGRAM = "otel_metrics_exponential_histogram"
METRICS_SUMMARY = "otel_metrics_summary"
METRIC_TABLES = (
    METRICS_GAUGE,
    METRICS_SUM,
    METRICS_HISTOGRAM,
    METRICS_EXPONENTIAL_HISTOGRAM,
    METRICS_SUMMARY,
)
AGENT_SPANS = "agent_spans"
AGENT_RUN_SIGHTINGS = "agent_run_sightings"

_METRIC_COMMON = (
    "ResourceAttributes",
    "ResourceSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "ScopeDroppedAttrCount",
    "ScopeSchemaUrl",
    "ServiceName",
    "MetricName",
    "MetricDescription",
    "MetricUnit",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
)
_EXEMPLARS = (
    "Exemplars.FilteredAttributes",
    "Exemplars.TimeUnix",
    "Exemplars.Value",
    "Exemplars.SpanId",
    "Exemplars.TraceId",
)

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    TRACES: (
        "Timestamp",
        "TraceId",
        "SpanId",
        "ParentSpanId",
        "TraceState",
        "SpanName",
        "SpanKind",
        "ServiceName",
        "ResourceAttributes",
        "ScopeName",
        "ScopeVersion",
        "SpanAttributes",
        "Duration",
        "StatusCode",
        "StatusMessage",
        "Events.Timestamp",
        "Events.Name",
        "Events.Attributes",
        "Links.TraceId",
        "Links.SpanId",
        "Links.TraceState",
        "Links.Attributes",
    ),
    LOGS: (
        "Timestamp",
        "TraceId",
        "SpanId",
        "TraceFlags",
        "SeverityText",
        "SeverityNumber",
        "ServiceName",
        "Body",
        "ResourceSchemaUrl",
        "ResourceAttributes",
        "ScopeSchemaUrl",
        "ScopeName",
        "ScopeVersion",
        "ScopeAttributes",
        "LogAttributes",
        "EventName",
    ),
    METRICS_GAUGE: (*_METRIC_COMMON, "Value", "Flags", *_EXEMPLARS),
    METRICS_SUM: (
        *_METRIC_COMMON,
        "Value",
        "Flags",
        *_EXEMPLARS,
        "AggregationTemporality",
        "IsMonotonic",
    ),
    METRICS_HISTOGRAM: (
        *_METRIC_COMMON,
        "Count",
        "Sum",
        "BucketCounts",
        "ExplicitBounds",
        *_EXEMPLARS,
        "Flags",
        "Min",
        "Max",
        "AggregationTemporality",
    ),
    METRICS_EXPONENTIAL_HISTOGRAM: (
        *_METRIC_COMMON,
        "Count",
        "Sum",
        "Scale",
        "ZeroCount",
        "PositiveOffset",
        "PositiveBucketCounts",
        "NegativeOffset",
        "NegativeBucketCounts",
        *_EXEMPLARS,
        "Flags",
        "Min",
        "Max",
        "AggregationTemporality",
    ),
    METRICS_SUMMARY: (
        *_METRIC_COMMON,
        "Count",
        "Sum",
        "ValueAtQuantiles.Quantile",
        "ValueAtQuantiles.Value",
        "Flags",
    ),
    AGENT_SPANS: (
        "SpanId",
        "TraceId",
        "ParentSpanId",
        "RunId",
        "Kind",
        "SpanName",
        "Timestamp",
        "Duration",
    ),
    AGENT_RUN_SIGHTINGS: (
        "RunId",
        "Kind",
        "ServiceName",
        "FirstSeen",
        "LastSeen",
        "TraceIds",
        "LaunchId",
        "TaskId",
        "TicketId",
        "StampedParentRunId",
        "StampedParentSpanId",
        "ThreadId",
    ),
}
