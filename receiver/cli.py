"""The ``otel-receiver`` command.

Exit codes: 0 success; 1 a runtime failure (ClickHouse unreachable, embedded ClickHouse could
not start); 2 invalid usage or settings (the message names the setting).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from receiver.config import ConfigError, Settings, load_settings
from receiver.ops.log import configure_logging

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

EXIT_RUNTIME = 1
EXIT_USAGE = 2


def _settings_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """Flags that override settings; help and defaults come from ``Settings`` itself."""
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    for name in names:
        meta = Settings.__dataclass_fields__[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            metavar=name.rsplit("_", 1)[-1].upper(),
            help=f"{meta.metadata['help']} (default: {meta.default!r})",
        )


_SERVE_FLAGS = (
    "grpc_listen",
    "http_listen",
    "metrics_listen",
    "clickhouse_url",
    "data_dir",
    "embedded_http_port",
    "embedded_tcp_port",
    "log_level",
    "ui_listen",
)
_STATUS_FLAGS = ("metrics_listen", "clickhouse_url", "data_dir", "log_level")
_CLICKHOUSE_FLAGS = ("data_dir", "embedded_http_port", "embedded_tcp_port", "log_level")
_QUERY_FLAGS = (
    "clickhouse_url",
    "clickhouse_database",
    "embedded_http_port",
    "data_dir",
    "log_level",
)
_SCHEMA_FLAGS = ("clickhouse_url", "data_dir", "log_level")
_UI_FLAGS = (
    "ui_listen",
    "clickhouse_url",
    "clickhouse_database",
    "embedded_http_port",
    "data_dir",
    "log_level",
)


def _insecure_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-allow-unauthenticated",
        dest="insecure_allow_unauthenticated",
        action="store_const",
        const=True,
        default=None,
        help="accept clients without a token or certificate on a non-loopback address",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-receiver",
        description="OTLP receiver for AI coding agents, writing to ClickHouse.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="receive OTLP and store it in ClickHouse (starts an embedded one if no URL is set)",
    )
    _settings_flags(serve, *_SERVE_FLAGS)
    _insecure_flag(serve)
    status = commands.add_parser(
        "status",
        help="summarize a running receiver (its /metrics) and whether ClickHouse answers",
    )
    _settings_flags(status, *_STATUS_FLAGS)
    clickhouse = commands.add_parser(
        "clickhouse", help="run only the embedded ClickHouse server, in the foreground"
    )
    _settings_flags(clickhouse, *_CLICKHOUSE_FLAGS)
    schema = commands.add_parser("schema", help="manage the ClickHouse schema")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    apply = schema_commands.add_parser("apply", help="create or update every table now")
    apply.add_argument(
        "--migrate",
        action="store_true",
        help="add columns missing from existing tables (schema drift), then check again",
    )
    _settings_flags(apply, *_SCHEMA_FLAGS)
    tree = commands.add_parser(
        "tree",
        help="show a launch, Claude session or codex run as a tree (codex runs under the "
        "Claude tool call that spawned them), with totals including children",
    )
    tree.add_argument("id", help="a cc.launch id, Claude session id, codex run id or trace id")
    tree.add_argument("--format", choices=("text", "json"), default="text")
    _settings_flags(tree, *_QUERY_FLAGS)
    from receiver.delivery.spool_command import add_command as add_spool_command

    add_spool_command(commands, _settings_flags)  # spool list|retry|drop
    ui = commands.add_parser(
        "ui",
        help="serve only the web UI (sessions, trees, traces, live tail, reports) over a "
        "ClickHouse: the embedded one's HTTP port, or --clickhouse-url",
    )
    _settings_flags(ui, *_UI_FLAGS)
    _insecure_flag(ui)
    from receiver.query.reports import add_commands as add_report_commands

    add_report_commands(commands, _settings_flags)  # report NAME, reports, sessions
    from receiver.agents.hook_settings import add_commands as add_hooks_commands

    add_hooks_commands(commands, _settings_flags)  # hooks install|uninstall
    from receiver.query.alert_commands import add_commands as add_alert_commands

    add_alert_commands(commands, _settings_flags)  # alerts [test NAME]
    return parser


def _run_serve(settings: Settings) -> int:
    from receiver.daemon import serve

    asyncio.run(serve(settings))
    return 0


def _run_clickhouse(settings: Settings) -> int:
    import signal

    from receiver.daemon import start_embedded_clickhouse

    server = start_embedded_clickhouse(settings)
    print(f"ClickHouse is listening: HTTP {server.url}  native tcp port {server.tcp_port}")
    print(
        f"user {server.credentials.username}, password in "
        f"{settings.clickhouse_data_dir / 'password'}"
    )

    def stop(signum: int, frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait()
    return 0


def _run_schema_apply(settings: Settings, migrate: bool = False) -> int:
    from receiver.daemon import start_embedded_clickhouse
    from receiver.store.codex_prices import store_prices
    from receiver.store.credentials import clickhouse_credentials
    from receiver.store.drift import check_schema
    from receiver.store.schema import apply_schema
    from receiver.store.sink import connect

    server = start_embedded_clickhouse(settings) if settings.uses_embedded_clickhouse else None
    try:
        if server:
            client = connect(server.url, credentials=server.credentials)
        else:
            client = connect(settings.clickhouse_url, credentials=clickhouse_credentials(settings))
        applied = apply_schema(client, settings.clickhouse_database, settings)
        for change in check_schema(client, settings.clickhouse_database, settings, migrate):
            print(f"migrated: {change}")
        store_prices(client, settings.clickhouse_database, settings.codex_prices)
        print(
            f"schema is current in database {settings.clickhouse_database!r}; newly applied: "
            + (", ".join(applied) or "none")
        )
    finally:
        if server:
            server.stop()
    return 0


def _run_spool(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.delivery.spool_command import run

    return run(settings, args)


def _run_status(settings: Settings) -> int:
    from receiver.query.status import run

    return run(settings)


def _run_tree(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.query.target import QueryTargetError, query_target
    from receiver.query.tree import render_json, render_text, tree_of

    try:
        client = query_target(settings).connect()
    except QueryTargetError as exc:
        print(f"otel-receiver: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    tops = tree_of(client, settings.clickhouse_database, args.id)
    if not tops:
        print(
            f"otel-receiver: no agent run, launch or trace {args.id!r} in "
            f"{settings.clickhouse_database!r}",
            file=sys.stderr,
        )
        return EXIT_RUNTIME
    print(render_json(tops) if args.format == "json" else render_text(tops))
    return 0


def _run_reports(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.query.reports import run_command
    from receiver.query.target import QueryTargetError, query_target

    try:
        target = query_target(settings)
    except QueryTargetError as exc:  # said once a report is to run (`reports` needs no server)
        problem = exc

        def connect() -> Client:
            raise problem

        return run_command(settings, args, "", connect)
    return run_command(settings, args, target.url, target.connect)


def _run_hooks(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.agents.hook_settings import run_command

    return run_command(args, settings.http_listen)


def _run_alerts(settings: Settings, args: argparse.Namespace) -> int:
    from receiver.query.alert_commands import run_command
    from receiver.query.target import query_target

    return run_command(settings, args, lambda: query_target(settings).connect())


def _run_ui(settings: Settings) -> int:
    from receiver.ingest import tls
    from receiver.ingest.auth import Authenticator, load_tokens
    from receiver.query.target import query_target
    from receiver.web.app import serve_alone
    from receiver.web.login import check_ui_exposure
    from receiver.web.queries import connect_readonly

    if not settings.ui_listen:
        raise ConfigError("ui_listen: empty, so there is nothing to serve")
    tokens = load_tokens(settings)
    for warning in check_ui_exposure(settings, tokens):
        structlog.get_logger("receiver").warning("security_warning", message=warning)
    target = query_target(settings)
    serve_alone(
        settings,
        lambda: connect_readonly(target.url, target.credentials),
        Authenticator(tokens),
        tls.server_context(settings),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    try:
        settings = load_settings(args.config, flags)
    except ConfigError as exc:
        print(f"otel-receiver: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level)
    runner = {
        "serve": _run_serve,
        "clickhouse": _run_clickhouse,
        "schema": lambda settings: _run_schema_apply(settings, args.migrate),
        "tree": lambda settings: _run_tree(settings, args),
        "status": _run_status,
        "spool": lambda settings: _run_spool(settings, args),
        "ui": _run_ui,
        "report": lambda settings: _run_reports(settings, args),
        "reports": lambda settings: _run_reports(settings, args),
        "sessions": lambda settings: _run_reports(settings, args),
        "hooks": lambda settings: _run_hooks(settings, args),
        "alerts": lambda settings: _run_alerts(settings, args),
    }
    try:
        return runner[args.command](settings)
    except ConfigError as exc:
        print(f"otel-receiver: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        structlog.get_logger("receiver").error("fatal", error=str(exc), kind=type(exc).__name__)
        print(f"otel-receiver: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
