"""The spool: a write-ahead directory of batch files, so that acknowledged rows survive
ClickHouse outages, receiver crashes and restarts.

A batch is written whole to a temporary file, fsynced, renamed to its final name and the
directory fsynced: a batch file either exists complete or not at all, and only then are the
requests in it acknowledged. One fsync covers every request in the batch (group commit).
Files are named by a sequence number so they replay in the order they were written. Each
file carries a CRC32 of its payload; a file that fails the check (torn by a crash, damaged
on disk) is moved to ``corrupt/``, logged and counted, and the rest replays. Rows that
ClickHouse rejects as invalid go to the dead letters (``receiver.delivery.deadletter``).

The directory is listed once, at start; after that the spool keeps its own index (a heap of
files by the time each may next be tried), so draining n files reads each file once and never
re-lists the directory: O(n), not O(n^2). Each file has its own attempt count and backoff, so
a file ClickHouse keeps refusing holds back only itself. Files put in ``retry/`` (by
``otel-receiver spool retry``) are adopted under a fresh sequence number. Thread-safe: the
event loop appends (from worker threads) while the replayer thread drains.

Rows arrive here already redacted: the spool must never hold anything redaction removes.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from receiver.delivery import state
from receiver.delivery.state import BatchState

log = structlog.get_logger("receiver.delivery.spool")

MAGIC = b"OTELSPOOL1\n"
FILE_NAME = re.compile(r"(\d{16})-(\w+)\.batch")


class SpoolFull(Exception):
    """Writing the batch would exceed the spool's byte cap."""


class CorruptBatch(Exception):
    """A batch file that cannot be read back whole."""


@dataclass(frozen=True)
class Batch:
    """Rows for one insert, with the token that makes the insert idempotent."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    token: str


def encode(batch: Batch) -> bytes:
    payload = zlib.compress(json.dumps(batch.rows, separators=(",", ":")).encode(), 1)
    header = {
        "table": batch.table,
        "columns": batch.columns,
        "token": batch.token,
        "rows": len(batch.rows),
        "length": len(payload),
        "crc32": zlib.crc32(payload),
    }
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def decode(data: bytes) -> Batch:
    """Parse a batch file's bytes; raises CorruptBatch saying what is wrong."""
    if not data.startswith(MAGIC):
        raise CorruptBatch("missing spool header")
    header_end = data.find(b"\n", len(MAGIC))
    if header_end < 0:
        raise CorruptBatch("truncated header")
    try:
        header = json.loads(data[len(MAGIC) : header_end])
        payload = data[header_end + 1 :]
        if len(payload) != header["length"]:
            raise CorruptBatch(f"payload is {len(payload)} bytes, header says {header['length']}")
        if zlib.crc32(payload) != header["crc32"]:
            raise CorruptBatch("payload checksum mismatch")
        rows = [tuple(row) for row in json.loads(zlib.decompress(payload))]
    except CorruptBatch:
        raise
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise CorruptBatch(f"unreadable: {exc}") from None
    if len(rows) != header["rows"]:
        raise CorruptBatch(f"{len(rows)} rows, header says {header['rows']}")
    return Batch(header["table"], tuple(header["columns"]), rows, header["token"])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: temporary file, fsync, rename, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass(order=True)
class SpoolFile:
    """One batch file in the index; ordered by when it may next be tried, then by age."""

    due: float
    seq: int
    path: Path = field(compare=False)
    table: str = field(compare=False)
    size: int = field(compare=False)
    attempts: int = field(default=0, compare=False)
    last_error: str = field(default="", compare=False)


