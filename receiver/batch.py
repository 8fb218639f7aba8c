"""Batching: gather rows per table and flush them by size or age, one writer per table.

ClickHouse wants few, large inserts; OTLP clients send many small requests. Each table has a
buffer that flushes when it holds ``max_rows`` rows or its oldest row is ``max_delay``
seconds old. A request's rows are acknowledged only when the insert holding them succeeded:
``add`` returns a future that completes then (or fails with the insert's error, so the front
end can answer with a retryable status and the client resends).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("receiver.batch")

InsertFn = Callable[[str, Sequence[str], list[tuple[Any, ...]], str], None]


@dataclass
class _Buffer:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    oldest: float = 0.0
    timer: asyncio.TimerHandle | None = None


class Batcher:
    """Per-table row buffers with size- and time-triggered flushes.

    Flushes of one table run one at a time, in order (one writer per table); different tables
    flush concurrently. Inserts run in worker threads so decoding continues meanwhile.
    """

    def __init__(
        self,
        insert: InsertFn,
        columns: dict[str, Sequence[str]],
        max_rows: int,
        max_delay: float,
    ) -> None:
        self._insert = insert
        self._columns = columns
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._buffers: dict[str, _Buffer] = {table: _Buffer() for table in columns}
        self._locks = {table: asyncio.Lock() for table in columns}
        self._inflight: set[asyncio.Task[None]] = set()
        self._batch_ids = itertools.count()
        self._instance = f"{os.getpid()}-{time.time_ns()}"

    def add(self, table: str, rows: list[tuple[Any, ...]]) -> asyncio.Future[None]:
        """Queue ``rows`` for ``table``; the future completes once they are stored."""
        buffer = self._buffers[table]
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not buffer.rows:
            buffer.oldest = loop.time()
            buffer.timer = loop.call_later(self._max_delay, self._flush_soon, table)
        buffer.rows.extend(rows)
        buffer.waiters.append(waiter)
        if len(buffer.rows) >= self._max_rows:
            self._flush_soon(table)
        return waiter

    def _flush_soon(self, table: str) -> None:
        buffer = self._buffers[table]
        if buffer.timer is not None:
            buffer.timer.cancel()
        if not buffer.rows:
            return
        self._buffers[table] = _Buffer()
        task = asyncio.get_running_loop().create_task(self._write(table, buffer))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _write(self, table: str, buffer: _Buffer) -> None:
        token = f"{self._instance}-{next(self._batch_ids)}"
        async with self._locks[table]:
            try:
                await asyncio.to_thread(
                    self._insert, table, self._columns[table], buffer.rows, token
                )
            except Exception as exc:
                log.error("batch_insert_failed", table=table, rows=len(buffer.rows), error=str(exc))
                for waiter in buffer.waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                return
        for waiter in buffer.waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def flush(self) -> None:
        """Flush every buffer now and wait for all inserts in flight."""
        for table in self._buffers:
            self._flush_soon(table)
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
