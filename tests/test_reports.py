"""The named reports (``sql/*.sql``), the ``report`` / ``reports`` / ``sessions`` commands and the
Grafana dashboard, against the real ClickHouse.

One data set per ClickHouse server, sent through a real receiver over OTLP/gRPC: the real
Claude Code / Codex capture (``main_grpc``, moved to the present: rows older than the TTL are
dropped at insert) plus generated telemetry with known totals. The generated data has two
Claude Code sessions with the same usage, one exporting DELTA metrics and one CUMULATIVE
metrics (re-exported every interval, with a counter reset when the session is resumed), so
every metric-based figure must come out the same for both; and three codex runs: one stamped
by the codex shim and linked by span, one without the shim (span link only), one stamped only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.ingest.otlp import SERVICES
from receiver.query import reports
from receiver.store.sink import connect

from .capture_files import FIXTURES, signal_of
from .receiver_process import REPO, ReceiverProcess, wait_for

MINUTE = 60 * 10**9
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
REQUEST_TYPES = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}

# The real capture (main_grpc): its identities and what it holds.
CAPTURE_SESSION = "b08ba7ad-8bff-4a48-8d31-9ae659a67575"
CAPTURE_THREAD = "01a2019b-153d-7720-b50e-f5249e2b83da"
CAPTURE_USER = "bfdb0cfdf65c3f9762702b17894f61f6f82d56ad5d7db55bf2c403d08fd16bec"
CAPTURE_END_NS = 1_795_323_271_000_000_000  # just after the captured claude process exited

# Generated identities.
SESSION_DELTA = "5e55a0d0-0000-4000-8000-00000000de17"
SESSION_CUMULATIVE = "5e55a0d0-0000-4000-8000-0000000c0ba1"
USER_A, USER_B, USER_C = ("user-" + c * 59 for c in "abc")
SESSION_OLD_A = "5e55a0d0-0000-4000-8000-0000000a0010"  # 10 days ago, user a
SESSION_OLD_C3 = "5e55a0d0-0000-4000-8000-0000000c0003"  # 3 days ago, user c
SESSION_OLD_C10 = "5e55a0d0-0000-4000-8000-0000000c0010"  # 10 days ago, user c
DAY = 86400 * 10**9
RUN_SHIMMED, RUN_STAMPED = "run-cx1-shimmed", "run-cx3-stamped"
THREAD_SHIMMED = "0a000000-0000-4000-8000-000000000001"
THREAD_UNSHIMMED = "0a000000-0000-4000-8000-000000000002"
THREAD_STAMPED = "0a000000-0000-4000-8000-000000000003"
LAUNCH = "launch-gen-1"
SONNET, HAIKU, OPUS = "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-5-5"
GPT, GPT_MINI = "gpt-5.4", "gpt-5.4-mini"


# ---------------------------------------------------------------------------------------------
# Building OTLP requests


def value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in attributes.items()]


def resource(attributes: dict[str, Any]) -> Resource:
    return Resource(attributes=kvs(attributes))


@dataclass
class Usage:
    """One metric increment: ``amount`` added to series (metric, attributes) at export ``at``."""

    at: int  # export index
    metric: str
    attributes: dict[str, Any]
    amount: float


@dataclass
class ClaudeSession:
    """A generated Claude Code session: its usage, events and spans, with known totals."""

    session: str
    user: str
    temporality: int
    base_ns: int
    usage: list[Usage] = field(default_factory=list)

    def at(self, minutes: float) -> int:
        return self.base_ns + int(minutes * MINUTE)

    # Exports every 3 minutes; the session is resumed (a new process: cumulative counters
    # restart with a new StartTimeUnix) between exports 1 and 2.
    EXPORT_MINUTES = (0, 3, 6, 9)
    RESUMED_AT_MINUTES = 5
    STARTED_AT_MINUTES = -1

    def common(self) -> dict[str, Any]:
        return {"user.id": self.user, "session.id": self.session, "terminal.type": "dumb"}

    def resource(self) -> Resource:
        return resource(
            {"service.name": "claude-code", "service.version": "2.1.330", "cc.launch.id": LAUNCH}
        )

    def metrics_requests(self) -> list[tuple[int, ExportMetricsServiceRequest]]:
        """(export time, request) for every export, in the session's temporality."""
        out = []
        totals: dict[tuple[str, tuple], float] = {}
        series_attrs: dict[tuple[str, tuple], dict[str, Any]] = {}
        for index, minute in enumerate(self.EXPORT_MINUTES):
            now = self.at(minute)
            if minute > self.RESUMED_AT_MINUTES >= self.EXPORT_MINUTES[index - 1]:
                totals.clear()  # a new process: cumulative series start again from zero
                series_attrs.clear()
            process_start = self.at(
                self.RESUMED_AT_MINUTES if minute > self.RESUMED_AT_MINUTES else -1
            )
            previous = self.at(self.EXPORT_MINUTES[index - 1]) if index else process_start
            points: dict[str, list[tuple[dict[str, Any], float, int]]] = {}
            if self.temporality == DELTA:
                for u in self.usage:
                    if u.at == index:
                        start = max(previous, process_start)
                        points.setdefault(u.metric, []).append((u.attributes, u.amount, start))
            else:
                for u in self.usage:
                    if u.at == index:
                        key = (u.metric, tuple(sorted(u.attributes.items())))
                        totals[key] = totals.get(key, 0.0) + u.amount
                        series_attrs[key] = u.attributes
                for key, total in totals.items():  # every series, changed or not
                    points.setdefault(key[0], []).append((series_attrs[key], total, process_start))
            metrics = []
            for name, rows in points.items():
                data_points = [
                    metrics_pb2.NumberDataPoint(
                        attributes=kvs({**self.common(), **attrs}),
                        start_time_unix_nano=start,
                        time_unix_nano=now,
                        as_double=amount,
                    )
                    for attrs, amount, start in rows
                ]
                metrics.append(
                    metrics_pb2.Metric(
                        name=name,
                        unit="USD" if name.endswith("cost.usage") else "",
                        sum=metrics_pb2.Sum(
                            data_points=data_points,
                            aggregation_temporality=self.temporality,
                            is_monotonic=True,
                        ),
                    )
                )
            request = ExportMetricsServiceRequest(
                resource_metrics=[
                    metrics_pb2.ResourceMetrics(
                        resource=self.resource(),
                        scope_metrics=[
                            metrics_pb2.ScopeMetrics(
                                scope=InstrumentationScope(
                                    name="com.anthropic.claude_code", version="2.1.330"
                                ),
                                metrics=metrics,
                            )
                        ],
                    )
                ]
            )
            out.append((now, request))
        return out

    def event(self, minutes: float, name: str, **attributes: Any) -> logs_pb2.LogRecord:
        return logs_pb2.LogRecord(
            time_unix_nano=self.at(minutes),
            observed_time_unix_nano=self.at(minutes),
            body=AnyValue(string_value=f"claude_code.{name}"),
            attributes=kvs({**self.common(), "event.name": name, **attributes}),
        )

    def events(self) -> list[logs_pb2.LogRecord]:
        e = self.event

        usage = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
        timing = ("cost_usd", "duration_ms", "ttft_ms")

        def api(minutes: float, model: str, *figures: float) -> logs_pb2.LogRecord:
            named = dict(zip(usage + timing, figures, strict=True))
            return e(minutes, "api_request", model=model, **named)

        def error(minutes: float, model: str, message: str, status: str, ms: int) -> Any:
            return e(
                minutes, "api_error", model=model, error=message, status_code=status, duration_ms=ms
            )

        def tool(minutes: float, name: str, ok: bool, duration: int, **more: Any) -> Any:
            return e(
                minutes,
                "tool_result",
                tool_name=name,
                success=str(ok).lower(),
                duration_ms=str(duration),
                **more,
            )

        return [
            e(0.2, "user_prompt", prompt_length="13", prompt="<REDACTED>"),
            api(0.5, SONNET, 100, 20, 1000, 50, 0.01, 1200, 300),
            error(1.0, SONNET, "Overloaded", "529", 5000),
            tool(1.2, "Bash", True, 1000),
            error(1.5, SONNET, "Overloaded (retry 2)", "529", 4000),
            api(2.0, SONNET, 200, 40, 0, 0, 0.02, 800, 200),
            tool(2.2, "Bash", False, 3000, error="Exit code 1"),
            tool(2.3, "Read", True, 10),
            e(2.35, "tool_decision", tool_name="Edit", decision="accept", source="config"),
            tool(2.4, "Edit", True, 20),
            api(2.5, HAIKU, 10, 5, 0, 0, 0.001, 100, 50),
            e(5.2, "user_prompt", prompt_length="7", prompt="<REDACTED>"),
            api(5.5, SONNET, 50, 10, 0, 0, 0.005, 600, 150),
            tool(6.0, "Edit", True, 40),
            error(7.0, HAIKU, "invalid_request_error", "400", 90),
            api(8.0, SONNET, 20, 4, 0, 0, 0.004, 400, 100),
            tool(8.5, "Bash", True, 2000),
        ]

    def logs_request(self, records: list[logs_pb2.LogRecord] | None = None) -> Any:
        return ExportLogsServiceRequest(
            resource_logs=[
                logs_pb2.ResourceLogs(
                    resource=self.resource(),
                    scope_logs=[
                        logs_pb2.ScopeLogs(
                            scope=InstrumentationScope(name="com.anthropic.claude_code.events"),
                            log_records=self.events() if records is None else records,
                        )
                    ],
                )
            ]
        )

    def spans(self, trace_id: bytes, tool_execution_id: bytes) -> list[trace_pb2.Span]:
        """interaction (60 s) -> llm_request (1.2 s), tool Bash (35 s) -> tool.execution (33 s)."""
        ids = [os.urandom(8) for _ in range(3)]
        interaction, llm, tool = ids
        attrs = self.common()

        def span(name: str, sid: bytes, parent: bytes, start: float, seconds: float, **more: Any):
            return trace_pb2.Span(
                trace_id=trace_id,
                span_id=sid,
                parent_span_id=parent,
                name=name,
                start_time_unix_nano=self.at(start),
                end_time_unix_nano=self.at(start) + int(seconds * 10**9),
                attributes=kvs({**attrs, **more}),
            )

        return [
            span("claude_code.interaction", interaction, b"", 0.1, 60, **{"span.type": "x"}),
            span("claude_code.llm_request", llm, interaction, 0.4, 1.2, model=SONNET),
            span("claude_code.tool", tool, interaction, 0.9, 35, tool_name="Bash"),
            span("claude_code.tool.execution", tool_execution_id, tool, 0.95, 33),
        ]


