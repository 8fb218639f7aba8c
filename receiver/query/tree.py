"""The session tree: ``sql/session_tree.sql`` nested into one tree, with totals that include
every descendant, rendered as a terminal tree or as JSON (children under ``children``).

The SQL returns flat nodes, each naming its parent node. A node whose parent span is not a
node itself (a tool call made inside a subagent, under the subagent's own spans) is attached
to its nearest ancestor that is a node, found by walking ``agent_spans`` upwards. Hook events
that only hooks report (waits for a person, tools that never ran, subagents, compactions, how
a session ended) are ``hook`` nodes under their session (``receiver.query.hook_events``).

A trace id that belongs to no agent run (a plain OpenTelemetry trace) is shown as that
trace's spans, each under its parent span (``tree_of``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from receiver.query import reports

_FIGURES = ("input_tokens", "output_tokens", "cost_usd", "codex_est_cost_usd", "failures")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
# The spans of one trace, for a trace without agent runs (bounded: a tree is read by a person).
_TRACE_SPANS = """
SELECT SpanId, ParentSpanId, SpanName, ServiceName, Timestamp, Duration, StatusCode
FROM {database:Identifier}.otel_traces
WHERE TraceId = {trace_id:String}
ORDER BY Timestamp
LIMIT 10000
"""


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
    # The figures default to nothing: hook events and plain spans carry none of their own.
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0  # Claude Code's reported cost
    codex_est_cost_usd: float = 0.0  # codex runs: the estimate from the price table
    failures: int = 0
    detail: str = ""
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
    from receiver.query.hook_events import hook_nodes  # it builds Nodes: imported here

    sessions = [n.id for n in nodes.values() if n.kind == "claude_session"]
    nodes.update((n.node_id, n) for n in hook_nodes(client, database, sessions))
    dangling = {n.parent_span for n in nodes.values() if n.parent_id and n.parent_id not in nodes}
    return _link(nodes, _span_parents(client, database, dangling - {""}))


def trace_spans(client: Client, database: str, trace_id: str) -> list[Node]:
    """The spans of one trace as a tree (a span whose parent is not in the trace is a top)."""
    rows = client.query(
        _TRACE_SPANS, parameters={"database": database, "trace_id": trace_id}
    ).result_rows
    nodes = {}
    for span_id, parent, name, service, start, duration_ns, status in rows:
        nodes[f"span:{span_id}"] = Node(
            node_id=f"span:{span_id}",
            parent_id=f"span:{parent}" if parent else "",
            parent_span="",
            kind="span",
            id=span_id,
            name=f"{name} ({service})" if service else name,
            start=start,
            duration_ms=duration_ns / 1e6,
            failures=int(status == "Error"),
        )
    return _link(nodes, {})


def tree_of(client: Client, database: str, run_or_trace_id: str) -> list[Node]:
    """What ``otel-receiver tree ID`` shows: the agent family of ``run_or_trace_id``, else,
    for a trace id without agent runs, that trace's spans."""
    tops = build_tree(client, database, run_or_trace_id)
    trace_id = run_or_trace_id.strip().lower()
    if not tops and _TRACE_ID.fullmatch(trace_id):
        tops = trace_spans(client, database, trace_id)
    return tops


def _link(nodes: dict[str, Node], parents: dict[str, str]) -> list[Node]:
    """Attach every node to its parent node (climbing ``parents`` past spans that are not
    nodes); the nodes left without one are the tops, returned with their totals."""
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
        child_totals = _total(child)
        for key in _FIGURES:
            totals[key] += child_totals[key]
    totals["cost_usd"] = round(totals["cost_usd"], 9)
    totals["codex_est_cost_usd"] = round(totals["codex_est_cost_usd"], 9)
    totals["total_cost_incl_est_usd"] = round(totals["cost_usd"] + totals["codex_est_cost_usd"], 9)
    node.totals = totals
    return totals


def render_text(tops: list[Node]) -> str:
    lines: list[str] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        t = node.totals
        point = node.kind == "hook" and not node.duration_ms  # a moment, not a span of time
        figures = [] if point else [f"{node.duration_ms:,.0f} ms"]
        if t["input_tokens"] or t["output_tokens"]:
            figures.append(f"tokens {t['input_tokens']:,.0f} in / {t['output_tokens']:,.0f} out")
        costs = [f"claude ${t['cost_usd']:.6f}"] if t["cost_usd"] else []
        if t["codex_est_cost_usd"]:
            costs.append(f"codex est. ${t['codex_est_cost_usd']:.6f}")
        if len(costs) == 2:
            costs = [
                f"{costs[0]} + {costs[1]} = ${t['total_cost_incl_est_usd']:.6f} (incl. estimate)"
            ]
        figures.extend(costs)
        if t["failures"]:
            figures.append(f"{t['failures']:.0f} failed")
        if node.detail and node.kind in (
            "claude_session",
            "codex_run",
            "python_agent",
            "cc_launch",
            "hook",
        ):
            figures.append(node.detail)
        line = f"{prefix}{branch}{node.name} [{node.kind} {node.id}]"
        lines.append(f"{line}  " + ", ".join(figures) if figures else line)
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    for top in tops:
        walk(top, "", True, True)
    return "\n".join(lines)


def render_json(tops: list[Node]) -> str:
    return json.dumps([top.as_dict() for top in tops], indent=2)
