"""Our hooks in the agents' hook files: Claude Code's ``settings.json`` and Codex's ``hooks.json``.

Both files have the same shape, ``{"hooks": {"<Event>": [{"matcher": "*", "hooks": [<hook>,
...]}]}}``. For Claude Code ours are ``type: "http"`` hooks posting to the receiver's
``/v1/hooks``; for Codex, which runs only command hooks, ``type: "command"`` hooks running
``agent-hook --agent codex``. ``install`` merges them in and ``uninstall`` takes them out,
touching nothing else: the user's own hooks, other settings and key order stay as they were.

Which hooks are ours is read from the hook itself, so no marker key is needed (Claude Code
ignores a settings file that fails its validation): an http hook whose URL path is
``/v1/hooks``, or a command hook that runs ``agent-hook`` / ``receiver.agents.hook``.
Installing again replaces ours (a new URL or event list takes effect) and writes nothing when
nothing changes; a changed file is first copied to ``<file>.bak-<UTC time>`` and then replaced
atomically, keeping its permissions.

Standard library only (cc-launch uses ``claude_settings`` for ``--hooks``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOOKS_PATH = "/v1/hooks"
DEFAULT_URL = f"http://127.0.0.1:4318{HOOKS_PATH}"
# What only hooks know: permission waits and prompts, tool calls before and after (denied,
# failed), stop reasons, subagents, compactions, session start and end. Events Claude Code
# 2.1.330 accepts (verified with the real CLI: tests/test_hooks_real_clients.py).
CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "PreCompact",
    "SessionEnd",
)
# Codex's hook events (developers.openai.com/codex/hooks).
CODEX_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Stop",
)
HOOK_TIMEOUT_S = 5  # the agent's own bound on one hook call; the helper gives up after 1 s
_HELPER_NAMES = ("agent-hook", "receiver.agents.hook")


class HookFileError(Exception):
    """A hook file that cannot be read or changed; the message names the file and why."""


def hooks_url(url: str) -> str:
    """``host:port`` or a base URL becomes the full ``.../v1/hooks`` URL."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url if urlsplit(url).path.endswith(HOOKS_PATH) else url + HOOKS_PATH


def is_ours(hook: Any) -> bool:
    """An http hook to ``/v1/hooks`` or a command hook running the helper."""
    if not isinstance(hook, dict):
        return False
    if hook.get("type") == "http":
        return urlsplit(str(hook.get("url", ""))).path.rstrip("/") == HOOKS_PATH
    if hook.get("type") == "command":
        command = str(hook.get("command", ""))
        return any(name in command for name in _HELPER_NAMES)
    return False


def http_hook(url: str, token: str = "", token_env: str = "") -> dict[str, Any]:
    """Claude Code's http hook to the receiver. The bearer token is either given (cc-launch
    writes it into a private per-run file) or named by an environment variable that Claude
    Code substitutes at call time (``allowedEnvVars``), so a settings file never holds it."""
    hook: dict[str, Any] = {"type": "http", "url": hooks_url(url), "timeout": HOOK_TIMEOUT_S}
    if token:
        hook["headers"] = {"Authorization": f"Bearer {token}"}
    elif token_env:
        hook["headers"] = {"Authorization": f"Bearer ${token_env}"}
        hook["allowedEnvVars"] = [token_env]
    return hook


def helper_command(url: str, agent: str = "codex") -> str:
    """The command that runs ``agent-hook`` with this interpreter, wherever it is installed."""
    parts = [sys.executable or "python3", "-m", "receiver.agents.hook", "--agent", agent]
    return shlex.join([*parts, "--url", hooks_url(url)])


def command_hook(url: str, agent: str = "codex") -> dict[str, Any]:
    return {"type": "command", "command": helper_command(url, agent), "timeout": HOOK_TIMEOUT_S}


def without_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with our hooks removed (and groups and events left empty by that)."""
    result = dict(settings)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return result
    kept_events: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            kept_events[event] = groups
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                entries = [h for h in group["hooks"] if not is_ours(h)]
                if not entries and group["hooks"]:
                    continue  # only ours were in it
                group = {**group, "hooks": entries}
            kept_groups.append(group)
        if kept_groups or not groups:
            kept_events[event] = kept_groups
    if kept_events:
        result["hooks"] = kept_events
    else:
        result.pop("hooks", None)
    return result


def with_ours(settings: dict[str, Any], events: Iterable[str], hook: dict[str, Any]) -> dict:
    """``settings`` with ``hook`` under every event in ``events`` (replacing ours, if any).

    A command hook (Codex) gets no matcher: Codex reads matchers as regular expressions and
    matches everything without one; Claude Code's http hooks get ``*`` (as captured)."""
    result = without_ours(settings)
    hooks = dict(result.get("hooks") or {})
    for event in events:
        groups = hooks.get(event)
        groups = list(groups) if isinstance(groups, list) else []
        group: dict[str, Any] = {} if hook["type"] == "command" else {"matcher": "*"}
        group["hooks"] = [dict(hook)]
        groups.append(group)
        hooks[event] = groups
    result["hooks"] = hooks
    return result


def claude_settings(url: str, token: str = "", events: Sequence[str] = CLAUDE_EVENTS) -> dict:
    """A settings document holding only our http hooks (for ``claude --settings``)."""
    return with_ours({}, events, http_hook(url, token))


