"""Apply the numbered DDL in ``schema/`` to ClickHouse, idempotently, and record it.

Each file holds one statement with ``string.Template`` placeholders (``${database}``,
``${cluster}``, ``${engine}``, ``${ttl_expr}``) and a ``-- ttl_column:`` header naming the
expression its TTL counts from. Every statement is ``IF NOT EXISTS``, so all of them run at
every start (a table dropped by hand comes back); versions applied for the first time are
recorded in ``schema_versions``. Like the collector's exporter, servers older than 26.2 get
the logs table with bloom-filter indexes instead of text indexes (``schema/pre_26_2/``).

A file with a ``-- tuning: <what>`` header holds idempotent ``ALTER TABLE`` statements (a
setting, a projection), each ending with a line ending in ``;``: performance tuning for new and
existing tables alike. A failure (e.g. a user without the ALTER privilege) is logged instead
of stopping the receiver, and a ``-- needs_setting: <MergeTree setting>`` header skips the
file where the server does not know that setting.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

import structlog
from clickhouse_connect.driver.client import Client

from receiver.config import Settings

log = structlog.get_logger("receiver.store.schema")

_TTL_COLUMN = re.compile(r"^-- ttl_column: (.+)$", re.MULTILINE)
_TUNING = re.compile(r"^-- tuning: (.+)$", re.MULTILINE)
_NEEDS_SETTING = re.compile(r"^-- needs_setting: (\w+)", re.MULTILINE)
_FULL_TEXT_SINCE = (26, 2)


@dataclass(frozen=True)
class SchemaFile:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def tuning(self) -> str:
        """What a tuning file tunes ("" for a file that creates objects)."""
        match = _TUNING.search(self.text)
        return match.group(1).strip() if match else ""

    @property
    def needs_setting(self) -> str:
        """The MergeTree setting a tuning file needs the server to know ("" for none)."""
        match = _NEEDS_SETTING.search(self.text)
        return match.group(1) if match else ""


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
    """The runnable statement(s): placeholders filled, header comments kept. In cluster mode
    a table file yields two statements, separated by ``;`` (see ``render_statements``)."""
    return ";\n".join(render_statements(schema, database, ttl_days, cluster))


def render_statements(
    schema: SchemaFile, database: str, ttl_days: int, cluster: str = ""
) -> list[str]:
    """The statements that apply ``schema``.

    Without a cluster: the file's one statement. With ``cluster`` (README "Operations",
    cluster mode) every statement runs ``ON CLUSTER``; a ``*MergeTree`` table becomes
    ``<name>_local`` with the matching ``Replicated*MergeTree`` engine (default replica
    path ``/clickhouse/tables/{uuid}/{shard}``, replica ``{replica}``), plus a
    ``Distributed`` table under the original name that clients read and the receiver writes
    (inserts wait for the shards: ``distributed_foreground_insert``). The sharding key is
    ``cityHash64`` of the table's sorting key: deterministic, so a replayed batch splits
    into the same blocks with the same deduplication tokens (and rows a Replacing engine
    must merge meet on one shard). Materialized views read and write the ``_local`` tables.
    """
    ttl_expr = ""
    column = _TTL_COLUMN.search(schema.text)
    if ttl_days and column:
        ttl_expr = f"TTL {column.group(1).strip()} + toIntervalDay({ttl_days})"
    text = Template(schema.text).substitute(
        database=database,
        cluster=f"ON CLUSTER {cluster}" if cluster else "",
        engine="MergeTree()",
        ttl_expr=ttl_expr,
    )
    statements = _split(text) if schema.tuning else [text]
    if not cluster:
        return statements
    return [clustered for text in statements for clustered in _clustered(text, database, cluster)]


def _split(text: str) -> list[str]:
    """A tuning file's statements: each ends with a line ending in ``;`` (comments go with
    the statement that follows them)."""
    statements, lines = [], []
    for line in text.splitlines():
        lines.append(line)
        if line.rstrip().endswith(";") and not line.lstrip().startswith("--"):
            statements.append("\n".join(lines).rstrip()[:-1])
            lines = []
    return statements


_QUOTED = r"[\"`]"
_CREATE_TABLE = re.compile(
    rf"(CREATE TABLE IF NOT EXISTS\s+{_QUOTED}\w+{_QUOTED}\.)({_QUOTED})(\w+)({_QUOTED})"
)
_CREATE_VIEW = re.compile(
    rf"CREATE MATERIALIZED VIEW IF NOT EXISTS\s+{_QUOTED}\w+{_QUOTED}\.{_QUOTED}(\w+){_QUOTED}"
)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?!Replicated)(\w*MergeTree)\b(\(\s*\))?")
_ORDER_BY = re.compile(r"^ORDER BY\s+(.+?)\s*$", re.MULTILINE)
_ALTER_TABLE = re.compile(rf"(ALTER TABLE\s+{_QUOTED}\w+{_QUOTED}\.)({_QUOTED})(\w+)({_QUOTED})")


def _clustered(text: str, database: str, cluster: str) -> list[str]:
    if _ALTER_TABLE.search(text):  # settings of the MergeTree tables under the Distributed
        return [_ALTER_TABLE.sub(r"\g<1>\g<2>\g<3>_local\g<4>", text, count=1)]
    create = _CREATE_TABLE.search(text)
    engine = _ENGINE.search(text)
    if create and engine:
        name = create.group(3)
        local = f"{name}_local"
        text = _CREATE_TABLE.sub(rf"\g<1>\g<2>{local}\g<4>", text, count=1)
        text = _ENGINE.sub(
            lambda m: f"ENGINE = Replicated{m.group(1)}" + ("()" if m.group(2) else ""),
            text,
            count=1,
        )
        order = _ORDER_BY.search(text)
        shard_key = f"cityHash64({order.group(1)})" if order else "rand()"
        distributed = (
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{name}` ON CLUSTER {cluster} "
            f"AS `{database}`.`{local}` "
            f"ENGINE = Distributed({cluster}, {database}, {local}, {shard_key})"
        )
        return [text, distributed]
    view = _CREATE_VIEW.search(text)
    if view:
        own = view.group(1)

        def to_local(match: re.Match[str]) -> str:
            table = match.group(3)
            if table == own or table.endswith("_local"):
                return match.group(0)
            return f"{match.group(1)}{match.group(2)}{table}_local{match.group(4)}"

        reference = re.compile(rf"({_QUOTED}{database}{_QUOTED}\.)({_QUOTED})(\w+)({_QUOTED})")
        return [reference.sub(to_local, text)]
    return [text]


def server_version(client: Client) -> tuple[int, int]:
    major, minor, *_ = client.server_version.split(".")
    return int(major), int(minor)


_VIEW_FILE = re.compile(r'CREATE (?:MATERIALIZED )?VIEW IF NOT EXISTS\s+"\$\{database\}"\."(\w+)"')


def _existing_views(client: Client, database: str) -> set[str]:
    """The views already in ``database``. Their files are not run again: ClickHouse analyses
    a view's query even where IF NOT EXISTS finds the view, so a table that lost a column the
    view reads would stop start-up before the drift check names the column and before
    ``schema apply --migrate`` can add it back."""
    rows = client.query(
        "SELECT name FROM system.tables "
        "WHERE database = {db:String} AND engine IN ('View', 'MaterializedView')",
        parameters={"db": database},
    ).result_rows
    return {row[0] for row in rows}


def merge_tree_settings(client: Client) -> set[str]:
    """The MergeTree settings this server knows."""
    return {
        row[0] for row in client.query("SELECT name FROM system.merge_tree_settings").result_rows
    }


def _apply_tuning(client: Client, schema: SchemaFile, statements: list[str]) -> bool:
    """Run a tuning file's statements; False (logged) when the server refused one."""
    try:
        for statement in statements:
            client.command(statement)
    except Exception as exc:  # a missing privilege must not stop the receiver
        log.warning("schema_tuning_not_applied", file=schema.name, error=str(exc)[:300])
        return False
    return True


