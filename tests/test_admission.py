"""The admission gate (``receiver.ingest.admission``) on its own: budgets, order, waiting and
refusal, growing and shrinking a request's charge, and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from receiver.config import ConfigError, load_settings
from receiver.delivery.deliver import Unavailable
from receiver.ingest.admission import ROWS_PER_BYTE, Admission, Overloaded
from receiver.ops.selfmetrics import REQUESTS_REJECTED

pytestmark = pytest.mark.unit


def _run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_within_the_budget_go_in_at_once_and_are_released() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=3)
        async with gate.admit("traces", 40), gate.admit("traces", 60):
            assert (gate.bytes, gate.requests) == (100, 2)
        assert (gate.bytes, gate.requests) == (0, 0)

    _run(main())


def test_a_request_over_the_byte_budget_waits_for_room_then_goes_in() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5)
        order: list[str] = []

        async def second() -> None:
            async with gate.admit("logs", 50):
                order.append("second in")

        async with gate.admit("traces", 80):
            task = asyncio.create_task(second())
            await _settle()
            assert order == [] and gate.requests == 1  # 80 + 50 > 100: it waits
            order.append("first out")
        await task
        assert order == ["first out", "second in"]
        assert (gate.bytes, gate.requests) == (0, 0)

    _run(main())


def test_a_request_that_waits_too_long_is_refused_as_retryable_and_counted() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=0.05)
        before = REQUESTS_REJECTED.labels("metrics", "inflight_bytes")._value.get()
        async with gate.admit("metrics", 100):
            with pytest.raises(Overloaded) as refused:
                async with gate.admit("metrics", 1):
                    pytest.fail("admitted over the budget")
        assert isinstance(refused.value, Unavailable) and refused.value.retry_after > 0
        assert refused.value.reason == "inflight_bytes"
        assert "limits.max_inflight_bytes" in str(refused.value)
        assert REQUESTS_REJECTED.labels("metrics", "inflight_bytes")._value.get() == before + 1
        assert (gate.bytes, gate.requests) == (0, 0)

    _run(main())


def test_the_request_count_limit_holds_and_names_its_setting() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=0, max_requests=2, wait=0.05)
        async with gate.admit("traces", 1), gate.admit("traces", 1):
            with pytest.raises(Overloaded) as refused:
                async with gate.admit("traces", 1):
                    pass
        assert refused.value.reason == "inflight_requests"

    _run(main())


def test_as_many_requests_may_wait_as_run_then_the_rest_are_refused_at_once() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=0, max_requests=1, wait=5)
        async with gate.admit("traces", 1):
            waiting = asyncio.create_task(gate.admit("traces", 1).__aenter__())
            await _settle()
            started = asyncio.get_running_loop().time()
            with pytest.raises(Overloaded):
                async with gate.admit("traces", 1):
                    pass
            assert asyncio.get_running_loop().time() - started < 1  # not after the wait
        await waiting
        assert gate.requests == 1

    _run(main())


def test_a_request_larger_than_the_whole_budget_is_admitted_alone() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5)
        async with gate.admit("traces", 1000):
            assert gate.bytes == 1000
        blocked = asyncio.Event()

        async def huge() -> None:
            async with gate.admit("traces", 1000):
                blocked.set()

        async with gate.admit("traces", 10):
            task = asyncio.create_task(huge())
            await _settle()
            assert not blocked.is_set()  # not while anything else is in flight
        await task
        assert blocked.is_set()

    _run(main())


def test_first_come_first_served_small_requests_do_not_overtake_a_waiting_large_one() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5)
        order: list[str] = []

        async def enter(name: str, size: int) -> None:
            async with gate.admit("traces", size):
                order.append(name)

        async with gate.admit("traces", 60):
            large = asyncio.create_task(enter("large", 90))
            await _settle()
            small = asyncio.create_task(enter("small", 10))  # would fit, but large is first
            await _settle()
            assert order == []
        await asyncio.gather(large, small)
        assert order == ["large", "small"]

    _run(main())


def test_a_charge_shrinks_to_the_real_size_and_lets_others_in() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5)
        async with gate.admit("traces", 100) as ticket:
            other = asyncio.create_task(gate.admit("logs", 50).__aenter__())
            await _settle()
            assert not other.done()
            await ticket.resize(20)  # the body turned out small
            await other
            assert gate.bytes == 70

    _run(main())


def test_growing_a_charge_waits_for_room_and_is_refused_after_the_wait() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=0.05)
        async with gate.admit("traces", 50), gate.admit("traces", 10) as ticket:
            await ticket.resize(50)  # fits: 100
            with pytest.raises(Overloaded):
                await ticket.resize(60)
            assert (gate.bytes, ticket.size) == (100, 50)
        assert gate.bytes == 0

    _run(main())


def test_growing_a_charge_alone_always_succeeds() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=0.05)
        async with gate.admit("traces", 10) as ticket:
            await ticket.resize(500)
            assert gate.bytes == 500
        assert gate.bytes == 0

    _run(main())


def test_a_waiter_cancelled_by_its_client_leaves_no_charge_behind() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5)
        async with gate.admit("traces", 100):
            waiting = asyncio.create_task(gate.admit("traces", 50).__aenter__())
            await _settle()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert (gate.bytes, gate.requests) == (0, 0)
        async with gate.admit("traces", 100):  # the queue is empty again
            assert gate.requests == 1

    _run(main())


def test_zero_turns_the_limits_off() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=0, max_requests=0, wait=0.01)
        async with gate.admit("traces", 10**12), gate.admit("traces", 10**12):
            assert gate.requests == 2

    _run(main())


def test_settings_env_and_validation() -> None:
    settings = load_settings(
        environ={
            "OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_BYTES": "1048576",
            "OTEL_RECEIVER_GRPC_MAX_RECEIVE_BYTES": "524288",
            "OTEL_RECEIVER_HTTP_MAX_RECEIVE_BYTES": "524288",
            "OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_REQUESTS": "7",
        }
    )
    gate = Admission.from_settings(settings)
    assert (gate.max_bytes, gate.max_requests) == (1048576, 7)
    defaults = Admission.from_settings(load_settings(environ={}))
    assert (defaults.max_bytes, defaults.max_requests) == (64 * 1024 * 1024, 1024)
    with pytest.raises(ConfigError, match="limits_max_inflight_requests"):
        load_settings(environ={"OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_REQUESTS": "-1"})
    # A budget under two of the largest gRPC messages or HTTP bodies would read one at a time.
    with pytest.raises(ConfigError, match=r"limits_max_inflight_bytes.*grpc_max_receive_bytes"):
        load_settings(environ={"OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_BYTES": str(16 * 1024 * 1024)})
    with pytest.raises(ConfigError, match=r"limits_max_inflight_bytes.*http_max_receive_bytes"):
        load_settings(
            environ={
                "OTEL_RECEIVER_GRPC_MAX_RECEIVE_BYTES": str(1024 * 1024),
                "OTEL_RECEIVER_HTTP_MAX_RECEIVE_BYTES": str(48 * 1024 * 1024),
            }
        )
    no_limit = load_settings(environ={"OTEL_RECEIVER_LIMITS_MAX_INFLIGHT_BYTES": "0"})
    assert no_limit.limits_max_inflight_bytes == 0


def test_a_received_request_is_charged_for_its_rows_which_keeps_the_next_ones_out() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5, rows_per_byte=3)
        async with gate.admit("traces", 100) as ticket:  # charged the largest body while read
            await ticket.resize(30)  # received: 30 bytes and 90 for its rows, over the budget
            assert (gate.bytes, ticket.size, ticket.rows) == (120, 30, 90)
            later = asyncio.create_task(gate.admit("logs", 10).__aenter__())
            await _settle()
            assert not later.done()  # 120 + 10 > 100: the rows' charge keeps it out
        await later
        assert (gate.bytes, gate.requests) == (10, 1)

    _run(main())


def test_the_rows_charge_never_makes_an_admitted_request_wait() -> None:
    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=0.05, rows_per_byte=3)
        async with gate.admit("traces", 60) as first, gate.admit("traces", 40) as second:
            await first.resize(30)  # 30 + 90 + 40 > 100, charged at once all the same
            await second.resize(40)  # no growth of its size: no wait, no refusal
            assert gate.bytes == 30 + 90 + 40 + 120
        assert (gate.bytes, gate.requests) == (0, 0)

    _run(main())


def test_the_receivers_gate_charges_rows_as_measured() -> None:
    gate = Admission.from_settings(load_settings(environ={}))
    assert gate.rows_per_byte == ROWS_PER_BYTE >= 2  # rows measured at 2.4 x the request


def test_a_body_of_known_size_is_charged_for_its_rows_when_admitted() -> None:
    """Uncompressed HTTP bodies: without the rows charged up front, requests admitted at their
    body size alone would each grow to four times it once read, together far over budget."""

    async def main() -> None:
        gate = Admission(max_bytes=100, max_requests=10, wait=5, rows_per_byte=3)
        async with gate.admit("traces", 20, exact=True) as ticket:
            assert (gate.bytes, ticket.size, ticket.rows) == (80, 20, 60)
            later = asyncio.create_task(gate.admit("traces", 20, exact=True).__aenter__())
            await _settle()
            assert not later.done()  # 80 + 80 > 100, although its body alone would fit
            await ticket.resize(20)  # received: the charge stays what it was
            assert gate.bytes == 80
        await later
        assert (gate.bytes, gate.requests) == (80, 1)

    _run(main())
