"""Named reports: the parameterised SQL files in ``sql/`` (package ``receiver.sql``), run
against ClickHouse and printed as a table, JSON or CSV.

Each file starts with a header comment that this module reads:

- ``-- NAME: what it answers``: the one-line summary (``--   `` lines after it: details);
- ``-- Parameters:`` then one ``--   {name:Type}  meaning (... default: X)`` line per query
  parameter; ``{database:Identifier}`` is always the receiver's database, ``{since:...}`` and
  ``{until:...}`` the time window (``--since`` / ``--until``); a String default of ``all``
  means the empty string (no filter);
- ``-- Table: col, col, ...``: the columns ``--format table`` shows (``--wide``: all).

Times are passed to ClickHouse as Unix seconds with nine decimals, which ``DateTime64(9)``
parameters parse the same in every server time zone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any

from receiver.store.unreachable import cause

if TYPE_CHECKING:
    import argparse

    from clickhouse_connect.driver.client import Client

FORMATS = ("table", "json", "csv")
_PARAM = re.compile(r"--\s+\{(\w+):([^}]+)\}\s*(.*)")
_USED = re.compile(r"\{(\w+):[^}]+\}")
_DEFAULT = re.compile(r"default:?\s*([^;)]+)")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# DateTime64 parameters parse ten-digit Unix seconds; earlier times are not needed (TTL).
_MIN_NS = 1_000_000_000 * 10**9
_MAX_NS = 9_000_000_000 * 10**9
_CELL_WIDTH = 40
_HASH = re.compile(r"[0-9a-f]{32,}")


class ReportError(ValueError):
    """Invalid use of a report (unknown name, bad time, unknown parameter): exit code 2."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    default: str | None


@dataclass(frozen=True)
class Report:
    name: str
    summary: str
    sql: str
    params: dict[str, Param]
    table_columns: tuple[str, ...]

    @property
    def used(self) -> set[str]:
        """Parameter names the SQL really uses."""
        return set(_USED.findall(_strip_comments(self.sql)))


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def parse_report(name: str, sql: str) -> Report:
    """A report from its SQL text and header comment."""
    summary: list[str] = []
    params: dict[str, Param] = {}
    table: tuple[str, ...] = ()
    section = "summary"
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        text = line[2:].strip()
        if section == "summary" and not summary and line.startswith(f"-- {name}:"):
            summary.append(text[len(name) + 1 :].strip())
        elif text.startswith("Parameters:"):
            section = "params"
        elif text.startswith("Table:"):
            table = tuple(c.strip() for c in text[len("Table:") :].split(",") if c.strip())
            section = "other"
        elif section == "params" and (m := _PARAM.match(line)):
            pname, ptype, description = m.groups()
            default = _DEFAULT.search(description)
            value = default.group(1).strip() if default else None
            if value == "all" and ptype == "String":
                value = ""
            params[pname] = Param(pname, ptype, description, value)
        elif section == "params" and not line.startswith("--     "):
            section = "other"
    return Report(name, " ".join(summary), sql, params, table)