def apply_schema(client: Client, database: str, settings: Settings) -> list[str]:
    """Create the database and every table; returns the names applied for the first time."""
    cluster = settings.clickhouse_cluster
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`{on_cluster}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_versions{on_cluster} ("
        " Version UInt32, Name String, Checksum String,"
        " AppliedAt DateTime64(3) DEFAULT now64(3)"
        f") ENGINE = {'Replicated' if cluster else ''}ReplacingMergeTree ORDER BY Version"
    )
    recorded = {
        row[0]
        for row in client.query(f"SELECT Version FROM `{database}`.schema_versions").result_rows
    }
    newly_applied = []
    existing_views = set() if cluster else _existing_views(client, database)
    known_settings = merge_tree_settings(client)
    for schema in schema_files(server_version(client)):
        statements = render_statements(schema, database, settings.clickhouse_ttl_days, cluster)
        if schema.tuning:
            if schema.needs_setting not in known_settings | {""} or not _apply_tuning(
                client, schema, statements
            ):
                continue
        elif not ((view := _VIEW_FILE.search(schema.text)) and view.group(1) in existing_views):
            for statement in statements:
                client.command(statement)
        if schema.version not in recorded:
            client.insert(
                "schema_versions",
                [(schema.version, schema.name, schema.checksum)],
                column_names=["Version", "Name", "Checksum"],
                database=database,
            )
            newly_applied.append(schema.name)
    return newly_applied
