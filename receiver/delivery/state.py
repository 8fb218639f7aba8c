"""The states a batch goes through, and the metrics that count them (declared only here).

    queued ──flush──▶ in_flight ──stored──▶ (gone)
                          │ ClickHouse away, slow (delivery.ack_timeout) or refusing for now
                          ▼
                       spooled ──replayed──▶ (gone)
                          │ failed attempt
                          ▼
                       retrying ──replayed──▶ (gone)
                          │ rows ClickHouse will never take, or delivery.max_attempts reached
                          ▼
                        dead (a dead letter on disk, until `otel-receiver spool retry|drop`)

- ``queued``: rows in a table's buffer waiting for its flush (size or age).
- ``in_flight``: a direct insert running (the requests wait, at most ``delivery.ack_timeout``).
- ``spooled``: an fsynced batch file not yet tried by the replayer; acknowledged.
- ``retrying``: a spool file that failed at least once, waiting for its own backoff.
- ``dead``: dead letters, kept on disk, recounted from disk at start.

``otel_receiver_batches{state}`` is the number of batches in each state now, and
``otel_receiver_batch_transitions_total{state}`` counts entries into each state.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Gauge


class BatchState(StrEnum):
    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    SPOOLED = "spooled"
    RETRYING = "retrying"
    DEAD = "dead"


BATCHES = Gauge("otel_receiver_batches", "Batches in each delivery state now", ["state"])
TRANSITIONS = Counter(
    "otel_receiver_batch_transitions_total", "Batches that entered each delivery state", ["state"]
)
DEAD_LETTER_BYTES = Gauge("otel_receiver_dead_letter_bytes", "Bytes of dead-letter files on disk")
DEAD_LETTER_ROWS = Counter(
    "otel_receiver_dead_letter_rows_total", "Rows written to the dead-letter directory", ["table"]
)
DEAD_LETTER_DROPPED_ROWS = Counter(
    "otel_receiver_dead_letter_dropped_rows_total",
    "Rows ClickHouse refused that did not fit under deadletter.max_bytes and were dropped",
    ["table"],
)
REPLAYER_RESTARTS = Counter(
    "otel_receiver_replayer_restarts_total", "Times the spool replayer crashed and was restarted"
)


def enter(state: BatchState, count: int = 1) -> None:
    """``count`` batches entered ``state``."""
    BATCHES.labels(state.value).inc(count)
    TRANSITIONS.labels(state.value).inc(count)


def leave(state: BatchState, count: int = 1) -> None:
    BATCHES.labels(state.value).dec(count)


def move(source: BatchState, target: BatchState) -> None:
    leave(source)
    enter(target)


def recount(state: BatchState, count: int) -> None:
    """Set a state's count from disk (spool and dead letters at start)."""
    BATCHES.labels(state.value).set(count)
