"""Partition-shaped inserts: never send ClickHouse a block spanning more partitions than it
takes in one insert (``max_partitions_per_insert_block``, 100 by default).

Every table is partitioned by day (``PARTITION BY toDate(<column>)`` in ``schema/``). A batch
whose rows span more days than that fails with ``Code: 252 TOO_MANY_PARTS`` however often it
is retried. Such a batch is split into groups of whole days, each under the limit, with
tokens derived from the batch's, so a replayed batch splits the same way and stays
idempotent. Days are counted in UTC while ClickHouse's ``toDate`` uses the server's time
zone; a group of ``limit // 2`` UTC days spans at most ``limit // 2 + 1`` server days.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from operator import itemgetter

from clickhouse_connect.driver.client import Client

from receiver.delivery.spool import Batch
from receiver.store.schema import schema_files

NS_PER_DAY = 86_400 * 10**9
DEFAULT_MAX_PARTITIONS = 100
_TABLE = re.compile(r'CREATE TABLE IF NOT EXISTS\s+"\$\{database\}"\."(\w+)"')
_PARTITION = re.compile(r"^PARTITION BY toDate\((\w+)\)\s*$", re.MULTILINE)


@cache
def partition_columns() -> dict[str, str]:
    """Table -> the column its day partition is computed from, read from ``schema/``."""
    found = {}
    for schema in schema_files():
        table, partition = _TABLE.search(schema.text), _PARTITION.search(schema.text)
        if table and partition:
            found[table.group(1)] = partition.group(1)
    return found


def max_partitions_per_insert(client: Client) -> int:
    """The server's ``max_partitions_per_insert_block`` (0: no limit), or the default."""
    try:
        value = client.command(
            "SELECT value FROM system.settings WHERE name = 'max_partitions_per_insert_block'"
        )
        return int(value)
    except Exception:
        return DEFAULT_MAX_PARTITIONS


def split_by_partition(batch: Batch, max_partitions: int) -> Iterator[Batch]:
    """``batch`` itself when its rows span few enough days, else groups of whole days."""
    column = partition_columns().get(batch.table)
    if column is None or column not in batch.columns or max_partitions <= 0:
        yield batch
        return
    index = batch.columns.index(column)
    stamps = list(map(itemgetter(index), batch.rows))  # C loops: the common case stays cheap
    if not stamps or int(max(stamps)) // NS_PER_DAY - int(min(stamps)) // NS_PER_DAY < (
        max_partitions - 1
    ):
        yield batch
        return
    by_day: dict[int, list[tuple]] = defaultdict(list)
    for row, stamp in zip(batch.rows, stamps, strict=True):
        by_day[int(stamp) // NS_PER_DAY].append(row)
    if len(by_day) < max_partitions:
        yield batch
        return
    per_group = max(max_partitions // 2, 1)
    days = sorted(by_day)
    for number, start in enumerate(range(0, len(days), per_group)):
        rows = [row for day in days[start : start + per_group] for row in by_day[day]]
        yield Batch(batch.table, batch.columns, rows, f"{batch.token}.p{number}")
