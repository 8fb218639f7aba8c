"""Run decode tests on both decoders: the compiled fast path and the Python path.

A test module imports ``decoder_path`` (an autouse fixture, so each of its tests runs once per
path) and decodes through ``decode``, the pipeline's own entry point. On the compiled path a
request the fast path declines still takes the Python path, as in the receiver.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from receiver.ingest import fastpath
from receiver.ingest.decode import Decoded
from receiver.ingest.limits import Limits

NOT_BUILT = (
    "receiver.ingest._fastdecode is not built (no C compiler at install?): "
    "only the Python path is tested"
)


@pytest.fixture(params=["compiled", "python"], autouse=True)
def decoder_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "compiled":
        if not fastpath.AVAILABLE:
            pytest.skip(NOT_BUILT)
        monkeypatch.setattr(fastpath, "COMPILED", fastpath.AVAILABLE)
    else:
        monkeypatch.setattr(fastpath, "COMPILED", {})
    yield request.param


def decode(signal: str, body: bytes, tenant: str = "", limits: Limits | None = None) -> Decoded:
    """Limits (none unless given) and decode, as the pipeline does."""
    return fastpath.decode_request(signal, body, tenant, limits or Limits())[0]
