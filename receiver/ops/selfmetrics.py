"""Self-metrics: what the receiver is doing, in Prometheus format on ``/metrics``.

Every metric lives on prometheus-client's default registry, so the counters other modules
define there (``receiver.processors.redact``'s redaction counters, ``receiver.ingest.auth``'s
failures) and the client's own process and Python collectors (CPU seconds, resident memory,
open file descriptors, GC) are served too. The endpoint listens on ``metrics.listen`` (default
``127.0.0.1:9464``; loopback, since it carries no authentication) on the daemon's event loop.

| metric | labels | meaning |
|---|---|---|
| ``otel_receiver_items_received_total`` | signal | spans, log records, metric points stored |
| ``otel_receiver_items_rejected_total`` | signal, reason | items refused (partial success) |
| ``otel_receiver_requests_rejected_total`` | signal, reason | whole requests refused |
| ``otel_receiver_values_truncated_total`` | signal | values cut to the value length limit |
| ``otel_receiver_received_bytes_total`` | signal | request bytes, after decompression |
| ``otel_receiver_batch_rows`` | table | rows per ClickHouse insert (histogram) |
| ``otel_receiver_insert_duration_seconds`` | table | ClickHouse insert latency (histogram) |
| ``otel_receiver_clickhouse_errors_total`` | kind, code | failed inserts, by error class |
| ``otel_receiver_spool_bytes`` / ``_spool_files`` | | batches waiting on disk |
| ``otel_receiver_queue_bytes`` | | request bytes waiting for storage (bounded) |
| ``otel_receiver_inflight_bytes`` / ``_requests`` | | admitted, not yet answered (bounded) |
| ``otel_receiver_auth_failures_total`` | transport, reason | refused credentials |
| ``otel_receiver_alert_evaluations_total`` | alert, outcome | alert rule evaluations |
| ``otel_receiver_alerts_firing`` | alert | label sets firing |
| ``otel_receiver_alert_notifications_total`` | alert, state, outcome | alert webhook POSTs |
| ``otel_receiver_alert_webhook_failures_total`` | alert, reason | failed webhook attempts |
| ``otel_receiver_batches`` | state | batches queued, in flight, spooled, retrying, dead |
| ``otel_receiver_dead_letter_bytes`` / ``_rows_total`` | / table | dead letters on disk |
| ``otel_receiver_healthy`` / ``_health_problem`` | / problem, severity | receiver health |

The delivery metrics are declared in ``receiver.delivery.state`` and ``receiver.ops.health``,
the admission gauges in ``receiver.ingest.admission``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from receiver.config import ConfigError, parse_host_port

ITEMS_RECEIVED = Counter(
    "otel_receiver_items_received_total",
    "Spans, log records and metric data points accepted for storage",
    ["signal"],
)
ITEMS_REJECTED = Counter(
    "otel_receiver_items_rejected_total",
    "Items refused with OTLP partial success, by reason",
    ["signal", "reason"],
)
REQUESTS_REJECTED = Counter(
    "otel_receiver_requests_rejected_total",
    "Whole Export requests refused, by reason",
    ["signal", "reason"],
)
VALUES_TRUNCATED = Counter(
    "otel_receiver_values_truncated_total",
    "Attribute values and log bodies cut to limits.max_attribute_value_bytes",
    ["signal"],
)
RECEIVED_BYTES = Counter(
    "otel_receiver_received_bytes_total",
    "Export request bytes received (after decompression)",
    ["signal"],
)
BATCH_ROWS = Histogram(
    "otel_receiver_batch_rows",
    "Rows per ClickHouse insert",
    ["table"],
    buckets=(1, 10, 100, 1000, 5000, 10_000, 50_000, 100_000),
)
INSERT_SECONDS = Histogram(
    "otel_receiver_insert_duration_seconds",
    "ClickHouse insert latency, successful or not",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLICKHOUSE_ERRORS = Counter(
    "otel_receiver_clickhouse_errors_total",
    "Failed ClickHouse inserts: kind transient, data or configuration; code the error code",
    ["kind", "code"],
)
SPOOL_BYTES = Gauge("otel_receiver_spool_bytes", "Bytes of batch files waiting in the spool")
SPOOL_FILES = Gauge("otel_receiver_spool_files", "Batch files waiting in the spool")
QUEUE_BYTES = Gauge(
    "otel_receiver_queue_bytes", "Request bytes waiting for their rows to be stored"
)


@functools.cache
def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set: prometheus-client takes a
    lock and builds a key on every ``labels`` call, which the per-request paths can skip.
    Only for label sets from a small fixed set (signals, reasons, tables)."""
    return metric.labels(*labels)


def count_clickhouse_error(kind: str, code: int | None) -> None:
    """``kind``: transient, data or configuration (``receiver.store.errors``)."""
    CLICKHOUSE_ERRORS.labels(kind, "none" if code is None else str(code)).inc()


def watch(gauge: Gauge, read: Callable[[], float]) -> None:
    """Let ``gauge`` read its value at scrape time (spool size, queue depth)."""
    gauge.set_function(read)


class MetricsServer:
    """``GET /metrics`` (and ``/``) on its own port, served on the running event loop."""

    def __init__(self, listen: str) -> None:
        self._host, self._port = parse_host_port(listen, "metrics_listen")
        self._listen = listen
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"metrics_listen: cannot listen on {self._listen} "
                f"({exc.strerror or exc}; address in use or not local)"
            ) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
