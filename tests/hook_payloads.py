"""Hook payloads for tests, built from what the real Claude Code 2.1.330 posted
(``fixtures/real/hooks_http``): the five captured calls as they arrived, and every other event
type the Claude Code hooks reference lists, made from the captured common fields plus the
event's own documented fields."""

from __future__ import annotations

import copy
import json
from typing import Any

from .capture_files import FIXTURES

CAPTURE = FIXTURES / "hooks_http" / "claude_http_hooks.jsonl"


def captured_calls() -> list[dict[str, Any]]:
    """The captured POSTs in arrival order: ``path``, ``headers`` and ``body`` (JSON text)."""
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


def captured() -> dict[str, dict[str, Any]]:
    """The captured payloads by hook_event_name."""
    payloads = [json.loads(call["body"]) for call in captured_calls()]
    return {payload["hook_event_name"]: payload for payload in payloads}


def _base(session_id: str | None = None) -> dict[str, Any]:
    """The fields every Claude Code hook payload carries, from the captured Stop call."""
    stop = captured()["Stop"]
    base = {
        key: stop[key]
        for key in ("session_id", "transcript_path", "cwd", "prompt_id", "permission_mode")
    }
    if session_id:
        base["session_id"] = session_id
    return base


def claude_payload(event: str, session_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A Claude Code payload for ``event``: the captured one when the capture has it, else the
    common fields plus the event's documented ones (``EVENT_FIELDS``); ``fields`` override."""
    known = captured()
    if event in known:
        payload = copy.deepcopy(known[event])
        if session_id:
            payload["session_id"] = session_id
    else:
        payload = {**_base(session_id), "hook_event_name": event, **EVENT_FIELDS[event]}
    payload.update(fields)
    return payload


_TOOL = {
    "tool_name": "Bash",
    "tool_input": {"command": "make test", "description": "Run the tests"},
    "tool_use_id": "toolu_hooktest_0001",
}

# The events of the Claude Code hooks reference the capture does not hold (their own fields).
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "SessionStart": {"source": "startup", "model": "claude-sonnet-4-5"},
    "Setup": {"trigger": "init"},
    "PermissionRequest": {**_TOOL, "permission_suggestions": [{"type": "addRules"}]},
    "PermissionDenied": {**_TOOL, "reason": "auto mode classifier"},
    "PostToolUseFailure": {**_TOOL, "error": "exit status 2", "is_interrupt": False},
    "Notification": {
        "message": "Claude needs your permission to use Bash",
        "title": "Permission needed",
        "notification_type": "permission_prompt",
    },
    "SubagentStart": {"agent_id": "agent-7f3a", "agent_type": "Explore"},
    "SubagentStop": {
        "agent_id": "agent-7f3a",
        "agent_type": "Explore",
        "agent_transcript_path": "/home/dev/realcap/cfg/agent-7f3a.jsonl",
        "stop_hook_active": False,
        "last_assistant_message": "Found 3 call sites.",
    },
    "StopFailure": {"error": "rate_limit", "error_details": "429 Too Many Requests"},
    "PreCompact": {"trigger": "auto", "custom_instructions": ""},
    "PostCompact": {"trigger": "auto", "compact_summary": "Summary of the work so far."},
    "TeammateIdle": {"teammate_name": "reviewer", "team_name": "core"},
    "TaskCompleted": {"task_id": "task-1", "task_subject": "Fix the build"},
    "InstructionsLoaded": {"file_path": "/home/dev/realcap/cwd/CLAUDE.md", "load_reason": "start"},
    "ConfigChange": {"source": "user_settings", "file_path": "/home/dev/.claude/settings.json"},
}

# Every event type the Claude Code hooks reference lists that a session can produce.
ALL_EVENTS = (
    "SessionStart",
    "Setup",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PermissionDenied",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "StopFailure",
    "PreCompact",
    "PostCompact",
    "TeammateIdle",
    "TaskCompleted",
    "InstructionsLoaded",
    "ConfigChange",
    "SessionEnd",
)


def codex_payload(event: str, session_id: str, **fields: Any) -> dict[str, Any]:
    """A Codex command-hook payload (Codex's documented common fields: session_id = the
    thread id, transcript_path, cwd, hook_event_name, model; turn scope adds turn_id)."""
    payload: dict[str, Any] = {
        "session_id": session_id,
        "transcript_path": None,
        "cwd": "/home/dev/realcap/cwd",
        "hook_event_name": event,
        "model": "gpt-5.4",
        "turn_id": "019d036d-c7fa-72d2-b6fd-78878bfe34e4",
    }
    if event in ("PreToolUse", "PostToolUse"):
        payload.update(
            tool_name="Bash",
            tool_input={"command": "cargo test"},
            tool_use_id="call_codex_0001",
        )
    payload.update(fields)
    return payload
