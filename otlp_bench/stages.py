"""Receiver CPU per item, stage by stage, in one process: ``python -m otlp_bench.stages``.

Runs the receiver's pipeline stages (input limits, decode, redaction, stitching, the insert)
over ``otlp-bench``'s pool of fresh copies of the real capture, with the default settings,
and prints CPU time per item for each: thread CPU time for the Python stages, process CPU
time for the insert (clickhouse-connect's compiled codec works in threads of its own), best
of ``--passes``. The insert goes to an embedded ClickHouse in a temporary directory, in
batches of ``--batch-rows``, with ``--codec`` (``rust`` needs ``clickhouse-connect[rust]``).
In-process figures are lower than inside the receiver (no gRPC, asyncio or batches waiting):
compare them with each other. ``limits+decode`` is the two as the receiver runs them: the
compiled fast path where it is built (``receiver.ingest.fastpath``), timed first so that no
other stage's rows are alive; ``limits`` and ``decode`` are the Python path's. Results:
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import clickhouse_connect.common

from otlp_bench.bench import DEFAULT_FIXTURES, build_pool, load_captures
from receiver.config import Settings
from receiver.ingest.decode import DECODERS, Decoded
from receiver.ingest.fastpath import decode_request, decoder_in_use
from receiver.ingest.limits import Limits
from receiver.processors.redact.engine import Redactor
from receiver.processors.stitch import stitch
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.schema import apply_schema
from receiver.store.sink import ClickHouseSink, connect
from receiver.store.tables import TABLE_COLUMNS

# "limits+decode": as the receiver runs them (the compiled fast path where built,
# receiver.ingest.fastpath); "limits" and "decode" are the Python path's, for comparison.
STAGES = ("limits", "decode", "limits+decode", "redact", "stitch", "insert")


def _decode_all(pool: list[Any], screened: list[Any]) -> list[Decoded]:
    decoded = []
    for request, screen in zip(pool, screened, strict=True):
        rows = DECODERS[request.signal](screen.body, screen.request)
        screen.merge_into(rows)
        decoded.append(rows)
    return decoded


def _by_table(decoded: list[Decoded]) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for request in decoded:
        for table, rows in request.rows.items():
            tables.setdefault(table, []).extend(rows)
    return tables


def measure(
    signals: tuple[str, ...], copies: int, passes: int, batch_rows: int, codec: str
) -> tuple[int, dict[str, float]]:
    """(items in the pool, best CPU µs per item for each stage)."""
    settings = Settings()
    pool = build_pool(load_captures(DEFAULT_FIXTURES, signals), copies, seed=16)
    items = sum(request.items for request in pool)
    limits = Limits.from_settings(settings)
    workdir = Path(tempfile.mkdtemp(prefix="otlp-stages-"))
    server = EmbeddedClickHouse(workdir, http_port=0, tcp_port=0)
    server.start()
    seconds: dict[str, list[float]] = {stage: [] for stage in STAGES}
    try:
        clickhouse_connect.common.set_setting("native_codec", codec)  # for new clients
        client = connect(server.dsn)
        apply_schema(client, settings.clickhouse_database, settings)
        sink = ClickHouseSink(client, settings.clickhouse_database)
        gc.freeze()  # as the daemon does once serving
        for n in range(passes):
            redactor = Redactor.from_settings(settings)
            start = time.thread_time()  # first, so no other stage's rows are alive
            fast = [decode_request(r.signal, r.body, "", limits) for r in pool]
            seconds["limits+decode"].append(time.thread_time() - start)
            del fast
            start = time.thread_time()
            screened = [limits.screen(request.signal, request.body, "") for request in pool]
            seconds["limits"].append(time.thread_time() - start)
            start = time.thread_time()
            decoded = _decode_all(pool, screened)
            seconds["decode"].append(time.thread_time() - start)
            del screened
            for stage, process in (("redact", redactor.process), ("stitch", stitch)):
                start = time.thread_time()
                for request in decoded:
                    process(request)
                seconds[stage].append(time.thread_time() - start)
            tables = _by_table(decoded)
            del decoded
            start = time.process_time()
            for table, rows in tables.items():
                for first in range(0, len(rows), batch_rows):
                    batch = rows[first : first + batch_rows]
                    sink.insert(table, TABLE_COLUMNS[table], batch, f"{n}-{table}-{first}")
            seconds["insert"].append(time.process_time() - start)
        client.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return items, {stage: min(values) / items * 1e6 for stage, values in seconds.items()}


def main() -> None:  # pragma: no cover - a benchmark
    parser = argparse.ArgumentParser(prog="python -m otlp_bench.stages", description=__doc__)
    parser.add_argument("--signals", default="traces,logs,metrics", help="comma-separated")
    parser.add_argument("--copies", type=int, default=64, help="fresh copies of the capture")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=Settings().batch_max_rows)
    parser.add_argument("--codec", choices=("python", "rust"), default="python")
    args = parser.parse_args()
    signals = tuple(args.signals.split(","))
    items, per_item = measure(signals, args.copies, args.passes, args.batch_rows, args.codec)
    print(
        f"{'+'.join(signals)}: {items} items, batches of {args.batch_rows} rows, "
        f"{args.codec} codec, {decoder_in_use()} decoder; CPU µs per item "
        f"(best of {args.passes}): "
        + ", ".join(f"{stage} {value:.2f}" for stage, value in per_item.items())
    )


if __name__ == "__main__":  # pragma: no cover
    main()