def available() -> dict[str, Report]:
    """Every report shipped in ``receiver.sql``, by name."""
    found = {}
    for entry in sorted(resources.files("receiver.sql").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            name = entry.name[: -len(".sql")]
            found[name] = parse_report(name, entry.read_text())
    return found


def get(name: str) -> Report:
    reports = available()
    if name not in reports:
        raise ReportError(f"unknown report {name!r}; reports: {', '.join(reports)}")
    return reports[name]


def parse_time(text: str, now: datetime) -> datetime:
    """``now``, a duration back from now (``90s``, ``15m``, ``1h``, ``7d``, ``2w``) or ISO 8601
    (a time without a zone is UTC)."""
    value = text.strip()
    if value.lower() == "now":
        return now
    if m := _DURATION.fullmatch(value):
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(
            f"expected now, a duration like 1h or 7d, or an ISO-8601 time, got {text!r}"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def clickhouse_time(when: datetime) -> str:
    """A ``DateTime64(9)`` query parameter value: Unix seconds with nine decimals."""
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    ns = min(max(ns, _MIN_NS), _MAX_NS)
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def parameters(
    report: Report,
    database: str,
    since: str | None = None,
    until: str | None = None,
    extra: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Every parameter the report's SQL uses, from the arguments and the header defaults."""
    now = now or datetime.now(UTC)
    extra = dict(extra or {})
    unknown = set(extra) - set(report.params) - {"database", "since", "until"}
    if unknown:
        known = ", ".join(sorted(set(report.params) - {"database", "since", "until"})) or "none"
        raise ReportError(
            f"report {report.name!r} has no parameter {', '.join(sorted(unknown))}; "
            f"its parameters: {known}"
        )
    values: dict[str, str] = {}
    window: dict[str, tuple[str, datetime]] = {}
    for name in sorted(report.used):
        param = report.params.get(name)
        default = param.default if param else None
        if name == "database":
            values[name] = extra.get(name) or database
        elif name in ("since", "until"):
            text = {"since": since, "until": until}[name] or extra.get(name)
            text = text or default or ("7d" if name == "since" else "now")
            window[name] = (text, parse_time(text, now))
            values[name] = clickhouse_time(window[name][1])
        elif name in extra:
            values[name] = check_param_value(name, param.type if param else "String", extra[name])
        elif default is not None:
            values[name] = default
        else:
            raise ReportError(
                f"report {report.name!r} needs --param {name}=VALUE"
                + (f" ({param.description})" if param else "")
            )
    if "since" in window and "until" in window and window["since"][1] >= window["until"][1]:
        raise ReportError(
            f"--since {window['since'][0]} is not before --until {window['until'][0]}: "
            "the window is empty"
        )
    return values


_INTEGER = re.compile(r"(U?)Int(\d+)")


def check_param_value(name: str, type_: str, value: str) -> str:
    """``value`` when it fits the parameter's ClickHouse type, else a ReportError naming the
    flag (numbers are checked here; ClickHouse would only say BAD_QUERY_PARAMETER)."""
    integer = _INTEGER.fullmatch(type_)
    if integer:
        unsigned, bits = integer[1] == "U", int(integer[2])
        low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not re.fullmatch(r"-?\d+", value.strip()) or not low <= int(value) <= high:
            raise ReportError(
                f"--param {name}={value}: {name} is a {type_}, expected a whole number "
                f"from {low} to {high}"
            )
        return value.strip()
    return value


@dataclass
class Result:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def run(client: Client, report: Report, params: Mapping[str, str]) -> Result:
    """Run the report; column names and types are known even when no row comes back."""
    result = client.query(report.sql, parameters=dict(params))
    columns = list(result.column_names)
    types = [t.name for t in result.column_types]
    if not columns:
        described = client.query(
            f"DESCRIBE TABLE ({_strip_comments(report.sql)})", parameters=dict(params)
        )
        columns = [row[0] for row in described.result_rows]
        types = [row[1] for row in described.result_rows]
    return Result(columns, types, list(result.result_rows))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return float(value)
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}" if abs(value) >= 1e15 else repr(value)
    return str(value)


def render_json(result: Result) -> str:
    rows = [
        {c: _json_value(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows
    ]
    return json.dumps(rows, indent=2)


def render_csv(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_text(v) for v in row])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = _text(value)
    if _HASH.fullmatch(text):  # hashed user ids and e-mails: the start is enough to tell apart
        return text[:12] + "…"
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


def render_table(
    result: Result, report: Report, caption: str = "", wide: bool = False, width: int | None = None
) -> str:
    """A terminal table (``rich``) of the report's table columns, or of all with ``wide``.

    ``width`` None: as wide as the table needs (output to a file or pipe)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    shown = [
        i
        for i, c in enumerate(result.columns)
        if wide or not report.table_columns or c in report.table_columns
    ]
    table = Table(
        title=report.name,
        caption=caption,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
    )
    for i in shown:
        numeric = re.match(r"(Nullable\()?(U?Int|Float|Decimal)", result.types[i] or "")
        table.add_column(
            result.columns[i], justify="right" if numeric else "left", no_wrap=width is None
        )
    for row in result.rows:
        table.add_row(*(_cell(row[i]) for i in shown))
    if not result.rows:
        table.caption = f"{caption}; no rows" if caption else "no rows"
    console = Console(file=io.StringIO(), width=width or 100_000, record=True, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


# ----------------------------------------------------------------------------------------------
# Command line (wired into receiver.cli)


def add_commands(commands: Any, settings_flags: Any) -> None:
    """Add ``report``, ``reports`` and ``sessions`` to the CLI's subcommands."""
    names = list(available())

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--since",
            help="window start: a duration back from now (1h, 7d), ISO-8601 or now "
            "(default: the report's, mostly 7d)",
        )
        parser.add_argument("--until", help="window end, same forms (default: now)")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="K=V",
            help="a report parameter, e.g. session=ID (repeatable; see `otel-receiver reports`)",
        )
        parser.add_argument("--format", choices=FORMATS, default="table")
        parser.add_argument(
            "--wide", action="store_true", help="table: every column, not only the main ones"
        )
        parser.add_argument(
            "--database",
            "--clickhouse-database",
            dest="clickhouse_database",
            default=None,
            metavar="DB",
            help="the receiver's ClickHouse database (default: 'otel')",
        )
        settings_flags(parser, "clickhouse_url", "embedded_http_port", "data_dir", "log_level")

    report = commands.add_parser(
        "report", help="run a named report (see `otel-receiver reports`) and print it"
    )
    report.add_argument("name", metavar="NAME", choices=names, help=", ".join(names))
    common(report)
    listing = commands.add_parser("reports", help="list the named reports, one line each")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    settings_flags(listing, "log_level")
    sessions = commands.add_parser(
        "sessions", help="the sessions report: Claude Code sessions and their codex runs"
    )
    common(sessions)


def run_command(
    settings: Any, args: argparse.Namespace, url: str, connect: Callable[[], Client]
) -> int:
    """``report`` / ``reports`` / ``sessions``; returns the exit code. ``connect`` opens a
    client for ``url`` (the configured ClickHouse, else the embedded one's HTTP port)."""
    if args.command == "reports":
        return _list_reports(args.format)
    name = "sessions" if args.command == "sessions" else args.name
    try:
        report = get(name)
        extra = {}
        for item in args.param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ReportError(f"--param expects KEY=VALUE, got {item!r}")
            extra[key.strip()] = value
        now = datetime.now(UTC)
        params = parameters(
            report, settings.clickhouse_database, args.since, args.until, extra, now
        )
    except ReportError as exc:
        print(f"otel-receiver: {exc}", file=sys.stderr)
        return 2
    try:
        client = connect()
    except Exception as exc:
        print(_unreachable(url, settings, exc), file=sys.stderr)
        return 1
    try:
        result = run(client, report, params)
    except Exception as exc:
        print(f"otel-receiver: report {name!r} failed: {_explain(exc, settings)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.format == "json":
        print(render_json(result))
    elif args.format == "csv":
        sys.stdout.write(render_csv(result))
    else:
        caption = _window_caption(args, report, now)
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        sys.stdout.write(render_table(result, report, caption, args.wide, width))
    return 0


def _window_caption(args: argparse.Namespace, report: Report, now: datetime) -> str:
    if "since" not in report.used:
        return ""
    default = report.params.get("since")
    since = args.since or (default.default if default and default.default else "7d")
    until = args.until or "now"
    return f"since {since} until {until} (UTC); JSON/CSV: --format json|csv"


def _list_reports(fmt: str) -> int:
    reports = available()
    if fmt == "json":
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "summary": r.summary,
                        "parameters": {
                            p.name: {"type": p.type, "default": p.default}
                            for p in r.params.values()
                            if p.name != "database"
                        },
                    }
                    for r in reports.values()
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(n) for n in reports)
    for report in reports.values():
        print(f"{report.name:<{width}}  {report.summary}")
    print(
        "\notel-receiver report NAME [--since 1h|7d|ISO] [--until ...] [--param k=v] "
        "[--format table|json|csv]"
    )
    return 0


