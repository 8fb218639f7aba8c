"""Admission: how many Export requests, and how many request bytes, the receiver works on at once.

Memory per request in flight is several times its size (the body, the parsed request, the
decoded rows until they are stored; README "Memory"), so the requests being worked on, not the
queue for ClickHouse, are what grows RSS. One gate, shared by the gRPC and HTTP front ends
(hooks included), admits a request before its body is received and holds it until the request
is answered:

- ``limits.max_inflight_bytes``: what the admitted requests hold. A body whose size is not
  known before it is received (gRPC, compressed or chunked HTTP) is charged the front end's
  largest accepted body while it is received; a received request is charged its size plus
  ``ROWS_PER_BYTE`` times it for the rows it decodes to (the receiver's gate; the class
  defaults to request bytes only). That extra charge never makes the request itself wait (it
  holds its body already, and two requests waiting for each other's room would stall): it
  keeps the next requests out, unread, where a waiting request costs little. A body whose
  size is known before it is received (uncompressed HTTP with a Content-Length) is charged
  its size and its rows at once, when it is admitted.
- ``limits.max_inflight_requests``: admitted requests; as many more may wait.

A request that does not fit waits its turn (first come, first served, so small requests never
starve a large one) for at most ``WAIT`` seconds, then is refused with
``Overloaded`` (an ``Unavailable``: gRPC ``UNAVAILABLE`` with RetryInfo, HTTP 503 with
Retry-After), which OTLP clients retry. A single request larger than the whole byte budget is
admitted when nothing else is in flight, so the largest accepted body always gets through.
An admitted request holds its charge while its body arrives, so an HTTP body must arrive
within ``READ_TIMEOUT`` (else 408); a gRPC message is bounded by the client's deadline (OTLP
exporters: 10 s). 0 turns a limit off. Counted: ``otel_receiver_inflight_bytes`` /
``_inflight_requests`` and
``otel_receiver_requests_rejected_total{reason="inflight_bytes"|"inflight_requests"}``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import Gauge

from receiver.config import Settings
from receiver.delivery.deliver import Unavailable
from receiver.ops.selfmetrics import REQUESTS_REJECTED

WAIT = 5.0  # seconds a request may wait for admission before it is refused
# Decoded and redacted rows held by a received request, per byte of it: measured 1.6-2.8
# (2.4 over otlp-bench's mix, Python objects only, docs/BENCHMARKS.md "Memory at 2 x 512"),
# rounded up for the allocator's overhead.
ROWS_PER_BYTE = 3
RETRY_AFTER = 2.0  # seconds a refused client is asked to wait before it retries
READ_TIMEOUT = 30.0  # seconds an admitted HTTP body may take to arrive (then 408)

INFLIGHT_BYTES = Gauge(
    "otel_receiver_inflight_bytes",
    "Request bytes admitted and not yet answered (limits.max_inflight_bytes)",
)
INFLIGHT_REQUESTS = Gauge(
    "otel_receiver_inflight_requests",
    "Export requests admitted and not yet answered (limits.max_inflight_requests)",
)


class Overloaded(Unavailable):
    """Too much in flight to admit a request now; the client should retry."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, RETRY_AFTER)
        self.reason = reason


@dataclass
class Ticket:
    """One admitted request and the bytes it is charged."""

    gate: Admission
    signal: str
    size: int
    rows: int = 0  # the charge for the rows it decodes to, once received

    async def resize(self, size: int) -> None:
        """Charge the request's real size once received, and its rows; waits (or raises
        Overloaded) for room to grow, never for the rows' charge."""
        await self.gate._resize(self, size)
        self.gate._charge_rows(self, size)


@dataclass
class _Waiter:
    size: int
    future: asyncio.Future[None]
    ticket: Ticket | None = None  # set when an admitted request waits to grow


