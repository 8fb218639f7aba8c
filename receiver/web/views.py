"""The pages. Each view computes its data once, as plain data (a ``Page``), and
``receiver.web.app`` renders it as HTML (the page's template) or JSON (the ``.json`` twin of
the same path and the ``/api/`` route): the JSON is exactly what the template was given."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from receiver.query import reports
from receiver.query.tree import Node
from receiver.web.charts import stacked_bars
from receiver.web.events import event_row
from receiver.web.queries import Store

WINDOWS = ("1h", "6h", "24h", "7d", "30d")
DEFAULT_SINCE = "7d"
SESSIONS_SHOWN = 200  # rows an HTML page lists unless ?limit= asks for more
MAX_SESSIONS = 10_000
SESSIONS_FRESH_FOR = 10.0  # seconds an answer for one window serves other filters of it
SESSION_EVENTS = 5_000
LIVE_BACKLOG = 100
RUN_KINDS = ("cc_launch", "claude_session", "codex_run")
SPAN_KINDS = ("interaction", "tool_call", "codex_turn")


class NotFound(Exception):
    """Nothing stored under the requested id or name (HTTP 404, message shown)."""


class BadRequest(Exception):
    """A query parameter is invalid (HTTP 400, message names it)."""


@dataclass
class Page:
    template: str
    data: dict[str, Any]
    status: int = 200
    redirect: str = ""
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # for the template only, not the JSON


def path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def _window(query: Mapping[str, str], default: str = DEFAULT_SINCE) -> tuple[str, str]:
    since = query.get("since", "").strip() or default
    until = query.get("until", "").strip() or "now"
    now = datetime.now(UTC)
    for name, value in (("since", since), ("until", until)):
        try:
            reports.parse_time(value, now)
        except reports.ReportError as exc:
            raise BadRequest(f"{name}: {exc}") from None
    return since, until


def _int(query: Mapping[str, str], name: str, default: int, most: int) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise BadRequest(f"{name}: expected a whole number, got {raw!r}")
    return max(1, min(int(raw), most))


# -- / : sessions -------------------------------------------------------------------------------


def _session_matches(row: dict[str, Any], family: dict[str, Any], f: dict[str, str]) -> bool:
    """Filters; a codex run is judged by its parent session's user and task."""
    if f["agent"] and row["agent"] != f["agent"]:
        return False
    if f["user"] and (row["user"] or family.get("user", "")) != f["user"]:
        return False
    if f["task"] and f["task"] not in (row["task_id"], row["ticket_id"]):
        return False
    if f["model"] and f["model"] not in row["models"]:
        return False
    return not (f["failed"] and not (row["tool_failures"] or row["api_errors"]))


async def sessions(store: Store, query: Mapping[str, str], html: bool) -> Page:
    since, until = _window(query)
    limit = _int(query, "limit", SESSIONS_SHOWN if html else MAX_SESSIONS, MAX_SESSIONS)
    filters = {k: query.get(k, "").strip() for k in ("user", "task", "agent", "model")}
    filters["failed"] = "1" if query.get("failed", "") in ("1", "on", "true") else ""
    result, labels = await asyncio.gather(
        store.report("sessions", since, until, fresh_for=SESSIONS_FRESH_FOR),
        store.rows("run_labels", since=since),
    )
    by_run = {label["run_id"]: label for label in labels}
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    by_id = {row["id"]: row for row in rows if row["agent"] == "claude"}
    for row in rows:
        label = by_run.get(row["id"]) or by_run.get(row["parent_session"]) or {}
        row["task_id"] = label.get("task_id", "")
        row["ticket_id"] = label.get("ticket_id", "")
        row["failed"] = bool(row["tool_failures"] or row["api_errors"])
    choices = {
        "users": sorted({r["user"] for r in rows if r["user"]}),
        "models": sorted({m for r in rows for m in r["models"]}),
        "tasks": sorted({t for r in rows for t in (r["task_id"], r["ticket_id"]) if t}),
        "agents": ["claude", "codex"],
    }
    kept = [r for r in rows if _session_matches(r, by_id.get(r["parent_session"], {}), filters)]
    return Page(
        "sessions.html",
        {
            "since": since,
            "until": until,
            "filters": filters,
            "choices": choices,
            "total": len(kept),
            "shown": min(len(kept), limit),
            "sessions": kept[:limit],
        },
        title="Sessions",
        extra={"windows": WINDOWS, "limit": limit},
    )


# -- /session/<id> ------------------------------------------------------------------------------