def claude_usage() -> list[Usage]:
    """The same usage for both generated sessions (export index, metric, attributes, amount)."""
    cost, tokens = "claude_code.cost.usage", "claude_code.token.usage"
    rows = [
        (0, "claude_code.session.count", {"start_type": "fresh"}, 1),
        (0, cost, {"model": SONNET}, 0.01),
        (0, tokens, {"model": SONNET, "type": "input"}, 100),
        (0, tokens, {"model": SONNET, "type": "output"}, 20),
        (0, tokens, {"model": SONNET, "type": "cacheRead"}, 1000),
        (0, tokens, {"model": SONNET, "type": "cacheCreation"}, 50),
        (0, "claude_code.active_time.total", {"type": "cli"}, 30),
        (0, "claude_code.lines_of_code.count", {"type": "added"}, 100),
        (0, "claude_code.lines_of_code.count", {"type": "removed"}, 10),
        (1, cost, {"model": SONNET}, 0.02),
        (1, cost, {"model": HAIKU}, 0.001),
        (1, tokens, {"model": SONNET, "type": "input"}, 200),
        (1, tokens, {"model": SONNET, "type": "output"}, 40),
        (1, tokens, {"model": HAIKU, "type": "input"}, 10),
        (1, tokens, {"model": HAIKU, "type": "output"}, 5),
        (1, "claude_code.active_time.total", {"type": "cli"}, 45),
        (1, "claude_code.commit.count", {}, 1),
        (
            1,
            "claude_code.code_edit_tool.decision",
            {"decision": "accept", "tool_name": "Edit", "language": "Python"},
            3,
        ),
        (
            1,
            "claude_code.code_edit_tool.decision",
            {"decision": "reject", "tool_name": "Edit", "language": "Python"},
            1,
        ),
        # resumed: a new process
        (2, "claude_code.session.count", {"start_type": "resume"}, 1),
        (2, cost, {"model": SONNET}, 0.005),
        (2, tokens, {"model": SONNET, "type": "input"}, 50),
        (2, tokens, {"model": SONNET, "type": "output"}, 10),
        (2, "claude_code.lines_of_code.count", {"type": "added"}, 20),
        (2, "claude_code.lines_of_code.count", {"type": "removed"}, 5),
        (2, "claude_code.pull_request.count", {}, 1),
        (3, cost, {"model": SONNET}, 0.004),
        (3, tokens, {"model": SONNET, "type": "input"}, 20),
        (3, tokens, {"model": SONNET, "type": "output"}, 4),
        (3, "claude_code.active_time.total", {"type": "cli"}, 25),
    ]
    return [Usage(at, metric, attrs, float(amount)) for at, metric, attrs, amount in rows]


