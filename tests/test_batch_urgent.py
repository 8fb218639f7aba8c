"""The batcher's ``urgent`` add (hook calls: the agent waits for the answer): durable in the spool
at once, with the rows already waiting for the same table, instead of after ``max_delay``; the
replayer then inserts the batch. A recording sink stands in for ClickHouse; the spool is real."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from receiver.delivery.batch import Batcher
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.deliver import Delivery
from receiver.delivery.spool import Spool

pytestmark = pytest.mark.unit

TABLE = "otel_logs"
COLUMNS = {TABLE: ("Timestamp", "Body")}
MAX_DELAY_S = 30.0  # far longer than any test here may wait


class RecordingSink:
    """Takes every insert and remembers it; while ``hang`` is clear, inserts wait (a ClickHouse
    that is slow to answer)."""

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[tuple[Any, ...]], str]] = []
        self.hang = threading.Event()
        self.hang.set()
        self.entered = threading.Event()

    def insert(self, table: str, columns: Sequence[str], rows: list[Any], token: str) -> None:
        self.entered.set()
        self.hang.wait(10)
        self.inserts.append((table, list(rows), token))


def batcher(
    tmp_path: Path, max_delay: float = MAX_DELAY_S
) -> tuple[Batcher, Delivery, RecordingSink]:
    sink = RecordingSink()
    spool = Spool(tmp_path / "spool", 1 << 20)
    delivery = Delivery(sink, spool, DeadLetters(tmp_path / "dead", 1 << 20))  # type: ignore[arg-type]
    return Batcher(delivery, COLUMNS, 10_000, max_delay, 1 << 20), delivery, sink


def test_an_urgent_add_is_spooled_at_once_with_the_rows_already_waiting(tmp_path: Path) -> None:
    async def scenario() -> None:
        rows, delivery, sink = batcher(tmp_path)
        waiting = rows.add(TABLE, [(1, "otlp row")], 10)
        hook = rows.add(TABLE, [(2, "hook row")], 10, urgent=True)
        await asyncio.wait_for(asyncio.gather(waiting, hook), 5)  # not MAX_DELAY_S
        # durable in the spool, one batch (one fsync) for both; ClickHouse not tried yet
        (path,) = delivery.spool.pending()
        assert delivery.spool.read(path).rows == [(1, "otlp row"), (2, "hook row")]
        assert sink.inserts == []
        delivery.start()  # the replayer inserts it and empties the spool
        for _ in range(500):
            if not delivery.spool.pending():
                break
            await asyncio.sleep(0.01)
        await delivery.stop()
        assert [(t, r) for t, r, _ in sink.inserts] == [(TABLE, [(1, "otlp row"), (2, "hook row")])]
        assert delivery.spool.pending() == []
        assert rows.queued_bytes == 0

    asyncio.run(scenario())


def test_an_ordinary_add_still_waits_for_the_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        rows, delivery, sink = batcher(tmp_path)
        ordinary = rows.add(TABLE, [(1, "otlp row")], 10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ordinary), 0.3)
        await rows.flush()  # what shutdown does: straight to the sink, spool untouched
        assert ordinary.done() and [r for _, r, _ in sink.inserts] == [[(1, "otlp row")]]
        assert delivery.spool.pending() == []

    asyncio.run(scenario())


def test_an_urgent_add_does_not_wait_for_a_slow_insert_in_flight(tmp_path: Path) -> None:
    async def scenario() -> None:
        rows, delivery, sink = batcher(tmp_path, max_delay=0.05)
        sink.hang.clear()  # ClickHouse takes its time with the next insert
        ordinary = rows.add(TABLE, [(1, "otlp row")], 10)
        # the batch interval passes: the ordinary batch's insert is in flight, and hangs
        assert await asyncio.to_thread(sink.entered.wait, 5)
        hook = rows.add(TABLE, [(2, "hook row")], 10, urgent=True)
        await asyncio.wait_for(asyncio.shield(hook), 5)
        assert not ordinary.done()  # still inserting
        (path,) = delivery.spool.pending()
        assert delivery.spool.read(path).rows == [(2, "hook row")]
        sink.hang.set()
        await asyncio.wait_for(ordinary, 10)

    asyncio.run(scenario())


def test_large_batches_are_inserted_once_rows_stop_coming(tmp_path: Path) -> None:
    """``idle_rows``: clients that all wait on these batches will send nothing more until they
    are stored, so they go when the rows stop, not after ``max_delay``: every table's, also a
    small one a request waits for too; fewer rows still wait."""

    async def scenario() -> None:
        sink = RecordingSink()
        delivery = Delivery(
            sink,  # type: ignore[arg-type]
            Spool(tmp_path / "spool", 1 << 20),
            DeadLetters(tmp_path / "dead", 1 << 20),
        )
        columns = {**COLUMNS, "agent_spans": ("SpanId",)}
        rows = Batcher(delivery, columns, 10_000, MAX_DELAY_S, 1 << 20, idle_rows=3)
        small = rows.add(TABLE, [(1, "a"), (2, "b")], 10)
        await asyncio.sleep(0.2)  # four idle delays: below idle_rows nothing is sent
        assert not small.done() and sink.inserts == []
        stitched = rows.add("agent_spans", [("s1",)], 10)
        await asyncio.wait_for(asyncio.gather(small, stitched), 5)  # not MAX_DELAY_S
        assert sorted((table, batch) for table, batch, _ in sink.inserts) == [
            ("agent_spans", [("s1",)]),
            (TABLE, [(1, "a"), (2, "b")]),
        ]

    asyncio.run(scenario())
