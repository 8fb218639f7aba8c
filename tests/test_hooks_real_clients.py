"""The real CLIs (from the npm cache, ``tests/real_clis.py``) sending hook events to a
real receiver, against the mock model APIs.

Claude Code posts its http hooks, turned on by ``cc-launch --hooks`` for the one run: the hook
rows land, carry the session id of the session's telemetry, join its ``claude_code.tool_result``
event by ``tool_use_id``, and the secret in the Bash command is redacted everywhere. The user's
own settings file is untouched and its hooks still run.

Codex runs ``agent-hook`` command hooks installed by ``otel-receiver hooks install --agent
codex``, under the codex shim: the rows are ``codex.hook.*`` events of the same thread and run
as codex's own telemetry. (Codex runs only hooks the user trusted in its TUI; ``codex exec``
cannot ask, so the test passes ``--dangerously-bypass-hook-trust``.)"""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from receiver.query.tree import build_tree

from .clickhouse_rows import rows, wait_rows
from .mock_model_apis import MockAnthropic
from .real_clis import (  # noqa: F401 (real_clis is a fixture)
    RUN_TIMEOUT_S,
    RealClis,
    mock_clients,
    real_clis,
    run_claude,
)
from .receiver_process import REPO, ReceiverProcess, wait_for

PROMPT = "run it"


def _github_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))


def test_real_claude_code_http_hooks_land_joined_and_redacted(
    real_clis: RealClis,  # noqa: F811
    receiver: ReceiverProcess,
    client: Client,
    database: str,
    tmp_path: Path,
) -> None:
    secret = _github_token()
    command = f"GITHUB_TOKEN={secret} sh -c 'echo hi'"
    with mock_clients(tmp_path, real_clis, command) as mocks:
        env = mocks.env
        # The user's own settings, with a hook of their own: cc-launch --hooks must not
        # change the file, and Claude Code must run both their hook and ours.
        user_marker = tmp_path / "user_hook_ran"
        user_settings = Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
        user_settings.write_text(
            json.dumps(
                {
                    "hooks": {
                        "PreToolUse": [
                            {
                                "matcher": "*",
                                "hooks": [{"type": "command", "command": f"touch {user_marker}"}],
                            }
                        ]
                    }
                }
            )
        )
        before = user_settings.read_text()
        run = run_claude(
            mocks,
            PROMPT,
            "--endpoint",
            f"http://{receiver.grpc_target}",
            "--hooks",
            "--hooks-url",
            f"{receiver.http_url}/v1/hooks",
            "--verbose",
        )
        calls = mocks.anthropic.describe()
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{calls}"
        assert MockAnthropic.FINAL_TEXT in run.stdout, run.stdout
        assert "hook events go to" in run.stderr, run.stderr
    assert user_settings.read_text() == before
    assert user_marker.exists(), "the user's own PreToolUse hook did not run"

    hooks = wait_rows(
        client,
        database,
        "SELECT EventName, LogAttributes, Body FROM {db}.otel_logs "
        "WHERE EventName LIKE 'claude_code.hook.%' ORDER BY Timestamp",
        5,
    )
    events = [h["EventName"].rsplit(".", 1)[1] for h in hooks]
    for expected in ("UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"):
        assert expected in events, events
    by_event = {h["EventName"].rsplit(".", 1)[1]: h for h in hooks}

    # Joined to the telemetry: the same session, and the tool call by tool_use_id.
    def tool_result() -> list[dict[str, str]]:
        return rows(
            client,
            database,
            "SELECT LogAttributes AS attributes FROM {db}.otel_logs "
            "WHERE EventName = 'claude_code.tool_result'",
        )

    (result,) = wait_for(tool_result, 30, "the claude_code.tool_result event")
    telemetry = result["attributes"]
    assert {h["LogAttributes"]["session.id"] for h in hooks} == {telemetry["session.id"]}
    pre, post = by_event["PreToolUse"]["LogAttributes"], by_event["PostToolUse"]["LogAttributes"]
    assert pre["tool_use_id"] == post["tool_use_id"] == telemetry["tool_use_id"]
    assert pre["tool_name"] == "Bash"
    assert by_event["UserPromptSubmit"]["LogAttributes"]["prompt.id"] == telemetry["prompt.id"]

    def tool_span() -> list[dict[str, Any]]:
        return rows(
            client,
            database,
            "SELECT SpanAttributes['tool_use_id'] AS tool_use_id FROM {db}.otel_traces "
            "WHERE SpanName = 'claude_code.tool'",
        )

    (span,) = wait_for(tool_span, 30, "the claude_code.tool span")
    assert span["tool_use_id"] == pre["tool_use_id"]

    # The secret in the Bash command is redacted before storage, in the hook rows (body and
    # attributes) and everywhere else.
    assert "[REDACTED:" in pre["tool_input"] and secret not in pre["tool_input"]
    assert "[REDACTED:" in by_event["PreToolUse"]["Body"]
    leaks = client.query(
        f"SELECT count() FROM `{database}`.otel_logs WHERE position(Body, {{s:String}}) > 0 "
        "OR arrayExists(v -> position(v, {s:String}) > 0, mapValues(LogAttributes))",
        parameters={"s": secret},
    ).result_rows[0][0]
    assert leaks == 0

    # The session tree shows how the session ended, which only its SessionEnd hook says.
    session_id = telemetry["session.id"]
    reason = by_event["SessionEnd"]["LogAttributes"]["reason"]

    def session_end_node() -> list[str] | None:
        for top in build_tree(client, database, session_id):
            for node in [top, *top.children]:
                if node.kind == "claude_session" and node.id == session_id:
                    hooks_shown = [c.name for c in node.children if c.kind == "hook"]
                    return hooks_shown or None
        return None

    assert wait_for(session_end_node, 30, "the session's hook nodes in the tree") == [
        f"session ended ({reason})"
    ]


