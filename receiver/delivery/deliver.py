"""Delivery: make every batch durable at once, then get it into ClickHouse exactly once.

A batch goes straight to ClickHouse when the spool is empty; if ClickHouse cannot take it
now (down, overloaded, timing out) the batch goes to the spool instead, and either way the
requests in it can be acknowledged. While anything is spooled, new batches queue behind it
in the spool, so data lands in the order it came. A replayer drains the spool in order,
with exponential backoff and jitter while ClickHouse stays away. Every insert carries the
batch's token, so a batch that reached ClickHouse before a crash or a timeout is not stored
twice when it is replayed.

A batch ClickHouse rejects as invalid is split in halves until the rows it refuses are
isolated; those go to the spool's quarantine (kept, counted, logged), the rest is stored.
Splits get derived tokens, so a replay splits the same way and stays idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading

import structlog

from receiver.delivery.spool import Batch, CorruptBatch, Spool, SpoolFull
from receiver.store.sink import ClickHouseSink, RejectedInsertError, RetryableInsertError

log = structlog.get_logger("receiver.delivery.deliver")


class Unavailable(Exception):
    """Telemetry cannot be made durable now; the client should retry after a while."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Delivery:
    """Moves batches into ClickHouse, through the spool when it has to."""

    def __init__(
        self,
        sink: ClickHouseSink,
        spool: Spool,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None
        self._spool_lock = threading.Lock()
        self.quarantined_rows = 0

    def start(self) -> None:
        """Start replaying whatever an earlier run left in the spool."""
        self._replayer = asyncio.get_running_loop().create_task(self._replay_forever())
        self._wake.set()

    async def stop(self) -> None:
        if self._replayer:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer

    async def deliver(self, batch: Batch, spool_first: bool = False) -> None:
        """Return once ``batch`` is in ClickHouse or in the spool; raise Unavailable if
        neither can take it. ``spool_first`` writes it to the spool without trying ClickHouse
        (an fsync takes milliseconds, an insert may take seconds); the replayer inserts it."""
        if len(self.spool) == 0 and not spool_first:
            try:
                await asyncio.to_thread(self.insert_or_quarantine, batch)
                return
            except RetryableInsertError as exc:
                log.warning("clickhouse_unavailable", table=batch.table, error=str(exc)[:300])
        await self._spool(batch)

    async def _spool(self, batch: Batch) -> None:
        try:
            await asyncio.to_thread(self._append, batch)
        except SpoolFull as exc:
            raise Unavailable(f"ClickHouse is unreachable and the spool is full ({exc})") from exc
        except OSError as exc:
            log.error("spool_write_failed", error=str(exc))
            raise Unavailable(f"ClickHouse is unreachable and the spool failed: {exc}") from exc
        self._wake.set()

    def _append(self, batch: Batch) -> None:
        with self._spool_lock:
            self.spool.append(batch)

    def insert_or_quarantine(self, batch: Batch) -> None:
        """Insert ``batch``; quarantine exactly the rows ClickHouse refuses.

        Raises RetryableInsertError when ClickHouse cannot take it now.
        """
        try:
            self.sink.insert(batch.table, batch.columns, batch.rows, batch.token)
        except RejectedInsertError as exc:
            if len(batch.rows) == 1:
                self.spool.quarantine(batch, str(exc))
                self.quarantined_rows += 1
                return
            middle = len(batch.rows) // 2
            for half, rows in enumerate((batch.rows[:middle], batch.rows[middle:])):
                self.insert_or_quarantine(
                    Batch(batch.table, batch.columns, rows, f"{batch.token}.{half}")
                )

    async def _replay_forever(self) -> None:
        delay = self._backoff_initial
        while True:
            await self._wake.wait()
            self._wake.clear()
            while pending := self.spool.pending():
                path = pending[0]
                try:
                    batch = self.spool.read(path)
                except CorruptBatch as exc:
                    with self._spool_lock:
                        self.spool.move_corrupt(path, str(exc))
                    continue
                try:
                    await asyncio.to_thread(self.insert_or_quarantine, batch)
                except RetryableInsertError as exc:
                    log.warning(
                        "replay_deferred",
                        file=path.name,
                        retry_in=round(delay, 2),
                        error=str(exc)[:300],
                    )
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, self._backoff_max)
                    continue
                with self._spool_lock:
                    self.spool.remove(path)
                delay = self._backoff_initial
                log.info(
                    "batch_replayed",
                    table=batch.table,
                    rows=len(batch.rows),
                    file=path.name,
                    spool_files_left=len(self.spool),
                )
