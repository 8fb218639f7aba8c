"""Alert notifications: one JSON POST per transition to each of a rule's webhook URLs.

The body carries ``alert``, ``state`` (``firing`` / ``resolved``), ``value``, ``labels``,
``severity``, ``summary``, ``text`` (a one-line message, so a Slack incoming webhook shows it
as is), ``starts_at``, ``ends_at`` (when resolved), ``condition`` and ``repeat``. A webhook gets
``timeout`` seconds per attempt and ``retries`` more attempts with exponential backoff on a
network error or a 5xx / 429 answer; other 4xx answers are not retried. Runs on the alert
evaluator's thread (never on the ingest event loop), so a hanging webhook delays only alerts.
Outcomes are counted on ``/metrics``; the body is never logged (labels may be user ids).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import structlog
from prometheus_client import Counter

log = structlog.get_logger("receiver.query.notify")

NOTIFICATIONS = Counter(
    "otel_receiver_alert_notifications_total",
    "Alert notifications by rule, state (firing | resolved) and outcome (sent | failed), "
    "one per webhook URL",
    ["alert", "state", "outcome"],
)
WEBHOOK_FAILURES = Counter(
    "otel_receiver_alert_webhook_failures_total",
    "Failed webhook attempts (retries included), by rule and reason (timeout | status | error)",
    ["alert", "reason"],
)
_BACKOFF_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 10.0


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(
    *,
    alert: str,
    state: str,
    value: float,
    labels: Mapping[str, str],
    severity: str,
    summary: str,
    condition: str,
    starts_at: datetime,
    ends_at: datetime | None,
    repeat: bool = False,
) -> dict[str, Any]:
    """The JSON body of one notification."""
    mark = {"firing": "FIRING", "resolved": "RESOLVED"}[state]
    described = summary or (
        f"value {value:g} {condition}"
        + (" " + ", ".join(f"{k}={v}" for k, v in labels.items()) if labels else "")
    )
    return {
        "alert": alert,
        "state": state,
        "value": value,
        "labels": dict(labels),
        "severity": severity,
        "summary": described,
        "text": f"[{mark}{' again' if repeat else ''}] {alert} ({severity}): {described}",
        "condition": condition,
        "starts_at": iso(starts_at),
        "ends_at": iso(ends_at),
        "repeat": repeat,
    }


def post(
    url: str,
    body: Mapping[str, Any],
    *,
    timeout: float,
    retries: int,
    stop: threading.Event | None = None,
) -> bool:
    """POST ``body`` to ``url``; True once a 2xx answer came back. Backoff waits end early
    when ``stop`` is set (the receiver shutting down)."""
    stop = stop or threading.Event()
    data = json.dumps(body).encode()
    alert = str(body.get("alert", ""))
    for attempt in range(retries + 1):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "agent-otel-receiver"},
        )
        retryable = True
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read(64 * 1024)
            return True
        except urllib.error.HTTPError as exc:
            reason, retryable = "status", exc.code >= 500 or exc.code == 429
            detail = f"HTTP {exc.code}"
        except TimeoutError:
            reason, detail = "timeout", f"no answer in {timeout:g}s"
        except (urllib.error.URLError, OSError) as exc:
            cause = getattr(exc, "reason", exc)
            reason = "timeout" if isinstance(cause, TimeoutError) else "error"
            detail = str(cause)
        WEBHOOK_FAILURES.labels(alert, reason).inc()
        log.warning(
            "alert_webhook_failed",
            alert=alert,
            url=_without_secret(url),
            attempt=attempt + 1,
            error=detail,
        )
        if not retryable or attempt == retries:
            break
        if stop.wait(min(_BACKOFF_SECONDS * 2**attempt, _BACKOFF_MAX_SECONDS)):
            break
    return False


def send(
    urls: tuple[str, ...],
    body: Mapping[str, Any],
    *,
    timeout: float,
    retries: int,
    stop: threading.Event | None = None,
) -> bool:
    """Send to every URL; True when all of them took it. Counted per URL."""
    delivered = True
    for url in urls:
        ok = post(url, body, timeout=timeout, retries=retries, stop=stop)
        NOTIFICATIONS.labels(body["alert"], body["state"], "sent" if ok else "failed").inc()
        delivered = delivered and ok
    return delivered


def _without_secret(url: str) -> str:
    """A webhook URL for logs: scheme, host and port only (Slack puts its secret in the path)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}{f':{parsed.port}' if parsed.port else ''}/…"
