"""The OpenTelemetry SDK set up for one Python agent run: tracer, meter and logger providers
exporting over OTLP, the run's root span parented by ``TRACEPARENT``, and a bounded flush at
exit.

Never breaks the script: exports that fail (receiver down, wrong endpoint) are dropped
quietly, and the flush at exit is bounded by ``EXIT_FLUSH_S`` in total, so the exit code and
the run time stay the script's own.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from opentelemetry import context, metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agent_otel.environment import (
    GRPC,
    ExportSettings,
    debug_enabled,
    export_settings,
    resource_attributes,
)
from agent_otel.instrument import instrument_clients
from receiver.agents.codex_shim import RUN_KEYS

# One export attempt (retries included) may take this long; the exit flush of all three
# signals, run side by side, this long in total.
EXPORT_TIMEOUT_S = 2.0
EXIT_FLUSH_S = 3.0
METRIC_INTERVAL_MS = 10_000
ROOT_SPAN = "python_agent.run"
# Silent unless debugging: what the SDK and its exporters log when an export fails, and the
# GenAI util's warning that `true` is not a content mode (the official instrumentation's
# default path, which agent_otel uses, takes `true`).
_QUIET_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk", "opentelemetry.util.genai")


@dataclass
class AgentRun:
    """What ``agent_otel.configure`` set up; ``run_id`` finds the run in the receiver
    (``otel-receiver tree <run_id>``)."""

    run_id: str
    service_name: str
    endpoint: str
    protocol: str
    instrumented: list[str]
    _shutdowns: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _closed: bool = field(default=False, repr=False)

    def shutdown(self, timeout: float = EXIT_FLUSH_S) -> None:
        """End the root span and flush everything, within ``timeout`` seconds (runs at exit;
        call it earlier to flush before a long idle period)."""
        if self._closed:
            return
        self._closed = True
        threads = [threading.Thread(target=_quietly(f), daemon=True) for f in self._shutdowns]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))


def _quietly(function: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            function()
        except Exception as exc:  # never surfaces in the user's script
            logging.getLogger("agent_otel").debug("shutdown failed: %s", exc)

    return run


def _exporters(settings: ExportSettings) -> tuple[object, object, object]:
    """Span, metric and log exporters for ``settings`` (gRPC or HTTP/protobuf)."""
    headers = {"authorization": f"Bearer {settings.token}"} if settings.token else None
    if settings.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        credentials = None
        if settings.ca_file and settings.endpoint.startswith("https://"):
            import grpc

            with open(settings.ca_file, "rb") as ca:
                credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
        common: dict[str, object] = {
            "endpoint": settings.endpoint,
            "headers": headers,
            "timeout": EXPORT_TIMEOUT_S,
            "credentials": credentials,
        }
        return OTLPSpanExporter(**common), OTLPMetricExporter(**common), OTLPLogExporter(**common)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    def http(signal: str) -> dict[str, object]:
        return {
            "endpoint": f"{settings.endpoint}/v1/{signal}",
            "headers": headers,
            "timeout": EXPORT_TIMEOUT_S,
            "certificate_file": settings.ca_file or None,
        }

    return (
        OTLPSpanExporter(**http("traces")),
        OTLPMetricExporter(**http("metrics")),
        OTLPLogExporter(**http("logs")),
    )


def _resource(attributes: Mapping[str, str]) -> Resource:
    """The SDK's resource (it also reads ``OTEL_RESOURCE_ATTRIBUTES``) with ``attributes`` on
    top, and no outer run's stamps that ``attributes`` does not replace."""
    created = Resource.create(dict(attributes))
    kept = {k: v for k, v in created.attributes.items() if k not in RUN_KEYS or k in attributes}
    return Resource(kept, created.schema_url)


def _quiet_export_errors(debug: bool) -> None:
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("agent_otel: %(name)s: %(message)s"))
        logging.getLogger("agent_otel").addHandler(handler)
        logging.getLogger("agent_otel").setLevel(logging.DEBUG)
        return
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def start(
    service_name: str,
    task_id: str | None,
    ticket_id: str | None,
    env: Mapping[str, str] = os.environ,
) -> AgentRun:
    """Set up the providers, instrument the clients, start the root span; see ``configure``."""
    _quiet_export_errors(debug_enabled(env))
    settings = export_settings(env)
    attributes = resource_attributes(env, service_name, task_id, ticket_id)
    resource = _resource(attributes)
    span_exporter, metric_exporter, log_exporter = _exporters(settings)

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter, export_timeout_millis=EXPORT_TIMEOUT_S * 1000)
    )
    reader = PeriodicExportingMetricReader(
        metric_exporter,
        export_interval_millis=METRIC_INTERVAL_MS,
        export_timeout_millis=EXPORT_TIMEOUT_S * 1000,
    )
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[reader], shutdown_on_exit=False
    )
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter, export_timeout_millis=EXPORT_TIMEOUT_S * 1000)
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    set_logger_provider(logger_provider)

    carrier = {name.lower(): env[name] for name in ("TRACEPARENT", "TRACESTATE") if env.get(name)}
    parent = TraceContextTextMapPropagator().extract(carrier)
    root = tracer_provider.get_tracer("agent_otel").start_span(
        ROOT_SPAN, context=parent, attributes={"agent.run.id": attributes["agent.run.id"]}
    )
    # Attached for the life of the script: every span created later is the root span's child.
    context.attach(trace.set_span_in_context(root, parent))
    instrumented = instrument_clients(tracer_provider, meter_provider, logger_provider)

    def flush_traces() -> None:
        root.end()
        tracer_provider.shutdown()

    run = AgentRun(
        run_id=attributes["agent.run.id"],
        service_name=service_name,
        endpoint=settings.endpoint,
        protocol=settings.protocol,
        instrumented=instrumented,
        _shutdowns=[
            flush_traces,
            lambda: meter_provider.shutdown(timeout_millis=EXPORT_TIMEOUT_S * 1000),
            logger_provider.shutdown,
        ],
    )
    atexit.register(run.shutdown)
    logging.getLogger("agent_otel").debug(
        "run %s exporting to %s (%s); instrumented: %s",
        run.run_id,
        settings.endpoint,
        settings.protocol,
        ", ".join(instrumented) or "nothing",
    )
    return run
