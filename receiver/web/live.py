"""The live tail: one poller per UI server asks ClickHouse for the events of the last minute
about twice a second and hands every event it has not seen before to each open ``/live`` page
(server-sent events). Polling ClickHouse rather than tapping the pipeline shows every
receiver's events (several receivers may share a database) and works for ``otel-receiver ui``
alone.

Events are told apart by a hash of the stored row (``event_key``), so an event stored late,
with a timestamp up to ``LOOKBACK`` in the past (agents batch their exports for seconds), is
still shown once. The poller runs only while a page listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from receiver.web.events import event_row
from receiver.web.queries import Store

log = structlog.get_logger("receiver.web.live")

POLL_SECONDS = 0.5
LOOKBACK = timedelta(seconds=90)
BACKLOG = 200  # events a newly opened page is sent first (it drops those it already shows)
QUEUE_LIMIT = 2000  # events waiting for one slow page; past it the page is sent a gap notice
POLL_LIMIT = 5000


class LiveFeed:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscribers: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()
        self._seen: dict[str, datetime] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=BACKLOG)
        self._task: asyncio.Task[None] | None = None
        self._primed = False

    def subscribe(self) -> asyncio.Queue[list[dict[str, Any]] | None]:
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(QUEUE_LIMIT)
        if self._recent:
            queue.put_nowait(list(self._recent))
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-feed")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[list[dict[str, Any]] | None]) -> None:
        self._subscribers.discard(queue)

    async def close(self) -> None:
        """End every stream (each gets ``None``) and stop polling."""
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._subscribers:
            try:
                fresh = await self.poll()
            except Exception as exc:  # ClickHouse away: keep the pages open, try again
                log.warning("live_poll_failed", error=str(exc).splitlines()[0][:200])
                fresh = []
                await asyncio.sleep(2)
            if fresh:
                self._recent.extend(fresh)
                for queue in list(self._subscribers):
                    try:
                        queue.put_nowait(fresh)
                    except asyncio.QueueFull:
                        self._subscribers.discard(queue)  # too slow: its stream ends
                        with contextlib.suppress(asyncio.QueueEmpty):
                            queue.get_nowait()
                        queue.put_nowait(None)
            await asyncio.sleep(POLL_SECONDS)
        self._primed = False

    async def poll(self) -> list[dict[str, Any]]:
        """Events not seen before, oldest first (of the first poll, the newest ``BACKLOG``: the
        pages drop those they already show)."""
        now = datetime.now(UTC)
        rows = await self._store.rows(
            "events", since=now - LOOKBACK, until=now + timedelta(days=1), limit=POLL_LIMIT
        )
        fresh = []
        for row in reversed(rows):  # the query returns the newest first
            key = row["event_key"]
            if key not in self._seen:
                self._seen[key] = now
                fresh.append(event_row(row))
        horizon = now - LOOKBACK - timedelta(seconds=30)
        self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
        if not self._primed:  # everything in the window is new: send only the newest
            self._primed = True
            return fresh[-BACKLOG:]
        return fresh
