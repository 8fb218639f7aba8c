"""The pipeline behind every front end: decode, then batch into storage.

Front ends hand over the raw request bytes and the signal name and get back what was
rejected; everything after the front end is one code path, so a request sent over gRPC or
HTTP produces identical rows.
"""

from __future__ import annotations

import asyncio

from receiver.batch import Batcher
from receiver.decode import DECODERS, Decoded

SIGNALS = tuple(DECODERS)


class Pipeline:
    """Decodes Export requests and waits until their rows are stored."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher

    async def export(self, signal: str, body: bytes) -> Decoded:
        """Store one Export request; raises ``google.protobuf.message.DecodeError`` for a
        body that is not the signal's Export request, or the storage error."""
        decoded = DECODERS[signal](body)
        waiters = [self._batcher.add(table, rows) for table, rows in decoded.rows.items()]
        if waiters:
            await asyncio.gather(*waiters)
        return decoded
