#!/usr/bin/env python3
"""Build ``dashboards/agent-telemetry.json`` from the named reports in ``sql/``.

Every panel's query is a report's SQL (``receiver.query.reports``), its header comment dropped, with
the report parameters turned into what the Grafana ClickHouse data source provides:
``{since:...}`` / ``{until:...}`` -> ``$__fromTime_ms`` / ``$__toTime_ms`` (the dashboard's
time range), ``{database:Identifier}`` -> the dashboard variable ``${database}``,
``{session:String}`` -> ``'${session}'``, any other parameter -> its documented default. Some
panels wrap the report (a total, a time series); none re-implements it, so the dashboard and
``otel-receiver report`` always show the same numbers.

    python config/grafana/build_dashboard.py          # rewrite the JSON
    python config/grafana/build_dashboard.py --check  # exit 1 if the JSON is out of date
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "dashboards" / "agent-telemetry.json"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "agent-otel-clickhouse"}
TABLE, TIME_SERIES = 1, 0  # the data source's query formats


def report_sql(name: str) -> str:
    """The report's SQL for Grafana: parameters replaced, header comment dropped."""
    from receiver.query.reports import get

    report = get(name)
    body = "\n".join(
        line for line in report.sql.splitlines() if not line.lstrip().startswith("--")
    ).strip()

    def replace(match: re.Match[str]) -> str:
        param, kind = match.group(1), match.group(2)
        if param == "database":
            return "${database}"
        if param == "since":
            return "$__fromTime_ms"
        if param == "until":
            return "$__toTime_ms"
        if param == "session":
            return "'${session}'"
        default = report.params[param].default or ""
        return default if re.match(r"U?Int", kind) else "'" + default.replace("'", "\\'") + "'"

    return f"-- report {name} (sql/{name}.sql)\n" + re.sub(r"\{(\w+):([^}]+)\}", replace, body)


def wrap(name: str, select: str, rest: str = "") -> str:
    """``SELECT ... FROM (<report>) rest``."""
    inner = "\n".join("    " + line for line in report_sql(name).splitlines())
    return f"{select}\nFROM (\n{inner}\n)" + (f"\n{rest}" if rest else "")


def target(sql: str, fmt: int) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "queryType": "timeseries" if fmt == TIME_SERIES else "table",
        "format": fmt,
        "rawSql": sql,
    }


def panel(
    title: str, kind: str, sql: str, grid: tuple[int, int, int, int], fmt: int = TABLE, **extra: Any
) -> dict[str, Any]:
    x, y, w, h = grid
    return {
        "title": title,
        "type": kind,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(sql, fmt)],
        **extra,
    }


def stat(title: str, sql: str, x: int, unit: str = "short", decimals: int = 0) -> dict[str, Any]:
    return panel(
        title,
        "stat",
        sql,
        (x, 0, 4, 4),
        fieldConfig={"defaults": {"unit": unit, "decimals": decimals}, "overrides": []},
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    )


def dashboard() -> dict[str, Any]:
    panels = [
        stat(
            "Cost",
            wrap(
                "tokens_by_model",
                "SELECT sum(cost_usd) AS claude_reported, "
                "sum(codex_est_cost_usd) AS codex_estimate",
            ),
            0,
            unit="currencyUSD",
            decimals=4,
        ),
        stat("Tokens", wrap("tokens_by_model", "SELECT sum(total_tokens) AS tokens"), 4),
        stat(
            "Claude sessions", wrap("sessions", "SELECT countIf(agent = 'claude') AS sessions"), 8
        ),
        stat("Codex runs", wrap("sessions", "SELECT countIf(agent = 'codex') AS runs"), 12),
        stat(
            "Tool failures",
            wrap("tools", "SELECT sum(failures) AS failures", "WHERE tool = '(all)'"),
            16,
        ),
        stat("API errors", wrap("api_errors", "SELECT sum(errors) AS errors"), 20),
        panel(
            "Cost per day by model (USD; Codex models: estimate)",
            "timeseries",
            wrap(
                "tokens_by_model",
                "SELECT toDateTime(day, 'UTC') AS time, model, "
                "sum(total_cost_incl_est_usd) AS cost_usd",
                "GROUP BY time, model ORDER BY time, model",
            ),
            (0, 4, 12, 8),
            fmt=TIME_SERIES,
            fieldConfig={
                "defaults": {
                    "unit": "currencyUSD",
                    "custom": {
                        "drawStyle": "bars",
                        "stacking": {"mode": "normal"},
                        "fillOpacity": 80,
                    },
                },
                "overrides": [],
            },
        ),
        panel(
            "Activity: log events per minute and session / codex run",
            "timeseries",
            wrap(
                "activity",
                "SELECT minute AS time, concat(agent, ' ', run_id) AS run, events",
                "ORDER BY time",
            ),
            (12, 4, 12, 8),
            fmt=TIME_SERIES,
        ),
        panel(
            "Tokens and cost by day and model",
            "table",
            report_sql("tokens_by_model"),
            (0, 12, 24, 7),
        ),
        panel(
            "Sessions (Claude Code) and their codex runs",
            "table",
            report_sql("sessions"),
            (0, 19, 24, 9),
        ),
        panel(
            "Codex runs with their parent sessions",
            "table",
            report_sql("codex_runs"),
            (0, 28, 24, 7),
        ),
        panel("Tools: calls, success rate, latency", "table", report_sql("tools"), (0, 35, 12, 8)),
        panel("API errors by model and status", "table", report_sql("api_errors"), (12, 35, 12, 8)),
        panel("API latency by model", "table", report_sql("api_latency"), (0, 43, 12, 7)),
        panel(
            "Active users (DAU / WAU / MAU)",
            "timeseries",
            wrap("active_users", "SELECT toDateTime(day) AS time, dau, wau, mau", "ORDER BY time"),
            (12, 43, 12, 7),
            fmt=TIME_SERIES,
        ),
        panel("Productivity per user and day", "table", report_sql("productivity"), (0, 50, 24, 7)),
        panel("Slowest spans", "table", report_sql("slowest_spans"), (0, 57, 24, 8)),
    ]
    for number, item in enumerate(panels, start=1):
        item["id"] = number
    return {
        "uid": "agent-telemetry",
        "title": "Agent telemetry: Claude Code and Codex",
        "description": "Built from the receiver's named reports (sql/*.sql) by "
        "config/grafana/build_dashboard.py; do not edit the queries here.",
        "tags": ["agent-otel-receiver", "claude-code", "codex"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "database",
                    "label": "Database",
                    "type": "textbox",
                    "query": "otel",
                    "current": {"text": "otel", "value": "otel"},
                },
                {
                    "name": "session",
                    "label": "Session or codex run (empty: all)",
                    "type": "textbox",
                    "query": "",
                    "current": {"text": "", "value": ""},
                },
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
