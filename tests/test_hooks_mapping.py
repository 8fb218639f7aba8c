"""A hook payload as an ``otel_logs`` row: the mapping of ``receiver.ingest.hooks``, read back
through the real logs decoder and the real redactor, from the real Claude Code capture."""

from __future__ import annotations

import json
from typing import Any

import pytest

from receiver.agents.hook import payload_for
from receiver.ingest.decode import decode_logs
from receiver.ingest.hooks import BadHookPayload, hook_request
from receiver.processors.redact import Redactor
from receiver.store.tables import LOGS, TABLE_COLUMNS

from .hook_payloads import ALL_EVENTS, captured_calls, claude_payload, codex_payload

pytestmark = pytest.mark.unit

RECEIVED_NS = 1_780_000_000_123_456_789


def row_of(body: bytes, agent: str | None = None) -> dict[str, Any]:
    decoded = decode_logs(hook_request(body, agent, RECEIVED_NS))
    (row,) = decoded.rows[LOGS]
    return dict(zip(TABLE_COLUMNS[LOGS], row, strict=True))


def test_captured_pre_tool_use_becomes_one_claude_code_event() -> None:
    call = next(c for c in captured_calls() if '"PreToolUse"' in c["body"])
    row = row_of(call["body"].encode())
    assert row["EventName"] == "claude_code.hook.PreToolUse"
    assert row["ServiceName"] == "claude-code"
    assert row["Timestamp"] == RECEIVED_NS
    assert row["Body"] == call["body"]  # the payload exactly as it arrived
    attributes = row["LogAttributes"]
    assert attributes["session.id"] == "65ee3509-61d7-4d0b-8831-0883cc18e9e3"
    assert attributes["prompt.id"] == "c7deee6e-a91f-4460-b27e-5e784f64e057"
    assert attributes["tool_use_id"] == "toolu_mock_576dd1b90f774b0e"
    assert attributes["tool_name"] == "Bash"
    assert attributes["hook_event_name"] == "PreToolUse"
    assert attributes["cwd"] == "/home/dev/realcap/cwd"
    assert attributes["permission_mode"] == "default"
    assert attributes["agent"] == "claude"
    # objects as compact JSON; the join keys only under the telemetry's names
    assert json.loads(attributes["tool_input"]) == {
        "command": "echo hi",
        "description": "Dump env and run codex exec",
    }
    assert attributes["effort"] == '{"level":"medium"}'
    assert "session_id" not in attributes and "prompt_id" not in attributes


def test_scalars_keep_the_exporters_string_forms() -> None:
    row = row_of(json.dumps(claude_payload("PostToolUse")).encode())
    attributes = row["LogAttributes"]
    assert attributes["duration_ms"] == "45"
    assert json.loads(attributes["tool_response"])["interrupted"] is False
    stop = row_of(json.dumps(claude_payload("Stop")).encode())["LogAttributes"]
    assert stop["stop_hook_active"] == "false"
    assert stop["background_tasks"] == "[]"


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_every_documented_event_maps_to_its_event_name(event: str) -> None:
    payload = claude_payload(event)
    row = row_of(json.dumps(payload).encode())
    assert row["EventName"] == f"claude_code.hook.{event}"
    assert row["LogAttributes"]["session.id"] == payload["session_id"]
    for key in ("agent_id", "agent_type", "notification_type", "tool_use_id", "source"):
        if key in payload:
            assert row["LogAttributes"][key] == payload[key], key


def test_codex_payload_is_a_codex_event() -> None:
    payload = codex_payload("PreToolUse", "019d0000-aaaa-7bbb-8ccc-000000000001")
    row = row_of(json.dumps({**payload, "agent": "codex"}).encode())
    assert row["EventName"] == "codex.hook.PreToolUse"
    assert row["ServiceName"] == "codex_exec"
    assert row["LogAttributes"]["session.id"] == payload["session_id"]
    assert row["LogAttributes"]["agent"] == "codex"
    assert "transcript_path" not in row["LogAttributes"]  # null: absent
    assert row["LogAttributes"]["conversation.id"] == payload["session_id"]  # codex's own key
    assert row["ResourceAttributes"] == {"service.name": "codex_exec"}
    # the agent may also come from the URL (?agent=codex)
    assert row_of(json.dumps(payload).encode(), "codex")["EventName"] == "codex.hook.PreToolUse"


def test_helper_adds_the_agent_and_the_codex_shims_run_id() -> None:
    raw = json.dumps(codex_payload("Stop", "019d0000-aaaa-7bbb-8ccc-000000000002")).encode()
    environ = {"OTEL_RESOURCE_ATTRIBUTES": "cc.launch.id=L1,agent.run.id=run%2D7,task.id=T"}
    body = payload_for(raw, "codex", environ)
    assert json.loads(body)["agent"] == "codex"
    assert json.loads(body)["agent_run_id"] == "run-7"
    row = row_of(body)
    assert row["ResourceAttributes"] == {"service.name": "codex_exec", "agent.run.id": "run-7"}
    assert "agent_run_id" not in json.loads(payload_for(raw, "codex", {}))
    assert payload_for(b"not json", "codex", environ) == b"not json"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "empty body"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"session_id": "s"}', "hook_event_name: missing"),
        (b'{"hook_event_name": "Pre Tool; DROP"}', "hook_event_name: 'Pre Tool; DROP'"),
        (b'{"hook_event_name": 7}', "hook_event_name: 7"),
        (b'{"hook_event_name": "Stop", "agent": "cursor"}', "agent: 'cursor'"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_bad_payloads_are_refused_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(BadHookPayload, match=problem.replace("(", r"\(")):
        hook_request(body)


def test_huge_integers_are_kept_as_text() -> None:
    row = row_of(b'{"hook_event_name": "Stop", "n": 123456789012345678901234567890}')
    assert row["LogAttributes"]["n"] == "123456789012345678901234567890"


def test_redaction_sees_the_bash_command_in_attributes_and_body() -> None:
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    command = f"curl -H 'Authorization: token {secret}' https://api.github.com/user"
    payload = claude_payload("PreToolUse", tool_input={"command": command})
    decoded = decode_logs(hook_request(json.dumps(payload).encode()))
    Redactor().process(decoded)
    (row,) = decoded.rows[LOGS]
    stored = dict(zip(TABLE_COLUMNS[LOGS], row, strict=True))
    assert secret not in stored["Body"] and "[REDACTED:" in stored["Body"]
    assert secret not in stored["LogAttributes"]["tool_input"]
    assert "[REDACTED:" in stored["LogAttributes"]["tool_input"]
    assert stored["LogAttributes"]["tool_use_id"] == payload["tool_use_id"]  # joins survive
