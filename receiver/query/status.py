"""``otel-receiver status``: a human summary of a running receiver and its ClickHouse.

It scrapes the receiver's own ``/metrics`` (``metrics.listen``) and asks ClickHouse for its
version with the configured credentials (for the embedded server: the ports it wrote and its
generated password). Exit code 0 when both answer and the receiver is not unhealthy, 1
otherwise.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from receiver.config import Settings, parse_host_port
from receiver.query.target import recorded_http_port
from receiver.store.credentials import clickhouse_credentials, embedded_credentials, safe_url
from receiver.store.unreachable import cause

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def scrape(url: str, timeout: float = 3.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from a Prometheus text endpoint; raises OSError when it is down."""
    with _opener.open(url, timeout=timeout) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return samples


def _total(samples: Iterable[tuple[dict[str, str], float]]) -> float:
    return sum(value for _, value in samples)


def _by(samples: Iterable[tuple[dict[str, str], float]], *labels: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for sample_labels, value in samples:
        out["/".join(sample_labels.get(label, "") for label in labels)] += value
    return dict(out)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _breakdown(values: dict[str, float]) -> str:
    shown = [f"{key} {value:.0f}" for key, value in sorted(values.items()) if value]
    return ", ".join(shown) if shown else "none"


def health(samples: dict[str, list[tuple[dict[str, str], float]]]) -> str:
    """``healthy``, or ``UNHEALTHY``/``degraded`` with the problems the receiver reports."""
    problems = [
        f"{labels.get('problem')} ({labels.get('severity')})"
        for labels, value in samples.get("otel_receiver_health_problem", [])
        if value
    ]
    healthy = _total(samples.get("otel_receiver_healthy", [])) >= 1
    if healthy and not problems:
        return "healthy"
    word = "degraded" if healthy else "UNHEALTHY"
    return f"{word}: {', '.join(problems)} (the receiver log names cause and fix)"


def summarize(samples: dict[str, list[tuple[dict[str, str], float]]]) -> list[str]:
    """The receiver part of the report, one line per topic."""
    s = samples
    lines = [f"health:            {health(samples)}"] if "otel_receiver_healthy" in s else []
    started = _total(s.get("process_start_time_seconds", []))
    if started:
        lines.append(f"uptime:            {time.time() - started:.0f} s")
    rss = _total(s.get("process_resident_memory_bytes", []))
    cpu = _total(s.get("process_cpu_seconds_total", []))
    fds = _total(s.get("process_open_fds", []))
    if rss:
        lines.append(
            f"process:           {_size(rss)} resident, {cpu:.1f} s CPU, {fds:.0f} open fds"
        )
    lines.append(
        "items received:    "
        + _breakdown(_by(s.get("otel_receiver_items_received_total", []), "signal"))
    )
    lines.append(
        "items rejected:    "
        + _breakdown(_by(s.get("otel_receiver_items_rejected_total", []), "signal", "reason"))
    )
    lines.append(
        "requests refused:  "
        + _breakdown(_by(s.get("otel_receiver_requests_rejected_total", []), "signal", "reason"))
    )
    lines.append(
        "auth failures:     "
        + _breakdown(_by(s.get("otel_receiver_auth_failures_total", []), "transport", "reason"))
    )
    received = _total(s.get("otel_receiver_received_bytes_total", []))
    lines.append(f"bytes received:    {_size(received)}")
    inserts = _total(s.get("otel_receiver_insert_duration_seconds_count", []))
    insert_seconds = _total(s.get("otel_receiver_insert_duration_seconds_sum", []))
    rows = _total(s.get("otel_receiver_batch_rows_sum", []))
    batches = _total(s.get("otel_receiver_batch_rows_count", []))
    if inserts:
        lines.append(
            f"inserts:           {inserts:.0f}, mean {insert_seconds / inserts * 1000:.1f} ms, "
            f"{rows:.0f} rows in {batches:.0f} batches"
            + (f" (mean {rows / batches:.0f} rows)" if batches else "")
        )
    else:
        lines.append("inserts:           none yet")
    lines.append(
        "ClickHouse errors: "
        + _breakdown(_by(s.get("otel_receiver_clickhouse_errors_total", []), "kind", "code"))
    )
    spool_bytes = _total(s.get("otel_receiver_spool_bytes", []))
    spool_files = _total(s.get("otel_receiver_spool_files", []))
    queue = _total(s.get("otel_receiver_queue_bytes", []))
    lines.append(f"spool:             {spool_files:.0f} files, {_size(spool_bytes)}")
    states = _by(s.get("otel_receiver_batches", []), "state")
    if states:
        moving = {k: v for k, v in states.items() if k != "dead"}
        lines.append("batches by state:  " + _breakdown(moving))
    dead_bytes = _total(s.get("otel_receiver_dead_letter_bytes", []))
    lines.append(
        f"dead letters:      {states.get('dead', 0):.0f} files, {_size(dead_bytes)}"
        " (`otel-receiver spool list`)"
    )
    lines.append(f"queue:             {_size(queue)} waiting for storage")
    redactions = _total(s.get("otel_receiver_redactions_total", []))
    if "otel_receiver_redactions_total" in s:
        lines.append(f"secrets redacted:  {redactions:.0f}")
    return lines


def _embedded_url(settings: Settings) -> str | None:
    """The embedded server's URL from the ports file it wrote (None before its first start)."""
    http_port = recorded_http_port(settings.clickhouse_data_dir)
    return None if http_port is None else f"http://127.0.0.1:{http_port}"


def clickhouse_reachable(settings: Settings) -> tuple[bool, str]:
    """(reachable, description) for the ClickHouse this configuration uses."""
    from receiver.store.sink import connect

    if settings.uses_embedded_clickhouse:
        url = _embedded_url(settings)
        if url is None:
            return False, f"embedded, never started in {settings.clickhouse_data_dir}"
        password_file = Path(settings.clickhouse_data_dir) / "password"
        if not password_file.exists():
            return False, f"embedded at {url}, but {password_file} is missing"
        credentials = embedded_credentials(settings.clickhouse_data_dir)
        where = f"embedded at {url}"
    else:
        url = settings.clickhouse_url
        credentials = clickhouse_credentials(settings)
        where = safe_url(url)
    try:
        client: Any = connect(url, credentials=credentials)
        try:
            version = client.server_version
            client.command("SELECT 1")
        finally:
            client.close()
    except Exception as exc:
        return False, f"{where}: not reachable ({cause(exc)})"
    return True, f"{where}: reachable, version {version}"


def run(settings: Settings) -> int:
    ok = True
    print("otel-receiver status")
    if settings.metrics_listen:
        host, port = parse_host_port(settings.metrics_listen, "metrics_listen")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/metrics"
        try:
            samples = scrape(url)
        except OSError as exc:
            ok = False
            print(f"receiver:          not answering on {url} ({exc})")
        else:
            print(f"receiver:          up (metrics {url})")
            for line in summarize(samples):
                print(line)
            ok = ok and not health(samples).startswith("UNHEALTHY")
    else:
        print("receiver:          unknown (metrics.listen is empty: self-metrics are off)")
    reachable, description = clickhouse_reachable(settings)
    ok = ok and reachable
    print(f"ClickHouse:        {description}")
    return 0 if ok else 1
