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
        """Store one Export request; raises ``google.protobuf.message.DecodeError`` for a
        body that is not the signal's Export request, or the storage error."""
        decoded = DECODERS[signal](body)
        for process in self._processors:
            process(decoded)
        waiters = [self._batcher.add(table, rows) for table, rows in decoded.rows.items()]
        if waiters:
            await asyncio.gather(*waiters)
        return decoded
