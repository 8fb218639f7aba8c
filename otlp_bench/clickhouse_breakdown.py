"""Where the embedded ClickHouse's CPU goes during an ``otlp-bench`` window.

``otlp-bench --clickhouse-breakdown`` drops a ``config.d`` file next to the embedded server's
``config.xml`` before the receiver starts it (ClickHouse merges ``config.d/*.xml`` into its
configuration), turning on ``system.query_log``, ``system.query_views_log`` and
``system.part_log``. After the run it sums, over the measured window, the CPU each kind of
query used (``ProfileEvents`` ``UserTimeMicroseconds + SystemTimeMicroseconds``; an insert's
figure includes the materialized views it feeds, which are also listed on their own) and the
CPU of the background merges of each table. What is left of the server's process CPU is
background work neither log sees (part removal, the logs' own flushes, thread pools).

The receiver's own code is unchanged by this: only the benchmark's temporary data directory
gets the extra file, and the logs cost the server a little CPU of their own.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Protocol

# Under the receiver's --data-dir: the embedded server's data directory and its run directory.
CONFIG_DIR = Path("clickhouse") / "run" / "config.d"
CONFIG_FILE = "otlp_bench_breakdown.xml"

_LOGS = ("query_log", "query_views_log", "part_log")
LOG_CONFIG = (
    "<clickhouse>\n"
    + "".join(
        f"  <{name}><database>system</database><table>{name}</table>"
        f"<flush_interval_milliseconds>1000</flush_interval_milliseconds></{name}>\n"
        for name in _LOGS
    )
    + "</clickhouse>\n"
)

_CPU = "(ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds'])"
# The benchmark's own queries (probes, row counts) come over urllib, the receiver's over
# clickhouse-connect: they are labelled, so that the receiver's share can be told apart.
BENCH_LABEL = "[otlp-bench] "
# One label per kind of query: the target table of an insert, else the normalized text.
_KIND = (
    f"concat(if(http_user_agent LIKE 'Python-urllib%', '{BENCH_LABEL}', ''), "
    "if(query_kind = 'Insert', "
    "concat('INSERT INTO ', replaceRegexpAll("
    "extract(query, '(?i)INSERT\\\\s+INTO\\\\s+([^\\\\s(]+)'), '[`\"]', '')), "
    "substring(replaceRegexpAll(normalizeQuery(query), '\\\\s+', ' '), 1, 90)))"
)


class Queryable(Protocol):
    def query(self, sql: str, timeout: float = 10.0) -> list[list[str]]: ...

    def command(self, sql: str, timeout: float = 10.0) -> None: ...


def prepare(receiver_data_dir: Path) -> None:
    """Write the log configuration where the embedded server the receiver starts will read
    it (before the receiver starts)."""
    folder = receiver_data_dir / CONFIG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(LOG_CONFIG)


def _time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"toDateTime64('{moment:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


def collect(clickhouse: Queryable, start: float, end: float) -> dict[str, Any]:
    """CPU seconds by query kind, by view and by merged table, in the wall-clock window
    [``start``, ``end``] (Unix seconds)."""
    clickhouse.command("SYSTEM FLUSH LOGS", timeout=60)
    window = (
        f"event_time_microseconds BETWEEN {_time(start)} AND {_time(end)} "
        f"AND event_date >= toDate({_time(start)})"
    )
    queries = clickhouse.query(
        f"SELECT {_KIND} AS kind, count(), sum({_CPU}) / 1e6, sum(query_duration_ms) / 1e3 "
        "FROM system.query_log "
        f"WHERE type != 'QueryStart' AND {window} "
        "GROUP BY kind ORDER BY 3 DESC",
        timeout=60,
    )
    views = clickhouse.query(
        f"SELECT view_name, count(), sum({_CPU}) / 1e6, sum(view_duration_ms) / 1e3 "
        f"FROM system.query_views_log WHERE {window} GROUP BY view_name ORDER BY 3 DESC",
        timeout=60,
    )
    merges = clickhouse.query(
        f"SELECT table, count(), sum({_CPU}) / 1e6, sum(duration_ms) / 1e3, sum(read_rows) "
        "FROM system.part_log "
        f"WHERE event_type = 'MergeParts' AND database != 'system' AND {window} "
        "GROUP BY table ORDER BY 3 DESC",
        timeout=60,
    )
    new_parts = clickhouse.query(
        "SELECT table, count(), sum(rows) FROM system.part_log "
        f"WHERE event_type = 'NewPart' AND database != 'system' AND {window} "
        "GROUP BY table ORDER BY 2 DESC",
        timeout=60,
    )
    return {
        "queries": [
            {"kind": k, "count": int(n), "cpu_seconds": float(c), "seconds": float(s)}
            for k, n, c, s in queries
        ],
        "views": [
            {"view": v, "count": int(n), "cpu_seconds": float(c), "seconds": float(s)}
            for v, n, c, s in views
        ],
        "merges": [
            {
                "table": t,
                "count": int(n),
                "cpu_seconds": float(c),
                "seconds": float(s),
                "rows_read": int(r),
            }
            for t, n, c, s, r in merges
        ],
        "new_parts": [{"table": t, "count": int(n), "rows": int(r)} for t, n, r in new_parts],
    }


def render(breakdown: dict[str, Any], total_cpu: float | None, items: int) -> str:
    """The breakdown as text: CPU seconds and µs per item, largest first."""

    def per_item(seconds: float) -> str:
        return f"{seconds / items * 1e6:6.2f}" if items else "   n/a"

    lines = ["ClickHouse CPU in the window (s, µs/item, count):"]
    attributed = 0.0
    for q in breakdown["queries"]:
        attributed += q["cpu_seconds"]
        lines.append(
            f"  {q['cpu_seconds']:7.2f} {per_item(q['cpu_seconds'])}  {q['count']:5d}  {q['kind']}"
        )
    for m in breakdown["merges"]:
        attributed += m["cpu_seconds"]
        lines.append(
            f"  {m['cpu_seconds']:7.2f} {per_item(m['cpu_seconds'])}  {m['count']:5d}  "
            f"merges of {m['table']} ({m['rows_read']:,} rows read, {m['seconds']:.1f} s)"
        )
    if total_cpu is not None:
        rest = total_cpu - attributed
        bench = sum(
            q["cpu_seconds"] for q in breakdown["queries"] if q["kind"].startswith(BENCH_LABEL)
        )
        lines.append(f"  {rest:7.2f} {per_item(rest)}         other (background, logs)")
        lines.append(f"  {total_cpu:7.2f} {per_item(total_cpu)}         total (process CPU)")
        lines.append(
            f"  {total_cpu - bench:7.2f} {per_item(total_cpu - bench)}         "
            "total without otlp-bench's own queries"
        )
    for v in breakdown["views"]:
        lines.append(
            f"  of the inserts: {v['cpu_seconds']:.2f} s in view {v['view']} ({v['count']} runs)"
        )
    parts = ", ".join(
        f"{p['table']} {p['count']} ({p['rows']:,} rows)" for p in breakdown["new_parts"]
    )
    if parts:
        lines.append(f"  new parts: {parts}")
    return "\n".join(lines)
