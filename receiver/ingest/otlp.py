"""What every OTLP front end shares: the per-signal table and the Export response.

The gRPC and HTTP front ends differ only in how bytes arrive and how answers are framed; what
a signal is called, which messages it uses and how a partial success is reported live here,
once, so the two can never answer the same request differently.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from receiver.ingest.decode import Decoded


class Signal(NamedTuple):
    """One OTLP signal as the front ends see it."""

    service: str  # the gRPC service name
    response_type: Any  # the Export response message class
    rejected_field: str  # the partial-success counter field
    request_name: str  # the Export request message name, for error messages
    request_type: Any  # the Export request message class
    http_path: str  # the OTLP/HTTP path


SERVICES: dict[str, Signal] = {
    "traces": Signal(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        ExportTraceServiceResponse,
        "rejected_spans",
        "ExportTraceServiceRequest",
        ExportTraceServiceRequest,
        "/v1/traces",
    ),
    "metrics": Signal(
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        ExportMetricsServiceResponse,
        "rejected_data_points",
        "ExportMetricsServiceRequest",
        ExportMetricsServiceRequest,
        "/v1/metrics",
    ),
    "logs": Signal(
        "opentelemetry.proto.collector.logs.v1.LogsService",
        ExportLogsServiceResponse,
        "rejected_log_records",
        "ExportLogsServiceRequest",
        ExportLogsServiceRequest,
        "/v1/logs",
    ),
}


def export_response(signal: str, decoded: Decoded) -> Any:
    """The Export response for a stored request: empty, or with OTLP partial success (count
    and reason) when some items were rejected."""
    spec = SERVICES[signal]
    response = spec.response_type()
    if decoded.rejected:
        setattr(response.partial_success, spec.rejected_field, decoded.rejected)
        response.partial_success.error_message = decoded.message
    return response


def invalid_request_message(signal: str, reason: object) -> str:
    """The error message for a body that is not the signal's Export request."""
    return f"request body is not a valid {SERVICES[signal].request_name}: {reason}"
