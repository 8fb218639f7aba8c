"""Batching: gather rows per table and flush them by size or age, one writer per table.

ClickHouse wants few, large inserts; OTLP clients send many small requests. Each table has a
buffer that flushes when it holds ``max_rows`` rows or its oldest row is ``max_delay``
seconds old. And once the buffers hold ``idle_rows`` rows between them, all are flushed as soon
as no rows have been added for ``idle_delay`` seconds. That rule is for clients that wait for
their answers (every OTLP exporter has a bounded number of requests in flight): when all of
them wait on these batches, nothing more will come until they are stored (a request waits for
every table it wrote to, small ones like ``agent_spans`` included), and waiting out
``max_delay`` would only cap the throughput at (rows in flight) / ``max_delay``. Under a steady
stream the receiver never goes quiet, so batches stay as large as before; a few rows keep
waiting, so a trickle of requests does not become a trickle of tiny inserts.

A request is acknowledged only when every batch holding its rows is durable
(in ClickHouse or in the spool): ``add`` returns a future that completes then, or fails with
``Unavailable`` so the front end answers with a retryable status and the client resends.
Memory is bounded: past ``max_queue_bytes`` of requests waiting, new ones are refused.

An ``urgent`` add (a hook call: the agent waits for its answer) flushes its table's buffer at
once, rows already waiting included, straight into the spool (one fsync for all of them) and
without waiting for an insert in flight, so it is acknowledged in milliseconds rather than after
``max_delay`` or a slow ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from receiver.delivery import state
from receiver.delivery.deliver import Delivery, Unavailable
from receiver.delivery.spool import Batch
from receiver.delivery.state import BatchState

log = structlog.get_logger("receiver.delivery.batch")


@dataclass
class _Buffer:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    nbytes: int = 0
    timer: asyncio.TimerHandle | None = None
    urgent: bool = False  # a waiter needs the rows durable now: spool them, do not wait


class Batcher:
    """Per-table row buffers with size- and time-triggered flushes.

    Flushes of one table run one at a time, in order (one writer per table); different tables
    flush concurrently.
    """

    def __init__(
        self,
        delivery: Delivery,
        columns: dict[str, Sequence[str]],
        max_rows: int,
        max_delay: float,
        max_queue_bytes: int,
        idle_rows: int = 0,
        idle_delay: float = 0.05,
    ) -> None:
        self._delivery = delivery
        self._columns = {table: tuple(cols) for table, cols in columns.items()}
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._max_queue_bytes = max_queue_bytes
        self._idle_rows = idle_rows  # 0: never flush for quiet, only by size and age
        self._idle_delay = idle_delay
        self._idle: asyncio.TimerHandle | None = None  # armed once idle_rows rows wait
        self._last_add = 0.0  # loop time of the latest add
        self._buffered_rows = 0  # rows in all buffers, not yet flushed
        self._buffers: dict[str, _Buffer] = {table: _Buffer() for table in columns}
        self._locks = {table: asyncio.Lock() for table in columns}
        self._inflight: set[asyncio.Task[None]] = set()
        self._batch_ids = itertools.count()
        # Tokens must never repeat across runs: a fresh prefix per process start.
        self._run_id = secrets.token_hex(8)
        self.queued_bytes = 0

    def check_capacity(self) -> None:
        """Raise Unavailable when accepting more would break the memory bound."""
        if self.queued_bytes >= self._max_queue_bytes:
            raise Unavailable(
                f"receiver queue is full ({self.queued_bytes} bytes waiting for ClickHouse)",
                retry_after=1.0,
            )

    def add(
        self, table: str, rows: list[tuple[Any, ...]], nbytes: int, urgent: bool = False
    ) -> asyncio.Future[None]:
        """Queue ``rows`` for ``table``; the future completes once they are durable.

        The rows move into the batch: ``rows`` is left empty, so they are freed with the batch
        that stores them instead of living on in the request until its last table is stored.
        ``nbytes`` is the request's share of memory to account for until then. ``urgent``
        flushes the table's buffer now, into the spool.
        """
        buffer = self._buffers[table]
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not buffer.rows:
            buffer.timer = loop.call_later(self._max_delay, self._flush_soon, table)
            state.enter(BatchState.QUEUED)
        buffer.rows.extend(rows)
        self._buffered_rows += len(rows)
        rows.clear()
        buffer.waiters.append(waiter)
        buffer.nbytes += nbytes
        self.queued_bytes += nbytes
        if urgent:
            buffer.urgent = True
        if urgent or len(buffer.rows) >= self._max_rows:
            self._flush_soon(table)
        if self._idle_rows:
            self._last_add = loop.time()
            if self._idle is None and self._buffered_rows >= self._idle_rows:
                self._idle = loop.call_later(self._idle_delay, self._flush_if_idle)
        return waiter

    def _flush_if_idle(self) -> None:
        """Flush every buffer if nothing was added for ``idle_delay``, else look again then."""
        self._idle = None
        if self._buffered_rows < self._idle_rows:
            return  # flushed meanwhile by size or age
        loop = asyncio.get_running_loop()
        remaining = self._last_add + self._idle_delay - loop.time()
        if remaining > 0:
            self._idle = loop.call_later(remaining, self._flush_if_idle)
            return
        for table in self._buffers:
            self._flush_soon(table)

    def _flush_soon(self, table: str) -> None:
        buffer = self._buffers[table]
        if buffer.timer is not None:
            buffer.timer.cancel()
        if not buffer.rows:
            return
        self._buffered_rows -= len(buffer.rows)
        self._buffers[table] = _Buffer()
        state.leave(BatchState.QUEUED)
        task = asyncio.get_running_loop().create_task(self._write(table, buffer))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _write(self, table: str, buffer: _Buffer) -> None:
        batch = Batch(
            table,
            self._columns[table],
            buffer.rows,
            f"{self._run_id}-{table}-{next(self._batch_ids)}",
        )
        # An urgent batch goes to the spool without queueing behind the table's insert in
        # flight, which may wait seconds for a slow ClickHouse (the spool keeps its own order).
        writer = contextlib.nullcontext() if buffer.urgent else self._locks[table]
        try:
            async with writer:
                await self._delivery.deliver(batch, spool_first=buffer.urgent)
        except Exception as exc:
            error = exc if isinstance(exc, Unavailable) else Unavailable(str(exc))
            log.error("batch_not_durable", table=table, rows=len(buffer.rows), error=str(exc))
            self._settle(buffer, error)
        else:
            self._settle(buffer, None)

    def _settle(self, buffer: _Buffer, error: Exception | None) -> None:
        self.queued_bytes -= buffer.nbytes
        for waiter in buffer.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def flush(self) -> None:
        """Flush every buffer now and wait for all batches in flight."""
        for table in self._buffers:
            self._flush_soon(table)
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
