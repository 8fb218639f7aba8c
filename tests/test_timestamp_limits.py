"""Timestamps ClickHouse should not get are rejected with OTLP partial success: further in the
future than ``limits.max_future_skew``, or older than the table TTL (``clickhouse.ttl_days``).
"""

from __future__ import annotations

import os
import time

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1 import logs_pb2

from receiver.ingest.limits import Limits

from .decoder_paths import decode, decoder_path  # noqa: F401 (autouse: each test on both paths)
from .load import DAY_NS, spans_on_days

pytestmark = pytest.mark.unit

LIMITS = Limits(max_future_skew=86_400, max_age_days=30)


def screen_traces(days_ago: list[int], limits: Limits = LIMITS) -> tuple[int, list[str], int]:
    body = spans_on_days([os.urandom(8) for _ in days_ago], days_ago)
    decoded = decode("traces", body, "", limits)
    return decoded.rejected, decoded.reasons, len(decoded.rows.get("otel_traces", []))


def test_a_broken_clock_150_days_ahead_is_rejected_naming_the_setting() -> None:
    rejected, reasons, stored = screen_traces([-d for d in range(2, 152)])
    assert (rejected, stored) == (150, 0)
    assert "limits.max_future_skew" in reasons[0]


def test_within_the_skew_and_the_ttl_is_kept() -> None:
    rejected, _, stored = screen_traces([0, 1, 29, -0])
    assert (rejected, stored) == (0, 4)


def test_older_than_the_ttl_is_rejected_the_rest_kept() -> None:
    rejected, reasons, stored = screen_traces([0, 31, 400])
    assert (rejected, stored) == (2, 1)
    assert "clickhouse.ttl_days" in reasons[0]


def test_no_ttl_keeps_any_past() -> None:
    rejected, _, stored = screen_traces([0, 400, 4000], Limits(max_future_skew=86_400))
    assert (rejected, stored) == (0, 3)


def test_log_records_without_a_time_use_the_observed_time() -> None:
    now = time.time_ns()
    records = [
        logs_pb2.LogRecord(observed_time_unix_nano=now + 3 * DAY_NS),
        logs_pb2.LogRecord(time_unix_nano=now, observed_time_unix_nano=now + 3 * DAY_NS),
        logs_pb2.LogRecord(),  # no time at all: left to decode
    ]
    body = ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]
    ).SerializeToString()
    assert LIMITS.screen("logs", body).rejected == 1
