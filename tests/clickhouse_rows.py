"""Reading rows back from ClickHouse in tests, polling with a deadline until they land."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from .receiver_process import wait_for


def rows(client: Client, database: str, sql: str) -> list[dict[str, Any]]:
    """``sql`` with ``{db}`` replaced by ``database``, as a list of column-name dicts."""
    result = client.query(sql.format(db=database))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def wait_rows(client: Client, database: str, sql: str, count: int) -> list[dict[str, Any]]:
    """Poll until the query returns at least ``count`` rows."""
    return wait_for(
        lambda: (found := rows(client, database, sql)) and len(found) >= count and found,
        10.0,
        f"{count} rows from {sql!r}",
    )


def count(client: Client, database: str, table: str, where: str = "1") -> int:
    return client.query(f"SELECT count() FROM {database}.{table} WHERE {where}").result_rows[0][0]
