"""Receiver health: one place that knows whether the receiver can store what it is sent.

Delivery reports problems (a ClickHouse configuration error, a replayer that crashed) and
clears them when they go away; ``/health`` (HTTP), the gRPC health service, the
``otel_receiver_healthy`` metric and ``otel-receiver status`` all read from here. Each
problem's cause and fix are logged when it appears and then at most once per
``log_every`` seconds while it lasts, never once per failed batch. Thread-safe: the spool
replayer runs in its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Gauge

log = structlog.get_logger("receiver.ops.health")

HEALTHY = Gauge("otel_receiver_healthy", "1 when the receiver can store what it accepts, else 0")
PROBLEMS = Gauge(
    "otel_receiver_health_problem",
    "1 while a problem makes the receiver unhealthy or degraded",
    ["problem", "severity"],
)

UNHEALTHY = "unhealthy"  # nothing new can be stored: answer UNAVAILABLE, /health 503
DEGRADED = "degraded"  # still accepting, but something needs a look


@dataclass
class Problem:
    name: str
    severity: str
    cause: str
    fix: str
    logged_at: float = 0.0


class Health:
    """The current problems, by name; ``serving`` is False while any is ``unhealthy``."""

    def __init__(self, log_every: float = 60.0) -> None:
        self._problems: dict[str, Problem] = {}
        self._lock = threading.Lock()
        self._log_every = log_every
        self._listeners: list[Callable[[bool], None]] = []
        HEALTHY.set(1)

    @property
    def serving(self) -> bool:
        with self._lock:
            return not any(p.severity == UNHEALTHY for p in self._problems.values())

    def problems(self) -> list[Problem]:
        with self._lock:
            return list(self._problems.values())

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(serving)`` whenever ``serving`` changes (from any thread)."""
        self._listeners.append(listener)

    def report(self, name: str, cause: str, fix: str, severity: str = UNHEALTHY) -> None:
        """Record (or refresh) a problem; logs it now and then once per ``log_every``."""
        now = time.monotonic()
        with self._lock:
            was_serving = not any(p.severity == UNHEALTHY for p in self._problems.values())
            problem = self._problems.get(name)
            if problem is None:
                problem = self._problems[name] = Problem(name, severity, cause, fix)
            problem.cause, problem.fix, problem.severity = cause, fix, severity
            due = now - problem.logged_at >= self._log_every or problem.logged_at == 0.0
            if due:
                problem.logged_at = now
        if due:
            log.error("receiver_" + severity, problem=name, cause=cause[:500], fix=fix)
        PROBLEMS.labels(name, severity).set(1)
        self._changed(was_serving)

    def clear(self, name: str) -> None:
        with self._lock:
            was_serving = not any(p.severity == UNHEALTHY for p in self._problems.values())
            problem = self._problems.pop(name, None)
        if problem is None:
            return
        log.info("receiver_problem_cleared", problem=name)
        PROBLEMS.labels(name, problem.severity).set(0)
        self._changed(was_serving)

    def _changed(self, was_serving: bool) -> None:
        serving = self.serving
        HEALTHY.set(1 if serving else 0)
        if serving != was_serving:
            for listener in self._listeners:
                listener(serving)