@dataclass
class CodexRun:
    """A generated codex exec run: its log events (and the codex.exec span when linked)."""

    thread: str
    model: str
    base_ns: int
    stamps: dict[str, str]  # the codex shim's resource attributes (empty: no shim)

    def at(self, minutes: float) -> int:
        return self.base_ns + int(minutes * MINUTE)

    def resource(self) -> Resource:
        return resource({"service.name": "codex_exec", "service.version": "0.169.0", **self.stamps})

    def event(self, minutes: float, name: str, **attributes: Any) -> logs_pb2.LogRecord:
        common = {
            "conversation.id": self.thread,
            "app.version": "0.169.0",
            "originator": "codex_exec",
            "model": self.model,
            "slug": self.model,
        }
        return logs_pb2.LogRecord(
            time_unix_nano=self.at(minutes),
            event_name="event otel/src/events/session_telemetry.rs:1",
            severity_number=9,
            severity_text="INFO",
            attributes=kvs({"event.name": name, **attributes, **common}),
        )

    def completed(self, minutes: float, i: int, o: int, cached: int, reasoning: int) -> Any:
        return self.event(
            minutes,
            "codex.sse_event",
            **{
                "event.kind": "response.completed",
                "input_token_count": str(i),
                "output_token_count": str(o),
                "cached_token_count": cached,
                "cache_write_token_count": 0,
                "reasoning_token_count": reasoning,
                "tool_token_count": str(i + o),
            },
        )

    def logs_request(self, records: list[logs_pb2.LogRecord]) -> ExportLogsServiceRequest:
        return ExportLogsServiceRequest(
            resource_logs=[
                logs_pb2.ResourceLogs(
                    resource=self.resource(),
                    scope_logs=[
                        logs_pb2.ScopeLogs(
                            scope=InstrumentationScope(name="codex_otel.log_only"),
                            log_records=records,
                        )
                    ],
                )
            ]
        )

    def request(self, minutes: float, ms: int, status: int, error: str = "") -> Any:
        attributes = {"http.response.status_code": status, "duration_ms": str(ms)}
        return self.event(
            minutes,
            "codex.api_request",
            **attributes,
            **({"error.message": error} if error else {}),
        )

    def tool(self, minutes: float, name: str, call: str, ms: int, ok: bool) -> Any:
        return self.event(
            minutes,
            "codex.tool_result",
            tool_name=name,
            call_id=call,
            duration_ms=str(ms),
            success=str(ok).lower(),
            output="...",
        )

    def full_run(self) -> ExportLogsServiceRequest:
        """1 prompt, 3 API requests (one HTTP 500), 2 completions, 3 tools (one failed)."""
        e = self.event
        sse = "codex.sse_event"
        return self.logs_request(
            [
                e(1.0, "codex.conversation_starts", provider_name="Mock"),
                e(1.0, "codex.user_prompt", prompt_length="6", prompt="[REDACTED]"),
                self.request(1.1, 400, 200),
                e(1.1, sse, **{"event.kind": "response.created", "duration_ms": "0"}),
                e(1.1, "codex.turn_ttft", duration_ms="120"),
                e(1.15, sse, **{"event.kind": "response.completed", "duration_ms": "0"}),
                self.completed(1.15, 1000, 200, 300, 50),
                self.request(1.2, 100, 500, "upstream 500"),
                self.tool(1.2, "exec_command", "c1", 250, True),
                self.tool(1.25, "exec_command", "c2", 50, False),
                self.request(1.3, 600, 200),
                e(1.3, "codex.turn_ttft", duration_ms="80"),
                self.tool(1.3, "apply_patch", "c3", 30, True),
                self.completed(1.35, 500, 100, 0, 0),
            ]
        )

    def small_run(self) -> ExportLogsServiceRequest:
        """1 prompt, 1 API request, 1 completion."""
        return self.logs_request(
            [
                self.event(3.0, "codex.user_prompt", prompt_length="2", prompt="[REDACTED]"),
                self.request(3.1, 300, 200),
                self.completed(3.2, 40, 4, 0, 0),
            ]
        )

    def exec_span(self, trace_id: bytes, parent: bytes, start: float, seconds: float) -> Any:
        span = trace_pb2.Span(
            trace_id=trace_id,
            span_id=os.urandom(8),
            parent_span_id=parent,
            name="codex.exec",
            kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=self.at(start),
            end_time_unix_nano=self.at(start) + int(seconds * 10**9),
            attributes=kvs({"thread.id": self.thread, "thread.name": "codex-main"}),
        )
        return ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=self.resource(),
                    scope_spans=[
                        trace_pb2.ScopeSpans(
                            scope=InstrumentationScope(name="codex_exec"), spans=[span]
                        )
                    ],
                )
            ]
        )


@dataclass
class DataSet:
    """Everything sent, with the times the assertions need."""

    base_ns: int
    requests: list[tuple[str, Message]]
    delta: ClaudeSession
    cumulative: ClaudeSession
    tool_execution: dict[str, str]  # session -> its Bash tool.execution span id (hex)


def claude_traces(session: ClaudeSession, tool_execution: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=session.resource(),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=InstrumentationScope(name="com.anthropic.claude_code.tracing"),
                        spans=session.spans(os.urandom(16), tool_execution),
                    )
                ],
            )
        ]
    )


def shifted_capture(folder: str, end_ns: int) -> list[tuple[str, Message]]:
    """The real capture's requests, every timestamp moved so that it ends at ``end_ns``."""
    shift = end_ns - CAPTURE_END_NS

    def move(message: Message) -> None:
        for descriptor, v in message.ListFields():
            if descriptor.name.endswith("time_unix_nano") and v:
                setattr(message, descriptor.name, v + shift)
            elif descriptor.message_type is not None:
                items = [v] if isinstance(v, Message) else v
                for item in items:
                    if isinstance(item, Message):
                        move(item)

    out = []
    for path in sorted((FIXTURES / folder).glob("*.pb")):
        request = REQUEST_TYPES[signal_of(path)].FromString(path.read_bytes())
        move(request)
        out.append((signal_of(path), request))
    return out


def build_dataset(now_ns: int) -> DataSet:
    """The real capture (ending 5 minutes ago) plus generated data (from 40 minutes ago)."""
    base = now_ns - 40 * MINUTE
    delta = ClaudeSession(SESSION_DELTA, USER_A, DELTA, base, claude_usage())
    cumulative = ClaudeSession(SESSION_CUMULATIVE, USER_B, CUMULATIVE, base, claude_usage())
    tool_exec = {SESSION_DELTA: os.urandom(8), SESSION_CUMULATIVE: os.urandom(8)}
    requests: list[tuple[str, Message]] = shifted_capture("main_grpc", now_ns - 5 * MINUTE)
    traces = {}
    for s in (delta, cumulative):
        trace_request = claude_traces(s, tool_exec[s.session])
        traces[s.session] = trace_request.resource_spans[0].scope_spans[0].spans[0].trace_id
        requests += [("logs", s.logs_request())]
        requests += [("metrics", r) for _, r in s.metrics_requests()]
        requests += [("traces", trace_request)]
    shimmed = CodexRun(
        THREAD_SHIMMED,
        GPT,
        base,
        {
            "agent.run.id": RUN_SHIMMED,
            "agent.parent.session.id": SESSION_DELTA,
            "agent.parent.span.id": tool_exec[SESSION_DELTA].hex(),
            "cc.launch.id": LAUNCH,
        },
    )
    unshimmed = CodexRun(THREAD_UNSHIMMED, GPT, base, {"cc.launch.id": LAUNCH})
    stamped = CodexRun(
        THREAD_STAMPED,
        GPT_MINI,
        base,
        {
            "agent.run.id": RUN_STAMPED,
            "agent.parent.session.id": SESSION_DELTA,
            "cc.launch.id": LAUNCH,
        },
    )
    requests += [
        ("traces", shimmed.exec_span(traces[SESSION_DELTA], tool_exec[SESSION_DELTA], 1.0, 30)),
        ("logs", shimmed.full_run()),
        (
            "traces",
            unshimmed.exec_span(traces[SESSION_CUMULATIVE], tool_exec[SESSION_CUMULATIVE], 2.9, 20),
        ),
        ("logs", unshimmed.small_run()),
        ("logs", stamped.small_run()),
    ]
    for session, user, days in (
        (SESSION_OLD_A, USER_A, 10),
        (SESSION_OLD_C3, USER_C, 3),
        (SESSION_OLD_C10, USER_C, 10),
    ):  # earlier activity, for weekly and monthly active users
        old = ClaudeSession(session, user, DELTA, now_ns - days * DAY)
        requests.append(("logs", old.logs_request([old.event(0, "user_prompt", prompt="x")])))
    return DataSet(base, requests, delta, cumulative, {k: v.hex() for k, v in tool_exec.items()})


