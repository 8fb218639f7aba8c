"""The ClickHouse sink: the only stage that talks to ClickHouse to store telemetry.

Inserts are columnar (clickhouse-connect sends Native format) and carry an
``insert_deduplication_token`` so a batch sent twice (a replay after a crash, a retry after
a timeout that in fact succeeded) is stored once, in the tables and in the materialized
views that feed from them. Failures are raised as ``receiver.store.errors.InsertError``,
classified (transient, data, configuration) from the ClickHouse error code, because each
class is handled differently (``receiver.delivery.deliver``). The sink never logs row
contents.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
import structlog
from clickhouse_connect.driver.client import Client

from receiver.ops.selfmetrics import BATCH_ROWS, INSERT_SECONDS, count_clickhouse_error
from receiver.store.credentials import Credentials
from receiver.store.errors import classify

log = structlog.get_logger("receiver.store.sink")


def connect(
    url: str,
    database: str | None = None,
    *,
    credentials: Credentials | None = None,
    **settings: Any,
) -> Client:
    """A clickhouse-connect client for ``url`` (``http://[user:pass@]host:port``).

    ``credentials`` (``receiver.store.credentials``) override the URL's user and password and may
    name a CA bundle for https. Sessions are off so that concurrent writers on one client
    never hit ClickHouse's "session is locked" error.
    """
    extra: dict[str, Any] = {}
    if credentials is not None:
        extra = credentials.client_kwargs()
    return clickhouse_connect.get_client(
        dsn=url,
        database=database or "",
        autogenerate_session_id=False,
        settings=settings or None,
        connect_timeout=5,
        send_receive_timeout=30,
        **extra,
    )


class ClickHouseSink:
    """Writes batches of rows into the receiver's tables.

    The column types of a table are asked for once (clickhouse-connect otherwise sends a
    ``DESCRIBE TABLE`` before every insert: a round trip and ClickHouse CPU per batch) and
    forgotten when an insert into it fails, so a table altered meanwhile is described again.
    """

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._database = database
        self._column_types: dict[tuple[str, tuple[str, ...]], Sequence[Any]] = {}

    def _types(self, table: str, column_names: tuple[str, ...]) -> Sequence[Any]:
        key = (table, column_names)
        types = self._column_types.get(key)
        if types is None:
            context = self._client.create_insert_context(
                table, list(column_names), database=self._database
            )
            types = self._column_types[key] = context.column_types
        return types

    def insert(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None:
        """Insert ``rows`` (tuples in ``column_names`` order) as one idempotent insert.

        Raises ``receiver.store.errors.InsertError``.
        """
        started = time.perf_counter()
        # clickhouse-connect's InsertContext is a reference cycle (it stores bound methods of
        # itself) that keeps the list it was given until the garbage collector's next full
        # collection; give it a list of its own and empty that afterwards, so a batch's rows
        # are freed as soon as it is answered.
        handed = list(rows)
        names = tuple(column_names)
        try:
            self._client.insert(
                table,
                handed,
                column_names=list(names),
                database=self._database,
                column_types=self._types(table, names),
                settings={
                    "insert_deduplication_token": token,
                    "insert_deduplicate": 1,
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                },
            )
        except Exception as exc:
            self._column_types.pop((table, names), None)
            error = classify(exc)
            INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
            count_clickhouse_error(error.kind.value, error.code)
            raise error from exc
        finally:
            handed.clear()
        INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
        BATCH_ROWS.labels(table).observe(len(rows))
        log.info(
            "batch_inserted",
            table=table,
            rows=len(rows),
            seconds=round(time.perf_counter() - started, 4),
        )

    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        self._client.close()