def test_real_codex_command_hooks_land_as_codex_events_of_its_run(
    real_clis: RealClis,  # noqa: F811
    receiver: ReceiverProcess,
    client: Client,
    database: str,
    tmp_path: Path,
) -> None:
    with mock_clients(tmp_path, real_clis, "true") as mocks:
        codex_home, env = mocks.codex_home, mocks.env
        install = subprocess.run(
            [
                sys.executable,
                "-m",
                "receiver.cli",
                "hooks",
                "install",
                "--agent",
                "codex",
                "--url",
                f"{receiver.http_url}/v1/hooks",
            ],
            env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert install.returncode == 0, install.stderr
        assert (codex_home / "hooks.json").exists(), install.stdout
        run = subprocess.run(
            [
                sys.executable,
                str(REPO / "bin" / "codex-spawn"),  # the shim: telemetry on, run id stamped
                "exec",
                "--dangerously-bypass-hook-trust",
                "--skip-git-repo-check",
                "say hi",
            ],
            env={**env, "CC_LAUNCH_ENDPOINT": f"http://{receiver.grpc_target}"},
            cwd=mocks.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{mocks.openai.describe()}"

    hooks = wait_rows(
        client,
        database,
        "SELECT EventName, ServiceName, LogAttributes, ResourceAttributes FROM {db}.otel_logs "
        "WHERE EventName LIKE 'codex.hook.%' ORDER BY Timestamp",
        3,
    )
    assert [h["EventName"] for h in hooks] == [
        "codex.hook.SessionStart",
        "codex.hook.UserPromptSubmit",
        "codex.hook.Stop",
    ]
    assert {h["ServiceName"] for h in hooks} == {"codex_exec"}

    def codex_telemetry() -> list[dict[str, Any]]:
        return rows(
            client,
            database,
            "SELECT DISTINCT LogAttributes['conversation.id'] AS thread, "
            "ResourceAttributes['agent.run.id'] AS run FROM {db}.otel_logs "
            "WHERE startsWith(EventName, 'codex.') AND NOT startsWith(EventName, 'codex.hook.') "
            "AND LogAttributes['conversation.id'] != ''",
        )

    (telemetry,) = wait_for(codex_telemetry, 30, "codex's own log events")
    assert {h["LogAttributes"]["session.id"] for h in hooks} == {telemetry["thread"]}
    assert {h["ResourceAttributes"]["agent.run.id"] for h in hooks} == {telemetry["run"]}
    assert hooks[1]["LogAttributes"]["prompt"] == "say hi"
    assert hooks[1]["LogAttributes"]["turn_id"] == hooks[2]["LogAttributes"]["turn_id"]
