"""The session tree's hook nodes (``receiver.query.hook_events``) from a session's hook events:
waits for a person with their length, tools that never ran, subagents paired by agent_id,
compactions, stop failures and the session's end; routine events stay out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from receiver.query.hook_events import session_hook_nodes
from receiver.query.tree import Node, _total, render_text

from .hook_payloads import claude_payload

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 3, 8, 0, 0)


def hooks(*events: tuple[float, str, dict[str, Any]]) -> list[tuple[datetime, str, dict[str, str]]]:
    """(seconds after T0, event, payload fields) as the tree reads them back from otel_logs."""
    return [
        (T0 + timedelta(seconds=s), e, {k: str(v) for k, v in claude_payload(e, **f).items()})
        for s, e, f in events
    ]


def names(nodes: list[Node]) -> list[str]:
    return [n.name for n in nodes]


def test_a_permission_wait_lasts_until_the_tool_runs() -> None:
    nodes = session_hook_nodes(
        "s",
        hooks(
            (0, "UserPromptSubmit", {}),
            (1, "PreToolUse", {}),
            (2, "Notification", {}),
            (2.5, "Notification", {}),  # a reminder: the same wait
            (14, "PostToolUse", {}),  # the same tool_use_id as the PreToolUse
            (15, "Stop", {}),
        ),
    )
    assert names(nodes) == ["waiting for a person (permission prompt)"]
    assert nodes[0].duration_ms == pytest.approx(12_000)
    assert nodes[0].detail == "Claude needs your permission to use Bash"
    assert (nodes[0].parent_id, nodes[0].kind) == ("run:s", "hook")


def test_an_open_wait_says_still_waiting() -> None:
    nodes = session_hook_nodes(
        "s", hooks((0, "Stop", {}), (60, "Notification", {"notification_type": "idle_prompt"}))
    )
    assert names(nodes) == ["waiting for a person (idle prompt), still waiting"]


def test_a_tool_that_never_ran_before_the_turn_ended() -> None:
    nodes = session_hook_nodes(
        "s", hooks((0, "PreToolUse", {"tool_use_id": "toolu_x"}), (1, "Stop", {}))
    )
    assert names(nodes) == ["did not run: Bash (blocked or denied)"]
    assert nodes[0].detail == "toolu_x"
    # still running (no later turn end): nothing to say yet
    assert session_hook_nodes("s", hooks((0, "PreToolUse", {}))) == []


def test_subagents_compactions_failures_and_the_end() -> None:
    nodes = session_hook_nodes(
        "s",
        hooks(
            (0, "SessionStart", {}),
            (1, "SubagentStart", {}),
            (5, "SubagentStop", {}),
            (6, "PreCompact", {}),
            (7, "PostCompact", {}),
            (8, "PermissionDenied", {}),
            (9, "StopFailure", {}),
            (10, "SessionEnd", {"reason": "logout"}),
        ),
    )
    assert names(nodes) == [
        "subagent Explore",
        "compacting context (auto)",
        "compacted context (auto)",
        "denied: Bash",
        "stopped by an error: rate_limit",
        "session ended (logout)",
    ]
    assert nodes[0].duration_ms == pytest.approx(4_000) and nodes[0].detail == "agent-7f3a"
    session = Node(
        "run:s",
        "",
        "",
        "claude_session",
        "s",
        "claude session",
        T0,
        10_000.0,
        children=nodes,
    )
    _total(session)  # what build_tree does before rendering
    text = render_text([session])
    assert "├─ subagent Explore [hook #2]  4,000 ms, agent-7f3a" in text
    assert text.endswith("└─ session ended (logout) [hook #8]")
