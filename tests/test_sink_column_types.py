"""The sink describes a table once, not before every insert, and again after an insert into it
failed (the table may have been altered meanwhile)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from receiver.store.errors import InsertError
from receiver.store.sink import ClickHouseSink


@pytest.fixture
def described(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables the server was asked to describe, in order: clickhouse-connect describes a
    table when an insert context is made without column types (the real call is made)."""
    tables: list[str] = []
    real = client.create_insert_context

    def counting(table: str, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(real).bind(table, *args, **kwargs)
        if not bound.arguments.get("column_types") and not bound.arguments.get("column_type_names"):
            tables.append(table)
        return real(table, *args, **kwargs)

    monkeypatch.setattr(client, "create_insert_context", counting)
    return tables


def test_a_table_is_described_once_for_many_inserts(
    client: Client, database: str, described: list[str]
) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(f"CREATE TABLE {database}.a (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
    client.command(f"CREATE TABLE {database}.b (n UInt32) ENGINE = MergeTree ORDER BY n")
    sink = ClickHouseSink(client, database)

    for i in range(3):
        sink.insert("a", ("n", "s"), [(i, f"row {i}")], f"types-a-{i}")
        sink.insert("b", ("n",), [(i,)], f"types-b-{i}")

    assert described == ["a", "b"]
    stored = client.query(f"SELECT count(), groupArraySorted(3)(s) FROM {database}.a")
    assert stored.result_rows == [(3, ["row 0", "row 1", "row 2"])]
    assert client.query(f"SELECT count() FROM {database}.b").result_rows == [(3,)]


def test_a_failed_insert_makes_the_sink_describe_the_table_again(
    client: Client, database: str, described: list[str]
) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(f"CREATE TABLE {database}.t (n UInt32, v UInt32) ENGINE = MergeTree ORDER BY n")
    sink = ClickHouseSink(client, database)
    sink.insert("t", ("n", "v"), [(1, 10)], "altered-1")
    client.command(f"ALTER TABLE {database}.t MODIFY COLUMN v String")

    with pytest.raises(InsertError):  # still sent as the UInt32 the sink knew
        sink.insert("t", ("n", "v"), [(2, "twenty")], "altered-2")
    sink.insert("t", ("n", "v"), [(2, "twenty")], "altered-2")

    assert described == ["t", "t"]
    stored = client.query(f"SELECT n, v FROM {database}.t ORDER BY n")
    assert stored.result_rows == [(1, "10"), (2, "twenty")]
