"""Dead letters: rows ClickHouse will not take, kept on disk for a human, within a byte cap.

A batch lands here when ClickHouse refuses its rows as data (after bisection isolated them),
or when a spooled batch reached ``delivery.max_attempts`` failed attempts with ClickHouse
answering. Each dead letter is a spool-format batch file (written and fsynced like the
spool's) plus a ``.reason`` file. The count and bytes are recounted from the directory
(never kept only in memory), so they survive restarts and see ``otel-receiver spool
retry|drop`` done from another process. Past ``deadletter.max_bytes`` the rows are dropped,
counted (``otel_receiver_dead_letter_dropped_rows_total``) and logged: they are rows
ClickHouse refused, and keeping them must never stop the receiver storing good ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from receiver.delivery import state
from receiver.delivery.spool import Batch, CorruptBatch, decode, encode, write_durably
from receiver.delivery.state import BatchState

log = structlog.get_logger("receiver.delivery.deadletter")


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter file, as ``otel-receiver spool list`` shows it."""

    path: Path
    table: str
    rows: int
    size: int
    reason: str


class DeadLetters:
    """The dead-letter directory (``<data_dir>/spool/dead``)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for stray in directory.glob("*.tmp"):
            stray.unlink()

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.batch"))

    def usage(self) -> tuple[int, int]:
        """(files, bytes) on disk now, reason files included."""
        count = size = 0
        for path in self.directory.iterdir():
            if path.suffix in (".batch", ".reason"):
                try:
                    size += path.stat().st_size
                except FileNotFoundError:
                    continue  # dropped meanwhile by `otel-receiver spool drop`
                count += path.suffix == ".batch"
        return count, size

    def put(self, batch: Batch, reason: str) -> Path | None:
        """Keep ``batch`` with ``reason``; None (rows counted as dropped) when over the cap.

        The file is named by the batch token, so the same rows dead-lettered twice (a direct
        insert and its spooled copy both bisecting) are kept once.
        """
        data = encode(batch)
        path = self.directory / f"{batch.token}-{batch.table}.batch"
        _, used = self.usage()
        if not path.exists() and used + len(data) > self.max_bytes:
            state.DEAD_LETTER_DROPPED_ROWS.labels(batch.table).inc(len(batch.rows))
            log.error(
                "dead_letter_full_rows_dropped",
                table=batch.table,
                rows=len(batch.rows),
                dead_letter_bytes=used,
                max_bytes=self.max_bytes,
                reason=reason[:500],
            )
            return None
        write_durably(path.with_suffix(".reason"), (reason + "\n").encode())
        write_durably(path, data)
        state.DEAD_LETTER_ROWS.labels(batch.table).inc(len(batch.rows))
        state.TRANSITIONS.labels(BatchState.DEAD.value).inc()
        log.error(
            "batch_dead_lettered",
            table=batch.table,
            rows=len(batch.rows),
            file=path.name,
            reason=reason[:500],
        )
        return path

    def entries(self) -> list[DeadLetter]:
        found = []
        for path in self.files():
            reason_file = path.with_suffix(".reason")
            reason = reason_file.read_text().strip() if reason_file.exists() else ""
            try:
                batch = decode(path.read_bytes())
            except CorruptBatch as exc:
                found.append(DeadLetter(path, "?", 0, path.stat().st_size, f"unreadable: {exc}"))
                continue
            size = path.stat().st_size
            found.append(DeadLetter(path, batch.table, len(batch.rows), size, reason))
        return found

    def select(self, names: list[str]) -> list[Path]:
        """The dead-letter files named (file names, with or without ``.batch``); all if none."""
        files = self.files()
        if not names:
            return files
        by_name = {p.name: p for p in files} | {p.stem: p for p in files}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(", ".join(missing))
        return [by_name[n] for n in names]

    def retry(self, paths: list[Path], retry_dir: Path) -> int:
        """Hand dead letters back to the spool (its ``retry/`` inbox, adopted by the running
        receiver or at the next start)."""
        retry_dir.mkdir(parents=True, exist_ok=True)
        for path in paths:
            os.replace(path, retry_dir / path.name)
            path.with_suffix(".reason").unlink(missing_ok=True)
        return len(paths)

    def drop(self, paths: list[Path]) -> int:
        for path in paths:
            path.unlink(missing_ok=True)
            path.with_suffix(".reason").unlink(missing_ok=True)
        return len(paths)

    def watch(self) -> None:
        """Export the dead letters' count and bytes, read from disk at each scrape."""
        state.BATCHES.labels(BatchState.DEAD.value).set_function(lambda: self.usage()[0])
        state.DEAD_LETTER_BYTES.set_function(lambda: self.usage()[1])
