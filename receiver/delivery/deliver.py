"""Delivery: make every batch durable fast, then get it into ClickHouse exactly once.

A flushed batch is inserted directly. If ClickHouse cannot take it now (down, overloaded,
refusing for now) or has not confirmed it within ``delivery.ack_timeout`` seconds, the batch
is written to the fsynced spool instead and its requests are acknowledged from there, before
an OTLP client (10 s timeout by default) gives up and resends. A slow direct insert keeps
running; if it lands too, the replayed copy carries the same ``insert_deduplication_token``
and ClickHouse stores it once.

The spool is drained by a replayer thread, off the event loop: each file has its own
attempt count and backoff, so one failing file holds back only itself; while ClickHouse is
unreachable at all, the replayer pauses as a whole instead of trying every file. Any
exception in the replayer is logged, counted, marks the receiver degraded and restarts it
with backoff.

What a failure means comes from ``receiver.store.errors``:

- transient: spool (acknowledged), retry with backoff. A file that fails
  ``delivery.max_attempts`` times with ClickHouse answering goes to the dead letters.
- data: split the batch in halves until the refused rows are isolated; those go to the dead
  letters (``receiver.delivery.deadletter``), the rest is stored. Splits get derived tokens,
  so a replay splits the same way and stays idempotent.
- configuration: never acknowledged, never dead-lettered. The requests are answered
  UNAVAILABLE, the receiver reports itself unhealthy with the cause and the fix; spooled
  files wait until ClickHouse accepts them again.

Before any insert, a batch spanning too many day partitions is split by partition
(``receiver.delivery.partitions``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from receiver.delivery import state
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.partitions import DEFAULT_MAX_PARTITIONS, split_by_partition
from receiver.delivery.spool import Batch, CorruptBatch, Spool, SpoolFile, SpoolFull
from receiver.delivery.state import BatchState
from receiver.ops.health import DEGRADED, Health
from receiver.store.errors import ErrorClass, InsertError, classify

log = structlog.get_logger("receiver.delivery.deliver")

_ACCESS_CODES = frozenset({192, 193, 194, 195, 291, 497, 516})


class Unavailable(Exception):
    """Telemetry cannot be made durable now; the client should retry after a while."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sink(Protocol):
    """What delivery needs from ClickHouse (``receiver.store.sink.ClickHouseSink``)."""

    def insert(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None: ...


def _problem_name(table: str, error: InsertError) -> str:
    """Access problems concern every table; schema problems one table."""
    return "clickhouse_access" if error.code in _ACCESS_CODES else f"clickhouse_schema:{table}"


class Delivery:
    """Moves batches into ClickHouse, through the spool when it has to."""

    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        dead_letters: DeadLetters,
        health: Health | None = None,
        *,
        ack_timeout: float = 5.0,
        max_attempts: int = 30,
        max_partitions: int = DEFAULT_MAX_PARTITIONS,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_direct_inserts: int = 16,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.dead_letters = dead_letters
        self.health = health or Health()
        self.ack_timeout = ack_timeout
        self.max_attempts = max_attempts
        self.max_partitions = max_partitions
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_direct_inserts, thread_name_prefix="insert"
        )
        self._max_direct = max_direct_inserts
        self._direct = 0  # direct inserts running (event-loop side only)
        self._overdue = 0  # of those, still running past ack_timeout: ClickHouse is slow
        self._unreachable_until = 0.0  # skip direct inserts until then (monotonic)
        self._stopping = threading.Event()
        self._replayer: threading.Thread | None = None

    # -- the request path (event loop) -----------------------------------------------------

    async def deliver(self, batch: Batch, spool_first: bool = False) -> None:
        """Return once ``batch`` is in ClickHouse or in the spool; raise Unavailable if
        neither can take it, or if ClickHouse is misconfigured for it. ``spool_first`` writes
        it to the spool without trying ClickHouse (an fsync takes milliseconds, an insert may
        take seconds); the replayer inserts it."""
        direct = (
            not spool_first
            and self._overdue == 0
            and self._direct < self._max_direct
            and time.monotonic() >= self._unreachable_until
        )
        if direct and await self._insert_directly(batch):
            return
        await self._spool(batch)

    async def _insert_directly(self, batch: Batch) -> bool:
        """True when stored within ``ack_timeout``; False to spool it instead."""
        loop = asyncio.get_running_loop()
        self._direct += 1
        state.enter(BatchState.IN_FLIGHT)
        attempt = loop.run_in_executor(self._pool, self.store, batch)
        attempt.add_done_callback(self._direct_done)
        try:
            await asyncio.wait_for(asyncio.shield(attempt), self.ack_timeout)
        except TimeoutError:
            # Until it finishes, later batches go straight to the spool: no other client
            # should wait ack_timeout for a ClickHouse that is hanging.
            self._overdue += 1
            attempt.add_done_callback(self._overdue_done)
            log.warning("insert_slow_spooling", table=batch.table, seconds=self.ack_timeout)
            return False
        except InsertError as error:
            if error.kind is ErrorClass.CONFIGURATION:
                raise Unavailable(
                    f"ClickHouse refuses this receiver's inserts ({error}); fix: {error.fix}",
                    retry_after=30.0,
                ) from None
            log.warning("clickhouse_unavailable", table=batch.table, error=str(error)[:300])
            return False
        except Exception as exc:  # a bug must not lose an acknowledged batch: spool it
            log.error("insert_failed_unexpectedly", table=batch.table, error=repr(exc)[:300])
            return False
        return True

    def _overdue_done(self, attempt: asyncio.Future[None]) -> None:
        self._overdue -= 1

    def _direct_done(self, attempt: asyncio.Future[None]) -> None:
        self._direct -= 1
        state.leave(BatchState.IN_FLIGHT)
        if not attempt.cancelled():
            attempt.exception()  # retrieved: a late failure is already handled by the spool

    async def _spool(self, batch: Batch) -> None:
        try:
            await asyncio.to_thread(self.spool.append, batch)
        except SpoolFull as exc:
            message = f"ClickHouse cannot take data now and the spool is full ({exc})"
            raise Unavailable(message) from None
        except OSError as exc:
            log.error("spool_write_failed", error=str(exc))
            message = f"ClickHouse cannot take data now and the spool failed: {exc}"
            raise Unavailable(message) from None

    # -- storing one batch (any thread) ------------------------------------------------------

    def store(self, batch: Batch) -> None:
        """Insert ``batch`` (split by partition when it must be); dead-letter exactly the rows
        ClickHouse refuses as data. Raises InsertError (transient or configuration)."""
        for part in split_by_partition(batch, self.max_partitions):
            self._store_isolating(part)
        self.health.clear(f"clickhouse_schema:{batch.table}")
        self.health.clear("clickhouse_access")

    def _store_isolating(self, batch: Batch) -> None:
        try:
            try:
                self.sink.insert(batch.table, batch.columns, batch.rows, batch.token)
            except InsertError:
                raise
            except Exception as exc:
                raise classify(exc) from exc
        except InsertError as error:
            if error.unreachable:
                self._unreachable_until = time.monotonic() + 1.0
            if error.kind is ErrorClass.CONFIGURATION:
                self.health.report(
                    _problem_name(batch.table, error),
                    f"ClickHouse refused an insert into {batch.table}: {error}",
                    error.fix,
                )
            if error.kind is not ErrorClass.DATA:
                raise
            if len(batch.rows) == 1:
                self.dead_letters.put(batch, str(error))
                return
            middle = len(batch.rows) // 2
            for half, rows in enumerate((batch.rows[:middle], batch.rows[middle:])):
                self._store_isolating(
                    Batch(batch.table, batch.columns, rows, f"{batch.token}.{half}")
                )

    # -- the replayer (its own thread) -------------------------------------------------------

    def start(self) -> None:
        """Start replaying the spool (whatever an earlier run left, and what comes)."""
        self._replayer = threading.Thread(target=self._replay_supervised, name="spool-replayer")
        self._replayer.daemon = True
        self._replayer.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the replayer between two files (waiting at most ``timeout`` seconds for an
        insert in progress; the file stays in the spool either way)."""
        self._stopping.set()
        self.spool.wake.set()
        if self._replayer:
            await asyncio.to_thread(self._replayer.join, timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _backoff(self, attempts: int) -> float:
        delay = min(self._backoff_initial * 2 ** max(attempts - 1, 0), self._backoff_max)
        return delay * random.uniform(0.5, 1.0)

    def _replay_supervised(self) -> None:
        """Run the replayer; whatever it raises, log, count, report and restart it."""
        restarts = 0
        while not self._stopping.is_set():
            try:
                self.replay_until_stopped()
                return
            except Exception as exc:
                restarts += 1
                state.REPLAYER_RESTARTS.inc()
                log.exception("spool_replayer_crashed", error=repr(exc)[:300])
                self.health.report(
                    "spool_replayer",
                    f"the spool replayer crashed ({exc!r}); restarting it",
                    "see the receiver log for the traceback",
                    severity=DEGRADED,
                )
                self._stopping.wait(self._backoff(restarts))

    def replay_until_stopped(self) -> None:
        adopt_at = 0.0
        unreachable = 0
        while not self._stopping.is_set():
            if time.monotonic() >= adopt_at:
                self.spool.adopt_retries()
                adopt_at = time.monotonic() + 5.0
            entry, wait = self.spool.take_due()
            if entry is None:
                self.spool.wake.wait(min(wait, 5.0))
                self.spool.wake.clear()
                continue
            if self.replay_one(entry):
                unreachable = 0
                self.health.clear("spool_replayer")
            else:
                unreachable += 1
                self._stopping.wait(min(self._backoff(unreachable), 5.0))

    def replay_one(self, entry: SpoolFile) -> bool:
        """Try one spool file; False when ClickHouse was unreachable (pause everything)."""
        try:
            batch = self.spool.read(entry)
        except CorruptBatch as exc:
            self.spool.move_corrupt(entry, str(exc))
            return True
        except FileNotFoundError:
            self.spool.done(entry)
            return True
        try:
            self.store(batch)
        except InsertError as error:
            if error.unreachable:
                self.spool.failed(entry, 0.0, str(error), counts=False)
                log.warning("replay_deferred", file=entry.path.name, error=str(error)[:300])
                return False
            if error.kind is ErrorClass.CONFIGURATION:
                self.spool.failed(entry, self._backoff_max, str(error), counts=False)
                return True
            self._replay_failed(entry, batch, error)
            return True
        self.spool.done(entry)
        log.info(
            "batch_replayed",
            table=batch.table,
            rows=len(batch.rows),
            file=entry.path.name,
            attempts=entry.attempts + 1,
            spool_files_left=len(self.spool),
        )
        return True

    def _replay_failed(self, entry: SpoolFile, batch: Batch, error: InsertError) -> None:
        """A transient failure with ClickHouse answering: back off this file only, and give
        up on it (dead letters) at the attempt limit."""
        if entry.attempts + 1 >= self.max_attempts:
            gave_up = f"gave up after {entry.attempts + 1} attempts (delivery.max_attempts)"
            self.dead_letters.put(batch, f"{gave_up}: {error}")
            self.spool.done(entry)
            return
        retry_in = self._backoff(entry.attempts + 1)
        self.spool.failed(entry, retry_in, str(error), counts=True)
        log.warning(
            "replay_deferred",
            file=entry.path.name,
            attempts=entry.attempts,
            retry_in=round(retry_in, 2),
            error=str(error)[:300],
        )
