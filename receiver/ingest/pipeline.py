"""The pipeline behind every front end: decode, the row processors, then batch into storage.

Front ends hand over the raw request bytes and the signal name and get back what was
rejected; everything after the front end is one code path, so a request sent over gRPC or
HTTP produces identical rows. Processors (redaction, stitching) are small callables that
change a request's decoded rows in place, in order, like structlog's processor chain; they
run before batching, so nothing they remove ever reaches memory queues, disk or ClickHouse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError

from receiver.delivery.batch import Batcher
from receiver.delivery.deliver import Unavailable
from receiver.ingest.decode import DECODERS, Decoded
from receiver.ingest.fastpath import decode_request
from receiver.ingest.limits import Limits
from receiver.ops.selfmetrics import (
    ITEMS_RECEIVED,
    RECEIVED_BYTES,
    REQUESTS_REJECTED,
    child,
)

SIGNALS = tuple(DECODERS)

Processor = Callable[[Decoded], None]


class Pipeline:
    """Decodes Export requests, runs the processors, and waits until the rows are stored."""

    def __init__(
        self,
        batcher: Batcher,
        processors: Sequence[Processor] = (),
        limits: Limits | None = None,
    ) -> None:
        self._batcher = batcher
        self._processors = tuple(processors)
        self._limits = limits or Limits()

    async def export(
        self, signal: str, body: bytes, tenant: str = "", urgent: bool = False
    ) -> Decoded:
        """Make one Export request durable and say what was rejected.

        Raises ``google.protobuf.message.DecodeError`` for a body that is not the signal's
        Export request, ``receiver.delivery.deliver.Unavailable`` when the receiver cannot take
        it now (queue full, ClickHouse down and spool full): the client should retry, and
        ``receiver.ingest.limits.LimitExceeded`` for a request over the input limits. ``tenant``
        (from the client's token) is stamped on every resource (``receiver.ingest.limits``).
        ``urgent`` (hooks: the agent waits for the answer) makes the rows durable at once
        instead of after the batch interval.
        """
        child(RECEIVED_BYTES, signal).inc(len(body))
        try:
            self._batcher.check_capacity()
            decoded, size = self._decode(signal, body, tenant)
        except DecodeError:
            REQUESTS_REJECTED.labels(signal, "undecodable").inc()
            raise
        except Unavailable:
            REQUESTS_REJECTED.labels(signal, "unavailable").inc()
            raise
        accepted = decoded.row_count
        for process in self._processors:
            process(decoded)
        share = size // max(len(decoded.rows), 1)
        waiters = [
            self._batcher.add(table, rows, share, urgent) for table, rows in decoded.rows.items()
        ]
        if waiters:
            try:
                await (waiters[0] if len(waiters) == 1 else asyncio.gather(*waiters))
            except Unavailable:
                REQUESTS_REJECTED.labels(signal, "unavailable").inc()
                raise
        child(ITEMS_RECEIVED, signal).inc(accepted)
        return decoded

    def _decode(self, signal: str, body: bytes, tenant: str) -> tuple[Decoded, int]:
        """Limits, then decode: the rows, and the size of the request they came from. The
        parsed request dies on return, not after the wait for storage (memory per request in
        flight)."""
        return decode_request(signal, body, tenant, self._limits)
