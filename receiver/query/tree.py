"""The session tree: ``sql/session_tree.sql`` nested into one tree, with totals that include
every descendant, rendered as a terminal tree or as JSON (children under ``children``).

The SQL returns flat nodes, each naming its parent node. A node whose parent span is not a
node itself (a tool call made inside a subagent, under the subagent's own spans) is attached
to its nearest ancestor that is a node, found by walking ``agent_spans`` upwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from receiver.query import reports

_FIGURES = ("input_tokens", "output_tokens", "cost_usd", "failures")


@dataclass
class Node:
    node_id: str
    parent_id: str
    parent_span: str
    kind: str
    id: str
    name: str
    start: datetime
    duration_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    failures: int
    detail: str
    children: list[Node] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "start": self.start.isoformat() if self.start.year > 1970 else None,
            "duration_ms": round(self.duration_ms, 3),
            **{f: getattr(self, f) for f in _FIGURES},
            "totals": self.totals,
            "detail": self.detail,
            "children": [child.as_dict() for child in self.children],
        }


def _span_parents(client: Client, database: str, span_ids: set[str]) -> dict[str, str]:
    """Span -> parent span for the spans of the runs in the tree (to climb past non-nodes)."""
    if not span_ids:
        return {}
    rows = client.query(
        f"SELECT SpanId, ParentSpanId FROM `{database}`.agent_spans WHERE RunId IN "
        f"(SELECT RunId FROM `{database}`.agent_spans WHERE SpanId IN {{ids:Array(String)}})",
        parameters={"ids": sorted(span_ids)},
    ).result_rows
    return dict(rows)


def build_tree(client: Client, database: str, run_or_trace_id: str) -> list[Node]:
    """The top nodes (usually one) of the family that ``run_or_trace_id`` belongs to."""
    result = client.query(
        reports.get("session_tree").sql, parameters={"database": database, "id": run_or_trace_id}
    )
    nodes = {row[0]: Node(*row) for row in result.result_rows}
    dangling = {n.parent_span for n in nodes.values() if n.parent_id and n.parent_id not in nodes}
    parents = _span_parents(client, database, dangling - {""})
    tops: list[Node] = []
    for node in nodes.values():
        parent_id = node.parent_id
        span = node.parent_span
        while parent_id and parent_id not in nodes and span:
            span = parents.get(span, "")
            parent_id = f"span:{span}" if span else ""
        if parent_id in nodes:
            nodes[parent_id].children.append(node)
        else:
            tops.append(node)
    for top in tops:
        _total(top)
    return tops


def _total(node: Node) -> dict[str, float]:
    node.children.sort(key=lambda child: child.start)
    totals = {f: getattr(node, f) for f in _FIGURES}
    for child in node.children:
        for key, value in _total(child).items():
            totals[key] += value
    totals["cost_usd"] = round(totals["cost_usd"], 9)
    node.totals = totals
    return totals


def render_text(tops: list[Node]) -> str:
    lines: list[str] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        t = node.totals
        figures = [f"{node.duration_ms:,.0f} ms"]
        if t["input_tokens"] or t["output_tokens"]:
            figures.append(f"tokens {t['input_tokens']:,.0f} in / {t['output_tokens']:,.0f} out")
        if t["cost_usd"]:
            figures.append(f"${t['cost_usd']:.6f}")
        if t["failures"]:
            figures.append(f"{t['failures']:.0f} failed")
        if node.detail and node.kind in (
            "claude_session",
            "codex_run",
            "python_agent",
            "cc_launch",
        ):
            figures.append(node.detail)
        lines.append(f"{prefix}{branch}{node.name} [{node.kind} {node.id}]  " + ", ".join(figures))
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    for top in tops:
        walk(top, "", True, True)
    return "\n".join(lines)


def render_json(tops: list[Node]) -> str:
    return json.dumps([top.as_dict() for top in tops], indent=2)
