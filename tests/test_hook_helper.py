"""``agent-hook``, the command-hook helper, as an agent runs it: a child process with the payload
on stdin. It posts Codex-shaped payloads that land as ``codex.hook.*`` rows, and it never fails
or steers the hook: exit 0 and an empty stdout whether the receiver is there, down or silent,
and it gives up after its timeout."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from clickhouse_connect.driver.client import Client

from .clickhouse_rows import wait_rows
from .hook_payloads import claude_payload, codex_payload
from .receiver_process import REPO, ReceiverProcess

HELPER = REPO / "bin" / "agent-hook"


def run_helper(
    stdin: bytes, *args: str, timeout: float = 20
) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.monotonic()
    # -I: nothing from the test runner's environment or current directory changes what runs
    done = subprocess.run(
        [sys.executable, "-I", str(HELPER), *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={"AGENT_HOOK_DEBUG": "1", "PATH": "/usr/bin:/bin"},
    )
    return done, time.monotonic() - started


def test_codex_payloads_from_stdin_land_as_codex_events(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    thread = "019d0000-aaaa-7bbb-8ccc-0000000c0dex"
    url = f"{receiver.http_url}/v1/hooks"
    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"):
        payload = json.dumps(codex_payload(event, thread)).encode()
        done, _ = run_helper(payload, "--agent", "codex", "--url", url)
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), done
    stored = wait_rows(
        client,
        database,
        "SELECT EventName, ServiceName, LogAttributes FROM {db}.otel_logs "
        f"WHERE LogAttributes['session.id'] = '{thread}' ORDER BY Timestamp",
        5,
    )
    assert [r["EventName"] for r in stored] == [
        "codex.hook.SessionStart",
        "codex.hook.UserPromptSubmit",
        "codex.hook.PreToolUse",
        "codex.hook.PostToolUse",
        "codex.hook.Stop",
    ]
    assert {r["ServiceName"] for r in stored} == {"codex_exec"}
    assert {r["LogAttributes"]["agent"] for r in stored} == {"codex"}
    assert json.loads(stored[2]["LogAttributes"]["tool_input"]) == {"command": "cargo test"}


def test_claude_is_the_default_agent(
    receiver: ReceiverProcess, client: Client, database: str
) -> None:
    payload = json.dumps(claude_payload("Notification", "sess-helper")).encode()
    done, _ = run_helper(payload, "--url", f"{receiver.http_url}/v1/hooks")
    assert (done.returncode, done.stdout) == (0, b"")
    (row,) = wait_rows(
        client,
        database,
        "SELECT EventName FROM {db}.otel_logs WHERE LogAttributes['session.id'] = 'sess-helper'",
        1,
    )
    assert row["EventName"] == "claude_code.hook.Notification"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_receiver_down_still_exits_zero_with_nothing_on_stdout() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/hooks"
    done, took = run_helper(b'{"hook_event_name": "Stop"}', "--agent", "codex", "--url", url)
    assert (done.returncode, done.stdout) == (0, b"")
    assert b"not posted" in done.stderr  # only because AGENT_HOOK_DEBUG is set
    assert took < 10


def test_a_silent_receiver_is_given_up_on_after_the_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # accepts the connection (backlog) but never answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1/hooks"
        done, took = run_helper(b'{"hook_event_name": "Stop"}', "--url", url, "--timeout", "1")
    assert (done.returncode, done.stdout) == (0, b"")
    assert b"timed out" in done.stderr
    # 1 s of waiting plus the interpreter's start; far below what a hung hook would take
    assert took < 8, took


def test_garbage_and_bad_flags_never_fail_the_hook(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1/hooks"
    for stdin, args in ((b"\xff not json", ("--url", url)), (b"{}", ("--agent", "cursor"))):
        done, _ = run_helper(stdin, *args)
        assert (done.returncode, done.stdout) == (0, b""), done


def test_the_helper_is_standard_library_python_3_9() -> None:
    source = (REPO / "receiver" / "agents" / "hook.py").read_text()
    tree = ast.parse(source, feature_version=(3, 9))  # no 3.10+ syntax (match, ...)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
