"""The spool's file format and bookkeeping: durable, ordered, capped, corruption detected."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    spool.remove(spool.pending()[0])
    spool.append(batch("t-1"))
    assert len(spool) == 1


def test_stray_temporary_files_are_discarded_on_open(tmp_path: Path) -> None:
    (tmp_path / "0000000000000000-otel_traces.batch.tmp").write_bytes(b"half a batch")
    assert len(Spool(tmp_path, 10**6)) == 0
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_and_quarantined_batches_are_kept_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    path = spool.append(batch())
    spool.move_corrupt(path, "checksum")
    assert len(spool) == 0 and spool.bytes == 0
    assert (tmp_path / "corrupt" / path.name).exists()
    kept = spool.quarantine(batch("bad"), "Code: 69. value out of range")
    assert decode(kept.read_bytes()).token == "bad"
    assert "out of range" in kept.with_suffix(".reason").read_text()
