"""``POST /v1/hooks`` against a real receiver process and a real ClickHouse: the captured Claude
Code calls replayed as they arrived, every documented event type, the ``{}`` answer once the
row is durable (not after the batch interval), errors that name the problem, authentication,
and the hook rows joined to the telemetry by session, prompt and tool_use_id."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from clickhouse_connect.driver.client import Client

from receiver.query import reports
from receiver.query.tree import build_tree

from .clickhouse_rows import count, rows, wait_rows
from .hook_payloads import ALL_EVENTS, captured_calls, claude_payload, codex_payload
from .receiver_process import ReceiverProcess, wait_for


class Reply(NamedTuple):
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def post_hook(
    receiver: ReceiverProcess,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    path: str = "/v1/hooks",
    method: str = "POST",
) -> Reply:
    """One request as Claude Code's http hook sends it (a fresh connection, JSON body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=30)
    started = time.monotonic()
    try:
        connection.request(
            method, path, data, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        return Reply(response.status, response.read(), time.monotonic() - started)
    finally:
        connection.close()


def hook_rows(client: Client, database: str, where: str, expected: int) -> list[dict[str, Any]]:
    return wait_rows(
        client,
        database,
        "SELECT EventName, ServiceName, Body, LogAttributes, Timestamp FROM {db}.otel_logs "
        f"WHERE EventName LIKE '%.hook.%' AND {where} ORDER BY Timestamp",
        expected,
    )


def test_captured_calls_land_as_rows_in_arrival_order(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    calls = captured_calls()
    for call in calls:
        # the headers Claude Code sent (axios), minus the ones that describe the connection
        headers = {k: v for k, v in call["headers"].items() if k not in ("Host", "Content-Length")}
        reply = post_hook(receiver, call["body"].encode(), headers, path=call["path"])
        assert (reply.status, reply.json()) == (200, {}), reply.body
    stored = hook_rows(client, database, "1", len(calls))
    assert [r["EventName"] for r in stored] == [
        "claude_code.hook.UserPromptSubmit",
        "claude_code.hook.PreToolUse",
        "claude_code.hook.PostToolUse",
        "claude_code.hook.Stop",
        "claude_code.hook.SessionEnd",
    ]
    assert [r["Body"] for r in stored] == [call["body"] for call in calls]
    assert {r["ServiceName"] for r in stored} == {"claude-code"}
    assert {r["LogAttributes"]["session.id"] for r in stored} == {
        "65ee3509-61d7-4d0b-8831-0883cc18e9e3"
    }
    # the stitch stage saw the session (hooks alone make a Claude session visible)
    sightings = rows(
        client,
        database,
        "SELECT DISTINCT RunId, Kind FROM {db}.agent_run_sightings",
    )
    assert {"RunId": "65ee3509-61d7-4d0b-8831-0883cc18e9e3", "Kind": "claude_session"} in (
        sightings
    )


def test_every_documented_event_type_is_stored(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    session = f"sess-all-{secrets.token_hex(4)}"
    for event in ALL_EVENTS:
        reply = post_hook(receiver, claude_payload(event, session))
        assert (reply.status, reply.json()) == (200, {}), (event, reply.body)
    stored = hook_rows(
        client, database, f"LogAttributes['session.id'] = '{session}'", len(ALL_EVENTS)
    )
    assert sorted(r["EventName"] for r in stored) == sorted(
        f"claude_code.hook.{event}" for event in ALL_EVENTS
    )
    by_event = {r["LogAttributes"]["hook_event_name"]: r["LogAttributes"] for r in stored}
    assert by_event["Notification"]["notification_type"] == "permission_prompt"
    assert by_event["SubagentStart"]["agent_type"] == "Explore"
    assert by_event["PreCompact"]["trigger"] == "auto"


def test_a_hook_is_acknowledged_once_spooled_not_after_the_batch_interval(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> None:
    # A batch interval of 30 s: an OTLP request would wait that long; a hook must not.
    receiver = ReceiverProcess.serving(
        tmp_path / "slow",
        clickhouse_url,
        database,
        OTEL_RECEIVER_BATCH_MAX_DELAY="30",
    ).start()
    try:
        replies = [post_hook(receiver, claude_payload("Stop", "sess-fast")) for _ in range(3)]
        assert all((r.status, r.json()) == (200, {}) for r in replies), replies
        assert max(r.seconds for r in replies) < 5, [r.seconds for r in replies]
        hook_rows(client, database, "LogAttributes['session.id'] = 'sess-fast'", 3)
    finally:
        receiver.stop()


def test_bad_requests_get_a_message_and_store_nothing(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    bad = post_hook(receiver, b'{"session_id": "s", "hook_event_name": ')
    assert bad.status == 400
    assert "hook payload is not valid JSON" in bad.json()["message"]
    missing = post_hook(receiver, {"session_id": "s"})
    assert missing.status == 400 and "hook_event_name: missing" in missing.json()["message"]
    wrong_method = post_hook(receiver, b"", method="GET")
    assert wrong_method.status == 405
    # the receiver keeps serving; a good call afterwards is stored, the bad ones are not
    assert post_hook(receiver, claude_payload("Stop", "sess-after-bad")).status == 200
    hook_rows(client, database, "LogAttributes['session.id'] = 'sess-after-bad'", 1)
    assert count(client, database, "otel_logs") == 1


def test_hooks_need_the_token_when_tokens_are_configured(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> None:
    token = secrets.token_urlsafe(24)
    receiver = ReceiverProcess.serving(
        tmp_path / "auth", clickhouse_url, database, OTEL_RECEIVER_AUTH_TOKENS=token
    ).start()
    try:
        payload = claude_payload("Stop", "sess-auth")
        assert post_hook(receiver, payload).status == 401
        authorized = post_hook(receiver, payload, {"Authorization": f"Bearer {token}"})
        assert (authorized.status, authorized.json()) == (200, {})
        hook_rows(client, database, "LogAttributes['session.id'] = 'sess-auth'", 1)
        assert count(client, database, "otel_logs") == 1
    finally:
        receiver.stop()


def test_codex_hooks_are_codex_events(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    thread = "019d0000-aaaa-7bbb-8ccc-00000000beef"
    reply = post_hook(receiver, codex_payload("PostToolUse", thread), path="/v1/hooks?agent=codex")
    assert reply.status == 200
    (row,) = hook_rows(client, database, f"LogAttributes['session.id'] = '{thread}'", 1)
    assert (row["EventName"], row["ServiceName"]) == ("codex.hook.PostToolUse", "codex_exec")
    assert row["LogAttributes"]["turn_id"] == "019d036d-c7fa-72d2-b6fd-78878bfe34e4"


def report_rows(client: Client, database: str, name: str, **extra: str) -> list[dict[str, Any]]:
    report = reports.get(name)
    result = reports.run(client, report, reports.parameters(report, database, extra=extra))
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_waiting_for_a_person_from_notification_until_post_tool_use(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    session, idle = f"sess-wait-{secrets.token_hex(4)}", f"sess-idle-{secrets.token_hex(4)}"
    for payload in (
        claude_payload("UserPromptSubmit", session),
        claude_payload("PreToolUse", session),
        claude_payload("Notification", session),  # permission_prompt for the Bash call
        claude_payload("Stop", idle),
        claude_payload(
            "Notification", idle, notification_type="idle_prompt", message="Claude is waiting"
        ),
    ):
        assert post_hook(receiver, payload).status == 200
    hook_rows(client, database, f"LogAttributes['session.id'] IN ('{session}', '{idle}')", 5)

    waiting = {r["session"]: r for r in report_rows(client, database, "waiting")}
    assert set(waiting) == {session, idle}
    assert (waiting[session]["reason"], waiting[session]["tool"]) == ("permission_prompt", "Bash")
    assert waiting[idle]["reason"] == "idle_prompt" and waiting[idle]["tool"] == ""
    assert waiting[idle]["message"] == "Claude is waiting"
    assert waiting[session]["waiting_s"] >= 0

    # The person answers: the tool runs, the session no longer waits.
    assert post_hook(receiver, claude_payload("PostToolUse", session)).status == 200
    hooks = hook_rows(client, database, f"LogAttributes['session.id'] = '{session}'", 4)
    assert {r["session"] for r in report_rows(client, database, "waiting")} == {idle}

    # The sessions report adds up the wait: Notification to PostToolUse, as stored.
    stamps = {r["LogAttributes"]["hook_event_name"]: r["Timestamp"] for r in hooks}
    waited = (stamps["PostToolUse"] - stamps["Notification"]).total_seconds()
    (row,) = report_rows(client, database, "sessions", session=session)
    assert row["waits"] == 1
    assert row["wait_s"] == pytest.approx(waited, abs=0.002)


def test_the_tree_shows_what_only_hooks_know(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    session = f"sess-tree-{secrets.token_hex(4)}"
    for event, fields in (
        ("SessionStart", {}),
        ("UserPromptSubmit", {}),
        ("PreToolUse", {}),
        ("Notification", {}),
        ("PostToolUse", {}),
        ("SubagentStart", {}),
        ("SubagentStop", {}),
        ("PreCompact", {}),
        ("PreToolUse", {"tool_use_id": "toolu_blocked"}),
        ("Stop", {}),
        ("SessionEnd", {"reason": "prompt_input_exit"}),
    ):
        assert post_hook(receiver, claude_payload(event, session, **fields)).status == 200

    def hook_children() -> list[str] | None:
        tops = build_tree(client, database, session)
        if not tops:
            return None  # the resolver has not written the session's run yet
        (top,) = tops
        found = [child.name for child in top.children if child.kind == "hook"]
        return found if len(found) == 5 else None

    assert wait_for(hook_children, 30, "the session's hook nodes") == [
        "waiting for a person (permission prompt)",
        "subagent Explore",
        "compacting context (auto)",
        "did not run: Bash (blocked or denied)",
        "session ended (prompt_input_exit)",
    ]
