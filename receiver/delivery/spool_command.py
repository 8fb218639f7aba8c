"""``otel-receiver spool list|retry|drop``: look at and act on the spool and the dead letters.

Works on the directories alone (``<data_dir>/spool``), with or without a running receiver:
``retry`` moves dead letters into the spool's ``retry/`` inbox, which a running receiver
adopts within seconds (and a stopped one at its next start); it never writes spool files
itself, so it cannot collide with the receiver's own numbering.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable

from receiver.config import Settings
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.spool import FILE_NAME


def add_command(commands: argparse._SubParsersAction, settings_flags: Callable[..., None]) -> None:
    spool = commands.add_parser("spool", help="list, retry or drop spooled batches, dead letters")
    actions = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="batches waiting in the spool, and the dead letters")
    settings_flags(listing, "data_dir", "log_level")
    for name, verb in (("retry", "hand back to the spool"), ("drop", "delete for good")):
        action = actions.add_parser(name, help=f"{verb} dead letters")
        action.add_argument("files", nargs="*", help="dead-letter file names (see `spool list`)")
        action.add_argument("--all", action="store_true", help="every dead letter")
        settings_flags(action, "data_dir", "log_level")


def run(settings: Settings, args: argparse.Namespace) -> int:
    dead = DeadLetters(settings.dead_letter_dir, settings.deadletter_max_bytes)
    if args.spool_command == "list":
        _list(settings, dead)
        return 0
    if not args.files and not args.all:
        print(f"otel-receiver spool {args.spool_command}: name dead-letter files, or --all")
        return 2
    try:
        chosen = dead.select(args.files)
    except KeyError as exc:
        print(f"otel-receiver spool {args.spool_command}: no such dead letter: {exc.args[0]}")
        return 1
    if args.spool_command == "retry":
        count = dead.retry(chosen, settings.spool_dir / "retry")
        print(f"{count} dead letters handed back to the spool ({settings.spool_dir / 'retry'})")
    else:
        count = dead.drop(chosen)
        print(f"{count} dead letters dropped")
    return 0


def _list(settings: Settings, dead: DeadLetters) -> None:
    spool_dir = settings.spool_dir
    names = [FILE_NAME.fullmatch(p.name) for p in spool_dir.glob("*.batch")]
    pending = [spool_dir / m.group(0) for m in names if m]
    tables = Counter(m.group(2) for m in names if m)
    size = sum(p.stat().st_size for p in pending)
    print(f"spool {spool_dir}: {len(pending)} batch files, {size} bytes")
    for table, count in sorted(tables.items()):
        print(f"  {table}: {count} files")
    retry = list((spool_dir / "retry").glob("*.batch")) if spool_dir.exists() else []
    if retry:
        print(f"  waiting for adoption (retry/): {len(retry)} files")
    entries = dead.entries()
    files, used = dead.usage()
    print(
        f"dead letters {dead.directory}: {files} files, {used} bytes "
        f"(cap {settings.deadletter_max_bytes})"
    )
    for entry in entries:
        print(f"  {entry.path.name}  {entry.table}  {entry.rows} rows  {entry.size} bytes")
        print(f"      {entry.reason[:300]}")
