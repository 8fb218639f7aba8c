"""Alert rules as typed objects: the ``[[alerts]]`` tables of the TOML config (or the JSON /
file in ``$OTEL_RECEIVER_ALERTS``), checked for everything that can be checked without
ClickHouse. ``receiver.query.alerts.check_rules`` then lets ClickHouse itself check each
rule's SQL at start-up.

Errors are ``ValueError`` whose message starts with ``alerts.<name>`` (``receiver.config``
adds where the value came from); this module must not import ``receiver.config``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from receiver.query import reports

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYS = {
    "name",
    "query",
    "report",
    "column",
    "params",
    "labels",
    "above",
    "below",
    "every",
    "for",
    "repeat",
    "notify",
    "severity",
    "summary",
    "timeout",
    "retries",
}


@dataclass(frozen=True)
class AlertRule:
    """One rule: a query (or named report) whose rows are label sets with a value, and the
    threshold that puts a label set into alert."""

    name: str
    query: str = ""
    report: str = ""
    column: str = "value"
    params: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None  # None: every other column (reports: text columns)
    above: float | None = None
    below: float | None = None
    every: float = 60.0
    for_: float = 0.0
    repeat: float = 4 * 3600.0
    notify: tuple[str, ...] = ()
    severity: str = "warning"
    summary: str = ""
    timeout: float = 5.0
    retries: int = 3

    def breached(self, value: float) -> bool:
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below

    @property
    def condition(self) -> str:
        return f"> {self.above:g}" if self.above is not None else f"< {self.below:g}"


def parse_duration(text: Any, key: str) -> float:
    """``90s``, ``1m``, ``4h``, ``1d``, ``1h30m``, ``500ms`` or a number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text >= 0:
        return float(text)
    if isinstance(text, str) and text.strip() and _DURATION.sub("", text.strip()) == "":
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text.strip()))
    raise ValueError(f"{key}: expected a duration like 30s, 1m, 4h or 1d, got {text!r}")


def _number(table: Mapping[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(items)


def template_fields(template: str) -> set[str]:
    """The names a ``str.format`` template uses (``{user}``, ``{value:.2f}``)."""
    return {
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name
    }


def parse_rule(table: Mapping[str, Any], index: int) -> AlertRule:
    """One ``[[alerts]]`` table; the error names ``alerts.<name>`` (or ``alerts[<i>]``)."""
    if not isinstance(table, Mapping):
        raise ValueError(f"alerts[{index}]: expected a table, got {table!r}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"alerts[{index}].name: letters, digits, '_', '.', '-' (up to 100), got {name!r}"
        )
    where = f"alerts.{name}"
    unknown = set(table) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key {', '.join(sorted(unknown))}")
    query, report = table.get("query", ""), table.get("report", "")
    if not isinstance(query, str) or not isinstance(report, str) or bool(query) == bool(report):
        raise ValueError(f"{where}: set exactly one of query (SQL) or report (a name in sql/)")
    params = table.get("params", {})
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"{where}.params: expected a table of parameter = value")
    params = {k: str(v) for k, v in params.items()}
    if report:
        try:
            reports.parameters(reports.get(report), "otel", extra=_static(params))
        except reports.ReportError as exc:
            raise ValueError(f"{where}: {exc}") from None
    above, below = _number(table, "above", where), _number(table, "below", where)
    if (above is None) == (below is None):
        raise ValueError(f"{where}: set exactly one of above or below (the threshold)")
    column = table.get("column", "value")
    if not isinstance(column, str) or not column:
        raise ValueError(f"{where}.column: expected a column name, got {column!r}")
    labels = _strings(table["labels"], f"{where}.labels") if "labels" in table else None
    notify = _strings(table.get("notify", ()), f"{where}.notify")
    for url in notify:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{where}.notify: expected http(s)://HOST/PATH URLs, got {url!r}")
    summary = table.get("summary", "")
    severity = table.get("severity", "warning")
    if not isinstance(summary, str) or not isinstance(severity, str):
        raise ValueError(f"{where}: summary and severity must be strings")
    try:
        template_fields(summary)
    except ValueError as exc:
        raise ValueError(f"{where}.summary: not a valid template ({exc})") from None
    every = parse_duration(table.get("every", "1m"), f"{where}.every")
    if every < 1:
        raise ValueError(f"{where}.every: must be at least 1s")
    retries = table.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ValueError(f"{where}.retries: expected 0 to 10, got {retries!r}")
    timeout = parse_duration(table.get("timeout", "5s"), f"{where}.timeout")
    if not 0 < timeout <= 60:
        raise ValueError(f"{where}.timeout: must be between 0 and 60 seconds")
    return AlertRule(
        name=name,
        query=query,
        report=report,
        column=column,
        params=params,
        labels=labels,
        above=above,
        below=below,
        every=every,
        for_=parse_duration(table.get("for", "0s"), f"{where}.for"),
        repeat=parse_duration(table.get("repeat", "4h"), f"{where}.repeat"),
        notify=notify,
        severity=severity,
        summary=summary,
        timeout=timeout,
        retries=retries,
    )


def _static(params: Mapping[str, str]) -> dict[str, str]:
    """Rule parameters with ``today`` (an alerts-only time: midnight UTC) made a report time."""
    return {k: ("1d" if v == "today" else v) for k, v in params.items()}


def parse_rules(raw: Any) -> tuple[AlertRule, ...]:
    """Every rule of an ``alerts`` value: a list of ``[[alerts]]`` tables."""
    if not isinstance(raw, list):
        raise ValueError(f"alerts: expected [[alerts]] tables (a list), got {type(raw).__name__}")
    rules = tuple(parse_rule(table, i) for i, table in enumerate(raw))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"alerts.{rule.name}: two rules have this name")
        seen.add(rule.name)
    return rules
