"""``python -m receiver.processors.redact [--pool N] [capture.pb ...]``: what redaction costs.

Per distinct string (what ``Redactor.process`` scans once); for OTLP request files given as
arguments, ``process`` against decoding; with ``--pool N``, CPU per item over N fresh copies
of the real capture as ``otlp-bench`` sends them (a new redactor per pass, so its memory of
clean strings starts empty). Best of several runs; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections import Counter as Tally
from pathlib import Path

from receiver.ingest.decode import DECODERS
from receiver.processors.redact.engine import Redactor

SAMPLES = {
    "clean id (hex)": "bfdb0cfdf65c3f9762702b17894f61f6f82d56ad5d7db55bf2c403d08fd16bec",
    "clean uuid": "b08ba7ad-8bff-4a48-8d31-9ae659a67575",
    "clean name": "codex_app_server::request_processors::thread_processor",
    "clean command": (
        "cd /home/dev/realcap/work && git log --oneline -n 20 -- src/receiver/redact.py "
        "&& pytest tests/test_redact.py -q -k 'not e2e' --maxfail=1 2>&1 | tail -n 40 && "
        "ruff check . && ruff format --check . && echo done; ls -la build/ dist/ || true"
    ),
    "clean 2 KB output": "test_decode.py::test_span_fields PASSED  [ 12%]\n" * 42,
    "secret command": (
        'curl -sS -H "Authorization: Bearer ghp_R2d9xKq7Lm4Np8Zt3Vw6Yb1Cf5Hj0Ga2Ue7S" '
        "https://api.github.com/user"
    ),
    "password command": "mysql -h db.internal -u root -pMonkey2024 orders < dump.sql",
}


def _redactor() -> Redactor:
    return Redactor(hash=("user.email",), hash_key=b"k", truncate_bytes=64 * 1024)


def per_string() -> None:
    """CPU time (not wall time: the machine may be shared) per scan of each sample."""
    redactor, tally = _redactor(), Tally[str]()
    for label, value in SAMPLES.items():
        n = 2000
        scan = lambda v=value: redactor._text(v, tally)  # noqa: E731
        best = min(timeit.repeat(scan, timer=time.thread_time, number=n, repeat=7))
        print(f"{label:20} {len(value):5} chars  {best / n * 1e6:7.2f} µs")


def per_request(paths: list[str]) -> None:
    redactor = _redactor()
    for name in paths:
        body = Path(name).read_bytes()
        decode = DECODERS[name.rsplit("_", 1)[1].split(".")[0]]
        times: dict[str, list[float]] = {"decode": [], "redact": []}
        for _ in range(7):
            decoded = [decode(body) for _ in range(5)]
            start = time.perf_counter()
            for _ in range(5):
                decode(body)
            times["decode"].append((time.perf_counter() - start) / 5)
            start = time.perf_counter()
            for d in decoded:
                redactor.process(d)
            times["redact"].append((time.perf_counter() - start) / 5)
        d, r = min(times["decode"]), min(times["redact"])
        print(f"{name}: decode {d * 1e3:.2f} ms, redact {r * 1e3:.2f} ms ({r / d:.0%})")


def per_item(copies: int, passes: int = 5) -> None:
    from otlp_bench.bench import DEFAULT_FIXTURES, build_pool, load_captures

    pool = build_pool(load_captures(DEFAULT_FIXTURES, DECODERS), copies, seed=18)
    items = sum(request.items for request in pool)
    cpu = []
    for _ in range(passes):
        decoded = [DECODERS[request.signal](request.body) for request in pool]
        redactor = _redactor()
        start = time.thread_time()
        for d in decoded:
            redactor.process(d)
        cpu.append(time.thread_time() - start)
    per = sorted(seconds / items * 1e6 for seconds in cpu)
    print(
        f"pool of {copies} copies, {items} items: redaction {per[0]:.2f} µs/item CPU "
        f"(best of {passes}; all: {', '.join(f'{p:.2f}' for p in per)})"
    )


def main() -> None:  # pragma: no cover - a benchmark
    parser = argparse.ArgumentParser(prog="python -m receiver.processors.redact")
    parser.add_argument("captures", nargs="*", help="OTLP request files (NNN_grpc_<signal>.pb)")
    parser.add_argument("--pool", type=int, metavar="N", help="CPU per item over N copies")
    args = parser.parse_args()
    per_string()
    per_request(args.captures)
    if args.pool:
        per_item(args.pool)


if __name__ == "__main__":  # pragma: no cover
    main()