def _walk(nodes: list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _tree_dict(node: Node, traces: Mapping[str, str], inherited: str) -> dict[str, Any]:
    trace = traces.get(node.id, "") or inherited
    data = node.as_dict()
    data["trace_id"] = trace
    data["children"] = [_tree_dict(child, traces, trace) for child in node.children]
    return data


async def session(store: Store, run_id: str) -> Page:
    tops = await store.tree(run_id)
    if not tops:
        found = await store.rows("find_id", id=run_id)
        if any(f["kind"] == "trace" for f in found):
            return Page("", {}, redirect=path("trace", run_id))
        raise NotFound(f"no agent run, launch or trace {run_id!r} is stored")
    nodes = list(_walk(tops))
    runs = sorted({n.id for n in nodes if n.kind in ("claude_session", "codex_run")})
    spans = sorted({n.id for n in nodes if n.kind in SPAN_KINDS})
    starts = [n.start for n in nodes if n.start.year > 1970]
    since = (min(starts) if starts else datetime.now(UTC)) - timedelta(hours=1)
    until = datetime.now(UTC) + timedelta(days=1)  # agents' clocks may run ahead
    events_query = (
        store.rows("events", runs=runs, since=since, until=until, limit=SESSION_EVENTS)
        if runs
        else asyncio.sleep(0, [])
    )
    events, traces = await asyncio.gather(
        events_query,
        store.rows("node_traces", spans=spans, runs=[n.id for n in nodes if n.kind in RUN_KINDS]),
    )
    trace_of = {t["id"]: t["trace_id"] for t in traces}
    tree = [_tree_dict(top, trace_of, "") for top in tops]
    timeline = [event_row(e) for e in reversed(events)]
    top = tops[0]
    return Page(
        "session.html",
        {"id": run_id, "runs": runs, "tree": tree, "events": timeline},
        title=f"{top.name} {run_id}",
        extra={"truncated": len(events) >= SESSION_EVENTS},
    )


# -- /trace/<trace id> --------------------------------------------------------------------------


def _seconds(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


async def trace(store: Store, trace_id: str) -> Page:
    trace_id = trace_id.strip().lower()
    rows, logs = await asyncio.gather(
        store.rows("trace_spans", trace=trace_id), store.rows("trace_logs", trace=trace_id)
    )
    if not rows and not logs:
        raise NotFound(f"no span or log record of trace {trace_id!r} is stored")
    ids = {r["span_id"] for r in rows}
    children: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        parent = r["parent_span_id"] if r["parent_span_id"] in ids else ""
        children.setdefault(parent, []).append(r)
    first = min((r["start"] for r in rows), default=None)
    last = max(
        (r["start"] + timedelta(microseconds=r["duration_ns"] / 1000) for r in rows), default=None
    )
    total = max(_seconds(last, first), 1e-6) if first and last else 1.0
    spans: list[dict[str, Any]] = []

    def visit(row: dict[str, Any], depth: int) -> None:
        offset = _seconds(row["start"], first) / total * 1000 if first else 0.0
        width = max(row["duration_ns"] / 1e9 / total * 1000, 1.0)
        spans.append(
            {
                "span_id": row["span_id"],
                "parent_span_id": row["parent_span_id"],
                "name": row["name"],
                "kind": row["kind"],
                "service": row["service"],
                "status": row["status"],
                "status_message": row["status_message"],
                "start": row["start"],
                "duration_ms": row["duration_ns"] / 1e6,
                "depth": depth,
                "offset": round(min(offset, 999.0), 2),
                "width": round(min(width, 1000 - min(offset, 999.0)), 2),
                "attributes": dict(sorted(row["attributes"].items())),
                "resource": dict(sorted(row["resource"].items())),
                "scope": row["scope"],
                "events": [
                    {"ts": ts, "name": name, "attributes": dict(attrs)}
                    for ts, name, attrs in zip(
                        row["event_times"],
                        row["event_names"],
                        row["event_attributes"],
                        strict=True,
                    )
                ],
                "links": [
                    {"trace_id": t, "span_id": s, "attributes": dict(attrs)}
                    for t, s, attrs in zip(
                        row["link_trace_ids"],
                        row["link_span_ids"],
                        row["link_attributes"],
                        strict=True,
                    )
                ],
            }
        )
        for child in children.get(row["span_id"], []):
            visit(child, depth + 1)

    for root in children.get("", []):
        visit(root, 0)
    sessions = sorted(
        {r["attributes"].get("session.id", "") for r in rows}
        | {r["resource"].get("agent.run.id", "") for r in rows}
        | {log["attributes"].get("session.id", "") for log in logs}
    )
    return Page(
        "trace.html",
        {
            "trace_id": trace_id,
            "start": first,
            "duration_ms": total * 1000 if rows else 0.0,
            "runs": [s for s in sessions if s],
            "spans": spans,
            "logs": [dict(log, attributes=dict(log["attributes"])) for log in logs],
        },
        title=f"trace {trace_id}",
    )


# -- /live --------------------------------------------------------------------------------------


async def live(store: Store, query: Mapping[str, str]) -> Page:
    """The newest events (the page then follows ``/api/live``, a server-sent event stream)."""
    until = datetime.now(UTC) + timedelta(days=1)
    rows = await store.rows("events", since="1h", until=until, limit=LIVE_BACKLOG)
    return Page(
        "live.html",
        {"events": [event_row(r) for r in reversed(rows)]},
        title="Live",
    )


# -- /reports -----------------------------------------------------------------------------------


def listed_reports() -> list[reports.Report]:
    """The reports a page can show from a time window alone."""
    return [r for r in reports.available().values() if {"since", "until"} <= r.used]


def _days(since: str, until: str, most: int = 62) -> list[str]:
    """Every UTC day of the window (an empty day is a gap in a chart), unless it is long."""
    now = datetime.now(UTC)
    first, last = reports.parse_time(since, now).date(), reports.parse_time(until, now).date()
    count = (last - first).days + 1
    if not 0 < count <= most:
        return []
    return [str(first + timedelta(days=i)) for i in range(count)]


async def reports_index(store: Store, query: Mapping[str, str]) -> Page:
    since, until = _window(query)
    result = await store.report("tokens_by_model", since, until)
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    days = _days(since, until) or sorted({str(r["day"]) for r in rows})
    cost: dict[tuple[str, str], float] = {}
    tokens: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (str(r["day"]), r["model"] or f"({r['agent']})")
        cost[key] = cost.get(key, 0.0) + float(r["cost_usd"] or 0)
        tokens[key] = tokens.get(key, 0.0) + float(r["total_tokens"] or 0)
    return Page(
        "reports.html",
        {
            "since": since,
            "until": until,
            "reports": [
                {"name": r.name, "summary": r.summary, "url": path("reports", r.name)}
                for r in listed_reports()
            ],
            "tokens_by_model": rows,
        },
        title="Reports",
        extra={
            "windows": WINDOWS,
            "charts": [
                stacked_bars("Cost per day by model", "USD", cost, days),
                stacked_bars("Tokens per day by model", "tokens", tokens, days),
            ],
        },
    )


async def report(store: Store, name: str, query: Mapping[str, str]) -> Page:
    listed = {r.name: r for r in listed_reports()}
    if name not in listed:
        raise NotFound(f"no report {name!r}; reports: {', '.join(listed)}")
    chosen = listed[name]
    _window(query)  # validates what was given; absent times take the report's own defaults
    since, until = query.get("since", "").strip() or None, query.get("until", "").strip() or None
    extra = {
        k: v
        for k, v in query.items()
        if k in chosen.params and k not in ("database", "since", "until") and v.strip()
    }
    try:
        result = await store.report(name, since, until, **extra)
    except reports.ReportError as exc:
        raise BadRequest(str(exc)) from None
    wide = query.get("wide", "") in ("1", "on", "true")
    shown = [
        c for c in result.columns if wide or not chosen.table_columns or c in chosen.table_columns
    ]
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    return Page(
        "report.html",
        {
            "name": name,
            "summary": chosen.summary,
            "since": since or "",
            "until": until or "",
            "parameters": extra,
            "columns": result.columns,
            "types": result.types,
            "rows": rows,
        },
        title=f"report {name}",
        extra={
            "windows": WINDOWS,
            "shown": shown,
            "wide": wide,
            "params": [
                p for p in chosen.params.values() if p.name not in ("database", "since", "until")
            ],
        },
    )


# -- search -------------------------------------------------------------------------------------


def _match_url(match: Mapping[str, str], wanted: str) -> str:
    if match["kind"] == "run":
        return path("session", match["run_id"])
    if match["kind"] == "trace":
        return path("trace", match["trace_id"])
    if match["kind"] == "span":
        return path("trace", match["trace_id"]) + "#span-" + quote(wanted, safe="")
    return path("session", match["run_id"])


async def search(store: Store, query: Mapping[str, str], html: bool) -> Page:
    wanted = query.get("q", "").strip()
    if not wanted:
        if html:
            return Page("", {}, redirect="/")
        raise BadRequest("q: give the id to find")
    found = await store.rows("find_id", id=wanted)
    matches = [dict(m, url=_match_url(m, wanted)) for m in found]
    if html and matches:
        return Page("", {}, redirect=matches[0]["url"])
    return Page(
        "search.html",
        {"q": wanted, "matches": matches},
        status=200 if matches else 404,
        title="Search",
    )
