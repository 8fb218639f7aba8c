"""Apply the numbered DDL in ``schema/`` to ClickHouse, idempotently, and record it.

Each file holds one statement with ``string.Template`` placeholders (``${database}``,
``${cluster}``, ``${engine}``, ``${ttl_expr}``) and a ``-- ttl_column:`` header naming the
expression its TTL counts from. Every statement is ``IF NOT EXISTS``, so all of them run at
every start (a table dropped by hand comes back); versions applied for the first time are
recorded in ``schema_versions``. Like the collector's exporter, servers older than 26.2 get
the logs table with bloom-filter indexes instead of text indexes (``schema/pre_26_2/``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

from clickhouse_connect.driver.client import Client

from receiver.config import Settings

_TTL_COLUMN = re.compile(r"^-- ttl_column: (.+)$", re.MULTILINE)
_FULL_TEXT_SINCE = (26, 2)


@dataclass(frozen=True)
class SchemaFile:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def schema_files(server_version: tuple[int, int] = (99, 0)) -> list[SchemaFile]:
    """The DDL files in version order, with variants chosen for ``server_version``."""
    root = resources.files("receiver.schema")
    older = root / "pre_26_2"
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not re.fullmatch(r"\d{4}_\w+\.sql", entry.name):
            continue
        source = entry
        if server_version < _FULL_TEXT_SINCE and (older / entry.name).is_file():
            source = older / entry.name
        found.append(SchemaFile(int(entry.name[:4]), entry.name[5:-4], source.read_text()))
    return found


def render(schema: SchemaFile, database: str, ttl_days: int, cluster: str = "") -> str:
    """The runnable statement: placeholders filled, header comments kept."""
    ttl_expr = ""
    column = _TTL_COLUMN.search(schema.text)
    if ttl_days and column:
        ttl_expr = f"TTL {column.group(1).strip()} + toIntervalDay({ttl_days})"
    return Template(schema.text).substitute(
        database=database,
        cluster=f"ON CLUSTER {cluster}" if cluster else "",
        engine="MergeTree()",
        ttl_expr=ttl_expr,
    )


def server_version(client: Client) -> tuple[int, int]:
    major, minor, *_ = client.server_version.split(".")
    return int(major), int(minor)


def apply_schema(client: Client, database: str, settings: Settings) -> list[str]:
    """Create the database and every table; returns the names applied for the first time."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_versions ("
        " Version UInt32, Name String, Checksum String,"
        " AppliedAt DateTime64(3) DEFAULT now64(3)"
        ") ENGINE = ReplacingMergeTree ORDER BY Version"
    )
    recorded = {
        row[0]
        for row in client.query(f"SELECT Version FROM `{database}`.schema_versions").result_rows
    }
    newly_applied = []
    for schema in schema_files(server_version(client)):
        client.command(render(schema, database, settings.clickhouse_ttl_days))
        if schema.version not in recorded:
            client.insert(
                "schema_versions",
                [(schema.version, schema.name, schema.checksum)],
                column_names=["Version", "Name", "Checksum"],
                database=database,
            )
            newly_applied.append(schema.name)
    return newly_applied