def default_claude_settings_path() -> Path:
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(config) / "settings.json" if config else Path.home() / ".claude" / "settings.json"


def default_codex_hooks_path() -> Path:
    home = os.environ.get("CODEX_HOME")
    return Path(home) / "hooks.json" if home else Path.home() / ".codex" / "hooks.json"


def read_hook_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HookFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HookFileError(f"{path}: not valid JSON ({exc}); fix it first") from None
    if not isinstance(document, dict):
        raise HookFileError(f"{path}: holds a JSON {type(document).__name__}, not an object")
    if "hooks" in document and not isinstance(document["hooks"], dict):
        raise HookFileError(f'{path}: "hooks" is not an object')
    return document


def write_hook_file(path: Path, document: dict[str, Any]) -> Path | None:
    """Write ``document`` to ``path`` if it changes anything: back up the old file, replace it
    atomically with the same permissions. Returns the backup's path (None if none made)."""
    new_text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    old_text = path.read_text() if path.exists() else None
    if old_text is not None and old_text.strip() and json.loads(old_text) == document:
        return None
    if old_text is None and document == {}:
        return None
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if old_text is not None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        serial = 1
        while backup.exists():  # never overwrite an earlier backup
            serial += 1
            backup = path.with_name(f"{path.name}.bak-{stamp}-{serial}")
        shutil.copy2(path, backup)
    mode = path.stat().st_mode & 0o777 if old_text is not None else 0o600
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(new_text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def install(path: Path, events: Sequence[str], hook: dict[str, Any]) -> Path | None:
    """Merge ``hook`` into the hook file at ``path`` for ``events``; the backup made, if any."""
    return write_hook_file(path, with_ours(read_hook_file(path), events, hook))


def uninstall(path: Path) -> Path | None:
    """Remove our hooks from the hook file at ``path``; the backup made, if any."""
    if not path.exists():
        return None
    return write_hook_file(path, without_ours(read_hook_file(path)))


# --- otel-receiver hooks install / uninstall ------------------------------------------------


def add_commands(commands: Any, settings_flags: Any) -> None:
    """``otel-receiver hooks install|uninstall`` (``settings_flags`` adds the settings flags)."""
    hooks = commands.add_parser(
        "hooks",
        help="add or remove the hooks that send Claude Code / Codex hook events to the receiver",
    )
    actions = hooks.add_subparsers(dest="hooks_command", required=True, metavar="ACTION")
    install_parser = actions.add_parser(
        "install",
        help="merge our hooks into a Claude Code settings.json (or Codex hooks.json); keeps "
        "your own hooks, writes a backup, changes nothing when already installed",
    )
    uninstall_parser = actions.add_parser("uninstall", help="remove only our hooks")
    for parser in (install_parser, uninstall_parser):
        parser.add_argument(
            "--agent",
            choices=("claude", "codex"),
            default="claude",
            help="claude: http hooks in settings.json; codex: agent-hook command hooks in "
            "hooks.json (default: claude)",
        )
        parser.add_argument(
            "--settings",
            metavar="PATH",
            help="the file to change (default: $CLAUDE_CONFIG_DIR/settings.json or "
            "~/.claude/settings.json; codex: $CODEX_HOME/hooks.json or ~/.codex/hooks.json)",
        )
        settings_flags(parser, "http_listen", "log_level")
    install_parser.add_argument(
        "--events",
        metavar="EVENT",
        nargs="+",
        help="hook events to send (default: all that only hooks report; names or one "
        "comma-separated list)",
    )
    install_parser.add_argument(
        "--url", help="the receiver's hooks URL (default: http://<http_listen>/v1/hooks)"
    )
    install_parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="send 'Authorization: Bearer $NAME' (Claude Code reads the variable at call "
        "time; the token never lands in the file)",
    )


def run_command(args: Any, http_listen: str) -> int:
    """Run ``hooks install`` / ``hooks uninstall``; 0 on success, 2 for a bad file or event."""
    codex = args.agent == "codex"
    path = (
        Path(args.settings).expanduser()
        if args.settings
        else (default_codex_hooks_path() if codex else default_claude_settings_path())
    )
    try:
        if args.hooks_command == "uninstall":
            backup = uninstall(path)
            print(f"removed our hooks from {path}" if backup else f"no hooks of ours in {path}")
        else:
            known = CODEX_EVENTS if codex else CLAUDE_EVENTS
            events = [e for arg in args.events or known for e in arg.split(",") if e.strip()]
            url = args.url or _listen_url(http_listen)
            token_env = args.token_env or ""
            hook = command_hook(url) if codex else http_hook(url, token_env=token_env)
            existed = path.exists()
            backup = install(path, events, hook)
            state = "installed" if backup or not existed else "already installed"
            print(f"{state}: {', '.join(events)} -> {hooks_url(url)} in {path}")
            if codex:
                print(
                    "codex runs a new or changed hook only once you trust it: start codex and "
                    "review them with /hooks (codex exec cannot ask, and skips untrusted hooks "
                    "unless given --dangerously-bypass-hook-trust)"
                )
        if backup:
            print(f"backup of the previous file: {backup}")
    except HookFileError as exc:
        print(f"otel-receiver: {exc}", file=sys.stderr)
        return 2
    return 0


def _listen_url(http_listen: str) -> str:
    """The hooks URL of a receiver listening on ``http_listen`` (a wildcard means loopback)."""
    host, _, port = http_listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{HOOKS_PATH}"