def send_all(target: str, requests: list[tuple[str, Message]]) -> None:
    with grpc.insecure_channel(target) as channel:
        for signal, request in requests:
            method = f"/{SERVICES[signal][0]}/Export"
            channel.unary_unary(method)(request.SerializeToString(), timeout=10)


def table_of(metric: metrics_pb2.Metric) -> str:
    return "otel_metrics_" + {"exponential_histogram": "exponential_histogram"}.get(
        metric.WhichOneof("data"), metric.WhichOneof("data")
    )


def expected_rows(requests: list[tuple[str, Message]]) -> dict[str, int]:
    """Rows each table must hold once every request is stored."""
    rows: dict[str, int] = {"otel_traces": 0, "otel_logs": 0}
    for signal, request in requests:
        if signal == "traces":
            rows["otel_traces"] += sum(
                len(s.spans) for r in request.resource_spans for s in r.scope_spans
            )
        elif signal == "logs":
            rows["otel_logs"] += sum(
                len(s.log_records) for r in request.resource_logs for s in r.scope_logs
            )
        else:
            for r in request.resource_metrics:
                for s in r.scope_metrics:
                    for m in s.metrics:
                        points = getattr(m, m.WhichOneof("data")).data_points
                        rows[table_of(m)] = rows.get(table_of(m), 0) + len(points)
    return rows


# ---------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class Loaded:
    url: str
    database: str
    data: DataSet
    now_ns: int

    @property
    def base(self) -> int:
        return self.data.base_ns


