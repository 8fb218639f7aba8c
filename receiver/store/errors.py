"""What a failed ClickHouse insert means, decided from clickhouse-connect's exception codes.

Three classes, handled in opposite ways (docs/DELIVERY.md has the same table for users):

- ``transient``: ClickHouse cannot take the insert now (down, overloaded, timing out, out of
  memory, shutting down). Retry with backoff; the batch waits in the spool, acknowledged.
- ``data``: ClickHouse will never accept these rows (a constraint, a value it cannot parse).
  Split the batch to isolate them, dead-letter them, store the rest.
- ``configuration``: nothing will be stored until a human fixes something (the password, a
  grant, a table or column that is missing or of another type). Never acknowledged and
  never dead-lettered: clients get UNAVAILABLE and the receiver reports itself unhealthy.

The code comes from ``exc.code`` (the ``X-ClickHouse-Exception-Code`` header), never from
the message text. A code not in the table is treated as transient: retried, and after the
attempt limit dead-lettered, so an unknown error can neither lose rows nor stall the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    DATA = "data"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class KnownError:
    """One ClickHouse error code: its name, its class and, for configuration errors, the fix."""

    code: int
    name: str
    kind: ErrorClass
    fix: str = ""


_T, _D, _C = ErrorClass.TRANSIENT, ErrorClass.DATA, ErrorClass.CONFIGURATION
_SCHEMA_FIX = "run `otel-receiver schema apply --migrate` (or recreate the table) and restart"
_CREDENTIALS_FIX = "check clickhouse.user and the password (clickhouse.password_file)"
_GRANT_FIX = "GRANT INSERT, SELECT ON <database>.* TO the receiver's ClickHouse user"

KNOWN_ERRORS: dict[int, KnownError] = {
    e.code: e
    for e in (
        KnownError(3, "UNEXPECTED_END_OF_FILE", _T),
        KnownError(33, "CANNOT_READ_ALL_DATA", _T),
        KnownError(159, "TIMEOUT_EXCEEDED", _T),
        KnownError(164, "READONLY", _T),
        KnownError(202, "TOO_MANY_SIMULTANEOUS_QUERIES", _T),
        KnownError(203, "NO_FREE_CONNECTION", _T),
        KnownError(209, "SOCKET_TIMEOUT", _T),
        KnownError(210, "NETWORK_ERROR", _T),
        KnownError(218, "TABLE_IS_DROPPED", _T),
        KnownError(225, "NO_ZOOKEEPER", _T),
        KnownError(236, "ABORTED", _T),
        KnownError(241, "MEMORY_LIMIT_EXCEEDED", _T),
        KnownError(242, "TABLE_IS_READ_ONLY", _T),
        KnownError(243, "NOT_ENOUGH_SPACE", _T),
        KnownError(252, "TOO_MANY_PARTS", _T),
        KnownError(285, "TOO_FEW_LIVE_REPLICAS", _T),
        KnownError(319, "UNKNOWN_STATUS_OF_INSERT", _T),
        KnownError(373, "SESSION_IS_LOCKED", _T),
        KnownError(394, "QUERY_WAS_CANCELLED", _T),
        KnownError(425, "SYSTEM_ERROR", _T),
        KnownError(439, "CANNOT_SCHEDULE_TASK", _T),
        KnownError(999, "KEEPER_EXCEPTION", _T),
        KnownError(1000, "POCO_EXCEPTION", _T),
        KnownError(6, "CANNOT_PARSE_TEXT", _D),
        KnownError(27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", _D),
        KnownError(69, "ARGUMENT_OUT_OF_BOUND", _D),
        KnownError(117, "INCORRECT_DATA", _D),
        KnownError(131, "TOO_LARGE_STRING_SIZE", _D),
        KnownError(349, "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", _D),
        KnownError(469, "VIOLATED_CONSTRAINT", _D),
        KnownError(8, "THERE_IS_NO_COLUMN", _C, _SCHEMA_FIX),
        KnownError(10, "NOT_FOUND_COLUMN_IN_BLOCK", _C, _SCHEMA_FIX),
        KnownError(16, "NO_SUCH_COLUMN_IN_TABLE", _C, _SCHEMA_FIX),
        KnownError(20, "NUMBER_OF_COLUMNS_DOESNT_MATCH", _C, _SCHEMA_FIX),
        KnownError(47, "UNKNOWN_IDENTIFIER", _C, _SCHEMA_FIX),
        KnownError(53, "TYPE_MISMATCH", _C, _SCHEMA_FIX),
        KnownError(60, "UNKNOWN_TABLE", _C, "run `otel-receiver schema apply` and restart"),
        KnownError(70, "CANNOT_CONVERT_TYPE", _C, _SCHEMA_FIX),
        KnownError(81, "UNKNOWN_DATABASE", _C, "run `otel-receiver schema apply` and restart"),
        KnownError(192, "UNKNOWN_USER", _C, _CREDENTIALS_FIX),
        KnownError(193, "WRONG_PASSWORD", _C, _CREDENTIALS_FIX),
        KnownError(194, "REQUIRED_PASSWORD", _C, _CREDENTIALS_FIX),
        KnownError(195, "IP_ADDRESS_NOT_ALLOWED", _C, "allow the receiver's address for its user"),
        KnownError(291, "DATABASE_ACCESS_DENIED", _C, _GRANT_FIX),
        KnownError(497, "ACCESS_DENIED", _C, _GRANT_FIX),
        KnownError(516, "AUTHENTICATION_FAILED", _C, _CREDENTIALS_FIX),
    )
}


@dataclass(eq=False)
class InsertError(Exception):
    """A failed insert, classified. ``unreachable`` means no ClickHouse answered at all
    (connection refused, reset, timed out): such failures never count against a batch."""

    kind: ErrorClass
    code: int | None
    name: str
    message: str
    fix: str = ""
    unreachable: bool = False

    def __str__(self) -> str:
        code = f"Code {self.code} {self.name}: " if self.code is not None else f"{self.name}: "
        return code + self.message[:500]


def classify(exc: BaseException) -> InsertError:
    """The class of ``exc``, raised by clickhouse-connect's ``insert``.

    Without a server code: a lost connection is transient (unreachable); an error
    clickhouse-connect raised while serializing rows is data (``DataError``, ``TypeError``,
    ``ValueError``, ...); a local ``ProgrammingError`` (a column it cannot find in the
    table) is configuration.
    """
    message = str(exc)
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        known = KNOWN_ERRORS.get(code)
        if known is not None:
            return InsertError(known.kind, code, known.name, message, known.fix)
        return InsertError(_T, code, getattr(exc, "name", None) or "UNKNOWN_CODE", message)
    if isinstance(exc, OperationalError):
        return InsertError(_T, None, "UNREACHABLE", message, unreachable=True)
    if isinstance(exc, ProgrammingError):
        return InsertError(_C, None, type(exc).__name__, message, _SCHEMA_FIX)
    if isinstance(exc, DatabaseError) and not isinstance(exc, DataError):
        return InsertError(_T, None, type(exc).__name__, message)
    if isinstance(exc, OSError):
        return InsertError(_T, None, "UNREACHABLE", message, unreachable=True)
    return InsertError(_D, None, type(exc).__name__, message)
