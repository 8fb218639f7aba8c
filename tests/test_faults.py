"""Fault tests for the delivery guarantee: whatever happens to ClickHouse or the receiver,
every span the receiver acknowledged is stored in ClickHouse exactly once.

Each test runs its own ClickHouse (so it can stop it) and receiver process, and generates a
bounded load on loopback.
"""

from __future__ import annotations

import os
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from clickhouse_connect.driver.client import Client

from receiver.delivery.spool import Batch, Spool, encode
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.sink import connect
from receiver.store.tables import TABLE_COLUMNS, TRACES

from .load import CHANNEL_OPTIONS, EXPORT, SpanLoad, spans_request
from .receiver_process import ReceiverProcess, wait_for

DATABASE = "faults"


class Harness:
    """A ClickHouse the test can stop and restart on the same port, and receivers on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clickhouse = EmbeddedClickHouse(root / "clickhouse", http_port=0, tcp_port=0)
        self.clickhouse.start()
        self.receivers: list[ReceiverProcess] = []

    def restart_clickhouse(self) -> None:
        self.clickhouse = EmbeddedClickHouse(
            self.root / "clickhouse",
            http_port=self.clickhouse.http_port,
            tcp_port=self.clickhouse.tcp_port,
        )
        self.clickhouse.start()

    def receiver(self, **env: str) -> ReceiverProcess:
        process = ReceiverProcess.serving(
            self.root / f"receiver{len(self.receivers)}",
            self.clickhouse.dsn,
            DATABASE,
            "--http-listen",
            "",
            data_dir=self.root / "data",
            **{"OTEL_RECEIVER_BATCH_MAX_DELAY": "0.2", **env},
        ).start()
        self.receivers.append(process)
        return process

    def client(self) -> Client:
        return connect(self.clickhouse.dsn)

    def close(self) -> None:
        for process in self.receivers:
            if process.process and process.process.poll() is None:
                process.process.kill()
                process.process.wait()
        self.clickhouse.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def stored_counts(client: Client, span_ids: list[str]) -> dict[str, int]:
    """How often each of ``span_ids`` is stored (each test has a ClickHouse of its own)."""
    wanted = set(span_ids)
    rows = client.query(
        f"SELECT SpanId, count() FROM {DATABASE}.otel_traces GROUP BY SpanId"
    ).result_rows
    return {span: n for span, n in rows if span in wanted}


def assert_stored_exactly_once(harness: Harness, acked: list[str], timeout: float = 60) -> None:
    assert acked, "the load never got an acknowledgement"
    client = harness.client()
    counts: dict[str, int] = {}
    wait_for(
        lambda: len(counts.update(stored_counts(client, acked)) or counts) == len(set(acked)),
        timeout,
        f"all {len(acked)} acknowledged spans in ClickHouse",
        interval=0.5,
    )
    duplicates = {span: n for span, n in counts.items() if n != 1}
    assert not duplicates, f"stored more than once: {list(duplicates.items())[:5]}"
    total = client.query(
        f"SELECT count(), uniqExact(SpanId) FROM {DATABASE}.otel_traces"
    ).result_rows[0]
    assert total[0] == total[1], f"{total[0] - total[1]} duplicate rows in the table"
    client.close()


def test_clickhouse_down_for_20_seconds_under_load(harness: Harness) -> None:
    receiver = harness.receiver()
    load = SpanLoad(receiver.grpc_target)
    load.start()
    load.wait_for_acks(500)
    harness.clickhouse.stop()
    acked_when_stopped = len(load.acked)
    outage_end = time.monotonic() + 20
    load.wait_for_acks(acked_when_stopped + 500)  # still acknowledged: spooled
    wait_for(lambda: receiver.event("batch_spooled"), 10, "spooling while ClickHouse is down")
    time.sleep(max(outage_end - time.monotonic(), 0))  # the outage itself, not a sync point
    harness.restart_clickhouse()
    wait_for(lambda: receiver.event("batch_replayed"), 30, "the spool replaying")
    load.wait_for_acks(len(load.acked) + 500)
    load.stop()
    assert_stored_exactly_once(harness, load.acked)
    assert receiver.stop() == 0
    # Only the receiver's JSON events while the spool retried: no library lines
    # (clickhouse-connect's "Unexpected Http Driver Exception", urllib3's retries).
    assert [line for line in receiver.log().splitlines() if not line.startswith("{")] == []


def test_receiver_sigkilled_mid_load_then_restarted(harness: Harness) -> None:
    receiver = harness.receiver()
    load = SpanLoad(receiver.grpc_target)
    load.start()
    load.wait_for_acks(300)
    # With ClickHouse away, acknowledged batches exist only in the spool when the kill lands.
    harness.clickhouse.stop()
    wait_for(lambda: receiver.event("batch_spooled"), 15, "a spooled batch")
    load.wait_for_acks(len(load.acked) + 200)
    receiver.process.send_signal(signal.SIGKILL)
    receiver.process.wait()
    load.stop()
    harness.restart_clickhouse()
    restarted = harness.receiver()
    wait_for(lambda: restarted.event("spool_found"), 10, "the restarted receiver finding the spool")
    more = SpanLoad(restarted.grpc_target)
    more.start()
    more.wait_for_acks(300)
    more.stop()
    assert_stored_exactly_once(harness, load.acked + more.acked)
    assert restarted.stop() == 0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


RSS_BOUND = 400 * 1024 * 1024


def test_spool_full_gives_retryable_errors_bounded_memory_and_no_loss(harness: Harness) -> None:
    receiver = harness.receiver(OTEL_RECEIVER_SPOOL_MAX_BYTES="150000")
    harness.clickhouse.stop()
    load = SpanLoad(receiver.grpc_target, spans_per_request=200)
    load.start()
    wait_for(
        lambda: load.errors[grpc.StatusCode.UNAVAILABLE] >= 5,
        60,
        "UNAVAILABLE once the spool is full",
    )
    peak = rss_bytes(receiver.process.pid)
    for _ in range(20):  # keep pushing against the full spool, watching memory
        peak = max(peak, rss_bytes(receiver.process.pid))
        time.sleep(0.1)
    load.stop()
    assert set(load.errors) == {grpc.StatusCode.UNAVAILABLE}, load.errors
    assert peak < RSS_BOUND, f"receiver RSS {peak / 2**20:.0f} MiB"
    # The answer carries RetryInfo so clients back off.
    with grpc.insecure_channel(receiver.grpc_target, options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as full:
            call(spans_request([os.urandom(8) for _ in range(200)]), timeout=10)
        assert full.value.code() == grpc.StatusCode.UNAVAILABLE
        details = dict(full.value.trailing_metadata())
        assert "grpc-status-details-bin" in details
    harness.restart_clickhouse()
    assert_stored_exactly_once(harness, load.acked)
    assert receiver.stop() == 0


def test_corrupt_spool_files_are_set_aside_and_the_rest_replays(harness: Harness) -> None:
    spool_dir = harness.root / "data" / "spool"
    spool = Spool(spool_dir, 10**7)
    good_ids = [os.urandom(8).hex() for _ in range(3)]
    now = time.time_ns()
    rows = [
        (
            now,
            "ab" * 16,
            span_id,
            "",
            "",
            "spooled",
            "Internal",
            "svc",
            {},
            "",
            "",
            {},
            5,
            "Unset",
            "",
            [],
            [],
            [],
            [],
            [],
            [],
            [],
        )
        for span_id in good_ids
    ]
    spool.append(Batch(TRACES, TABLE_COLUMNS[TRACES], rows[:2], "corrupt-test-0"))
    torn = encode(Batch(TRACES, TABLE_COLUMNS[TRACES], rows, "corrupt-test-1"))
    (spool_dir / "0000000000000001-otel_traces.batch").write_bytes(torn[: len(torn) // 2])
    (spool_dir / "0000000000000002-otel_traces.batch").write_bytes(b"\x00garbage\xff" * 10)
    spool = Spool(spool_dir, 10**7)
    spool.append(Batch(TRACES, TABLE_COLUMNS[TRACES], rows[2:], "corrupt-test-3"))

    receiver = harness.receiver()

    # The log line comes after the move: wait for it, then everything before it is done.
    def corrupt_logged() -> list[dict[str, Any]]:
        found = [e for e in receiver.events() if e.get("event") == "spool_file_corrupt"]
        return found if len(found) == 2 else []

    corrupt = wait_for(corrupt_logged, 15, "both corrupt files logged")
    assert sorted(p.name for p in (spool_dir / "corrupt").iterdir()) == [
        "0000000000000001-otel_traces.batch",
        "0000000000000002-otel_traces.batch",
    ]
    assert_stored_exactly_once(harness, good_ids)
    assert {e["file"] for e in corrupt} == {
        "0000000000000001-otel_traces.batch",
        "0000000000000002-otel_traces.batch",
    }
    # A replayed file is deleted just after its insert is visible: poll, don't race it.
    wait_for(lambda: not Spool(spool_dir, 10**7).pending(), 15, "spool drained")
    assert receiver.stop() == 0


def test_rows_clickhouse_refuses_are_dead_lettered_and_later_batches_land(
    harness: Harness,
) -> None:
    receiver = harness.receiver(OTEL_RECEIVER_BATCH_MAX_DELAY="1.0")
    client = harness.client()
    client.command(
        f"ALTER TABLE {DATABASE}.otel_traces ADD CONSTRAINT no_poison CHECK SpanName != 'poison'"
    )
    good = [os.urandom(8) for _ in range(4)]
    poison = os.urandom(8)
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        # Same batch window: the poison row travels in one insert with good rows.
        futures = [
            call.future(spans_request(good[:2]), timeout=20),
            call.future(spans_request([poison], name="poison"), timeout=20),
            call.future(spans_request(good[2:]), timeout=20),
        ]
        for future in futures:
            future.result()
        later = [os.urandom(8) for _ in range(3)]
        call(spans_request(later), timeout=20)
    assert_stored_exactly_once(harness, [i.hex() for i in good + later])
    # Logged after the batch and its reason are written: wait for the line, then read them.
    event = wait_for(lambda: receiver.event("batch_dead_lettered"), 10, "a dead letter")
    assert event["rows"] == 1
    dead = list((harness.root / "data" / "spool" / "dead").glob("*.batch"))
    assert len(dead) == 1
    assert poison.hex().encode() in zlib.decompress(dead[0].read_bytes().split(b"\n", 2)[2])
    assert "VIOLATED_CONSTRAINT" in dead[0].with_suffix(".reason").read_text()
    assert client.query(
        f"SELECT count() FROM {DATABASE}.otel_traces WHERE SpanName = 'poison'"
    ).result_rows == [(0,)]
    client.close()
    assert receiver.stop() == 0


def test_sigterm_under_load_exits_within_the_bound_without_loss(harness: Harness) -> None:
    receiver = harness.receiver(OTEL_RECEIVER_SHUTDOWN_TIMEOUT="10")
    load = SpanLoad(receiver.grpc_target)
    load.start()
    load.wait_for_acks(1000)
    started = time.monotonic()
    receiver.process.send_signal(signal.SIGTERM)
    receiver.process.wait(15)
    elapsed = time.monotonic() - started
    load.stop()
    assert receiver.process.returncode == 0
    assert elapsed < 10, f"shutdown took {elapsed:.1f} s"
    assert receiver.event("receiver_stopped")
    assert_stored_exactly_once(harness, load.acked)
