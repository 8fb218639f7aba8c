"""Which ClickHouse the query commands (``tree``, ``report``, ``sessions``) read, and with what.

With ``--clickhouse-url``: that server, with the configured credentials. Without: the embedded
server of ``--data-dir``, on the HTTP port that server recorded when it last started
(``<data dir>/clickhouse/run/ports.tsv``; ``--embedded-http-port`` overrides it), with the
password it generated (``<data dir>/clickhouse/password``). A query command never creates that
password (it would lock itself out of the server); every failure names the URL, the cause
and, for a refused password, the file the password was read from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from receiver.config import FIELDS, Settings, env_name
from receiver.store.credentials import (
    EMBEDDED_PASSWORD_FILE,
    EMBEDDED_USER,
    PASSWORD_ENV,
    Credentials,
    clickhouse_credentials,
    read_secret,
    safe_url,
)
from receiver.store.unreachable import cause

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


class QueryTargetError(Exception):
    """The ClickHouse to query cannot be reached or used; the message says why, on one line."""


@dataclass(frozen=True)
class QueryTarget:
    url: str
    credentials: Credentials
    password_from: str  # where the password came from, for messages ("" for none)
    embedded: bool

    def describe_failure(self, exc: BaseException) -> str:
        """One line: the URL, the cause, and what to check."""
        reason = cause(exc)
        where = safe_url(self.url)
        if reason == "authentication failed":
            user = self.credentials.username or "default"
            source = f" with the password from {self.password_from}" if self.password_from else ""
            hint = (
                " (is this the server started with the same --data-dir?)" if self.embedded else ""
            )
            return f"ClickHouse at {where} refused user {user!r}{source}{hint}"
        if self.embedded and reason == "connection refused":
            return (
                f"no ClickHouse answers at {where} (the embedded one of this --data-dir): "
                f"{reason}; start it with `otel-receiver serve` or `otel-receiver clickhouse` "
                "(same --data-dir), or pass --clickhouse-url URL"
            )
        return f"cannot query ClickHouse at {where}: {reason}"

    def connect(self) -> Client:
        """A client, or QueryTargetError with ``describe_failure``'s message."""
        from receiver.store.sink import connect

        try:
            return connect(self.url, credentials=self.credentials)
        except Exception as exc:
            raise QueryTargetError(self.describe_failure(exc)) from None


def recorded_http_port(clickhouse_data_dir: Path) -> int | None:
    """The HTTP port the embedded server of this data directory last listened on."""
    try:
        return int((clickhouse_data_dir / "run" / "ports.tsv").read_text().split("\t")[0])
    except (OSError, ValueError):
        return None


def query_target(settings: Settings) -> QueryTarget:
    """Where and how to query; QueryTargetError when the embedded password is missing."""
    if not settings.uses_embedded_clickhouse:
        credentials = clickhouse_credentials(settings)
        source = ""  # the URL's own password, if any
        if os.environ.get(PASSWORD_ENV):  # the order clickhouse_credentials reads them in
            source = f"${PASSWORD_ENV}"
        elif settings.clickhouse_password_file:
            source = settings.clickhouse_password_file
        return QueryTarget(settings.clickhouse_url, credentials, source, embedded=False)
    data_dir = settings.clickhouse_data_dir
    port = settings.embedded_http_port
    if port == FIELDS["embedded_http_port"].default:  # not chosen: where the server listened
        port = recorded_http_port(data_dir) or port
    password_file = data_dir / EMBEDDED_PASSWORD_FILE
    if not password_file.exists():
        raise QueryTargetError(
            f"no embedded ClickHouse password in {password_file}: the embedded ClickHouse of "
            f"this data directory has never started (start it with `otel-receiver serve "
            f"--data-dir {settings.data_dir}`, or pass --data-dir / {env_name('data_dir')} "
            "of the running receiver, or --clickhouse-url URL)"
        )
    password = read_secret(password_file, "embedded ClickHouse password file")
    return QueryTarget(
        f"http://127.0.0.1:{port}",
        Credentials(EMBEDDED_USER, password),
        str(password_file),
        embedded=True,
    )
