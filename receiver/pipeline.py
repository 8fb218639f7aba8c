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

from receiver.batch import Batcher
from receiver.decode import DECODERS, Decoded

SIGNALS = tuple(DECODERS)

Processor = Callable[[Decoded], None]


class Pipeline:
    """Decodes Export requests, runs the processors, and waits until the rows are stored."""

    def __init__(self, batcher: Batcher, processors: Sequence[Processor] = ()) -> None:
        self._batcher = batcher
        self._processors = tuple(processors)

    async def export(self, signal: str, body: bytes) -> Decoded:
        """Make one Export request durable and say what was rejected.

        Raises ``google.protobuf.message.DecodeError`` for a body that is not the signal's
        Export request, and ``receiver.delivery.Unavailable`` when the receiver cannot take
        it now (queue full, ClickHouse down and spool full): the client should retry.
        """
        self._batcher.check_capacity()
        decoded = DECODERS[signal](body)
        for process in self._processors:
            process(decoded)
        share = len(body) // max(len(decoded.rows), 1)
        waiters = [self._batcher.add(table, rows, share) for table, rows in decoded.rows.items()]
        if waiters:
            await asyncio.gather(*waiters)
        return decoded
