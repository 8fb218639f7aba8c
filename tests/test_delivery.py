"""Delivery without ClickHouse: error classification, partition splits, the direct path with
its ack timeout, the spool replayer and dead letters, against a fake sink that fails the way
clickhouse-connect does (its real exception classes, with their codes)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.deliver import Delivery, Unavailable
from receiver.delivery.partitions import NS_PER_DAY, split_by_partition
from receiver.delivery.spool import Batch, Spool
from receiver.ops.health import Health
from receiver.store.errors import ErrorClass, classify

pytestmark = pytest.mark.unit

NOW = time.time_ns()
COLUMNS = ("Timestamp", "SpanId", "SpanName")


def batch(token: str, names: Sequence[str] = ("ok",), days: Sequence[int] = (0,)) -> Batch:
    rows = [
        (NOW + days[i % len(days)] * NS_PER_DAY, f"{token}-{i}", name)
        for i, name in enumerate(names)
    ]
    return Batch("otel_traces", COLUMNS, rows, token)


def in_loop(test: Callable[..., Any]) -> Callable[..., None]:
    """Run an async test body in a fresh event loop (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
    return value


class FakeSink:
    """Stores rows by token like ClickHouse with insert deduplication; ``fail`` decides, per
    insert, which clickhouse-connect exception to raise (or None to store)."""

    def __init__(self) -> None:
        self.stored: dict[str, list[tuple[Any, ...]]] = {}
        self.attempts: list[str] = []
        self.fail: Callable[[Batch], Exception | None] = lambda batch: None
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def insert(
        self, table: str, column_names: Sequence[str], rows: Sequence[Sequence[Any]], token: str
    ) -> None:
        self.gate.wait(30)
        with self.lock:
            self.attempts.append(token)
        error = self.fail(Batch(table, tuple(column_names), list(rows), token))
        if error is not None:
            raise error
        with self.lock:
            self.stored.setdefault(token, [tuple(r) for r in rows])

    def rows(self) -> list[tuple[Any, ...]]:
        with self.lock:
            return [row for rows in self.stored.values() for row in rows]


def server_error(code: int) -> DatabaseError:
    return DatabaseError(f"Received ClickHouse exception, code: {code}", code=code)


UNREACHABLE = OperationalError("Error HTTPConnectionPool: Connection refused")


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def delivery(tmp_path: Path, sink: FakeSink) -> Iterator[Delivery]:
    d = Delivery(
        sink,
        Spool(tmp_path / "spool", 10**8),
        DeadLetters(tmp_path / "spool" / "dead", 10**7),
        Health(),
        ack_timeout=0.5,
        max_attempts=3,
        backoff_initial=0.01,
        backoff_max=0.05,
    )
    yield d
    d._stopping.set()
    d.spool.wake.set()
    if d._replayer:
        d._replayer.join(10)


# -- classification ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [516, 497, 192, 193, 60, 81, 16, 53, 47, 8])
def test_configuration_errors_are_never_data_and_name_a_fix(code: int) -> None:
    error = classify(server_error(code))
    assert error.kind is ErrorClass.CONFIGURATION and error.code == code and error.fix


@pytest.mark.parametrize("code", [252, 241, 159, 209, 210, 202, 236, 242, 425])
def test_overload_and_timeouts_are_transient(code: int) -> None:
    error = classify(server_error(code))
    assert error.kind is ErrorClass.TRANSIENT and not error.unreachable


def test_connection_failures_are_transient_and_unreachable() -> None:
    assert classify(UNREACHABLE).unreachable
    assert classify(ConnectionResetError()).unreachable


@pytest.mark.parametrize("exc", [server_error(469), server_error(27), DataError("x"), TypeError()])
def test_refused_rows_are_data(exc: Exception) -> None:
    assert classify(exc).kind is ErrorClass.DATA


def test_unknown_codes_are_transient_not_data() -> None:
    assert classify(server_error(31337)).kind is ErrorClass.TRANSIENT


def test_the_code_comes_from_the_exception_not_its_message() -> None:
    spoofed = DatabaseError("Code: 516. DB::Exception: Authentication failed")  # no code
    assert classify(spoofed).kind is ErrorClass.TRANSIENT
    assert classify(ProgrammingError("Unrecognized column 'X'")).kind is ErrorClass.CONFIGURATION


# -- partitions ----------------------------------------------------------------------------


def test_a_batch_over_the_partition_limit_is_split_into_whole_days() -> None:
    wide = batch("w", names=["s"] * 300, days=range(150))
    parts = list(split_by_partition(wide, 100))
    assert len(parts) == 3
    assert [p.token for p in parts] == ["w.p0", "w.p1", "w.p2"]
    assert sorted(r for p in parts for r in p.rows) == sorted(wide.rows)
    for part in parts:
        assert len({r[0] // NS_PER_DAY for r in part.rows}) <= 50
    assert [p.token for p in split_by_partition(wide, 100)] == ["w.p0", "w.p1", "w.p2"]


def test_a_batch_within_the_limit_is_left_whole() -> None:
    narrow = batch("n", names=["s"] * 40, days=range(40))
    assert list(split_by_partition(narrow, 100)) == [narrow]


# -- the direct path -----------------------------------------------------------------------


@in_loop
async def test_a_batch_clickhouse_takes_is_stored_directly(
    delivery: Delivery, sink: FakeSink
) -> None:
    await delivery.deliver(batch("a", ["x", "y"]))
    assert len(sink.rows()) == 2 and len(delivery.spool) == 0


@in_loop
async def test_clickhouse_unreachable_spools_and_the_replayer_stores_it_once(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.fail = lambda b: UNREACHABLE
    await delivery.deliver(batch("a", ["x"]))
    assert len(delivery.spool) == 1 and not sink.rows()
    delivery.start()
    time.sleep(0.1)
    sink.fail = lambda b: None
    await asyncio.to_thread(wait_until, lambda: len(delivery.spool) == 0)
    assert sink.stored.keys() == {"a"}


@in_loop
async def test_configuration_error_is_not_acknowledged_not_spooled_not_dead_lettered(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.fail = lambda b: server_error(516)
    with pytest.raises(Unavailable, match="AUTHENTICATION_FAILED"):
        await delivery.deliver(batch("a"))
    assert len(delivery.spool) == 0 and delivery.dead_letters.usage() == (0, 0)
    assert not delivery.health.serving
    [problem] = delivery.health.problems()
    assert "password" in problem.fix
    sink.fail = lambda b: None
    await delivery.deliver(batch("b"))
    assert delivery.health.serving


@in_loop
async def test_rows_clickhouse_refuses_are_dead_lettered_and_the_rest_stored(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.fail = lambda b: server_error(469) if any(r[2] == "poison" for r in b.rows) else None
    await delivery.deliver(batch("a", ["ok"] * 7 + ["poison"] + ["ok"] * 8))
    assert len(sink.rows()) == 15
    [dead] = delivery.dead_letters.entries()
    assert dead.rows == 1 and "VIOLATED_CONSTRAINT" in dead.reason


@in_loop
async def test_a_slow_insert_is_answered_from_the_spool_and_stored_once(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.gate.clear()  # ClickHouse hangs
    started = time.monotonic()
    await delivery.deliver(batch("slow", ["x", "y"]))
    assert 0.4 < time.monotonic() - started < 3
    assert len(delivery.spool) == 1
    delivery.start()
    sink.gate.set()
    await asyncio.to_thread(wait_until, lambda: len(delivery.spool) == 0)
    await asyncio.to_thread(wait_until, lambda: sink.attempts.count("slow") == 2)
    assert sink.stored.keys() == {"slow"}  # same token twice: stored once


@in_loop
async def test_while_clickhouse_hangs_later_batches_do_not_wait_the_ack_timeout(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.gate.clear()
    await delivery.deliver(batch("first"))  # waits ack_timeout, then spooled
    started = time.monotonic()
    await delivery.deliver(batch("second"))
    assert time.monotonic() - started < 0.3 and len(delivery.spool) == 2
    sink.gate.set()
    deadline = time.monotonic() + 10
    while delivery._overdue:  # the hung insert finishes; its callback runs on this loop
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    await delivery.deliver(batch("third"))  # ClickHouse answers again: direct
    assert "third" in sink.stored and len(delivery.spool) == 2


# -- the replayer --------------------------------------------------------------------------


@in_loop
async def test_a_file_clickhouse_keeps_refusing_holds_back_only_itself(
    delivery: Delivery, sink: FakeSink
) -> None:
    sink.fail = lambda b: UNREACHABLE
    await delivery.deliver(batch("stuck", ["x"]))
    for i in range(20):
        await delivery.deliver(batch(f"later-{i}", ["x"]))
    sink.fail = lambda b: server_error(252) if b.token.startswith("stuck") else None
    delivery.start()
    await asyncio.to_thread(wait_until, lambda: len(sink.stored) == 20)
    await asyncio.to_thread(wait_until, lambda: len(delivery.spool) == 0)
    [dead] = delivery.dead_letters.entries()  # after delivery.max_attempts (3)
    assert "gave up after 3 attempts" in dead.reason and "TOO_MANY_PARTS" in dead.reason
    assert sink.attempts.count("stuck") == 1 + 3  # the direct attempt, then 3 replays


@in_loop
async def test_the_replayer_survives_an_exception_and_reports_itself_degraded(
    delivery: Delivery, sink: FakeSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.fail = lambda b: UNREACHABLE
    await delivery.deliver(batch("a", ["x"]))
    sink.fail = lambda b: None
    real_read = delivery.spool.read
    failures = iter([OSError("disk said no")])

    def flaky_read(entry: Any) -> Batch:
        failure = next(failures, None)
        if failure is not None:
            delivery.spool.failed(entry, 0.0, "test", counts=False)
            raise failure
        return real_read(entry)

    monkeypatch.setattr(delivery.spool, "read", flaky_read)
    delivery.start()
    await asyncio.to_thread(wait_until, lambda: sink.stored)
    assert delivery.health.serving  # degraded is not unhealthy
    await asyncio.to_thread(wait_until, lambda: not delivery.health.problems())
