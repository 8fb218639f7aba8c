"""The spool: a write-ahead directory of batch files, so that acknowledged rows survive
ClickHouse outages, receiver crashes and restarts.

A batch is written whole to a temporary file, fsynced, renamed to its final name and the
directory fsynced: a batch file either exists complete or not at all, and only then are the
requests in it acknowledged. One fsync covers every request in the batch (group commit).
Files are named by a sequence number so they replay in the order they were written. Each
file carries a CRC32 of its payload; a file that fails the check (torn by a crash, damaged
on disk) is moved to ``corrupt/``, logged and counted, and the rest replays. Batches that
ClickHouse rejects as invalid are kept in ``quarantine/`` for a human to look at.

Rows arrive here already redacted: the spool must never hold anything redaction removes.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("receiver.delivery.spool")

MAGIC = b"OTELSPOOL1\n"
_NAME = re.compile(r"(\d{16})-(\w+)\.batch")


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


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Spool:
    """Batch files under one directory, capped in bytes."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.corrupt_dir = directory / "corrupt"
        self.quarantine_dir = directory / "quarantine"
        for d in (self.directory, self.corrupt_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for stray in directory.glob("*.tmp"):
            stray.unlink()  # a write that never completed was never acknowledged
        pending = self.pending()
        self.bytes = sum(p.stat().st_size for p in pending)
        self.files = len(pending)
        self._next_seq = int(_NAME.fullmatch(pending[-1].name)[1]) + 1 if pending else 0
        self.corrupt_files = 0
        self.quarantined_files = 0

    def pending(self) -> list[Path]:
        """Batch files waiting for ClickHouse, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.fullmatch(p.name))

    def __len__(self) -> int:
        return self.files

    def append(self, batch: Batch) -> Path:
        """Write ``batch`` durably; raises SpoolFull when the cap would be exceeded."""
        data = encode(batch)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(
                f"spool at {self.bytes} of {self.max_bytes} bytes cannot take {len(data)} more"
            )
        path = self.directory / f"{self._next_seq:016d}-{batch.table}.batch"
        self._next_seq += 1
        _write_durably(path, data)
        self.bytes += len(data)
        self.files += 1
        log.info(
            "batch_spooled",
            table=batch.table,
            rows=len(batch.rows),
            file=path.name,
            spool_bytes=self.bytes,
        )
        return path

    def read(self, path: Path) -> Batch:
        return decode(path.read_bytes())

    def remove(self, path: Path) -> None:
        self.bytes -= path.stat().st_size
        self.files -= 1
        path.unlink()

    def move_corrupt(self, path: Path, reason: str) -> None:
        self.bytes -= path.stat().st_size
        self.files -= 1
        os.replace(path, self.corrupt_dir / path.name)
        self.corrupt_files += 1
        log.error(
            "spool_file_corrupt", file=path.name, reason=reason, moved_to=str(self.corrupt_dir)
        )

    def quarantine(self, batch: Batch, reason: str) -> Path:
        """Keep rows ClickHouse refused, with the reason, for a human to inspect."""
        path = self.quarantine_dir / f"{batch.token}-{batch.table}.batch"
        _write_durably(path, encode(batch))
        path.with_suffix(".reason").write_text(reason + "\n")
        self.quarantined_files += 1
        log.error(
            "batch_quarantined",
            table=batch.table,
            rows=len(batch.rows),
            file=str(path),
            reason=reason,
        )
        return path