class Admission:
    """The gate; on the event loop only."""

    def __init__(
        self, max_bytes: int = 0, max_requests: int = 0, wait: float = WAIT, rows_per_byte: int = 0
    ) -> None:
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self._wait = wait
        self.rows_per_byte = rows_per_byte
        self.bytes = 0
        self.requests = 0
        self._waiters: deque[_Waiter] = deque()

    @classmethod
    def from_settings(cls, s: Settings) -> Admission:
        return cls(
            s.limits_max_inflight_bytes, s.limits_max_inflight_requests, rows_per_byte=ROWS_PER_BYTE
        )

    @asynccontextmanager
    async def admit(self, signal: str, size: int, exact: bool = False) -> AsyncIterator[Ticket]:
        """Admit one request charged ``size`` bytes until the block ends; raises Overloaded.

        ``exact``: ``size`` is the body's real size (an uncompressed HTTP body with its
        Content-Length), so its rows are charged now as well: admitted at a fraction of its
        final charge, many such requests read at once would each grow afterwards and together
        overshoot the budget (measured over OTLP/HTTP at 2 x 512 in flight with a 128 MiB
        budget: peak RSS 372 MB before, 341 MB after).
        """
        rows = size * self.rows_per_byte if exact else 0
        ticket = Ticket(self, signal, size, rows)
        waiter = _Waiter(size + rows, asyncio.get_running_loop().create_future())
        await self._acquire(waiter, ticket)
        try:
            yield ticket
        finally:
            self.bytes -= ticket.size + ticket.rows
            self.requests -= 1
            self._pump()

    # -- internals ------------------------------------------------------------------------

    def _fits(self, waiter: _Waiter) -> bool:
        if waiter.ticket is not None:  # growing: alone, or the extra fits
            extra = waiter.size - waiter.ticket.size
            return self.requests == 1 or not self.max_bytes or self.bytes + extra <= self.max_bytes
        if self.max_requests and self.requests >= self.max_requests:
            return False
        return (
            self.requests == 0 or not self.max_bytes or self.bytes + waiter.size <= self.max_bytes
        )

    def _take(self, waiter: _Waiter) -> None:
        if waiter.ticket is None:
            self.requests += 1
            self.bytes += waiter.size
        else:
            self.bytes += waiter.size - waiter.ticket.size
            waiter.ticket.size = waiter.size

    def _pump(self) -> None:
        """Admit waiters in order while the one at the head fits."""
        while self._waiters and self._fits(self._waiters[0]):
            waiter = self._waiters.popleft()
            self._take(waiter)
            waiter.future.set_result(None)

    def _reason(self, waiter: _Waiter) -> str:
        full = self.max_requests and self.requests >= self.max_requests
        return "inflight_requests" if full and waiter.ticket is None else "inflight_bytes"

    def _refuse(self, signal: str, reason: str) -> Overloaded:
        REQUESTS_REJECTED.labels(signal, reason).inc()
        return Overloaded(
            reason,
            f"the receiver is working on {self.requests} requests of {self.bytes} bytes "
            f"(limits.max_inflight_requests {self.max_requests}, limits.max_inflight_bytes "
            f"{self.max_bytes}); retry after {RETRY_AFTER:g} s",
        )

    async def _acquire(self, waiter: _Waiter, ticket: Ticket) -> None:
        """Take ``waiter`` now if nobody is ahead and it fits, else queue it for ``WAIT``."""
        growing = waiter.ticket is not None
        if (growing or not self._waiters) and self._fits(waiter):
            self._take(waiter)
            return
        if not growing and self.max_requests and len(self._waiters) >= self.max_requests:
            raise self._refuse(ticket.signal, "inflight_requests")
        if growing:
            self._waiters.appendleft(waiter)  # it holds a slot already: never behind new ones
        else:
            self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter.future}, timeout=self._wait)
        except BaseException:
            self._abandon(waiter)
            raise
        if not waiter.future.done():
            reason = self._reason(waiter)
            self._abandon(waiter)
            raise self._refuse(ticket.signal, reason)

    def _abandon(self, waiter: _Waiter) -> None:
        """Forget a waiter that gave up; undo its admission if it got one meanwhile."""
        if waiter.future.done():
            if waiter.ticket is None:
                self.requests -= 1
                self.bytes -= waiter.size
            # a grown ticket keeps its new size; it is released with the request
        else:
            self._waiters.remove(waiter)
            waiter.future.cancel()
        self._pump()

    def _charge_rows(self, ticket: Ticket, size: int) -> None:
        rows = size * self.rows_per_byte
        self.bytes += rows - ticket.rows
        ticket.rows = rows
        self._pump()

    async def _resize(self, ticket: Ticket, size: int) -> None:
        if size <= ticket.size:
            self.bytes -= ticket.size - size
            ticket.size = size
            self._pump()
            return
        waiter = _Waiter(size, asyncio.get_running_loop().create_future(), ticket)
        await self._acquire(waiter, ticket)
