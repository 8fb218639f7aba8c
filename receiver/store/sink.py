"""The ClickHouse sink: the only stage that talks to ClickHouse to store telemetry.

Inserts are columnar (clickhouse-connect sends Native format) and carry an
``insert_deduplication_token`` so a batch sent twice (a replay after a crash, a retry after
a timeout that in fact succeeded) is stored once, in the tables and in the materialized
views that feed from them. Failures are sorted into retryable (ClickHouse down, overloaded,
timing out) and rejected (ClickHouse says the data itself is invalid), because the two must
be handled in opposite ways: retry the first, never the second. The sink never logs row
contents.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
import structlog
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from receiver.ops.selfmetrics import BATCH_ROWS, INSERT_SECONDS, count_clickhouse_error
from receiver.store.credentials import Credentials

log = structlog.get_logger("receiver.store.sink")

# ClickHouse error codes that say "not now" rather than "not this data".
RETRYABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        60,  # UNKNOWN_TABLE (schema being re-created)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        373,  # SESSION_IS_LOCKED
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
_CODE = re.compile(r"Code: (\d+)")


class RetryableInsertError(Exception):
    """ClickHouse could not take the insert now; the same insert may succeed later."""


class RejectedInsertError(Exception):
    """ClickHouse refused the rows themselves; retrying the same rows cannot succeed."""


def classify(exc: Exception) -> Exception:
    """The retryable or rejected error that ``exc`` (from clickhouse-connect) stands for."""
    if isinstance(exc, OperationalError):
        return RetryableInsertError(str(exc))
    if isinstance(exc, DatabaseError):
        code = _CODE.search(str(exc))
        if code is None or int(code.group(1)) in RETRYABLE_CODES:
            return RetryableInsertError(str(exc))
    return RejectedInsertError(str(exc))


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
    """Writes batches of rows into the receiver's tables."""

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._database = database

    def insert(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None:
        """Insert ``rows`` (tuples in ``column_names`` order) as one idempotent insert.

        Raises RetryableInsertError or RejectedInsertError.
        """
        started = time.perf_counter()
        try:
            self._client.insert(
                table,
                rows,
                column_names=list(column_names),
                database=self._database,
                settings={
                    "insert_deduplication_token": token,
                    "insert_deduplicate": 1,
                    "deduplicate_blocks_in_dependent_materialized_views": 1,
                },
            )
        except Exception as exc:
            error = classify(exc)
            INSERT_SECONDS.labels(table).observe(time.perf_counter() - started)
            kind = "retryable" if isinstance(error, RetryableInsertError) else "rejected"
            count_clickhouse_error(kind, str(exc))
            raise error from exc
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
