"""How fast the spool drains into ClickHouse: ``python -m otlp_bench.spool_drain``.

Fills a spool with ``--files`` batch files of ``--rows`` spans each (as an outage would),
starts an embedded ClickHouse and the receiver's own ``Delivery`` replayer on it, and times
the drain: files per second, rows per second. One failing file among them (rows on 150 day
partitions would be split; ``--poison`` makes one file's table unknown instead) shows that
it holds back nothing else. Results go to docs/BENCHMARKS.md / docs/DELIVERY.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from receiver.config import Settings
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.deliver import Delivery
from receiver.delivery.spool import Batch, Spool
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.schema import apply_schema
from receiver.store.sink import ClickHouseSink, connect
from receiver.store.tables import TABLE_COLUMNS, TRACES


def span_rows(count: int) -> list[tuple]:
    now = time.time_ns()
    return [
        (now, "ab" * 16, os.urandom(8).hex(), "", "", "drain", "Internal", "svc", {"k": "v"},
         "", "", {"a": "b"}, 5, "Unset", "", [], [], [], [], [], [], [])
        for _ in range(count)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spool-drain-"))
    server = EmbeddedClickHouse(root / "clickhouse", http_port=0, tcp_port=0)
    server.start()
    try:
        client = connect(server.url, credentials=server.credentials)
        apply_schema(client, "drain", Settings(clickhouse_database="drain"))
        spool = Spool(root / "spool", 10**11)
        started = time.perf_counter()
        for i in range(args.files):
            spool.append(Batch(TRACES, TABLE_COLUMNS[TRACES], span_rows(args.rows), f"d-{i}"))
        filled = time.perf_counter() - started
        delivery = Delivery(
            ClickHouseSink(client, "drain"), spool, DeadLetters(root / "spool" / "dead", 10**9)
        )
        started = time.perf_counter()
        delivery.start()
        while len(spool):
            time.sleep(0.05)
        drained = time.perf_counter() - started
        delivery._stopping.set()
        stored = client.command("SELECT count() FROM drain.otel_traces")
        total = args.files * args.rows
        print(
            f"spooled {args.files} files x {args.rows} rows in {filled:.1f} s "
            f"({args.files / filled:.0f} fsynced files/s); drained in {drained:.1f} s: "
            f"{args.files / drained:.0f} files/s, {total / drained:.0f} rows/s; stored {stored}"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
