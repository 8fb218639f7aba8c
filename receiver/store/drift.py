"""Schema drift: tables that exist but are not the ones ``schema/`` describes.

``CREATE TABLE IF NOT EXISTS`` leaves an existing table alone, so a table created by the
OpenTelemetry Collector's exporter (an older column set), one altered by hand, or one made
with another ``clickhouse.ttl_days`` would otherwise be found only when inserts fail. At
start the receiver compares ``system.columns`` of its tables with the expected ones and:

- a missing column, or a column of another type: refuses to start, naming the table, the
  column and the fix (``otel-receiver schema apply --migrate`` adds missing columns; a type
  change is left to a human: it rewrites data);
- another TTL than ``clickhouse.ttl_days`` gives: applies it (``ALTER TABLE ... MODIFY TTL``).

The expected columns are not parsed from the DDL text: the same DDL is run in a scratch
database, and ClickHouse says what it means (types normalised, ``Nested`` expanded, codecs
and defaults as ``system.columns`` spells them). Extra columns are fine. Cluster mode is not
checked (its tables are ``_local`` + ``Distributed``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import structlog
from clickhouse_connect.driver.client import Client

from receiver.config import ConfigError, Settings
from receiver.store.schema import render_statements, schema_files, server_version

log = structlog.get_logger("receiver.store.drift")

_TTL = re.compile(r"\bTTL\s+(.*?)(?:\s+SETTINGS\b|$)")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default_kind: str
    default_expression: str
    codec: str

    def definition(self) -> str:
        default = f" {self.default_kind} {self.default_expression}" if self.default_kind else ""
        codec = f" {self.codec}" if self.codec else ""
        return f"`{self.name}` {self.type}{default}{codec}"


@dataclass(frozen=True)
class Drift:
    """One difference between a table and ``schema/``, with what to do about it."""

    table: str
    column: str
    expected: str
    actual: str  # "" when the column is missing

    @property
    def fix(self) -> str:
        if not self.actual:
            return "run `otel-receiver schema apply --migrate` to add it"
        return (
            f"ALTER TABLE {self.table} MODIFY COLUMN `{self.column}` {self.expected} "
            "(rewrites the column), or recreate the table"
        )

    def __str__(self) -> str:
        found = f"is {self.actual}" if self.actual else "is missing"
        return f"{self.table}.{self.column} {found}, expected {self.expected}: {self.fix}"


class SchemaDrift(ConfigError):
    """Tables differ from ``schema/`` in ways the receiver must not paper over."""

    def __init__(self, drifts: list[Drift]) -> None:
        self.drifts = drifts
        super().__init__("schema drift: " + "; ".join(str(d) for d in drifts))


def _columns(client: Client, database: str) -> dict[str, dict[str, Column]]:
    rows = client.query(
        "SELECT table, name, type, default_kind, default_expression, compression_codec "
        "FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        parameters={"db": database},
    ).result_rows
    tables: dict[str, dict[str, Column]] = {}
    for table, *column in rows:
        tables.setdefault(table, {})[column[0]] = Column(*column)
    return tables


def _ttls(client: Client, database: str) -> dict[str, str]:
    """Table -> its TTL expression ("" for none), for the MergeTree tables."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        parameters={"db": database},
    ).result_rows
    found = {}
    for name, engine_full in rows:
        match = _TTL.search(engine_full)
        found[name] = match.group(1).strip() if match else ""
    return found


def expected_schema(client: Client, database: str, settings: Settings) -> tuple[dict, dict]:
    """(columns, TTLs) of the tables ``schema/`` makes, from a scratch database."""
    # Its own name per call: receivers starting together must not share (and drop) it.
    scratch = f"{database}_schema_check_{secrets.token_hex(4)}"
    client.command(f"CREATE DATABASE `{scratch}`")
    try:
        for schema in schema_files(server_version(client)):
            if schema.tuning:  # settings, not columns or TTLs: nothing to compare
                continue
            for statement in render_statements(schema, scratch, settings.clickhouse_ttl_days):
                client.command(statement)
        return _columns(client, scratch), _ttls(client, scratch)
    finally:
        client.command(f"DROP DATABASE IF EXISTS `{scratch}`")


def check_schema(
    client: Client, database: str, settings: Settings, migrate: bool = False
) -> list[str]:
    """Compare the tables with ``schema/``; returns what was changed (TTLs, and with
    ``migrate`` the columns added). Raises SchemaDrift for what is left."""
    if settings.clickhouse_cluster:
        return []
    try:
        expected_columns, expected_ttls = expected_schema(client, database, settings)
    except Exception as exc:  # e.g. a user without CREATE DATABASE: check nothing, say so
        log.warning("schema_drift_not_checked", error=str(exc)[:300])
        return []
    actual_columns, actual_ttls = _columns(client, database), _ttls(client, database)
    changed: list[str] = []
    drifts: list[Drift] = []
    for table, columns in expected_columns.items():
        actual = actual_columns.get(table, {})
        for name, column in columns.items():
            found = actual.get(name)
            if found is None and migrate:
                client.command(
                    f"ALTER TABLE `{database}`.`{table}` ADD COLUMN IF NOT EXISTS "
                    + column.definition()
                )
                changed.append(f"{table}.{name} added")
            elif found is None:
                drifts.append(Drift(table, name, column.type, ""))
            elif found.type != column.type:
                drifts.append(Drift(table, name, column.type, found.type))
    for table, ttl in expected_ttls.items():
        if table in actual_ttls and actual_ttls[table] != ttl:
            action = f"MODIFY TTL {ttl}" if ttl else "REMOVE TTL"
            client.command(f"ALTER TABLE `{database}`.`{table}` {action}")
            changed.append(f"{table} TTL: {actual_ttls[table] or 'none'} -> {ttl or 'none'}")
    for change in changed:
        log.info("schema_migrated", change=change)
    if drifts:
        raise SchemaDrift(drifts)
    return changed
