"""The UI's read-only access to ClickHouse: the named reports (``sql/*.sql``) and the UI's own
named queries (``sql/ui/*.sql``), each run in a worker thread.

Why threads: clickhouse-connect blocks, and a page must never stall the event loop that serves
the live tail (nor, in ``serve``, the one that acknowledges telemetry: the UI has its own loop
in its own thread, see ``receiver.web.app``). The browser never sends SQL: views pass values
for the typed ``{name:Type}`` parameters the files declare. Every query runs with
``readonly=2`` (no writes whatever the user may do) and a time limit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from clickhouse_connect.driver.client import Client

from receiver.query import reports
from receiver.query.tree import Node, build_tree
from receiver.store.credentials import Credentials
from receiver.store.sink import connect

QUERY_SETTINGS = {"readonly": 2, "max_execution_time": 20}


def connect_readonly(url: str, credentials: Credentials | None) -> Client:
    """A client whose every query is read-only and time-limited."""
    return connect(url, credentials=credentials, **QUERY_SETTINGS)


@cache
def ui_query(name: str) -> reports.Report:
    """A query of ``sql/ui/`` (package ``receiver.sql``), parsed like a report."""
    text = resources.files("receiver.sql").joinpath("ui", f"{name}.sql").read_text()
    return reports.parse_report(name, text)


class Store:
    """Named queries against one database; ``connect`` opens a client (called once, lazily)."""

    def __init__(self, connect: Callable[[], Client], database: str) -> None:
        self._connect = connect
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], tuple[float, reports.Result]] = {}
        self.database = database

    def client(self) -> Client:
        """The shared client (clickhouse-connect clients without a session are thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def report(
        self,
        name: str,
        since: str | None = None,
        until: str | None = None,
        fresh_for: float = 0.0,
        **extra: str,
    ) -> reports.Result:
        """A named report over ``[since, until)`` (its defaults when None).

        ``fresh_for`` > 0: an answer to the same question (the same window as written, e.g.
        ``7d`` .. ``now``) up to that many seconds old is reused, so paging through filters
        of one window asks ClickHouse once."""
        report = reports.get(name)
        key = (name, since, until, tuple(sorted(extra.items())))
        now = time.monotonic()
        if fresh_for and (hit := self._cache.get(key)) and now - hit[0] < fresh_for:
            return hit[1]
        params = reports.parameters(report, self.database, since, until, extra)
        result = await asyncio.to_thread(self._run, report, params)
        if fresh_for:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < fresh_for}
            self._cache[key] = (now, result)
        return result

    async def rows(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of ``sql/ui/<name>.sql`` as dicts; ``since``/``until`` are datetimes or the
        report time forms, other parameters plain values (lists for arrays)."""
        query = ui_query(name)
        values: dict[str, Any] = {"database": self.database}
        now = datetime.now(UTC)
        for key in query.used - {"database"}:
            value = params.get(key)
            param = query.params.get(key)
            if value is None and param is not None and param.default is not None:
                value = [] if param.default == "[]" else param.default
            if key in ("since", "until"):
                when = value if isinstance(value, datetime) else None
                if when is not None and when.tzinfo is None:  # as ClickHouse returns times: UTC
                    when = when.replace(tzinfo=UTC)
                when = when or reports.parse_time(str(value or "now"), now)
                value = reports.clickhouse_time(when)
            if value is None:
                raise reports.ReportError(f"query {name!r} needs parameter {key!r}")
            values[key] = value
        result = await asyncio.to_thread(self._run, query, values)
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    async def tree(self, run_or_trace_id: str) -> list[Node]:
        """``otel-receiver tree``'s nesting of the family ``run_or_trace_id`` belongs to."""
        return await asyncio.to_thread(build_tree, self.client(), self.database, run_or_trace_id)

    def _run(self, query: reports.Report, params: Mapping[str, Any]) -> reports.Result:
        result = self.client().query(query.sql, parameters=dict(params))
        return reports.Result(
            list(result.column_names), [t.name for t in result.column_types], result.result_rows
        )
