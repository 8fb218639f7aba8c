"""``python -m receiver.processors.redact [capture.pb ...]``: what redaction costs.

Per distinct string (what ``Redactor.process`` scans once), then, for OTLP request files
given as arguments, ``process`` against decoding. Best of 7 runs; a benchmark, not a test.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections import Counter as Tally

from receiver.ingest.decode import DECODERS
from receiver.processors.redact.engine import Redactor


def main() -> None:  # pragma: no cover - a benchmark
    """Print the per-string and per-request timings."""
    redactor = Redactor(hash=("user.email",), hash_key=b"k", truncate_bytes=64 * 1024)
    tally: Tally[str] = Tally()
    samples = {
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
    }
    for label, value in samples.items():
        n = 2000
        best = min(timeit.repeat(lambda v=value: redactor._text(v, tally), number=n, repeat=7))
        print(f"{label:20} {len(value):5} chars  {best / n * 1e6:7.2f} µs")
    for name in sys.argv[1:]:
        body = open(name, "rb").read()  # noqa: SIM115
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


if __name__ == "__main__":  # pragma: no cover
    main()
