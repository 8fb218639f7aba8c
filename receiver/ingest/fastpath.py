"""Which decoder turns an Export request into rows: the compiled fast path, or limits + decode
in Python. ``decode_request`` is the one entry point (the pipeline's and the tests').

The compiled fast path (``receiver.ingest._fastdecode``, built at install when a C compiler is
there; see ``receiver.ingest.decode``) answers only requests that no limit touches and that
hold only valid items, and says None for anything else, which then takes the Python path on the
same bytes. ``OTEL_RECEIVER_DECODER=python`` turns it off. It reads traces, logs, and gauge, sum
and histogram metrics (exponential histograms and summaries take the Python path).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from receiver.ingest.anyvalue import any_value_to_str, wire_pair
from receiver.ingest.decode import (
    DECODERS,
    EMPTY,
    SPAN_KINDS,
    STATUS_CODES,
    Decoded,
    log_event_name,
)
from receiver.ingest.limits import Limits
from receiver.ops.selfmetrics import ITEMS_REJECTED
from receiver.store.tables import LOGS, METRICS_GAUGE, METRICS_HISTOGRAM, METRICS_SUM, TRACES

DECODER_ENV = "OTEL_RECEIVER_DECODER"

try:
    from receiver.ingest import _fastdecode
except ImportError:  # not built (no compiler at install): the Python path does it all
    _fastdecode = None


def _any_value_of_bytes(raw: bytes) -> str:
    return any_value_to_str(AnyValue.FromString(raw))


def _compiled_decoders() -> dict[str, Callable[..., Any]]:
    """signal -> compiled decoder; empty when the extension is not built."""
    if _fastdecode is None:
        return {}
    _fastdecode.configure(
        EMPTY,
        wire_pair,
        _any_value_of_bytes,
        log_event_name,
        SPAN_KINDS,
        STATUS_CODES,
        (TRACES, LOGS, METRICS_GAUGE, METRICS_SUM, METRICS_HISTOGRAM),
    )
    return {
        "traces": _fastdecode.traces,
        "logs": _fastdecode.logs,
        "metrics": _fastdecode.metrics,
    }


AVAILABLE = _compiled_decoders()
COMPILED = {} if os.environ.get(DECODER_ENV, "").lower() == "python" else AVAILABLE


def decoder_in_use() -> str:
    """For the start-up log: ``compiled (traces)``, or ``python`` and why."""
    if COMPILED:
        return f"compiled ({', '.join(COMPILED)})"
    if AVAILABLE:
        return f"python ({DECODER_ENV}=python)"
    return "python (extension not built)"


def decode_request(signal: str, body: bytes, tenant: str, limits: Limits) -> tuple[Decoded, int]:
    """Limits, then decode: the rows of one Export request, and the size of the request they
    came from (re-serialized when limits or a tenant changed it; the compiled path reports the
    received size).

    Raises like ``Limits.screen``.
    """
    compiled = COMPILED.get(signal)
    if compiled is not None:
        tables = compiled(body, tenant, limits.compiled_arguments())
        if tables is not None:
            return Decoded(rows=tables), len(body)
    screened = limits.screen(signal, body, tenant)
    decoded = DECODERS[signal](screened.body, screened.request)
    if decoded.rejected:
        ITEMS_REJECTED.labels(signal, "invalid").inc(decoded.rejected)
    screened.merge_into(decoded)
    return decoded, len(screened.body)
