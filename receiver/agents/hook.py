"""``agent-hook``: a command hook that posts the hook payload to the receiver's ``/v1/hooks``.

For agents that only run command hooks (Codex; Claude Code before http hooks): the agent
writes the payload on stdin, this posts it with ``"agent": "claude"`` or ``"codex"`` added
(the receiver names the event ``claude_code.hook.<event>`` or ``codex.hook.<event>`` from it),
and returns. Under the codex shim it also adds ``"agent_run_id"``, the run id the shim
stamped on codex's telemetry, so the hook rows belong to the same run.

What it must never do: fail or steer the hook. A hook's exit code and stdout are read by the
agent (exit 2 blocks a tool call; stdout JSON can deny it or add context), so this always
exits 0 and writes nothing on stdout, whatever happens: receiver down, slow or refusing,
stdin not JSON. It gives up after ``--timeout`` seconds (default 1) in all, so the agent is
never held up longer. ``AGENT_HOOK_DEBUG=1`` says on stderr what failed.

The receiver URL is ``--url``, else ``$AGENT_HOOK_URL``, else ``http://127.0.0.1:4318/v1/hooks``;
a bearer token comes from ``--token-file``, ``$AGENT_HOOK_TOKEN_FILE`` or
``$CC_LAUNCH_TOKEN_FILE`` (the file cc-launch hands to the codex shim), else
``$AGENT_HOOK_TOKEN``. Standard library only, Python 3.9+: it runs in the user's shell, once per
hook call, so it must start fast and need nothing installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote

DEFAULT_URL = "http://127.0.0.1:4318/v1/hooks"
URL_ENV = "AGENT_HOOK_URL"
TOKEN_ENV = "AGENT_HOOK_TOKEN"
TOKEN_FILE_ENVS = ("AGENT_HOOK_TOKEN_FILE", "CC_LAUNCH_TOKEN_FILE")
DEBUG_ENV = "AGENT_HOOK_DEBUG"
RESOURCE_ENV = "OTEL_RESOURCE_ATTRIBUTES"
AGENTS = ("claude", "codex")
TIMEOUT_S = 1.0
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # hook payloads are kilobytes; never read without bound


def run_id_stamp(environ: Mapping[str, str]) -> str:
    """The ``agent.run.id`` the codex shim stamped into ``OTEL_RESOURCE_ATTRIBUTES`` ("" when
    none): codex hands its environment to its hooks, so the hook row can name the same run as
    codex's own telemetry."""
    for entry in environ.get(RESOURCE_ENV, "").split(","):
        key, _, value = entry.partition("=")
        if key.strip() == "agent.run.id" and value.strip():
            return unquote(value.strip())
    return ""


def payload_for(raw: bytes, agent: str, environ: Mapping[str, str] | None = None) -> bytes:
    """The body to post: the payload with ``agent`` (and ``agent_run_id``, under the codex
    shim) added when it is a JSON object (values the payload already has are kept), else the
    bytes as they came (the receiver answers 400, which is only logged here)."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(payload, dict):
        return raw
    payload.setdefault("agent", agent)
    run_id = run_id_stamp(os.environ if environ is None else environ)
    if run_id:
        payload.setdefault("agent_run_id", run_id)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _token(token_file: str | None) -> str:
    candidates = [token_file] if token_file else [os.environ.get(n) for n in TOKEN_FILE_ENVS]
    for path in candidates:
        if not path:
            continue
        try:
            lines = Path(path).expanduser().read_text().splitlines()
        except OSError:
            continue
        if lines and lines[0].strip():
            return lines[0].strip()
    return os.environ.get(TOKEN_ENV, "").strip()


def post(url: str, body: bytes, token: str, timeout: float) -> str:
    """POST ``body``; "" on success, else why not (never raises)."""
    headers = {"Content-Type": "application/json", "User-Agent": "agent-hook"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return ""
    except Exception as exc:  # anything at all: the hook must not fail
        detail = ""
        read = getattr(exc, "read", None)
        if callable(read):
            try:
                detail = ": " + read(500).decode("utf-8", "replace")
            except Exception:
                detail = ""
        return f"{type(exc).__name__}: {exc}{detail}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-hook",
        description="Command hook: post the hook payload on stdin to the receiver's /v1/hooks. "
        "Always exits 0 and prints nothing on stdout.",
        epilog="Codex hooks.json: "
        '{"hooks": {"PreToolUse": [{"hooks": [{"type": "command", '
        '"command": "agent-hook --agent codex"}]}]}}',
    )
    parser.add_argument("--agent", choices=AGENTS, default="claude", help="who runs the hook")
    parser.add_argument("--url", help=f"receiver hooks URL (default: ${URL_ENV} or {DEFAULT_URL})")
    parser.add_argument("--token-file", metavar="FILE", help="bearer token for the receiver")
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help="give up after SECONDS (default: 1)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    debug = bool(os.environ.get(DEBUG_ENV))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # a bad flag in someone's hooks.json must not fail their hook
        return 0
    try:
        raw = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES)
        url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
        body = payload_for(raw, args.agent)
        token = _token(args.token_file)
        outcome = {"error": "timed out"}

        def send() -> None:
            outcome["error"] = post(url, body, token, args.timeout)

        # The socket timeout bounds each step, not the whole; a daemon thread bounds the whole.
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sender.join(args.timeout)
        if debug and outcome["error"]:
            print(f"agent-hook: not posted to {url}: {outcome['error']}", file=sys.stderr)
    except Exception as exc:
        if debug:
            print(f"agent-hook: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
