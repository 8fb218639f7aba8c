"""The sink lets go of a batch's rows when its insert returns, not at the next full garbage
collection: clickhouse-connect's insert context is a reference cycle and used to hold every
inserted batch until the collector found it (docs/BENCHMARKS.md, "Memory at 2 x 512")."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from receiver.store.sink import ClickHouseSink


class _Tracked(str):
    """A string value that can be watched with a weak reference."""


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_batch_is_freed_once_inserted_without_the_garbage_collector(
    client: Client, database: str, collector_off: None
) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE {database}.items (n UInt32, s String) ENGINE = MergeTree ORDER BY n"
    )
    sink = ClickHouseSink(client, database)
    value = _Tracked("held by the batch only")
    rows = [(n, value if n == 7 else "x") for n in range(1000)]
    watched = weakref.ref(value)
    del value

    sink.insert("items", ("n", "s"), rows, "sink-memory-1")

    assert len(rows) == 1000  # the caller's list is left whole (a retry or the spool needs it)
    del rows
    assert watched() is None, "something still holds the inserted rows"
    stored = client.query(
        f"SELECT count(), countIf(s = 'held by the batch only') FROM {database}.items"
    )
    assert stored.result_rows == [(1000, 1)]
