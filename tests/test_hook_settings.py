"""``otel-receiver hooks install|uninstall`` on real files, and ``cc-launch --hooks``'s per-run
settings: our hooks merged in next to the user's own, idempotent, backed up, removed alone."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest

from receiver.agents.hook_settings import CLAUDE_EVENTS, CODEX_EVENTS, claude_settings, is_ours
from receiver.agents.launch import add_hooks, default_hooks_url, prepare
from receiver.cli import main

pytestmark = pytest.mark.unit

URL = "http://127.0.0.1:4318/v1/hooks"
USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "env": {"FOO": "1"},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh"}]}
        ],
        "Stop": [{"hooks": [{"type": "http", "url": "https://hooks.example.com/stop"}]}],
    },
}


def hooks_cli(*args: str) -> int:
    return main(["hooks", *args])


def ours(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        event: [h for group in groups for h in group["hooks"] if is_ours(h)]
        for event, groups in document.get("hooks", {}).items()
        if any(is_ours(h) for group in groups for h in group["hooks"])
    }


def test_install_merges_next_to_the_users_hooks_and_backs_up(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(USER_SETTINGS, indent=4))
    settings.chmod(0o640)
    assert hooks_cli("install", "--settings", str(settings)) == 0
    installed = json.loads(settings.read_text())
    assert set(ours(installed)) == set(CLAUDE_EVENTS)
    assert all(
        hooks == [{"type": "http", "url": URL, "timeout": 5}] for hooks in ours(installed).values()
    )
    # everything of the user's is still there, unchanged
    assert installed["model"] == "opus" and installed["env"] == {"FOO": "1"}
    assert installed["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert installed["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]
    assert stat.S_IMODE(settings.stat().st_mode) == 0o640
    (backup,) = tmp_path.glob("settings.json.bak-*")
    assert json.loads(backup.read_text()) == USER_SETTINGS


def test_install_twice_changes_nothing(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(USER_SETTINGS))
    hooks_cli("install", "--settings", str(settings))
    first = settings.read_text()
    assert hooks_cli("install", "--settings", str(settings)) == 0
    assert settings.read_text() == first
    assert len(list(tmp_path.glob("settings.json.bak-*"))) == 1


def test_reinstall_with_other_events_and_url_replaces_ours(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    hooks_cli("install", "--settings", str(settings))
    url = "http://10.0.0.5:4318/v1/hooks"
    assert (
        hooks_cli(
            "install", "--settings", str(settings), "--events", "Notification,Stop", "--url", url
        )
        == 0
    )
    installed = ours(json.loads(settings.read_text()))
    assert set(installed) == {"Notification", "Stop"}
    assert {h["url"] for hooks in installed.values() for h in hooks} == {url}


def test_uninstall_removes_only_ours(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(USER_SETTINGS))
    hooks_cli("install", "--settings", str(settings))
    assert hooks_cli("uninstall", "--settings", str(settings)) == 0
    assert json.loads(settings.read_text()) == USER_SETTINGS
    assert hooks_cli("uninstall", "--settings", str(settings)) == 0  # nothing left: no-op


def test_token_is_named_not_written(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    hooks_cli("install", "--settings", str(settings), "--token-env", "RECEIVER_TOKEN")
    (hook,) = ours(json.loads(settings.read_text()))["Stop"]
    assert hook["headers"] == {"Authorization": "Bearer $RECEIVER_TOKEN"}
    assert hook["allowedEnvVars"] == ["RECEIVER_TOKEN"]


def test_a_broken_settings_file_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text('{"model": "opus",')
    assert hooks_cli("install", "--settings", str(settings)) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert settings.read_text() == '{"model": "opus",'
    assert not list(tmp_path.glob("settings.json.bak-*"))


def test_codex_hooks_json_gets_helper_commands(tmp_path: Path) -> None:
    hooks_file = tmp_path / "hooks.json"
    user = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}}
    hooks_file.write_text(json.dumps(user))
    assert hooks_cli("install", "--agent", "codex", "--settings", str(hooks_file)) == 0
    installed = json.loads(hooks_file.read_text())
    assert set(ours(installed)) == set(CODEX_EVENTS)
    (group,) = installed["hooks"]["PreToolUse"]
    assert "matcher" not in group  # Codex matchers are regexes: none matches every tool
    (hook,) = group["hooks"]
    argv = shlex.split(hook["command"])
    assert argv[1:] == ["-m", "receiver.agents.hook", "--agent", "codex", "--url", URL]
    assert os.access(argv[0], os.X_OK)
    assert installed["hooks"]["Stop"][0] == user["hooks"]["Stop"][0]
    assert hooks_cli("uninstall", "--agent", "codex", "--settings", str(hooks_file)) == 0
    assert json.loads(hooks_file.read_text()) == user


def test_default_url_follows_http_listen(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    hooks_cli("install", "--settings", str(settings), "--http-listen", "0.0.0.0:14318")
    (hook,) = ours(json.loads(settings.read_text()))["Stop"]
    assert hook["url"] == "http://127.0.0.1:14318/v1/hooks"


def test_cc_launch_hooks_adds_a_private_settings_file_for_claude_only(tmp_path: Path) -> None:
    launch = prepare({"CC_LAUNCH_TOKEN": "tok-123"}, shim_dir=tmp_path)
    command = add_hooks(["claude", "-p", "hi"], launch, tmp_path, URL)
    assert command[:3] == ["claude", "--settings", str(tmp_path / "hooks-settings.json")]
    assert command[3:] == ["-p", "hi"]
    path = Path(command[2])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert set(ours(document)) == set(CLAUDE_EVENTS)
    (hook,) = ours(document)["PreToolUse"]
    assert hook["headers"] == {"Authorization": "Bearer tok-123"}

    other = prepare({}, shim_dir=tmp_path)
    assert add_hooks(["bash", "-c", "x"], other, tmp_path, URL) == ["bash", "-c", "x"]
    assert any("claude only" in w for w in other.warnings)
    own = ["claude", "--settings", "mine.json"]
    assert add_hooks(own, other, tmp_path, URL) == own


def test_cc_launch_hooks_url_defaults_to_the_receivers_http_endpoint(tmp_path: Path) -> None:
    def hooks_url(env: dict[str, str], **options: str) -> str:
        return default_hooks_url(prepare(env, shim_dir=tmp_path, **options), env)

    assert hooks_url({}, endpoint="http://10.1.2.3:4317") == "http://10.1.2.3:4318/v1/hooks"
    assert hooks_url({}, endpoint="https://rx.internal") == "https://rx.internal:4318/v1/hooks"
    assert hooks_url({}, http_endpoint="http://h:9") == "http://h:9/v1/hooks"
    explicit = {"CC_LAUNCH_HOOKS_URL": "http://h:1/v1/hooks"}
    assert hooks_url(explicit, endpoint="http://10.1.2.3:4317") == "http://h:1/v1/hooks"


def test_the_readme_shows_what_install_writes() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Hooks", 1)[1].split("\n## ", 1)[0]
    shown = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert shown == claude_settings(URL, events=("PreToolUse",))
