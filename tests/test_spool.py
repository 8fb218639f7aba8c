"""The spool's file format and bookkeeping: durable, ordered, capped, corruption detected;
and the dead-letter directory beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.spool import Batch, CorruptBatch, Spool, SpoolFull, decode, encode

pytestmark = pytest.mark.unit

ROWS = [
    (1_795_323_269_197_008_236, "abc", {"k": "v"}, [1, 2], 0.25, True, ["x"]),
    (2, "", {}, [], float("nan"), False, []),
]


def batch(token: str = "t-1", rows: list | None = None) -> Batch:
    return Batch("otel_traces", ("A", "B", "C", "D", "E", "F", "G"), rows or ROWS[:1], token)


def test_round_trip_keeps_types_and_nanoseconds() -> None:
    original = Batch("otel_traces", ("a",) * 7, ROWS, "tok")
    back = decode(encode(original))
    assert back.table == "otel_traces" and back.token == "tok" and back.columns == ("a",) * 7
    assert back.rows[0] == ROWS[0]
    assert back.rows[1][4] != back.rows[1][4]  # NaN survives
    assert back.rows[1][:4] == ROWS[1][:4]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # torn write
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # bit flip in payload
        lambda data: b"garbage" + data,
        lambda data: b"",
    ],
)
def test_damaged_files_are_detected(damage) -> None:
    with pytest.raises(CorruptBatch):
        decode(damage(encode(batch())))


def test_files_replay_in_write_order_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10**6)
    for i in range(3):
        spool.append(batch(f"t-{i}"))
    reopened = Spool(tmp_path, max_bytes=10**6)
    assert len(reopened) == 3 and reopened.bytes == spool.bytes
    reopened.append(batch("t-3"))
    assert [reopened.read(p).token for p in reopened.pending()] == ["t-0", "t-1", "t-2", "t-3"]


def test_cap_refuses_a_batch_that_would_not_fit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=len(encode(batch())) + 10)
    spool.append(batch("t-0"))
    with pytest.raises(SpoolFull):
        spool.append(batch("t-1"))
    entry, _ = spool.take_due()
    assert entry is not None
    spool.done(entry)
    spool.append(batch("t-1"))
    assert len(spool) == 1


def test_stray_temporary_files_are_discarded_on_open(tmp_path: Path) -> None:
    (tmp_path / "0000000000000000-otel_traces.batch.tmp").write_bytes(b"half a batch")
    assert len(Spool(tmp_path, 10**6)) == 0
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_files_and_dead_letters_are_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    path = spool.append(batch())
    entry, _ = spool.take_due()
    assert entry is not None and entry.path == path
    spool.move_corrupt(entry, "checksum")
    assert len(spool) == 0 and spool.bytes == 0
    assert (tmp_path / "corrupt" / path.name).exists()
    dead = DeadLetters(tmp_path / "dead", 10**6)
    kept = dead.put(batch("bad"), "Code 69 ARGUMENT_OUT_OF_BOUND: value out of range")
    assert kept is not None and decode(kept.read_bytes()).token == "bad"
    assert "out of range" in kept.with_suffix(".reason").read_text()


def test_a_failed_file_waits_for_its_own_backoff_and_the_others_go_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    for i in range(3):
        spool.append(batch(f"t-{i}"))
    first, _ = spool.take_due()
    assert first is not None
    spool.failed(first, retry_in=60, error="Code 252", counts=True)
    taken = []
    while (entry := spool.take_due()[0]) is not None:
        taken.append(spool.read(entry).token)
        spool.done(entry)
    assert taken == ["t-1", "t-2"]
    none, wait = spool.take_due()
    assert none is None and 55 < wait <= 60
    assert first.attempts == 1 and len(spool) == 1


def test_draining_reads_each_file_once_and_never_lists_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, 10**8)
    for i in range(300):
        spool.append(batch(f"t-{i}"))
    listings = []
    real_iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: listings.append(self) or real_iterdir(self))
    drained = 0
    while (entry := spool.take_due()[0]) is not None:
        spool.read(entry)
        spool.done(entry)
        drained += 1
    assert drained == 300 and len(spool) == 0 and spool.bytes == 0
    assert listings == []


def test_dead_letters_are_counted_from_disk_capped_and_retried_through_the_spool(
    tmp_path: Path,
) -> None:
    one = len(encode(batch("a")))
    dead = DeadLetters(tmp_path / "spool" / "dead", max_bytes=2 * one + 200)
    assert dead.put(batch("a"), "refused") is not None
    assert dead.put(batch("b"), "refused") is not None
    assert dead.put(batch("c"), "refused") is None  # over the cap: dropped, counted
    again = DeadLetters(tmp_path / "spool" / "dead", max_bytes=10**6)
    files, size = again.usage()
    assert files == 2 and size > 2 * one
    assert [e.reason for e in again.entries()] == ["refused", "refused"]
    spool = Spool(tmp_path / "spool", 10**6)
    again.retry(again.select(["a-otel_traces"]), spool.retry_dir)
    assert spool.adopt_retries() == 1
    entry, _ = spool.take_due()
    assert entry is not None and spool.read(entry).token == "a"
    assert again.usage()[0] == 1
    again.drop(again.select([]))
    assert again.usage() == (0, 0)