def _unreachable(url: str, settings: Any, exc: Exception) -> str:
    from receiver.query.target import QueryTargetError

    if isinstance(exc, QueryTargetError):  # already says where, why and what to do
        return f"otel-receiver: {exc}"
    if settings.clickhouse_url:
        return f"otel-receiver: cannot query ClickHouse at {_safe(url)}: {_explain(exc, settings)}"
    return (
        f"otel-receiver: no ClickHouse answers at {url} (the embedded one's HTTP port): "
        f"{_explain(exc, settings)}\n"
        "Start the receiver with `otel-receiver serve`, or only its ClickHouse with "
        "`otel-receiver clickhouse` (same --data-dir), or pass --clickhouse-url URL."
    )


def _safe(url: str) -> str:
    """``url`` without a password."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def _explain(exc: Exception, settings: Any) -> str:
    text = str(exc)
    if "UNKNOWN_DATABASE" in text or "Code: 81" in text:
        return (
            f"database {settings.clickhouse_database!r} does not exist there (pass --database, "
            "or create the tables with `otel-receiver schema apply`)"
        )
    if "UNKNOWN_TABLE" in text or "Code: 60" in text:
        return (
            f"the receiver's tables are missing in {settings.clickhouse_database!r} "
            "(`otel-receiver schema apply` creates them)"
        )
    return cause(exc)
