"""otlp-bench smoke test: a 3-second run against the embedded ClickHouse reports every figure.

No timing is asserted (the machine may be busy); only that each metric is there and sane.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .capture_files import FIXTURES
from .receiver_process import REPO


def _bench(tmp_path: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    """A 3-second ``otlp-bench`` run with one small client: its stdout and its JSON result."""
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "otlp_bench.bench",
            *("--duration", "3", "--warmup", "1", "--clients", "1", "--inflight", "8"),
            *("--pool-sessions", "2", "--fixtures", str(FIXTURES)),
            *extra,
            *("--json", str(out), "--quiet"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout, json.loads(out.read_text())


def test_short_run_reports_every_metric_with_sane_values(tmp_path: Path) -> None:
    stdout, result = _bench(tmp_path)
    assert "receiver CPU µs/item" in stdout

    assert result["window_seconds"] > 2
    accepted = result["accepted"]
    assert all(accepted[k] > 0 for k in ("spans", "logs", "points"))
    assert accepted["total"] == accepted["spans"] + accepted["logs"] + accepted["points"]
    assert result["accepted_per_second"]["total"] > 0
    landed = result["landed_per_second"]
    assert all(landed[k] > 0 for k in ("spans", "logs", "points", "total"))

    for key in ("receiver_cpu_us_per_item", "clickhouse_cpu_us_per_item"):
        assert 0 < result[key] < 100_000, key
    assert 0 < result["receiver_cpu_cores"] <= result["machine"]["cores"]

    latency = result["export_latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] < 120_000
    queryable = result["export_to_queryable_ms"]
    # Every probe sent in the window was found (the poll's time bound must not hide any).
    assert 0 < queryable["count"] == queryable["sent"]
    assert 0 < queryable["p50"] <= queryable["p99"] < 120_000

    rss = result["rss_peak_mb"]
    assert 10 < rss["receiver"] < 10_000 and 10 < rss["clickhouse"] < 10_000

    assert result["requests"]["failed_total"] == 0
    assert result["requests"]["rejected_items_total"] == 0
    drain = result["drain"]  # every acknowledged item (and probe span) is in ClickHouse
    assert drain["landed_total"] >= drain["accepted_total"] + drain["probes_total"]

    assert [t["name"].split(" (")[0] for t in result["targets"]] == [
        "receiver CPU per item",
        "ClickHouse CPU per span",
        "spans landed per second",
        "export-to-queryable p99",
        "receiver peak RSS",
    ]
    assert result["machine"]["cores"] >= 1 and result["machine"]["memory_mb"] > 0


def test_the_clickhouse_breakdown_names_the_inserts_and_merges(tmp_path: Path) -> None:
    stdout, result = _bench(tmp_path, "--signals", "traces", "--clickhouse-breakdown")
    assert "ClickHouse CPU in the window" in stdout
    breakdown = result["clickhouse_breakdown"]
    inserts = {q["kind"]: q for q in breakdown["queries"]}
    traces = inserts["INSERT INTO otel.otel_traces"]
    assert traces["count"] >= 1 and traces["cpu_seconds"] > 0
    assert any(v["view"] == "otel.otel_traces_trace_id_ts_mv" for v in breakdown["views"])
    assert any(p["table"] == "otel_traces" and p["rows"] > 0 for p in breakdown["new_parts"])