class Spool:
    """Batch files under one directory, capped in bytes, indexed in memory."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.corrupt_dir = directory / "corrupt"
        self.retry_dir = directory / "retry"
        for d in (self.directory, self.corrupt_dir, self.retry_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for stray in directory.glob("*.tmp"):
            stray.unlink()  # a write that never completed was never acknowledged
        self._lock = threading.Lock()
        self._heap: list[SpoolFile] = []
        self.wake = threading.Event()
        self.bytes = 0
        self.files = 0
        self._next_seq = 0
        self.corrupt_files = 0
        for path in sorted(p for p in directory.iterdir() if FILE_NAME.fullmatch(p.name)):
            match = FILE_NAME.fullmatch(path.name)
            assert match is not None
            seq = int(match[1])
            self._register(SpoolFile(0.0, seq, path, match[2], path.stat().st_size))
            self._next_seq = seq + 1
        state.recount(BatchState.SPOOLED, self.files)
        state.recount(BatchState.RETRYING, 0)

    def _register(self, entry: SpoolFile) -> None:
        heapq.heappush(self._heap, entry)
        self.bytes += entry.size
        self.files += 1

    def pending(self) -> list[Path]:
        """Batch files waiting for ClickHouse, oldest first (from the index, not the disk)."""
        with self._lock:
            return [entry.path for entry in sorted(self._heap, key=lambda e: e.seq)]

    def __len__(self) -> int:
        return self.files

    def append(self, batch: Batch) -> Path:
        """Write ``batch`` durably; raises SpoolFull when the cap would be exceeded."""
        data = encode(batch)
        with self._lock:
            if self.bytes + len(data) > self.max_bytes:
                raise SpoolFull(
                    f"spool at {self.bytes} of {self.max_bytes} bytes cannot take {len(data)} more"
                )
            seq = self._next_seq
            self._next_seq += 1
            self.bytes += len(data)  # reserved while the file is written
        path = self.directory / f"{seq:016d}-{batch.table}.batch"
        try:
            write_durably(path, data)
        except BaseException:
            with self._lock:
                self.bytes -= len(data)
            raise
        with self._lock:
            self.bytes -= len(data)
            self._register(SpoolFile(0.0, seq, path, batch.table, len(data)))
            spool_bytes = self.bytes
        state.enter(BatchState.SPOOLED)
        self.wake.set()
        log.info(
            "batch_spooled",
            table=batch.table,
            rows=len(batch.rows),
            file=path.name,
            spool_bytes=spool_bytes,
        )
        return path

    def take_due(self, now: float | None = None) -> tuple[SpoolFile | None, float]:
        """The oldest file whose backoff has passed (taken out of the index until it is
        ``done``, ``failed`` or ``move_corrupt``), or None and the seconds until one is due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._heap:
                return None, float("inf")
            first = self._heap[0]
            if first.due > now:
                return None, first.due - now
            return heapq.heappop(self._heap), 0.0

    def read(self, entry: SpoolFile | Path) -> Batch:
        path = entry.path if isinstance(entry, SpoolFile) else entry
        return decode(path.read_bytes())

    def done(self, entry: SpoolFile) -> None:
        """The file's rows are stored (or dead-lettered): delete it."""
        entry.path.unlink(missing_ok=True)
        with self._lock:
            self.bytes -= entry.size
            self.files -= 1
        state.leave(BatchState.RETRYING if entry.attempts else BatchState.SPOOLED)

    def failed(self, entry: SpoolFile, retry_in: float, error: str, counts: bool) -> None:
        """Put ``entry`` back, not to be tried for ``retry_in`` seconds. ``counts``: the
        failure counts against the file (ClickHouse answered; not merely unreachable)."""
        if counts:
            if entry.attempts == 0:
                state.move(BatchState.SPOOLED, BatchState.RETRYING)
            entry.attempts += 1
        entry.last_error = error
        if retry_in > 0:  # else it keeps its place: the oldest file stays first in line
            entry.due = time.monotonic() + retry_in
        with self._lock:
            heapq.heappush(self._heap, entry)

    def move_corrupt(self, entry: SpoolFile, reason: str) -> None:
        os.replace(entry.path, self.corrupt_dir / entry.path.name)
        with self._lock:
            self.bytes -= entry.size
            self.files -= 1
            self.corrupt_files += 1
        state.leave(BatchState.RETRYING if entry.attempts else BatchState.SPOOLED)
        log.error(
            "spool_file_corrupt",
            file=entry.path.name,
            reason=reason,
            moved_to=str(self.corrupt_dir),
        )

    def adopt_retries(self) -> int:
        """Take the batch files ``otel-receiver spool retry`` put in ``retry/`` into the
        index under fresh sequence numbers; returns how many. Ignores the spool's cap: these
        rows were acknowledged long ago and already took disk space."""
        adopted = 0
        for path in sorted(self.retry_dir.glob("*.batch")):
            try:
                table = decode(path.read_bytes()).table
            except CorruptBatch as exc:
                os.replace(path, self.corrupt_dir / path.name)
                log.error("spool_file_corrupt", file=path.name, reason=str(exc))
                continue
            with self._lock:
                seq = self._next_seq
                self._next_seq += 1
            target = self.directory / f"{seq:016d}-{table}.batch"
            os.replace(path, target)
            _fsync_dir(self.directory)
            with self._lock:
                self._register(SpoolFile(0.0, seq, target, table, target.stat().st_size))
            state.enter(BatchState.SPOOLED)
            adopted += 1
        if adopted:
            log.info("dead_letters_adopted_for_retry", files=adopted)
            self.wake.set()
        return adopted
