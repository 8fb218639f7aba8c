"""The ClickHouse sink: the only stage that talks to ClickHouse to store telemetry.

Inserts are columnar (clickhouse-connect sends Native format) and carry an
``insert_deduplication_token`` so a batch sent twice is stored once. The sink never logs row
contents: by the time rows reach it they are redacted, but logs are the wrong place for data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
import structlog
from clickhouse_connect.driver.client import Client

log = structlog.get_logger("receiver.sink")


def connect(url: str, database: str | None = None, **settings: Any) -> Client:
    """A clickhouse-connect client for ``url`` (``http://[user:pass@]host:port``).

    Sessions are off so that concurrent writers on one client never hit ClickHouse's
    "session is locked" error.
    """
    return clickhouse_connect.get_client(
        dsn=url,
        database=database or "",
        autogenerate_session_id=False,
        settings=settings or None,
    )


class ClickHouseSink:
    """Writes batches of rows into the receiver's tables."""

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._database = database

    def insert(
        self,
        table: str,
        column_names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        dedup_token: str,
    ) -> None:
        """Insert ``rows`` (tuples in ``column_names`` order) into ``table`` as one insert."""
        started = time.perf_counter()
        self._client.insert(
            table,
            rows,
            column_names=list(column_names),
            database=self._database,
            settings={"insert_deduplication_token": dedup_token},
        )
        log.info(
            "batch_inserted",
            table=table,
            rows=len(rows),
            seconds=round(time.perf_counter() - started, 4),
        )

    def close(self) -> None:
        self._client.close()
