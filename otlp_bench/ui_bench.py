"""ui-bench: how fast the web UI answers over a large store, and whether the live tail keeps up
with 1,000 rows.

It starts an embedded ClickHouse in a temporary directory, generates ``--sessions`` Claude Code
sessions (and a codex run under every fifth) inside ClickHouse with ``INSERT ... SELECT`` from
``numbers()`` (per session: 12 log events, 5 metric points, 4 spans; per codex run: 5 log events
and 2 spans; their ``agent_runs`` and ``agent_spans`` rows), spread over the last six days,
then serves the UI in-process (``receiver.web.app.UiServer``, as ``otel-receiver ui`` does) and
times each page over HTTP. With ``--live`` it also opens ``/live`` in headless Chromium, inserts
events while the page listens, and measures how long each new event takes to appear as the
table fills to its 1,000-row cap.

    python -m otlp_bench.ui_bench --sessions 10000 --repeat 5 --live
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from otlp_bench.bench import cpu_seconds
from receiver.config import load_settings
from receiver.ingest.auth import Authenticator
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.schema import apply_schema
from receiver.store.sink import connect
from receiver.web.app import UiServer
from receiver.web.queries import connect_readonly

DAYS = 6
_SPAN_OF = re.compile(r"span_of\((\w+)\)")  # the span id of span k of session s
CHROMIUM = "/usr/bin/chromium"

# {db}, {n} (sessions), {span} (seconds between session starts) are filled in below.
GENERATE = [
    # Claude Code log events: 12 per session.
    """INSERT INTO {db}.otel_logs (Timestamp, TraceId, SpanId, ServiceName, Body, EventName,
           LogAttributes, ResourceAttributes)
    SELECT base + toIntervalMillisecond(k * 4000) AS ts, trace, '', 'claude-code', name, name,
           map('session.id', session, 'user.id', concat('user-', toString(s % 50)),
               'event.name', substring(name, 13), 'model', model,
               'prompt.id', concat('prompt-', toString(s), '-', toString(intDiv(k, 6))),
               'tool_name', if(k % 2 = 0, 'Bash', 'Read'),
               'tool_use_id', concat('toolu-', toString(s), '-', toString(k)),
               'success', if(k = 9 AND s % 7 = 0, 'false', 'true'),
               'duration_ms', toString(20 + (s * 7 + k) % 900),
               'input_tokens', toString(1000 + s % 500), 'output_tokens', toString(80 + k),
               'cost_usd', toString(0.002 + (s % 10) / 1000), 'status_code', '529',
               'error', 'overloaded'),
           map('service.name', 'claude-code')
    FROM (
        SELECT intDiv(number, 12) AS s, number % 12 AS k,
               concat('bench-session-', toString(s)) AS session,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base,
               lower(hex(MD5(concat('t', toString(s))))) AS trace,
               ['claude-sonnet-4-5', 'claude-opus-5-5', 'claude-haiku-4-5'][s % 3 + 1] AS model,
               concat('claude_code.', ['user_prompt', 'api_request', 'tool_decision',
                   'tool_result', 'api_request', 'tool_result', 'tool_result', 'api_request',
                   'assistant_response', 'tool_result',
                   if(s % 11 = 0, 'api_error', 'api_request'), 'user_prompt'][k + 1]) AS name
        FROM numbers({n} * 12)
    )""",
    # Claude Code metrics: tokens by type and cost, 5 DELTA points per session.
    """INSERT INTO {db}.otel_metrics_sum (ServiceName, MetricName, Attributes, StartTimeUnix,
           TimeUnix, Value, AggregationTemporality, IsMonotonic, ResourceAttributes)
    SELECT 'claude-code', if(k = 4, 'claude_code.cost.usage', 'claude_code.token.usage'),
           map('session.id', concat('bench-session-', toString(s)),
               'user.id', concat('user-', toString(s % 50)),
               'model', ['claude-sonnet-4-5', 'claude-opus-5-5', 'claude-haiku-4-5'][s % 3 + 1],
               'type', ['input', 'output', 'cacheRead', 'cacheCreation', ''][k + 1]),
           base, base + toIntervalSecond(60),
           [4000 + s % 900, 400 + s % 90, 20000 + s % 5000, 1000, 0.01 + (s % 10) / 100][k + 1],
           1, true, map('service.name', 'claude-code')
    FROM (
        SELECT intDiv(number, 5) AS s, number % 5 AS k,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base
        FROM numbers({n} * 5)
    )""",
    # Claude Code spans: interaction -> llm_request, tool -> tool.execution, 4 per session.
    """INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName,
           SpanKind, ServiceName, ResourceAttributes, SpanAttributes, Duration, StatusCode)
    SELECT base + toIntervalMillisecond(k * 100), trace, span_of(k),
           [ '', span_of(0), span_of(0), span_of(2)][k + 1],
           ['claude_code.interaction', 'claude_code.llm_request', 'claude_code.tool',
            'claude_code.tool.execution'][k + 1], 'Internal', 'claude-code',
           map('service.name', 'claude-code'),
           map('session.id', concat('bench-session-', toString(s)), 'tool_name', 'Bash',
               'interaction.sequence', '1',
               'tool_use_id', concat('toolu-', toString(s), '-3')),
           toUInt64([40000, 3000, 30000, 29000][k + 1]) * 1000000, 'Unset'
    FROM (
        SELECT intDiv(number, 4) AS s, number % 4 AS k,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base,
               lower(hex(MD5(concat('t', toString(s))))) AS trace
        FROM numbers({n} * 4)
    )""",
    # Codex runs under every fifth session: 5 log events and 2 spans each.
    """INSERT INTO {db}.otel_logs (Timestamp, TraceId, SpanId, ServiceName, Body, EventName,
           LogAttributes, ResourceAttributes)
    SELECT base + toIntervalMillisecond(12000 + k * 500), '', '', 'codex_exec', '',
           ['codex.conversation_starts', 'codex.user_prompt', 'codex.api_request',
            'codex.sse_event', 'codex.tool_result'][k + 1],
           map('conversation.id', concat('bench-thread-', toString(s)), 'model', 'gpt-5.4',
               'event.kind', 'response.completed', 'input_token_count', '3000',
               'output_token_count', '200', 'http.response.status_code', '200',
               'tool_name', 'shell', 'success', 'true', 'duration_ms', '300'),
           map('service.name', 'codex_exec', 'agent.run.id', concat('bench-codex-', toString(s)),
               'agent.parent.session.id', concat('bench-session-', toString(s)))
    FROM (
        SELECT intDiv(number, 5) * 5 AS s, number % 5 AS k,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base
        FROM numbers({n})
    )""",
    """INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName,
           SpanKind, ServiceName, ResourceAttributes, SpanAttributes, Duration, StatusCode)
    SELECT base + toIntervalMillisecond(11000 + k * 100), trace,
           substring(lower(hex(MD5(concat('cx', toString(s), toString(k))))), 1, 16),
           if(k = 0, substring(lower(hex(MD5(concat('sp', toString(s), '3')))), 1, 16),
              substring(lower(hex(MD5(concat('cx', toString(s), '0')))), 1, 16)),
           ['codex.exec', 'run_turn'][k + 1], 'Internal', 'codex_exec',
           map('service.name', 'codex_exec', 'agent.run.id', concat('bench-codex-', toString(s)),
               'agent.parent.session.id', concat('bench-session-', toString(s))),
           map('thread.id', concat('bench-thread-', toString(s)), 'turn.id', 'turn-1'),
           toUInt64(15000 - k * 1000) * 1000000, 'Unset'
    FROM (
        SELECT intDiv(number, 2) * 5 AS s, number % 2 AS k,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base,
               lower(hex(MD5(concat('t', toString(s))))) AS trace
        FROM numbers(intDiv({n}, 5) * 2)
    )""",
    # The stitch stage's rows: agent_runs (with tasks) and agent_spans.
    """INSERT INTO {db}.agent_runs (RunId, Kind, ServiceName, ParentRunId, ParentSpanId,
           Resolution, TraceId, TraceIds, TaskId, FirstSeen, LastSeen, Version)
    SELECT if(codex, concat('bench-codex-', toString(s)), concat('bench-session-', toString(s))),
           if(codex, 'codex_run', 'claude_session'), if(codex, 'codex_exec', 'claude-code'),
           if(codex, concat('bench-session-', toString(s)), ''),
           if(codex, substring(lower(hex(MD5(concat('sp', toString(s), '3')))), 1, 16), ''),
           if(codex, 'span_link', 'root'), trace, [trace], concat('TASK-', toString(s % 100)),
           base, base + toIntervalSecond(45), 1
    FROM (
        SELECT if(number < {n}, number, (number - {n}) * 5) AS s, number >= {n} AS codex,
               now64(9) - toIntervalSecond({days} * 86400) + toIntervalSecond(s * {span}) AS base,
               lower(hex(MD5(concat('t', toString(s))))) AS trace
        FROM numbers({n} + intDiv({n}, 5))
    )""",
    """INSERT INTO {db}.agent_spans (SpanId, TraceId, ParentSpanId, RunId, Kind, SpanName,
           Timestamp, Duration)
    SELECT SpanId, TraceId, ParentSpanId,
           if(ServiceName = 'codex_exec', ResourceAttributes['agent.run.id'],
              SpanAttributes['session.id']),
           if(ServiceName = 'codex_exec', 'codex_run', 'claude_session'), SpanName, Timestamp,
           Duration
    FROM {db}.otel_traces""",
]


def generate(client: Any, database: str, sessions: int) -> float:
    span = max(DAYS * 86400 // max(sessions, 1), 1)
    started = time.monotonic()
    for statement in GENERATE:
        sql = _SPAN_OF.sub(
            lambda m: (
                f"substring(lower(hex(MD5(concat('sp', toString(s), toString({m[1]}))))), 1, 16)"
            ),
            statement,
        )
        client.command(sql.format(db=database, n=sessions, span=span, days=DAYS))
    return time.monotonic() - started


def timed_get(url: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = answer.read()
        status = answer.status
    return time.perf_counter() - started, status, len(body)


def measure(
    base: str, paths: dict[str, str], repeat: int, clickhouse_pid: int
) -> dict[str, dict[str, float]]:
    """Each path ``repeat`` times: wall time, and the CPU it cost ClickHouse and this process
    (the UI's thread and the HTTP client). ``{i}`` in a path is replaced by the repetition
    number, to make each request a new question (the sessions page reuses an answer for 10 s).
    """
    results = {}
    timed_get(base + "/reports/tools")  # first use of the client, templates, compiled regexes
    for label, path in paths.items():
        walls, server_cpu, ui_cpu = [], [], []
        size = 0
        for i in range(repeat):
            url = base + path.replace("{i}", str(i + 1))
            server_before, ui_before = cpu_seconds(clickhouse_pid) or 0.0, time.process_time()
            seconds, status, size = timed_get(url)
            assert status == 200, (path, status)
            walls.append(seconds)
            server_cpu.append((cpu_seconds(clickhouse_pid) or 0.0) - server_before)
            ui_cpu.append(time.process_time() - ui_before)
        results[label] = {
            "path": path,
            "wall_median_s": round(statistics.median(walls), 3),
            "wall_max_s": round(max(walls), 3),
            "clickhouse_cpu_median_s": round(statistics.median(server_cpu), 3),
            "ui_cpu_median_s": round(statistics.median(ui_cpu), 3),
            "bytes": size,
        }
        r = results[label]
        print(
            f"{label:<30} wall {r['wall_median_s']:6.3f} s (max {r['wall_max_s']:6.3f})  "
            f"CPU clickhouse {r['clickhouse_cpu_median_s']:5.3f} s ui {r['ui_cpu_median_s']:5.3f} s"
            f"  {size:>9,} bytes",
            flush=True,
        )
    return results


def measure_live(
    base: str, client: Any, database: str, rows: int = 1200, batch: int = 50
) -> dict[str, Any]:
    """Open /live in Chromium, insert ``rows`` events in batches of ``batch``, and record (with
    a MutationObserver in the page) when each batch's last event appears in the table."""
    from playwright.sync_api import sync_playwright

    args = [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ]  # fmt: skip
    watch = r"""() => {
        window.__seenAt = {};
        new MutationObserver(records => {
            const now = Date.now();
            for (const r of records) for (const n of r.addedNodes) {
                const m = /live-\d+-\d+/.exec(n.textContent || "");
                if (m && !(m[0] in window.__seenAt)) window.__seenAt[m[0]] = now;
            }
        }).observe(document.getElementById("live-rows"), {childList: true});
    }"""
    samples: list[tuple[int, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        # Playwright's wait_for_function evaluates strings, which the UI's CSP forbids.
        page = browser.new_context(bypass_csp=True).new_page()
        page.goto(base + "/live")
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        page.evaluate(watch)
        for i in range(rows // batch):
            last = f"live-{i}-{batch - 1}"
            inserted_ms = time.time() * 1000
            client.command(
                f"""INSERT INTO {database}.otel_logs (Timestamp, ServiceName, Body, EventName,
                        LogAttributes)
                    SELECT now64(9), 'claude-code', 'claude_code.tool_result',
                           'claude_code.tool_result',
                           map('session.id', 'bench-live', 'success', 'true',
                               'tool_name', 'live-{i}-' || toString(number))
                    FROM numbers({batch})"""
            )
            seen = page.wait_for_function(f"window.__seenAt['{last}']", timeout=30_000)
            shown = page.locator("#live-rows tr").count()
            samples.append((shown, (seen.json_value() - inserted_ms) / 1000))
        dom_rows = page.locator("#live-rows tr").count()
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        browser.close()
    first = [seconds for shown, seconds in samples if shown <= 250]
    full = [seconds for shown, seconds in samples if shown >= 1000]
    result = {
        "events_inserted": rows,
        "batch": batch,
        "rows_kept": dom_rows,
        "insert_to_shown_s_median_up_to_250_rows": round(statistics.median(first), 3),
        "insert_to_shown_s_median_at_1000_rows": round(statistics.median(full), 3)
        if full
        else None,
        "insert_to_shown_s_max": round(max(seconds for _, seconds in samples), 3),
        "js_heap_bytes": heap,
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ui-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--live", action="store_true", help="also measure /live in Chromium")
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    args = parser.parse_args(argv)
    database = "otel"
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        server = EmbeddedClickHouse(Path(tmp) / "clickhouse", http_port=0, tcp_port=0)
        server.start()
        ui = None
        try:
            client = connect(server.url, credentials=server.credentials)
            settings = load_settings(None, {"ui_listen": "127.0.0.1:0"}, environ={})
            apply_schema(client, database, settings)
            seconds = generate(client, database, args.sessions)
            counts = {
                table: client.query(f"SELECT count() FROM {database}.{table}").result_rows[0][0]
                for table in ("otel_logs", "otel_metrics_sum", "otel_traces", "agent_runs")
            }
            print(f"generated {args.sessions:,} sessions in {seconds:.1f} s: {counts}", flush=True)
            ui = UiServer(
                settings,
                lambda: connect_readonly(server.url, server.credentials),
                Authenticator([]),
            )
            ui.start()
            base = f"http://127.0.0.1:{ui.port}"
            middle = args.sessions // 2 // 5 * 5
            trace = client.query(
                f"SELECT TraceId FROM {database}.agent_runs FINAL "
                f"WHERE RunId = 'bench-session-{middle}'"
            ).result_rows[0][0]
            paths = {
                "sessions (HTML, 7d)": "/?until={i}s",
                "sessions, another filter": "/?model=claude-opus-5-5&failed=1",
                "sessions (JSON, all rows)": "/api/sessions?until={i}m",
                "session tree + events": f"/session/bench-session-{middle}",
                "trace waterfall": f"/trace/{trace}",
                "live (first render)": "/live",
                "reports + charts": "/reports",
                "report: tools": "/reports/tools",
                "search (tool use id)": f"/api/search?q=toolu-{middle}-3",
            }
            results: dict[str, Any] = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()} {_cpu_model()}, {os.cpu_count()} CPUs",
                "python": platform.python_version(),
                "sessions": args.sessions,
                "rows": counts,
                "load_average_before": os.getloadavg(),
                "pages": measure(base, paths, args.repeat, server.pid or 0),
                "load_average_after": os.getloadavg(),
            }
            if args.live:
                results["live"] = measure_live(base, client, database)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
        finally:
            if ui:
                ui.stop()
            server.stop()
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
