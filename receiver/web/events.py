"""One line per agent event: the main detail of a Claude Code / Codex log event (tool and
outcome, model and tokens, error), shared by the session timeline and the live tail so both
say the same thing about the same event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PREFIXES = ("claude_code.", "codex.")


def short_name(event: str) -> str:
    """``claude_code.tool_result`` -> ``tool_result``; hooks keep their ``hook.`` prefix."""
    for prefix in _PREFIXES:
        if event.startswith(prefix):
            return event[len(prefix) :]
    return event


def _tokens(a: Mapping[str, str], inp: str, out: str) -> str:
    if not a.get(inp) and not a.get(out):
        return ""
    return f"{a.get(inp) or 0} in / {a.get(out) or 0} out tokens"


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def describe(event: str, a: Mapping[str, str], body: str = "") -> tuple[str, bool]:
    """(the event's main detail, whether it reports a failure)."""
    name = short_name(event)
    parts: list[str] = []
    failed = False
    if name == "tool_result":
        failed = a.get("success") == "false"
        parts = [a.get("tool_name", ""), "failed" if failed else "ok"]
        if a.get("duration_ms"):
            parts.append(f"{a['duration_ms']} ms")
        parts.append(a.get("error", ""))
    elif name == "tool_decision":
        parts = [a.get("tool_name", ""), a.get("decision", ""), a.get("source", "")]
    elif name == "api_request" and event.startswith("claude_code."):
        parts = [a.get("model", ""), _tokens(a, "input_tokens", "output_tokens")]
        if a.get("cost_usd"):
            parts.append(f"${float(a['cost_usd']):.6f}")
        if a.get("duration_ms"):
            parts.append(f"{a['duration_ms']} ms")
    elif name == "api_request":  # codex: one per HTTP request, errors included
        status = a.get("http.response.status_code", "")
        failed = bool(a.get("error.message")) or (bool(status) and not status.startswith("2"))
        parts = [
            a.get("model", ""),
            f"status {status}" if status else "",
            a.get("error.message", ""),
        ]
        if a.get("duration_ms"):
            parts.append(f"{a['duration_ms']} ms")
    elif name == "api_error":
        failed = True
        parts = [a.get("model", ""), f"status {a.get('status_code', '')}", a.get("error", "")]
    elif name == "sse_event":
        parts = [a.get("model", ""), _tokens(a, "input_token_count", "output_token_count")]
    elif name == "user_prompt":
        parts = [a.get("prompt", "")]
        if a.get("prompt_length"):
            parts.append(f"({a['prompt_length']} chars)")
    elif name.startswith("hook."):  # Claude Code hooks (POST /v1/hooks): what it was about
        parts = [
            a.get("tool_name", ""),
            a.get("prompt", ""),
            a.get("reason", ""),
            _clip(a.get("tool_input", ""), 120),
        ]
    else:
        parts = [a.get("model", ""), a.get("tool_name", "")]
    if not any(parts) and body and body != event:
        parts = [body]
    return " ".join(p for p in parts if p), failed


def event_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of ``sql/ui/events.sql`` as the UI shows it (JSON-ready except ``ts``)."""
    attributes = dict(row["attributes"])
    detail, failed = describe(row["event"], attributes, row["body"])
    return {
        "ts": row["ts"],
        "agent": row["agent"],
        "run_id": row["run_id"],
        "event": row["event"],
        "name": short_name(row["event"]),
        "detail": detail,
        "failed": failed,
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "key": row["event_key"],
        "attributes": attributes,
    }
