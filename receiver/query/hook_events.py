"""What only hooks know, as nodes of the session tree: waits for a person, tool calls that never
ran (blocked or denied), stop failures and how sessions ended, subagents, compactions.

Hook rows (``claude_code.hook.<event>`` in ``otel_logs``, see ``receiver.ingest.hooks``) carry
the session id, so each becomes a ``hook`` node under its session, in time order with the
interactions. Everything routine (every PreToolUse, PostToolUse, prompt, Stop) is already in
the tree from the telemetry and is left out, so the tree stays readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from clickhouse_connect.driver.client import Client

from receiver.query.tree import Node

_HOOKS_SQL = """
SELECT LogAttributes['session.id'] AS session, Timestamp AS ts,
       LogAttributes['hook_event_name'] AS event, LogAttributes AS a
FROM `{database}`.otel_logs
WHERE startsWith(EventName, 'claude_code.hook.')
  AND LogAttributes['session.id'] IN {{sessions:Array(String)}}
ORDER BY session, ts
"""
WAIT_OPENS = ("permission_prompt", "idle_prompt")
WAIT_CLOSES = ("PostToolUse", "PostToolUseFailure", "UserPromptSubmit", "Stop", "SessionEnd")
TOOL_ENDS = ("PostToolUse", "PostToolUseFailure", "PermissionDenied")
TURN_ENDS = ("UserPromptSubmit", "Stop", "StopFailure", "SessionEnd")
_DETAIL_CHARS = 80


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def _node(session: str, ts: datetime, index: int, name: str, detail: str = "") -> Node:
    """A node under the session; its id is the hook event's position in the session."""
    return Node(
        node_id=f"hook:{session}:{index}",
        parent_id=f"run:{session}",
        parent_span="",
        kind="hook",
        id=f"#{index + 1}",
        name=name,
        start=ts,
        duration_ms=0.0,
        detail=detail,
    )


def session_hook_nodes(
    session: str, hooks: list[tuple[datetime, str, dict[str, str]]]
) -> list[Node]:
    """The notable hook events of one session (``(time, event, attributes)`` in time order)."""
    nodes: list[Node] = []
    wait: Node | None = None
    subagents: dict[str, Node] = {}
    ended_tools = {a.get("tool_use_id") for _, event, a in hooks if event in TOOL_ENDS}
    last_turn_end = max((ts for ts, event, _ in hooks if event in TURN_ENDS), default=None)
    for index, (ts, event, a) in enumerate(hooks):
        if event == "Notification" and a.get("notification_type") in WAIT_OPENS:
            if wait is None:
                kind = a["notification_type"].replace("_", " ")
                wait = _node(session, ts, index, f"waiting for a person ({kind})")
                wait.detail = _short(a.get("message", ""))
                nodes.append(wait)
        elif event in WAIT_CLOSES and wait is not None:
            wait.duration_ms = (ts - wait.start).total_seconds() * 1000
            wait = None
        if event == "PermissionDenied":
            name = f"denied: {a.get('tool_name', '?')}"
            nodes.append(_node(session, ts, index, name, _short(a.get("reason", ""))))
        elif (
            event == "PreToolUse"
            and a.get("tool_use_id") not in ended_tools
            and last_turn_end is not None
            and last_turn_end > ts
        ):
            # the turn ended but the tool never finished: a hook or a person stopped it
            name = f"did not run: {a.get('tool_name', '?')} (blocked or denied)"
            nodes.append(_node(session, ts, index, name, a.get("tool_use_id", "")))
        elif event == "StopFailure":
            name = f"stopped by an error: {a.get('error', '?')}"
            nodes.append(_node(session, ts, index, name, _short(a.get("error_details", ""))))
        elif event == "SessionEnd":
            nodes.append(_node(session, ts, index, f"session ended ({a.get('reason', '?')})"))
        elif event in ("PreCompact", "PostCompact"):
            verb = "compacting" if event == "PreCompact" else "compacted"
            nodes.append(_node(session, ts, index, f"{verb} context ({a.get('trigger', '?')})"))
        elif event == "SubagentStart":
            node = _node(session, ts, index, f"subagent {a.get('agent_type', '?')}")
            node.detail = a.get("agent_id", "")
            subagents[a.get("agent_id", "")] = node
            nodes.append(node)
        elif event == "SubagentStop":
            started = subagents.pop(a.get("agent_id", ""), None)
            if started is not None:
                started.duration_ms = (ts - started.start).total_seconds() * 1000
            else:
                name = f"subagent {a.get('agent_type', '?')} stopped"
                nodes.append(_node(session, ts, index, name, a.get("agent_id", "")))
    if wait is not None:
        wait.name += ", still waiting"
    return nodes


def hook_nodes(client: Client, database: str, sessions: Iterable[str]) -> list[Node]:
    """Hook nodes for the Claude Code sessions of a tree (none when no hooks were sent)."""
    wanted = sorted(set(sessions))
    if not wanted:
        return []
    rows = client.query(
        _HOOKS_SQL.format(database=database), parameters={"sessions": wanted}
    ).result_rows
    by_session: dict[str, list[tuple[datetime, str, dict[str, str]]]] = {}
    for session, ts, event, attributes in rows:
        by_session.setdefault(session, []).append((ts, event, attributes))
    return [node for s, hooks in by_session.items() for node in session_hook_nodes(s, hooks)]
