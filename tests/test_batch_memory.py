"""The batcher takes a request's rows: they are freed with the batch that stores them, while the
request still waits for its other tables (docs/BENCHMARKS.md, "Memory at 2 x 512"). A recording
sink stands in for ClickHouse; the spool is real."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from receiver.delivery.batch import Batcher
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.deliver import Delivery
from receiver.delivery.spool import Spool

from .test_batch_urgent import RecordingSink

pytestmark = pytest.mark.unit

COLUMNS = {"otel_traces": ("SpanName",)}


class _Tracked(str):
    """A value that can be watched with a weak reference."""


def test_rows_are_freed_with_their_batch_not_with_the_request_that_sent_them(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        spool = Spool(tmp_path / "spool", 1 << 20)
        delivery = Delivery(sink, spool, DeadLetters(tmp_path / "dead", 1 << 20))  # type: ignore[arg-type]
        batcher = Batcher(delivery, COLUMNS, 1, 30.0, 1 << 20)  # one row fills a batch
        value = _Tracked("a span name")
        watched = weakref.ref(value)
        request_rows = {"otel_traces": [(value,)]}  # as a decoded request holds them
        del value
        stored = batcher.add("otel_traces", request_rows["otel_traces"], 10)
        await asyncio.wait_for(stored, 5)
        sink.inserts.clear()  # the recording sink's own copy
        gc.collect()
        assert request_rows["otel_traces"] == []
        assert watched() is None, "the stored rows are still held"
        await batcher.flush()

    asyncio.run(scenario())