@pytest.fixture(scope="module")
def loaded(clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """The data set, sent through a real receiver into a database of its own."""
    database = f"reports_{uuid.uuid4().hex[:12]}"
    workdir = tmp_path_factory.mktemp("reports_receiver")
    process = ReceiverProcess.serving(
        workdir / "receiver",
        clickhouse_url,
        database,
        data_dir=workdir / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    ch = connect(clickhouse_url)
    try:
        now_ns = time.time_ns()
        data = build_dataset(now_ns)
        send_all(process.grpc_target, data.requests)
        expected = expected_rows(data.requests)

        def stored() -> bool:
            return all(
                ch.query(f"SELECT count() FROM {database}.{t}").result_rows[0][0] == n
                for t, n in expected.items()
            )

        wait_for(stored, 30, f"rows {expected}", interval=0.2)
        process.stop()
        yield Loaded(clickhouse_url, database, data, now_ns)
    finally:
        if process.process and process.process.poll() is None:
            process.stop()
        ch.command(f"DROP DATABASE IF EXISTS {database}")
        ch.close()


@pytest.fixture(scope="module")
def ch(loaded: Loaded) -> Iterator[Client]:
    client = connect(loaded.url)
    yield client
    client.close()


def at(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def report(
    ch: Client,
    loaded: Loaded,
    name: str,
    since_ns: int | None = None,
    until_ns: int | None = None,
    **params: str,
) -> list[dict[str, Any]]:
    """Rows of a report as dicts; the window defaults to the generated data and the capture."""
    r = reports.get(name)
    since = at(since_ns if since_ns is not None else loaded.base - MINUTE)
    until = at(until_ns) if until_ns is not None else None
    values = reports.parameters(r, loaded.database, since, until, params)
    result = reports.run(ch, r, values)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out = {}
    for row in rows:
        key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        assert key not in out, f"duplicate {key}"
        out[key] = row
    return out


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (quantileExactInclusive, numpy default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sums(rows: list[dict[str, Any]], key: tuple[str, ...], fields: tuple[str, ...]) -> dict:
    """Rows summed over everything but ``key`` (e.g. over days, which may be two at midnight)."""
    out: dict[Any, dict[str, float]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        target = out.setdefault(k, dict.fromkeys(fields, 0))
        for f in fields:
            target[f] += row[f]
    return {k: {f: round(v, 9) for f, v in d.items()} for k, d in out.items()}


# ---------------------------------------------------------------------------------------------
# The reports, exact numbers


SESSION_FIGURES = {
    # The same usage for the DELTA and the CUMULATIVE session.
    "prompts": 2,
    "api_calls": 8,
    "api_errors": 3,
    "input_tokens": 380,
    "output_tokens": 79,
    "cache_read_tokens": 1000,
    "cache_creation_tokens": 50,
    "reasoning_tokens": 0,
    "cost_usd": 0.04,
    "active_time_s": 100.0,
    "tool_calls": 6,
    "tool_failures": 1,
    "models": [HAIKU, SONNET],
    "launch_id": LAUNCH,
    "parent_session": "",
}
CAPTURE_FIGURES = {
    "prompts": 1,
    "api_calls": 2,
    "api_errors": 0,
    "input_tokens": 246,
    "output_tokens": 34,
    "cache_read_tokens": 0,
    "cache_creation_tokens": 0,
    "cost_usd": 0.001664,
    "active_time_s": 1.002,
    "tool_calls": 1,
    "tool_failures": 0,
    "codex_children": 1,
    "models": [OPUS],
    "user": CAPTURE_USER,
    "launch_id": "test123",
}
CODEX_FIGURES = {
    RUN_SHIMMED: {
        "parent_session": SESSION_DELTA,
        "prompts": 1,
        "api_calls": 3,
        "api_errors": 1,
        "input_tokens": 1500,
        "output_tokens": 300,
        "cache_read_tokens": 300,
        "reasoning_tokens": 50,
        "tool_calls": 3,
        "tool_failures": 1,
        "models": [GPT],
        "duration_s": 30.0,
    },
    THREAD_UNSHIMMED: {
        "parent_session": SESSION_CUMULATIVE,
        "prompts": 1,
        "api_calls": 1,
        "api_errors": 0,
        "input_tokens": 40,
        "output_tokens": 4,
        "tool_calls": 0,
        "models": [GPT],
        "duration_s": 20.0,
    },
    RUN_STAMPED: {
        "parent_session": SESSION_DELTA,
        "prompts": 1,
        "api_calls": 1,
        "input_tokens": 40,
        "output_tokens": 4,
        "models": [GPT_MINI],
        "duration_s": 12.0,
    },
    CAPTURE_THREAD: {
        "parent_session": CAPTURE_SESSION,
        "prompts": 1,
        "api_calls": 1,
        "api_errors": 0,
        "input_tokens": 50,
        "output_tokens": 4,
        "cache_read_tokens": 0,
        "tool_calls": 0,
        "models": [GPT],
        "duration_s": 0.337,
        "launch_id": "test123",
    },
}


def assert_figures(row: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {k: row[k] for k in expected} == expected, row.get("id", row)


def test_sessions_per_claude_session_and_codex_run_delta_and_cumulative_alike(
    ch: Client, loaded: Loaded
) -> None:
    rows = report(ch, loaded, "sessions")
    sessions = by(rows, "id")
    assert set(sessions) == {SESSION_DELTA, SESSION_CUMULATIVE, CAPTURE_SESSION, *CODEX_FIGURES}
    for session, user, children in (
        (SESSION_DELTA, USER_A, 2),
        (SESSION_CUMULATIVE, USER_B, 1),
    ):
        row = sessions[session]
        assert row["agent"] == "claude"
        assert_figures(row, {**SESSION_FIGURES, "user": user, "codex_children": children})
        # from the first metric export (minute 0) to the last (minute 9): points carry the
        # time they were exported, events and spans fall in between
        assert row["duration_s"] == 540.0
    assert_figures(sessions[CAPTURE_SESSION], CAPTURE_FIGURES)
    for run, expected in CODEX_FIGURES.items():
        assert sessions[run]["agent"] == "codex"
        assert sessions[run]["cost_usd"] == 0.0 and sessions[run]["user"] == ""
        assert_figures(sessions[run], expected)
    # every codex run comes right after the Claude session that spawned it
    order = [r["id"] for r in rows]
    for parent in (SESSION_DELTA, SESSION_CUMULATIVE, CAPTURE_SESSION):
        kids = {r["id"] for r in rows if r["parent_session"] == parent}
        start = order.index(parent)
        assert set(order[start + 1 : start + 1 + len(kids)]) == kids
    # newest session family first: the capture (5 minutes ago) before the generated sessions
    assert order[0] == CAPTURE_SESSION


def test_sessions_session_parameter_selects_a_session_and_its_codex_runs(
    ch: Client, loaded: Loaded
) -> None:
    rows = report(ch, loaded, "sessions", session=SESSION_DELTA)
    assert [r["id"] for r in rows] == [SESSION_DELTA, RUN_SHIMMED, RUN_STAMPED]
    assert [r["id"] for r in report(ch, loaded, "sessions", session=RUN_STAMPED)] == [RUN_STAMPED]


@pytest.mark.parametrize(
    ("since_minutes", "until_minutes", "expected"),
    [
        # exports 1-3: the cumulative session's export 1 counts only what it added since 0
        (
            2,
            None,
            {
                "input_tokens": 280,
                "output_tokens": 59,
                "cache_read_tokens": 0,
                "cache_creation_tokens": 0,
                "cost_usd": 0.03,
                "active_time_s": 70.0,
            },
        ),
        # exports 2-3: after the reset (a resumed session: new StartTimeUnix)
        (
            4,
            None,
            {"input_tokens": 70, "output_tokens": 14, "cost_usd": 0.009, "active_time_s": 25.0},
        ),
        # exports 0-1 only
        (
            -1,
            4,
            {
                "input_tokens": 310,
                "output_tokens": 65,
                "cache_read_tokens": 1000,
                "cost_usd": 0.031,
                "active_time_s": 75.0,
            },
        ),
        # export 3 only: the cumulative session re-exports unchanged series every interval
        (8, 10, {"input_tokens": 20, "output_tokens": 4, "cost_usd": 0.004, "active_time_s": 25.0}),
    ],
)
def test_metric_windows_count_what_happened_inside_for_delta_and_cumulative(
    ch: Client, loaded: Loaded, since_minutes: int, until_minutes: int | None, expected: dict
) -> None:
    since = loaded.base + since_minutes * MINUTE
    until = loaded.base + until_minutes * MINUTE if until_minutes is not None else None
    sessions = by(report(ch, loaded, "sessions", since, until), "id")
    assert_figures(sessions[SESSION_DELTA], expected)
    assert_figures(sessions[SESSION_CUMULATIVE], expected)
    models = sums(
        report(ch, loaded, "tokens_by_model", since, until),
        ("model",),
        ("input_tokens", "output_tokens", "cost_usd"),
    )
    claude = [v for k, v in models.items() if k[0] in (SONNET, HAIKU)]
    assert sum(m["input_tokens"] for m in claude) == 2 * expected["input_tokens"]
    assert round(sum(m["cost_usd"] for m in claude), 6) == round(2 * expected["cost_usd"], 6)


def test_tokens_by_model_per_day_type_and_cost(ch: Client, loaded: Loaded) -> None:
    rows = report(ch, loaded, "tokens_by_model")
    fields = (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "reasoning_tokens",
        "total_tokens",
        "cost_usd",
    )
    totals = sums(rows, ("agent", "model"), fields)
    assert totals == {
        ("claude", SONNET): dict(zip(fields, (740, 148, 2000, 100, 0, 2988, 0.078), strict=True)),
        ("claude", HAIKU): dict(zip(fields, (20, 10, 0, 0, 0, 30, 0.002), strict=True)),
        ("claude", OPUS): dict(zip(fields, (246, 34, 0, 0, 0, 280, 0.001664), strict=True)),
        ("codex", GPT): dict(zip(fields, (1590, 308, 300, 0, 50, 1898, 0), strict=True)),
        ("codex", GPT_MINI): dict(zip(fields, (40, 4, 0, 0, 0, 44, 0), strict=True)),
    }
    days = {row["day"] for row in rows}
    expected_days = {
        datetime.fromtimestamp(ns / 1e9, UTC).date()
        for ns in (loaded.base, loaded.base + 9 * MINUTE, loaded.now_ns - 5 * MINUTE)
    }
    assert days <= expected_days and days


def test_reports_agree_with_each_other(ch: Client, loaded: Loaded) -> None:
    sessions = report(ch, loaded, "sessions")
    models = report(ch, loaded, "tokens_by_model")
    codex = by(report(ch, loaded, "codex_runs"), "run_id")
    productivity = report(ch, loaded, "productivity")
    for field_name in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
        for agent in ("claude", "codex"):
            assert sum(r[field_name] for r in sessions if r["agent"] == agent) == sum(
                r[field_name] for r in models if r["agent"] == agent
            ), (field_name, agent)
    total_cost = round(sum(r["cost_usd"] for r in sessions), 6)
    assert total_cost == round(sum(r["cost_usd"] for r in models), 6) == 0.081664
    assert round(sum(r["cost_usd"] for r in productivity), 6) == total_cost
    for row in sessions:
        if row["agent"] == "codex":
            run = codex[row["id"]]
            for key in (
                "parent_session",
                "start",
                "end",
                "duration_s",
                "models",
                "prompts",
                "api_calls",
                "api_errors",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "reasoning_tokens",
                "tool_calls",
                "tool_failures",
                "launch_id",
            ):
                assert row[key] == run[key], (row["id"], key)
    tools = by(report(ch, loaded, "tools"), "agent", "tool")
    for agent in ("claude", "codex"):
        mine = [r for r in sessions if r["agent"] == agent]
        assert tools[(agent, "(all)")]["calls"] == sum(r["tool_calls"] for r in mine)
        assert tools[(agent, "(all)")]["failures"] == sum(r["tool_failures"] for r in mine)
    errors = report(ch, loaded, "api_errors")
    assert sum(r["errors"] for r in errors) == sum(r["api_errors"] for r in sessions) == 7


def test_codex_runs_with_parent_by_span_link_or_shim_stamps(ch: Client, loaded: Loaded) -> None:
    runs = by(report(ch, loaded, "codex_runs"), "run_id")
    assert set(runs) == set(CODEX_FIGURES)
    data = loaded.data
    assert {k: runs[RUN_SHIMMED][k] for k in ("thread_id", "parent_via", "parent_span")} == {
        "thread_id": THREAD_SHIMMED,
        "parent_via": "span_link",
        "parent_span": data.tool_execution[SESSION_DELTA],
    }
    assert (runs[THREAD_UNSHIMMED]["parent_via"], runs[THREAD_UNSHIMMED]["parent_span"]) == (
        "span_link",
        data.tool_execution[SESSION_CUMULATIVE],
    )
    assert (runs[RUN_STAMPED]["parent_via"], runs[RUN_STAMPED]["parent_span"]) == ("stamped", "")
    assert runs[RUN_STAMPED]["thread_id"] == THREAD_STAMPED
    assert (runs[CAPTURE_THREAD]["parent_via"], runs[CAPTURE_THREAD]["parent_span"]) == (
        "span_link",
        "7fd0cf463656e912",  # Claude's Bash tool.execution span in the capture
    )
    for run, expected in CODEX_FIGURES.items():
        assert_figures(runs[run], expected)
    assert [r["run_id"] for r in report(ch, loaded, "codex_runs", session=SESSION_DELTA)] == [
        RUN_STAMPED,
        RUN_SHIMMED,
    ]


def test_tools_count_success_rate_and_percentiles(ch: Client, loaded: Loaded) -> None:
    tools = by(report(ch, loaded, "tools"), "agent", "tool")
    claude_bash = [1000, 3000, 2000] * 2 + [753]  # two generated sessions + the capture
    expected = {
        ("claude", "Bash"): (claude_bash, 2, 3),
        ("claude", "Edit"): ([20, 40] * 2, 0, 2),
        ("claude", "Read"): ([10] * 2, 0, 2),
        ("claude", "(all)"): (claude_bash + [20, 40] * 2 + [10] * 2, 2, 3),
        ("codex", "exec_command"): ([250, 50], 1, 1),
        ("codex", "apply_patch"): ([30], 0, 1),
        ("codex", "(all)"): ([250, 50, 30], 1, 1),
    }
    assert set(tools) == set(expected)
    for key, (durations, failures, runs) in expected.items():
        row = tools[key]
        assert row["calls"] == len(durations), key
        assert row["failures"] == failures, key
        assert row["success_rate"] == round((len(durations) - failures) / len(durations), 4)
        assert row["p50_ms"] == round(percentile(durations, 0.5), 1), key
        assert row["p95_ms"] == round(percentile(durations, 0.95), 1), key
        assert row["max_ms"] == max(durations)
        assert row["runs"] == runs, key


def test_api_errors_by_model_and_status_with_latest_message(ch: Client, loaded: Loaded) -> None:
    errors = by(report(ch, loaded, "api_errors"), "agent", "model", "status_code")
    assert {k: (v["errors"], v["runs"], v["latest_error"]) for k, v in errors.items()} == {
        ("claude", SONNET, "529"): (4, 2, "Overloaded (retry 2)"),
        ("claude", HAIKU, "400"): (2, 2, "invalid_request_error"),
        ("codex", GPT, "500"): (1, 1, "upstream 500"),
    }
    sonnet = errors[("claude", SONNET, "529")]
    assert sonnet["last_seen"] - sonnet["first_seen"] == timedelta(seconds=30)


def test_api_latency_percentiles_and_time_to_first_token(ch: Client, loaded: Loaded) -> None:
    latency = by(report(ch, loaded, "api_latency"), "agent", "model")
    expected = {
        # (request durations, time-to-first-token samples)
        ("claude", SONNET): ([1200, 800, 600, 400] * 2, [300, 200, 150, 100] * 2),
        ("claude", HAIKU): ([100] * 2, [50] * 2),
        ("claude", OPUS): ([58, 11], [13, 7]),  # the capture's two requests
        ("codex", GPT): ([400, 600, 300, 20], [120, 80, 104]),  # the HTTP 500 is left out
        ("codex", GPT_MINI): ([300], []),
    }
    assert set(latency) == set(expected)
    for key, (durations, ttft) in expected.items():
        row = latency[key]
        assert row["requests"] == len(durations), key
        for q in (0.5, 0.95, 0.99):
            assert row[f"p{round(q * 100)}_ms"] == round(percentile(durations, q), 1), key
        assert row["avg_ms"] == round(sum(durations) / len(durations), 1)
        assert row["ttft_samples"] == len(ttft)
        if ttft:
            assert row["ttft_p50_ms"] == round(percentile(ttft, 0.5), 1), key
            assert row["ttft_p95_ms"] == round(percentile(ttft, 0.95), 1), key
        else:
            assert row["ttft_p50_ms"] is None


def test_productivity_per_user_and_day(ch: Client, loaded: Loaded) -> None:
    fields = (
        "lines_added",
        "lines_removed",
        "commits",
        "pull_requests",
        "edits_accepted",
        "edits_rejected",
        "cost_usd",
    )
    totals = sums(report(ch, loaded, "productivity"), ("user",), fields)
    generated = dict(zip(fields, (120, 15, 1, 1, 3, 1, 0.04), strict=True))
    assert totals == {
        (USER_A,): generated,  # DELTA
        (USER_B,): generated,  # CUMULATIVE, reset halfway
        (CAPTURE_USER,): {**dict.fromkeys(fields, 0), "cost_usd": 0.001664},
    }


def test_active_users_daily_weekly_monthly(ch: Client, loaded: Loaded) -> None:
    now = loaded.now_ns
    since = now - 12 * DAY
    rows = report(ch, loaded, "active_users", since)

    def day(ns: int) -> Any:
        return datetime.fromtimestamp(ns / 1e9, UTC).date()

    active = {
        (day(loaded.base), USER_A),
        (day(loaded.base + 9 * MINUTE), USER_A),
        (day(loaded.base), USER_B),
        (day(loaded.base + 9 * MINUTE), USER_B),
        (day(now - 5 * MINUTE), CAPTURE_USER),
        (day(now - 4 * MINUTE), CAPTURE_USER),
        (day(now - 10 * DAY), USER_A),
        (day(now - 10 * DAY), USER_C),
        (day(now - 3 * DAY), USER_C),
    }
    days = [day(since) + timedelta(days=n) for n in range((day(now) - day(since)).days + 1)]
    assert [r["day"] for r in rows] == days

    def users(d: Any, span: int) -> int:
        return len({u for (a, u) in active if d - timedelta(days=span) < a <= d})

    for row in rows:
        assert (row["dau"], row["wau"], row["mau"]) == (
            users(row["day"], 1),
            users(row["day"], 7),
            users(row["day"], 30),
        ), row
    today = by(rows, "day")[day(now)]
    assert today["wau"] == 4 and today["mau"] == 4  # a, b, the capture's user, c (3 days ago)
    assert by(rows, "day")[day(now - 10 * DAY)]["sessions"] == 2


def test_slowest_spans_with_limit_service_and_session(ch: Client, loaded: Loaded) -> None:
    rows = report(ch, loaded, "slowest_spans")
    assert len(rows) == 20
    assert [(r["span"], r["duration_ms"]) for r in rows[:2]] == [
        ("claude_code.interaction", 60000.0)
    ] * 2
    assert {r["run_id"] for r in rows[:2]} == {SESSION_DELTA, SESSION_CUMULATIVE}
    durations = [r["duration_ms"] for r in rows]
    assert durations == sorted(durations, reverse=True)
    codex = report(ch, loaded, "slowest_spans", limit="3", service="codex_exec")
    assert [(r["run_id"], r["duration_ms"]) for r in codex] == [
        (RUN_SHIMMED, 30000.0),
        (THREAD_UNSHIMMED, 20000.0),
        (CAPTURE_THREAD, 336.958),  # the capture's codex.exec
    ]
    mine = report(ch, loaded, "slowest_spans", session=CAPTURE_SESSION)
    assert [r["span"] for r in mine] == [
        "claude_code.interaction",
        "claude_code.tool",
        "claude_code.tool.execution",
        "claude_code.llm_request",
        "claude_code.tool.blocked_on_user",
        "claude_code.llm_request",
    ]


def test_activity_per_minute_and_run(ch: Client, loaded: Loaded) -> None:
    rows = report(ch, loaded, "activity")
    data = loaded.data
    for session in (data.delta, data.cumulative):
        events = session.events()
        minutes: dict[datetime, int] = {}
        for record in events:
            minute = datetime.fromtimestamp(record.time_unix_nano // (60 * 10**9) * 60, UTC)
            minutes[minute] = minutes.get(minute, 0) + 1
        mine = [r for r in rows if r["run_id"] == session.session]
        assert {r["minute"].replace(tzinfo=UTC): r["events"] for r in mine} == minutes
        assert [
            sum(r[k] for r in mine)
            for k in ("prompts", "api_requests", "api_errors", "tool_calls", "tool_failures")
        ] == [2, 8, 3, 6, 1]
    shimmed = [r for r in rows if r["run_id"] == RUN_SHIMMED]
    assert sum(r["events"] for r in shimmed) == 14
    assert [sum(r[k] for r in shimmed) for k in ("api_requests", "api_errors")] == [3, 1]
    # The session filter keeps only that run (its events may straddle a minute boundary).
    assert {r["run_id"] for r in report(ch, loaded, "activity", session=RUN_STAMPED)} == {
        RUN_STAMPED
    }


def test_every_report_runs_with_its_defaults_and_names_its_table_columns(
    ch: Client, loaded: Loaded
) -> None:
    every = reports.available()
    assert set(every) >= {
        "sessions",
        "tokens_by_model",
        "tools",
        "api_errors",
        "api_latency",
        "productivity",
        "active_users",
        "codex_runs",
        "slowest_spans",
        "activity",
    }
    for name, r in every.items():
        assert r.summary and len(r.summary) <= 110, name
        extra = {"id": CAPTURE_SESSION} if name == "session_tree" else {}
        values = reports.parameters(r, loaded.database, extra=extra)
        result = reports.run(ch, r, values)
        # the captures hold no hook events; tests/test_hooks.py fills the waiting report
        assert result.rows or name == "waiting", name
        assert set(r.table_columns) <= set(result.columns), name
        if name != "session_tree":  # the stitching issue's file, with its own header
            assert {"database", "since", "until"} <= set(r.params), name
            assert r.used <= set(r.params), name


def test_reports_on_an_empty_database_still_name_their_columns(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    result = reports.run(
        client, reports.get("sessions"), reports.parameters(reports.get("sessions"), database)
    )
    assert result.rows == [] and result.columns[:3] == ["agent", "id", "parent_session"]
    table = reports.render_table(result, reports.get("sessions"), "window")
    assert "no rows" in table and "parent_session" in table
    assert reports.render_json(result) == "[]"
    assert reports.render_csv(result).startswith("agent,id,parent_session,")


# ---------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.unit
def test_times_durations_iso_and_now() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert reports.parse_time("1h", now) == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    assert reports.parse_time("7d", now) == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    assert reports.parse_time("90s", now) == datetime(2026, 11, 22, 11, 58, 30, tzinfo=UTC)
    assert reports.parse_time("2w", now) == datetime(2026, 11, 8, 12, 0, tzinfo=UTC)
    assert reports.parse_time("now", now) == now
    assert reports.parse_time("2026-11-20", now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert reports.parse_time("2026-11-20T10:00:00+02:00", now) == datetime(
        2026, 11, 20, 8, tzinfo=UTC
    )
    assert reports.clickhouse_time(datetime(2026, 11, 22, 4, 54, 30, 123456, tzinfo=UTC)) == (
        "1795323270.123456000"
    )
    with pytest.raises(reports.ReportError, match="duration like 1h"):
        reports.parse_time("yesterday", now)


@pytest.mark.unit
def test_parameters_defaults_and_errors() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    spans = reports.get("slowest_spans")
    values = reports.parameters(spans, "otel", now=now)
    assert values == {
        "database": "otel",
        "since": reports.clickhouse_time(now - (datetime(2026, 1, 2) - datetime(2026, 1, 1))),
        "until": reports.clickhouse_time(now),
        "limit": "20",
        "service": "",
        "session": "",
    }
    assert reports.parameters(reports.get("activity"), "db", now=now)["since"] == (
        reports.clickhouse_time(datetime(2026, 11, 22, 11, 0, tzinfo=UTC))
    )
    with pytest.raises(reports.ReportError, match="no parameter nope; its parameters: limit"):
        reports.parameters(spans, "otel", extra={"nope": "1"})
    with pytest.raises(reports.ReportError, match="needs --param id=VALUE"):
        reports.parameters(reports.get("session_tree"), "otel")


# ---------------------------------------------------------------------------------------------
# The command line


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or REPO,
    )


def test_cli_report_sessions_json_csv_and_table(loaded: Loaded, tmp_path: Path) -> None:
    window = ("--since", at(loaded.base - MINUTE), "--clickhouse-url", loaded.url)
    out = cli("report", "sessions", "--format", "json", "--database", loaded.database, *window)
    assert out.returncode == 0, out.stderr
    rows = by(json.loads(out.stdout), "id")
    assert_figures(rows[SESSION_CUMULATIVE], {**SESSION_FIGURES, "codex_children": 1})
    assert rows[CAPTURE_SESSION]["start"].endswith("Z")
    assert rows[RUN_SHIMMED]["parent_session"] == SESSION_DELTA

    out = cli("sessions", "--format", "csv", "--database", loaded.database, *window)
    assert out.returncode == 0, out.stderr
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(parsed) == len(rows)
    delta = next(r for r in parsed if r["id"] == SESSION_DELTA)
    assert (delta["cost_usd"], delta["models"], delta["codex_children"]) == (
        "0.04",
        f"{HAIKU}, {SONNET}",
        "2",
    )

    out = cli("sessions", "--database", loaded.database, *window)  # the default: a table
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "sessions"
    header = next(line for line in lines if "parent_session" in line)
    assert header.split() == list(reports.get("sessions").table_columns)
    assert any(SESSION_DELTA in line and "0.04" in line for line in lines)
    assert any(line.strip().startswith("since ") for line in lines)

    out = cli(
        "report",
        "tokens_by_model",
        "--format",
        "json",
        "--database",
        loaded.database,
        "--since",
        "2h",
        "--clickhouse-url",
        loaded.url,
    )
    assert out.returncode == 0, out.stderr
    assert round(sum(r["cost_usd"] for r in json.loads(out.stdout)), 6) == 0.081664

    out = cli(
        "report",
        "slowest_spans",
        "--param",
        "limit=2",
        "--param",
        "service=claude-code",
        "--format",
        "json",
        "--database",
        loaded.database,
        *window,
    )
    assert [r["duration_ms"] for r in json.loads(out.stdout)] == [60000.0, 60000.0]


def test_cli_lists_reports_one_line_each() -> None:
    out = cli("reports")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines() if line and line[0] != " "]
    assert set(reports.available()) <= set(names)
    listed = json.loads(cli("reports", "--format", "json").stdout)
    assert {r["name"] for r in listed} == set(reports.available())
    assert next(r for r in listed if r["name"] == "slowest_spans")["parameters"]["limit"] == {
        "type": "UInt32",
        "default": "20",
    }


def test_cli_usage_errors_exit_2(loaded: Loaded) -> None:
    base = ("--clickhouse-url", loaded.url, "--database", loaded.database)
    out = cli("report", "nope", *base)
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = cli("report", "sessions", "--since", "last tuesday", *base)
    assert out.returncode == 2 and "duration like 1h" in out.stderr
    out = cli("report", "tools", "--param", "session=x", *base)
    assert out.returncode == 2 and "has no parameter session" in out.stderr
    out = cli("report", "sessions", "--param", "novalue", *base)
    assert out.returncode == 2 and "KEY=VALUE" in out.stderr


def test_cli_says_how_to_start_clickhouse_when_nothing_answers(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    (tmp_path / "clickhouse").mkdir()  # a data dir whose server ran once and is stopped
    (tmp_path / "clickhouse" / "password").write_text("its-password\n")
    out = cli(
        "sessions", "--embedded-http-port", str(port), "--data-dir", str(tmp_path), cwd=tmp_path
    )
    assert out.returncode == 1
    assert f"no ClickHouse answers at http://127.0.0.1:{port}" in out.stderr
    assert "otel-receiver serve" in out.stderr and "otel-receiver clickhouse" in out.stderr
    out = cli("sessions", "--clickhouse-url", f"http://u:secret@127.0.0.1:{port}", cwd=tmp_path)
    assert out.returncode == 1 and "cannot query ClickHouse at" in out.stderr
    assert "secret" not in out.stderr


def test_cli_unknown_database_is_explained(loaded: Loaded) -> None:
    out = cli("sessions", "--clickhouse-url", loaded.url, "--database", "no_such_database_x")
    assert out.returncode == 1
    assert "database 'no_such_database_x' does not exist" in out.stderr


# ---------------------------------------------------------------------------------------------
# Grafana and docker compose

GRAFANA = REPO / "config" / "grafana"


def grafana_macros(sql: str, database: str, start_ns: int, end_ns: int) -> str:
    """What the Grafana ClickHouse data source does to a query (pkg/macros/macros.go), and the
    dashboard variables."""
    start_s, end_s = start_ns // 10**9, end_ns // 10**9
    start_ms, end_ms = start_ns // 10**6, end_ns // 10**6
    sql = sql.replace("${database}", database).replace("${session}", "")
    sql = re.sub(
        r"\$__timeFilter_ms\(([^)]+)\)",
        lambda m: (
            f"{m[1]} >= fromUnixTimestamp64Milli({start_ms}) AND "
            f"{m[1]} <= fromUnixTimestamp64Milli({end_ms})"
        ),
        sql,
    )
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m[1]} >= toDateTime({start_s}) AND {m[1]} <= toDateTime({end_s})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\(([^)]+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL 60 second)",
        sql,
    )
    for macro, value in (
        ("$__fromTime_ms", f"fromUnixTimestamp64Milli({start_ms})"),
        ("$__toTime_ms", f"fromUnixTimestamp64Milli({end_ms})"),
        ("$__fromTime", f"toDateTime({start_s})"),
        ("$__toTime", f"toDateTime({end_s})"),
        ("$__interval_s", "60"),
    ):
        sql = sql.replace(macro, value)
    assert "$" not in sql, "a macro or variable left unsubstituted"
    return sql


def test_every_grafana_panel_query_runs_against_clickhouse(ch: Client, loaded: Loaded) -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "agent-telemetry.json").read_text())
    panels = {p["title"]: p for p in dashboard["panels"]}
    assert len(panels) == len(dashboard["panels"])
    values = {}
    for title, panel in panels.items():
        assert panel["datasource"]["uid"] == "agent-otel-clickhouse"
        for target in panel["targets"]:
            sql = grafana_macros(
                target["rawSql"], loaded.database, loaded.base - MINUTE, loaded.now_ns + MINUTE
            )
            result = ch.query(sql)
            assert result.result_rows, title
            if panel["type"] == "stat":
                values[title] = result.result_rows[0][0]
    assert values == {
        "Cost": 0.081664,
        "Tokens": 2988 + 30 + 280 + 1898 + 44,
        "Claude sessions": 3,
        "Codex runs": 4,
        "Tool failures": 3,
        "API errors": 7,
    }
    kinds = " ".join(panels).lower()
    for topic in ("cost", "tokens", "tools", "errors", "sessions", "activity"):
        assert topic in kinds, topic


def test_grafana_dashboard_is_generated_from_the_reports() -> None:
    out = subprocess.run(
        [sys.executable, str(GRAFANA / "build_dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    datasource = (GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    assert "type: grafana-clickhouse-datasource" in datasource
    assert "uid: agent-otel-clickhouse" in datasource


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` (the plugin) nor `docker-compose` is installed")
    out = subprocess.run(
        [*command, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "CLICKHOUSE_PASSWORD": "test-password"},
    )
    assert out.returncode == 0, out.stderr
    config = out.stdout
    for service in ("clickhouse:", "receiver:", "grafana:"):
        assert service in config
    for port in ("4317", "4318", "8123", "9000", "3000"):
        assert f"127.0.0.1:{port}:{port}" in config, port
    assert "clickhouse/clickhouse-server" in config
    assert "grafana-clickhouse-datasource" in config
    assert (REPO / "Dockerfile").exists()
