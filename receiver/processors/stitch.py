"""Stitching: which agent run each item belongs to, and which run spawned which.

A run is a Claude Code session (``session.id``), a codex exec run (the codex shim's
``agent.run.id``; without the shim, its thread id: ``conversation.id``, or ``thread.id`` on
``codex.exec``), a user's Python agent (``agent_otel``'s ``agent.run.id``, marked
``agent.kind=python_agent``; stamped and parented like a codex run), or a ``cc.launch``.
The stitch stage reads each request's decoded rows and adds two kinds of rows that travel
with them through batching, the spool and ClickHouse:
``agent_spans`` (span -> run) and ``agent_run_sightings`` (what this request says about a
run: times, traces, launch/task/ticket, the shim's parent stamps).

Parents are not decided here, because the child's spans arrive first (codex exits before
Claude's tool span ends) and another receiver may hold the parent. Instead every receiver
runs a ``RunResolver`` that recomputes, inside ClickHouse, the runs seen recently and the
runs not yet linked by span, and writes ``agent_runs``: parent by span link first (a span of
the run whose parent span belongs to another run), then by the shim's stamps, then by
``cc.launch.id``; otherwise a root (launches, plain sessions) or an orphan with a reason.
Any receiver reaches the same answer, in any arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import structlog
from clickhouse_connect.driver.client import Client

from receiver.ingest.decode import Decoded
from receiver.store.tables import (
    AGENT_RUN_SIGHTINGS,
    AGENT_SPANS,
    LOGS,
    METRIC_TABLES,
    TABLE_COLUMNS,
    TRACES,
)

log = structlog.get_logger("receiver.processors.stitch")

CLAUDE_SESSION = "claude_session"
CODEX_RUN = "codex_run"
PYTHON_AGENT = "python_agent"
CC_LAUNCH = "cc_launch"
# Runs started by a tool call, stamped by the codex shim or agent_otel: without a parent they
# are orphans (a Claude session or a launch without one is a root).
SPAWNED_KINDS = (CODEX_RUN, PYTHON_AGENT)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def run_of(
    service: str, resource: dict[str, str], attributes: dict[str, str], span_name: str = ""
) -> tuple[str, str] | None:
    """(kind, run id) of an item, or None when it belongs to no agent run."""
    if span_name == "cc.launch" or service == "cc-launch":
        launch = attributes.get("cc.launch.id") or resource.get("cc.launch.id")
        return (CC_LAUNCH, launch) if launch else None
    if resource.get("agent.kind") == PYTHON_AGENT:
        run = resource.get("agent.run.id")
        return (PYTHON_AGENT, run) if run else None
    if service.startswith("codex"):
        thread = attributes.get("thread.id", "")  # a UUID on codex.exec, a worker number elsewhere
        run = (
            resource.get("agent.run.id")
            or attributes.get("conversation.id")
            or (thread if _UUID.fullmatch(thread) else "")
        )
        return (CODEX_RUN, run) if run else None
    if service == "claude-code" and attributes.get("session.id"):
        return (CLAUDE_SESSION, attributes["session.id"])
    return None


class _Sighting:
    """What one request says about one run."""

    __slots__ = ("first", "kind", "last", "resource", "service", "thread", "traces")

    def __init__(self, kind: str, service: str, resource: dict[str, str], when: int) -> None:
        self.kind, self.service, self.resource = kind, service, resource
        self.first = self.last = when
        self.traces: set[str] = set()
        self.thread = ""

    def saw(self, when: int, until: int, trace_id: str, attributes: dict[str, str]) -> None:
        """An item at ``when`` lasting until ``until`` (a span's end; ``when`` otherwise)."""
        if when < self.first:
            self.first = when
        if until > self.last:
            self.last = until
        if trace_id:
            self.traces.add(trace_id)
        if not self.thread and self.kind == CODEX_RUN:
            self.thread = attributes.get("conversation.id", "")

    def row(self, run_id: str, attributes: dict[str, str]) -> tuple[Any, ...]:
        r = self.resource
        launch_attrs = attributes if self.kind == CC_LAUNCH else r
        return (
            run_id,  # RunId
            self.kind,  # Kind
            self.service,  # ServiceName
            self.first,  # FirstSeen
            self.last,  # LastSeen
            sorted(self.traces),  # TraceIds
            launch_attrs.get("cc.launch.id", "") or r.get("cc.launch.id", ""),  # LaunchId
            launch_attrs.get("task.id", "") or r.get("task.id", ""),  # TaskId
            launch_attrs.get("ticket.id", "") or r.get("ticket.id", ""),  # TicketId
            r.get("agent.parent.session.id", ""),  # StampedParentRunId
            r.get("agent.parent.span.id", ""),  # StampedParentSpanId
            self.thread,  # ThreadId
        )


def _columns(table: str, *names: str) -> tuple[int, ...]:
    return tuple(TABLE_COLUMNS[table].index(name) for name in names)


_SPAN_COLUMNS = _columns(
    TRACES,
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "SpanName",
    "ServiceName",
    "ResourceAttributes",
    "SpanAttributes",
    "Duration",
)
_LOG_COLUMNS = _columns(
    LOGS, "Timestamp", "TraceId", "ServiceName", "ResourceAttributes", "LogAttributes"
)
_METRIC_COLUMNS = {
    table: _columns(table, "TimeUnix", "ServiceName", "ResourceAttributes", "Attributes")
    for table in METRIC_TABLES
}


def stitch(decoded: Decoded) -> None:
    """The pipeline processor: add ``agent_spans`` and ``agent_run_sightings`` rows."""
    sightings: dict[str, tuple[_Sighting, dict[str, str]]] = {}
    agent_spans: list[tuple[Any, ...]] = []

    def sighted(
        kind: str,
        run_id: str,
        service: str,
        resource: dict[str, str],
        attributes: dict[str, str],
        when: int,
        trace_id: str,
        until: int = 0,
    ) -> None:
        entry = sightings.get(run_id)
        if entry is None:
            entry = sightings[run_id] = (_Sighting(kind, service, resource, when), attributes)
        entry[0].saw(when, max(until, when), trace_id, attributes)

    ts, trace, span, parent, name, svc, res, attrs, duration = _SPAN_COLUMNS
    for row in decoded.rows.get(TRACES, ()):
        found = run_of(row[svc], row[res], row[attrs], row[name])
        if found is None:
            continue
        kind, run_id = found
        sighted(
            kind,
            run_id,
            row[svc],
            row[res],
            row[attrs],
            row[ts],
            row[trace],
            row[ts] + row[duration],
        )
        agent_spans.append(
            (row[span], row[trace], row[parent], run_id, kind, row[name], row[ts], row[duration])
        )
    ts, trace, svc, res, attrs = _LOG_COLUMNS
    for row in decoded.rows.get(LOGS, ()):
        found = run_of(row[svc], row[res], row[attrs])
        if found is not None:
            sighted(*found, row[svc], row[res], row[attrs], row[ts], row[trace])
    for table, (ts, svc, res, attrs) in _METRIC_COLUMNS.items():
        for row in decoded.rows.get(table, ()):
            found = run_of(row[svc], row[res], row[attrs])
            if found is not None:
                sighted(*found, row[svc], row[res], row[attrs], row[ts], "")
    if agent_spans:
        decoded.rows[AGENT_SPANS] = agent_spans
    if sightings:
        decoded.rows[AGENT_RUN_SIGHTINGS] = [
            sighting.row(run_id, attributes) for run_id, (sighting, attributes) in sightings.items()
        ]


# Runs to recompute: those sighted recently (by any receiver), those not yet linked by span,
# whose parent may have arrived anywhere since, and those of a launch sighted recently (its
# span comes at exit, after its runs). {since_ms:Int64} bounds the first and the last.
_CANDIDATES = """
        SELECT DISTINCT RunId FROM {db}.agent_run_sightings
        WHERE ReceivedAt >= fromUnixTimestamp64Milli({{since_ms:Int64}})
        UNION DISTINCT
        SELECT RunId FROM {db}.agent_runs FINAL
        WHERE Resolution IN ('stamped', 'launch', 'orphan')
          AND LastSeen >= now64() - INTERVAL {unresolved_days} DAY
        UNION DISTINCT
        SELECT RunId FROM {db}.agent_runs FINAL
        WHERE LaunchId IN (
            SELECT RunId FROM {db}.agent_run_sightings
            WHERE ReceivedAt >= fromUnixTimestamp64Milli({{since_ms:Int64}})
              AND Kind = 'cc_launch')
"""
# One tick's first query: the clock (for the next tick's bound) and the runs to recompute, or
# their number only when there are too many to send back as a parameter.
_TICK = """
SELECT toUnixTimestamp64Milli(now64(3)), count(),
    if(count() <= {{max_listed:UInt32}}, groupArray(RunId), [])
FROM ({candidates})
"""
# Above this many runs the resolving statement finds the candidates itself (a subquery that
# ClickHouse analyses and runs at every reference: ~30 % dearer per tick); below, it gets them
# as a list bound into its text (client-side, escaped by clickhouse-connect: in the request
# body, not the URL, which proxies limit; ~40 bytes a run against max_query_size's 256 KiB).
MAX_LISTED_CANDIDATES = 2_000
_LISTED = "SELECT arrayJoin(%(runs)s) AS RunId"
# A run without its own task / ticket takes its launch's: the codex shim stamps cc.launch.id
# but cannot see task.id (Claude Code strips OTEL_* from its children).
_RESOLVE = """
INSERT INTO {db}.agent_runs (RunId, Kind, ServiceName, ParentRunId, ParentSpanId, Resolution,
    OrphanReason, TraceId, TraceIds, LaunchId, TaskId, TicketId, ThreadId, FirstSeen, LastSeen,
    Version)
WITH
    candidates AS ({candidates}),
    seen AS (
        SELECT
            RunId,
            any(Kind) AS Kind,
            any(ServiceName) AS ServiceName,
            min(FirstSeen) AS FirstSeen,
            max(LastSeen) AS LastSeen,
            arraySort(groupUniqArrayArray(TraceIds)) AS TraceIds,
            anyIf(LaunchId, LaunchId != '') AS LaunchId,
            anyIf(TaskId, TaskId != '') AS TaskId,
            anyIf(TicketId, TicketId != '') AS TicketId,
            anyIf(StampedParentRunId, StampedParentRunId != '') AS StampedParentRunId,
            anyIf(StampedParentSpanId, StampedParentSpanId != '') AS StampedParentSpanId,
            anyIf(ThreadId, ThreadId != '') AS ThreadId
        FROM {db}.agent_run_sightings
        WHERE RunId IN (SELECT RunId FROM candidates)
        GROUP BY RunId
    ),
    launches AS (
        SELECT
            RunId,
            anyIf(TaskId, TaskId != '') AS LaunchTaskId,
            anyIf(TicketId, TicketId != '') AS LaunchTicketId
        FROM {db}.agent_run_sightings
        WHERE Kind = 'cc_launch' AND RunId IN (SELECT LaunchId FROM seen)
        GROUP BY RunId
    ),
    child_spans AS (
        SELECT RunId, SpanId, ParentSpanId, Timestamp FROM {db}.agent_spans
        WHERE RunId IN (SELECT RunId FROM candidates) AND ParentSpanId != ''
    ),
    parent_spans AS (
        SELECT SpanId, any(RunId) AS ParentRun, any(Kind) AS ParentKind FROM {db}.agent_spans
        WHERE SpanId IN (SELECT ParentSpanId FROM child_spans)
        GROUP BY SpanId
    ),
    links AS (
        SELECT
            c.RunId AS RunId,
            argMinIf(p.ParentRun, c.Timestamp, p.ParentRun NOT IN ('', c.RunId)) AS LinkRun,
            argMinIf(c.ParentSpanId, c.Timestamp, p.ParentRun NOT IN ('', c.RunId)) AS LinkSpan,
            argMinIf(p.ParentKind, c.Timestamp, p.ParentRun NOT IN ('', c.RunId)) AS LinkKind,
            argMinIf(c.ParentSpanId, c.Timestamp, p.ParentRun = '') AS MissingSpan
        FROM child_spans AS c
        LEFT JOIN parent_spans AS p ON c.ParentSpanId = p.SpanId
        GROUP BY c.RunId
    ),
    stored AS (
        SELECT RunId, Kind, ServiceName, ParentRunId, ParentSpanId, Resolution, OrphanReason,
            TraceId, TraceIds, LaunchId, TaskId, TicketId, ThreadId, FirstSeen, LastSeen
        FROM {db}.agent_runs FINAL
        WHERE RunId IN (SELECT RunId FROM candidates)
    )
SELECT n.RunId, n.Kind, n.ServiceName, n.ParentRunId, n.ParentSpanId, n.Resolution,
    n.OrphanReason, n.TraceId, n.TraceIds, n.LaunchId, n.TaskId, n.TicketId, n.ThreadId,
    n.FirstSeen, n.LastSeen, n.Version
FROM (
    SELECT
        s.RunId AS RunId,
        s.Kind AS Kind,
        s.ServiceName AS ServiceName,
        multiIf(UseLink, l.LinkRun, s.StampedParentRunId != '', s.StampedParentRunId,
                s.LaunchId != '' AND s.Kind != 'cc_launch', s.LaunchId, '') AS ParentRunId,
        multiIf(UseLink, l.LinkSpan, s.StampedParentRunId != '', s.StampedParentSpanId,
                l.MissingSpan) AS ParentSpanId,
        multiIf(UseLink, 'span_link', s.StampedParentRunId != '', 'stamped',
                s.LaunchId != '' AND s.Kind != 'cc_launch', 'launch',
                s.Kind IN {spawned_kinds} OR l.MissingSpan != '', 'orphan', 'root') AS Resolution,
        multiIf(Resolution != 'orphan', '',
                l.MissingSpan != '', concat('parent span ', l.MissingSpan, ' has not arrived'),
                'no parent context: no span link, no shim or agent_otel stamps, no cc.launch.id')
            AS OrphanReason,
        s.TraceIds[1] AS TraceId,
        s.TraceIds AS TraceIds,
        s.LaunchId AS LaunchId,
        if(s.TaskId != '', s.TaskId, la.LaunchTaskId) AS TaskId,
        if(s.TicketId != '', s.TicketId, la.LaunchTicketId) AS TicketId,
        s.ThreadId AS ThreadId,
        s.FirstSeen AS FirstSeen,
        s.LastSeen AS LastSeen,
        bitShiftLeft(toUInt64(multiIf(Resolution = 'span_link', 4, Resolution = 'stamped', 3,
                                      Resolution = 'launch', 2, 1)), 42)
            + toUInt64(toUnixTimestamp64Milli(now64(3))) AS Version,
        -- A link that only reaches the cc.launch span is less precise than the shim's stamps
        -- naming the Claude session (Claude tracing off: codex inherits the launch context).
        l.LinkRun != '' AND NOT (l.LinkKind = 'cc_launch' AND s.StampedParentRunId != '') AS UseLink
    FROM seen AS s
    LEFT JOIN links AS l ON s.RunId = l.RunId
    LEFT JOIN launches AS la ON s.LaunchId = la.RunId
) AS n
LEFT JOIN stored AS c ON n.RunId = c.RunId
-- Quiet: write a run only when something about it changed (or it is new), so idle runs
-- (stamped, launch and orphan runs are recomputed every tick) cost no inserts.
WHERE c.RunId = ''
   OR (n.Kind, n.ServiceName, n.ParentRunId, n.ParentSpanId, n.Resolution, n.OrphanReason,
       n.TraceId, n.TraceIds, n.LaunchId, n.TaskId, n.TicketId, n.ThreadId, n.FirstSeen,
       n.LastSeen)
   != (c.Kind, c.ServiceName, c.ParentRunId, c.ParentSpanId, c.Resolution, c.OrphanReason,
       c.TraceId, c.TraceIds, c.LaunchId, c.TaskId, c.TicketId, c.ThreadId, c.FirstSeen,
       c.LastSeen)
SETTINGS join_use_nulls = 0
"""


# A tick costs ClickHouse about 50 ms of CPU whatever the load (mostly planning the statement
# and reading agent_spans' index; docs/BENCHMARKS.md, round 3): the pause after a tick is at
# least this many times the tick's own duration, so that the resolver never takes more than
# about 1/BACKOFF of the time, and gives way when the machine is busy (a tick then takes
# longer) instead of adding a fixed share of work per second on top of the load.
BACKOFF = 25
# A tick's statements read little: one thread each is cheaper than ClickHouse's default
# parallel pipelines (about 10 % less CPU per tick, measured on the embedded server).
_TICK_SETTINGS = {"max_threads": 1}


def pause_after(tick_seconds: float, interval: float) -> float:
    """Seconds to wait before the next tick, after one that took ``tick_seconds``."""
    return max(interval, tick_seconds * BACKOFF)


class RunResolver:
    """Keeps ``agent_runs`` current: recomputes recent and unresolved runs every tick (every
    ``interval`` seconds, or less often when ticks are slow: ``pause_after``), and writes only
    the runs whose row would change."""

    def __init__(
        self, client: Client, database: str, interval: float = 1.0, unresolved_days: int = 2
    ) -> None:
        self._client = client
        db = f"`{database}`"
        candidates = _CANDIDATES.format(db=db, unresolved_days=unresolved_days)
        self._tick_sql = _TICK.format(candidates=candidates)
        self._sql, self._listed_sql = (
            _RESOLVE.format(db=db, candidates=found, spawned_kinds=SPAWNED_KINDS)
            for found in (candidates, _LISTED)
        )
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._since_ms = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_forever())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def resolve_once(self) -> None:
        """One pass; sightings received since the previous pass (with margin) are included.

        The runs to recompute are found first, by a small query: none (an idle receiver) skips
        the resolving statement, a few are handed to it as a list, so that ClickHouse does not
        analyse and run the candidates subquery at each of its references.
        """
        since = max(self._since_ms - 10_000, 0)  # margin for inserts still in flight
        now_ms, count, runs = self._client.query(
            self._tick_sql,
            parameters={"since_ms": since, "max_listed": MAX_LISTED_CANDIDATES},
            settings=_TICK_SETTINGS,
        ).result_rows[0]
        if count > MAX_LISTED_CANDIDATES:
            self._client.command(self._sql, parameters={"since_ms": since}, settings=_TICK_SETTINGS)
        elif count:
            self._client.command(
                self._listed_sql, parameters={"runs": runs}, settings=_TICK_SETTINGS
            )
        self._since_ms = int(now_ms)

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await asyncio.to_thread(self.resolve_once)
            except Exception as exc:  # ClickHouse away: the spool has the data; try later
                log.warning("run_resolution_failed", error=str(exc)[:300])
            await asyncio.sleep(pause_after(loop.time() - started, self._interval))
