"""The ``cc-launch`` command: run Claude Code (or any command) inside a launch trace context.

``cc-launch [--task ID] [--ticket ID] [--endpoint URL] [--] [COMMAND ...]`` (default ``claude``):

1. Mints a W3C trace context, or continues a valid, non-zero inbound ``TRACEPARENT`` (the
   launch span's parent is then the inbound span, in the inbound trace), and exports
   ``TRACEPARENT=00-<trace>-<launch span>-01`` to the command.
2. Turns on Claude Code's telemetry (metrics, logs, beta traces over OTLP/gRPC to the receiver)
   for every variable the user has not set (an empty variable counts as unset, as in the OTel
   spec), and ``CLAUDE_CODE_PROPAGATE_TRACEPARENT=1`` when ``ANTHROPIC_BASE_URL`` is set.
3. Appends ``cc.launch.id`` (fresh), ``task.id`` and ``ticket.id`` (when given) to
   ``OTEL_RESOURCE_ATTRIBUTES``, keeping the other entries (ours replace entries with the
   same key); warns when the total exceeds 12 entries, where Claude Code stops exporting
   metrics.
4. Puts the codex shim first on ``PATH`` and exports ``CC_LAUNCH_ID`` and
   ``CC_LAUNCH_ENDPOINT`` for it (and ``CC_LAUNCH_HTTP_ENDPOINT`` for a nested cc-launch):
   Claude Code strips every ``OTEL_*`` variable from its Bash children but keeps these. The
   shim directory is created at run time, private (0700), in the temporary directory, and
   removed at exit; it holds one ``codex`` sh script that runs ``receiver.agents.codex_shim``
   with this same Python interpreter (so it works from a checkout, an editable install and a
   regular install alike). See ``receiver/agents/codex_shim.py``.
5. Runs the command as a child (not exec: the span is sent after it ends), forwards SIGINT,
   SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it, and exits with its exit code
   (128+N when a signal N killed it, like a shell; 127 when the command is not found, 126
   when it cannot be executed). The child stays in cc-launch's process group, so when
   cc-launch runs in the terminal's foreground, keys such as Ctrl-C already reach the child
   from the terminal: SIGINT, SIGQUIT and SIGWINCH are then not forwarded a second time
   (Claude Code exits on a second Ctrl-C).
6. At exit sends one ``cc.launch`` span (kind internal; start and end are the child's run;
   attributes ``cc.launch.id``, ``task.id``, ``ticket.id``, ``process.exit_code``,
   ``process.command`` = the command's name only, since arguments may hold secrets; resource
   ``service.name=cc-launch`` plus the launch's resource attributes) as OTLP/HTTP JSON, with a
   short deadline, the bearer token and the CA file (``--token-file``, ``--ca-file``). A span
   that cannot be sent is said once on stderr and never changes the exit code.

With ``--hooks`` and a ``claude`` command, Claude Code also posts its hook events (permission
prompts, tool calls before and after, stops, subagents, compactions) to the receiver's
``/v1/hooks`` for this run only: ``--settings <file>`` is added to the command, the file (in the
private shim directory, with the bearer token if there is one) holding only our http hooks,
which Claude Code adds to the user's own. No user file is touched. The URL is ``--hooks-url``,
else ``CC_LAUNCH_HOOKS_URL``, else the OTLP/HTTP endpoint below plus ``/v1/hooks``.

The receiver's gRPC endpoint (Claude Code, codex) is ``--endpoint``, else
``CC_LAUNCH_ENDPOINT``, else the user's ``OTEL_EXPORTER_OTLP_ENDPOINT`` when its protocol is
gRPC, else ``http://127.0.0.1:4317``. The launch span goes to the receiver's OTLP/HTTP
endpoint: ``--http-endpoint``, else ``CC_LAUNCH_HTTP_ENDPOINT``, else the gRPC endpoint's
scheme and host with the next port (4317 -> 4318: the receiver's default ports), plus
``/v1/traces``. Standard library only (Python 3.9+): cc-launch and the codex shim, which
shares the helpers below, run under whatever ``python3`` is first on ``PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import quote, unquote, urlsplit

DEFAULT_ENDPOINT = "http://127.0.0.1:4317"
DEFAULT_COMMAND = "claude"
ENDPOINT_ENV = "CC_LAUNCH_ENDPOINT"
HTTP_ENDPOINT_ENV = "CC_LAUNCH_HTTP_ENDPOINT"
LAUNCH_ID_ENV = "CC_LAUNCH_ID"
DEBUG_ENV = "CC_LAUNCH_DEBUG"
# Authentication and TLS towards the receiver (README "Security"). The token is handed to the
# codex shim as a file (0600, in the private shim directory), never as a variable or argument
# of its own, so it does not show up in the environment of every command Claude runs.
TOKEN_ENV = "CC_LAUNCH_TOKEN"
TOKEN_FILE_ENV = "CC_LAUNCH_TOKEN_FILE"
CA_FILE_ENV = "CC_LAUNCH_CA_FILE"
HOOKS_URL_ENV = "CC_LAUNCH_HOOKS_URL"
RESOURCE_ENV = "OTEL_RESOURCE_ATTRIBUTES"
# Claude Code stops exporting metrics when OTEL_RESOURCE_ATTRIBUTES has more entries.
MAX_RESOURCE_ENTRIES = 12
# The whole export (connect + call) must stay under 2 s.
EXPORT_TIMEOUT_S = 1.5
# Every shim launcher names the shim's module near its top (the generated sh script,
# bin/codex-spawn, the installed console script): the shim skips any `codex` that does, so a
# shim never runs another shim (no recursion, no double stamping).
SHIM_MARKER = "receiver.agents.codex_shim"
SERVICE_NAME = "cc-launch"
SPAN_NAME = "cc.launch"
TRACES_PATH = "/v1/traces"
HOOKS_PATH = "/v1/hooks"

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
# The terminal sends these to its whole foreground process group, the child included.
TERMINAL_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH})

# Variables that turn on Claude Code's telemetry; each is set only when the user has not.
TELEMETRY_DEFAULTS = {
    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
}


# --- W3C trace context ------------------------------------------------------------------

_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and set(value) <= _HEX


@dataclass(frozen=True)
class TraceParent:
    """A valid W3C ``traceparent``: lowercase hex ids, neither all zeros."""

    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """Parse a ``traceparent`` per W3C Trace Context; None when absent or invalid.

    Version ``00`` has exactly four fields; a later version may carry more after the flags
    (they are ignored, as the spec asks); version ``ff`` is invalid. Ids must be lowercase hex
    and not all zeros.
    """
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[:4]
    if not _is_hex(version, 2) or version == "ff" or (version == "00" and len(parts) != 4):
        return None
    if not (_is_hex(trace_id, 32) and _is_hex(span_id, 16) and _is_hex(flags, 2)):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceParent(trace_id, span_id, flags)


def new_trace_id() -> str:
    while (value := secrets.token_hex(16)) == "0" * 32:
        pass
    return value


def new_span_id() -> str:
    while (value := secrets.token_hex(8)) == "0" * 16:
        pass
    return value


def new_id() -> str:
    """A fresh, time-ordered id: 12 hex digits of Unix milliseconds + 80 random bits."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


# --- OTEL_RESOURCE_ATTRIBUTES -----------------------------------------------------------


def encode_resource_value(value: str) -> str:
    """Percent-encode a value for ``OTEL_RESOURCE_ATTRIBUTES`` (W3C Baggage octets).

    Everything but unreserved URI characters is encoded, so ``,``, ``=``, ``%``, spaces and
    non-ASCII never break the list; ids such as ``T-42`` or hex ids stay readable.
    """
    return quote(value, safe="")


def _entries(value: str | None) -> list[str]:
    return [entry.strip() for entry in (value or "").split(",") if entry.strip()]


def merge_resource_attributes(
    existing: str | None, added: Mapping[str, str], drop: Iterable[str] = ()
) -> str:
    """``existing`` with ``added`` appended (values encoded); other entries are kept verbatim.

    Existing entries with the key of an added one, or a key in ``drop``, are removed, so the
    added value is the only one (a stale ``agent.run.id`` inherited from an outer run must
    not survive).
    """
    removed = {*added, *drop}
    kept = [e for e in _entries(existing) if e.split("=", 1)[0].strip() not in removed]
    ours = [f"{key}={encode_resource_value(value)}" for key, value in added.items()]
    return ",".join(kept + ours)


def parse_resource_attributes(value: str | None) -> dict[str, str]:
    """Decoded ``key -> value`` of an ``OTEL_RESOURCE_ATTRIBUTES`` value (malformed entries
    are skipped; the last of duplicated keys wins)."""
    parsed: dict[str, str] = {}
    for entry in _entries(value):
        key, sep, raw = entry.partition("=")
        if sep and key.strip() and raw.strip():
            parsed[key.strip()] = unquote(raw.strip())
    return parsed


def count_resource_entries(value: str | None) -> int:
    return len(_entries(value))


# --- endpoint ---------------------------------------------------------------------------


def normalize_endpoint(endpoint: str) -> str:
    """``host:port`` becomes ``http://host:port``; a trailing ``/`` is dropped."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def resolve_endpoint(flag: str | None, env: Mapping[str, str]) -> str:
    """The receiver's OTLP/gRPC endpoint: flag, ``CC_LAUNCH_ENDPOINT``, the user's own gRPC
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, then the default."""
    if flag:
        return normalize_endpoint(flag)
    if env.get(ENDPOINT_ENV):
        return normalize_endpoint(env[ENDPOINT_ENV])
    user = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if user and env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") in ("", "grpc"):
        return normalize_endpoint(user)
    return DEFAULT_ENDPOINT


def http_endpoint_for(grpc_endpoint: str) -> str:
    """The receiver's OTLP/HTTP endpoint next to its gRPC one: same scheme and host, the
    next port (4317 -> 4318, the OTLP defaults and the receiver's)."""
    parts = urlsplit(normalize_endpoint(grpc_endpoint))
    host = parts.hostname or "127.0.0.1"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{(parts.port or 4317) + 1}"


def resolve_traces_url(flag: str | None, env: Mapping[str, str], grpc_endpoint: str) -> str:
    """Where the launch span is POSTed (OTLP/HTTP JSON): ``--http-endpoint``, else
    ``CC_LAUNCH_HTTP_ENDPOINT``, else the port after the gRPC endpoint's; plus ``/v1/traces``
    unless the URL already names it."""
    base = normalize_endpoint(
        flag or env.get(HTTP_ENDPOINT_ENV) or http_endpoint_for(grpc_endpoint)
    )
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


# --- the launch environment -------------------------------------------------------------


@dataclass
class Launch:
    """Everything decided before the command starts; ``env`` is the child's environment."""

    launch_id: str
    context: TraceParent  # the launch span's own context (what the child's TRACEPARENT says)
    parent_span_id: str | None  # the inbound span, when continuing an inbound TRACEPARENT
    trace_state: str
    endpoint: str  # the receiver's OTLP/gRPC endpoint (Claude Code, codex)
    traces_url: str  # where the launch span is POSTed (OTLP/HTTP JSON)
    attributes: dict[str, str]  # cc.launch.id, task.id, ticket.id (those given)
    env: dict[str, str]
    token: str = ""  # bearer token for the receiver ("" for none)
    ca_file: str = ""  # CA bundle that verifies the receiver's TLS certificate
    notes: list[str] = field(default_factory=list)  # shown with --verbose
    warnings: list[str] = field(default_factory=list)  # always shown


def prepare(
    environ: Mapping[str, str],
    *,
    task: str | None = None,
    ticket: str | None = None,
    endpoint: str | None = None,
    http_endpoint: str | None = None,
    shim_dir: str | os.PathLike[str] | None = None,
    token_file: str | None = None,
    ca_file: str | None = None,
) -> Launch:
    """Decide the trace context, ids and the child's environment (no side effects)."""
    env = dict(environ)
    grpc_endpoint = resolve_endpoint(endpoint, environ)
    launch = Launch(
        launch_id=new_id(),
        context=TraceParent(new_trace_id(), new_span_id()),
        parent_span_id=None,
        trace_state="",
        endpoint=grpc_endpoint,
        traces_url=resolve_traces_url(http_endpoint, environ, grpc_endpoint),
        attributes={},
        env=env,
    )

    inbound_raw = environ.get("TRACEPARENT")
    inbound = parse_traceparent(inbound_raw)
    if inbound is not None:
        launch.context = TraceParent(inbound.trace_id, new_span_id())
        launch.parent_span_id = inbound.span_id
        launch.trace_state = environ.get("TRACESTATE", "")
        launch.notes.append(f"continuing inbound trace {inbound.trace_id}")
    elif inbound_raw:
        launch.notes.append(f"ignoring invalid inbound TRACEPARENT {inbound_raw!r}")
    env["TRACEPARENT"] = launch.context.header()

    for name, value in TELEMETRY_DEFAULTS.items():
        if not env.get(name):
            env[name] = value
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = launch.endpoint
    if env.get("ANTHROPIC_BASE_URL") and not env.get("CLAUDE_CODE_PROPAGATE_TRACEPARENT"):
        env["CLAUDE_CODE_PROPAGATE_TRACEPARENT"] = "1"
    claude_endpoint = normalize_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    if env["OTEL_EXPORTER_OTLP_PROTOCOL"] != "grpc" or claude_endpoint != launch.endpoint:
        launch.warnings.append(
            f"Claude Code exports to {env['OTEL_EXPORTER_OTLP_ENDPOINT']} "
            f"({env['OTEL_EXPORTER_OTLP_PROTOCOL']}, your OTEL_EXPORTER_OTLP_* settings) but "
            f"codex goes to {launch.endpoint} (gRPC) and the launch span to "
            f"{launch.traces_url}; the session tree needs them all in the same receiver"
        )

    launch.attributes["cc.launch.id"] = launch.launch_id
    if task:
        launch.attributes["task.id"] = task
    if ticket:
        launch.attributes["ticket.id"] = ticket
    env[RESOURCE_ENV] = merge_resource_attributes(env.get(RESOURCE_ENV), launch.attributes)
    entries = count_resource_entries(env[RESOURCE_ENV])
    if entries > MAX_RESOURCE_ENTRIES:
        launch.warnings.append(
            f"{RESOURCE_ENV} has {entries} entries; Claude Code stops exporting metrics above "
            f"{MAX_RESOURCE_ENTRIES}"
        )

    env[LAUNCH_ID_ENV] = launch.launch_id
    env[ENDPOINT_ENV] = launch.endpoint
    env[HTTP_ENDPOINT_ENV] = launch.traces_url  # a nested cc-launch sends its span there too
    _credentials(launch, environ, token_file, ca_file, shim_dir)
    if shim_dir is not None:
        path = env.get("PATH") or os.defpath
        env["PATH"] = f"{os.fspath(shim_dir)}{os.pathsep}{path}"
    return launch


def read_token(path: str) -> str:
    """The first line of a token file ("" when unreadable or empty)."""
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError:
        return ""
    return lines[0].strip() if lines else ""


def _has_header(headers: str, name: str) -> bool:
    return any(
        entry.split("=", 1)[0].strip().lower() == name for entry in headers.split(",") if entry
    )


def _credentials(
    launch: Launch,
    environ: Mapping[str, str],
    token_file: str | None,
    ca_file: str | None,
    shim_dir: str | os.PathLike[str] | None,
) -> None:
    """Pass the receiver's bearer token and CA to Claude Code (OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_CERTIFICATE, unless the user set them), to the codex shim
    (CC_LAUNCH_TOKEN_FILE, CC_LAUNCH_CA_FILE) and to the launch span's export."""
    env = launch.env
    token_file = token_file or environ.get(TOKEN_FILE_ENV) or None
    if token_file:
        launch.token = read_token(token_file)
        if not launch.token:
            launch.warnings.append(f"cannot read a token from {token_file}")
    else:
        launch.token = environ.get(TOKEN_ENV, "").strip()
    env.pop(TOKEN_ENV, None)  # never inherited by every command the agent runs
    launch.ca_file = ca_file or environ.get(CA_FILE_ENV) or ""
    if launch.ca_file:
        launch.ca_file = os.path.abspath(os.path.expanduser(launch.ca_file))
        env[CA_FILE_ENV] = launch.ca_file
        if not env.get("OTEL_EXPORTER_OTLP_CERTIFICATE"):
            env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = launch.ca_file
    if not launch.token:
        return
    headers = env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    if not _has_header(headers, "authorization"):
        ours = f"Authorization=Bearer {launch.token}"
        env["OTEL_EXPORTER_OTLP_HEADERS"] = f"{headers},{ours}" if headers.strip() else ours
    if token_file:
        env[TOKEN_FILE_ENV] = os.path.abspath(os.path.expanduser(token_file))
    elif shim_dir is not None:
        path = Path(shim_dir) / "token"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(launch.token + "\n")
        env[TOKEN_FILE_ENV] = str(path)


def shim_script() -> str:
    """The ``codex`` sh script cc-launch puts first on PATH: it runs ``receiver.agents.codex_shim``
    with this interpreter (``-I``: the user's PYTHON* variables and current directory cannot
    change what runs), passing its own path so the shim can skip itself on PATH."""
    python = sys.executable or "python3"
    root = str(Path(__file__).resolve().parents[2])  # the directory holding `receiver`
    code = (
        "import sys; root = sys.argv[1]; sys.argv = sys.argv[2:]; sys.path.insert(0, root); "
        "from receiver.agents.codex_shim import main; sys.exit(main())"
    )
    command = " ".join(shlex.quote(part) for part in (python, "-I", "-c", code, root))
    return (
        "#!/bin/sh\n# cc-launch codex shim: runs receiver.agents.codex_shim, then the real codex.\n"
        f'exec {command} "$0" "$@"\n'
    )


def install_shim(directory: str | os.PathLike[str]) -> Path:
    """Write the ``codex`` shim into ``directory``; return its path."""
    path = Path(directory) / "codex"
    path.write_text(shim_script())
    path.chmod(0o755)
    return path


# --- Claude Code hooks for one run -----------------------------------------------------


def default_hooks_url(launch: Launch, env: Mapping[str, str]) -> str:
    """``CC_LAUNCH_HOOKS_URL``, else the receiver's OTLP/HTTP endpoint (where the launch span
    goes) with ``/v1/hooks``."""
    if env.get(HOOKS_URL_ENV):
        return env[HOOKS_URL_ENV]
    return launch.traces_url[: -len(TRACES_PATH)] + HOOKS_PATH


def add_hooks(
    command: Sequence[str], launch: Launch, directory: str | os.PathLike[str], url: str
) -> list[str]:
    """``command`` with ``--settings <file>`` after ``claude``, the file holding our http hooks
    (0600 in the private ``directory``). Other commands, and a command that already has its
    own ``--settings``, are returned unchanged with a warning."""
    if Path(command[0]).name != DEFAULT_COMMAND:
        launch.warnings.append(f"--hooks works with claude only; not added to {command[0]}")
        return list(command)
    if any(arg == "--settings" or arg.startswith("--settings=") for arg in command[1:]):
        launch.warnings.append("--hooks: the command has its own --settings; hooks not added")
        return list(command)
    from receiver.agents.hook_settings import claude_settings

    path = Path(directory) / "hooks-settings.json"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(claude_settings(url, launch.token), out)
    launch.notes.append(f"hook events go to {url}")
    return [command[0], "--settings", str(path), *command[1:]]


# --- running the child ------------------------------------------------------------------


def _terminal_reaches_child() -> bool:
    """True when our process group (the child's too) is the foreground group of our
    controlling terminal: terminal-generated signals then reach the child directly."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class SignalForwarder:
    """Forwards the signals cc-launch receives to the child until it has exited; from then
    on, until the ``with`` block ends, they are ignored (the span export is short and a late
    Ctrl-C must not end cc-launch with a traceback instead of the child's exit code)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self.pid: int | None = None
        self.exited = False
        self.pending: list[int] = []
        self.previous: dict[int, object] = {}

    def __enter__(self) -> SignalForwarder:
        # Python-level handlers (not SIG_IGN) are reset to the default at exec, so the child
        # starts with normal dispositions.
        for signum in FORWARDED_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.exited = True
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def started(self, pid: int) -> None:
        self.pid = pid
        pending, self.pending = self.pending, []
        for signum in pending:
            self._forward(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.exited:
            return
        if signum in TERMINAL_SIGNALS and _terminal_reaches_child():
            self._say(f"not forwarding {signal.Signals(signum).name}: the terminal sent it too")
            return
        if self.pid is None:
            self.pending.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        # The child is reaped only after `exited` is set (see _wait_exit), so this pid cannot
        # belong to another process yet.
        if self.pid is not None and not self.exited:
            self._say(f"forwarding {signal.Signals(signum).name} to {self.pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _say(self, message: str) -> None:
        if self.verbose:  # unbuffered: this runs inside a signal handler
            with contextlib.suppress(OSError):
                os.write(2, f"cc-launch: {message}\n".encode())


def _wait_exit(process: subprocess.Popen[bytes], forwarder: SignalForwarder) -> int:
    """Wait for the child, forwarding signals meanwhile; its return code (-N: signal N)."""
    if hasattr(os, "waitid"):
        # Wait without reaping first: until reaped, the pid stays the child's, so a signal
        # forwarded meanwhile cannot reach an unrelated process that reused the pid.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    forwarder.exited = True
    return process.wait()


@dataclass
class RunResult:
    exit_code: int
    start_ns: int
    end_ns: int
    error: str | None = None  # why the command could not start
    killed_by: int = 0  # the signal that ended the child, if one did


def run_command(
    command: Sequence[str], env: Mapping[str, str], forwarder: SignalForwarder
) -> RunResult:
    """Run ``command`` as a child with ``env`` while ``forwarder`` (entered) forwards signals
    to it; never raises for a command that cannot start (127 not found, 126 not
    executable)."""
    start_ns = time.time_ns()
    try:
        try:
            process = subprocess.Popen(list(command), env=dict(env))
        except (FileNotFoundError, NotADirectoryError):
            return RunResult(EXIT_NOT_FOUND, start_ns, time.time_ns(), "command not found")
        except PermissionError:
            return RunResult(EXIT_NOT_EXECUTABLE, start_ns, time.time_ns(), "permission denied")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return RunResult(EXIT_NOT_EXECUTABLE, start_ns, time.time_ns(), reason)
        forwarder.started(process.pid)
        returncode = _wait_exit(process, forwarder)
        end_ns = time.time_ns()
        if returncode < 0:  # like a shell: 128 + the signal's number
            return RunResult(128 - returncode, start_ns, end_ns, killed_by=-returncode)
        return RunResult(returncode, start_ns, end_ns)
    finally:
        forwarder.exited = True


# --- the cc.launch span -----------------------------------------------------------------

# OTLP enum values (opentelemetry/proto/trace/v1/trace.proto).
SPAN_KIND_INTERNAL = 1
STATUS_CODE_ERROR = 2
# Span flags: sampled, plus "is remote" known for the parent (bit 8) and set (bit 9).
FLAG_SAMPLED = 0x01
FLAG_PARENT_IS_REMOTE_KNOWN = 0x100
FLAG_PARENT_IS_REMOTE = 0x200


def _any_value(value: str | int) -> dict[str, str]:
    """An OTLP/JSON ``AnyValue``: int64 values are written as strings."""
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def _key_values(items: Mapping[str, str | int]) -> list[dict[str, object]]:
    return [{"key": key, "value": _any_value(value)} for key, value in items.items()]


def _status(result: RunResult) -> dict[str, object]:
    """The span status: unset for exit code 0, else an error saying why."""
    if result.error:
        return {"code": STATUS_CODE_ERROR, "message": result.error}
    if result.exit_code == 0:
        return {}
    message = f"exit code {result.exit_code}"
    if result.killed_by:
        message = f"killed by signal {result.killed_by}"
        with contextlib.suppress(ValueError):
            message = f"killed by {signal.Signals(result.killed_by).name}"
    return {"code": STATUS_CODE_ERROR, "message": message}


def build_span_request(launch: Launch, command: Sequence[str], result: RunResult) -> bytes:
    """The OTLP/JSON ``ExportTraceServiceRequest`` carrying the one ``cc.launch`` span.

    Written by hand (OTLP/HTTP JSON encoding: lowerCamelCase names, hex ids, enums as
    numbers, 64-bit integers as strings) so cc-launch needs no protobuf library.
    """
    resource = parse_resource_attributes(launch.env.get(RESOURCE_ENV))
    resource["service.name"] = SERVICE_NAME
    span_attrs: dict[str, str | int] = {
        **launch.attributes,
        "process.exit_code": result.exit_code,
        "process.command": os.path.basename(command[0]) if command else "",
    }
    flags = FLAG_SAMPLED | FLAG_PARENT_IS_REMOTE_KNOWN
    span: dict[str, object] = {
        "traceId": launch.context.trace_id,
        "spanId": launch.context.span_id,
        "flags": flags,
        "name": SPAN_NAME,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(result.start_ns),
        "endTimeUnixNano": str(max(result.end_ns, result.start_ns)),
        "attributes": _key_values(span_attrs),
        "status": _status(result),
    }
    if launch.parent_span_id:
        span["parentSpanId"] = launch.parent_span_id
        span["flags"] = flags | FLAG_PARENT_IS_REMOTE
    if launch.trace_state:
        span["traceState"] = launch.trace_state
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": _key_values(resource)},
                "scopeSpans": [{"scope": {"name": SERVICE_NAME}, "spans": [span]}],
            }
        ]
    }
    return json.dumps(request, separators=(",", ":")).encode()


def _reason(exc: BaseException) -> str:
    """A short, human reason for a failed export (no traceback, no library class names
    when the OS said it better)."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(reason) or type(reason).__name__


def send_span(
    url: str,
    body: bytes,
    timeout: float = EXPORT_TIMEOUT_S,
    token: str = "",
    ca_file: str = "",
) -> str | None:
    """POST one OTLP/JSON trace request to ``url``; None on success, else a short reason.

    A direct connection (proxy variables are ignored: the bearer token goes to the
    receiver only); ``https`` verifies the receiver against ``ca_file`` when given, else
    the system's CAs.
    """
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    try:
        if url.startswith("https:"):
            context = ssl.create_default_context(cafile=ca_file or None)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        with opener.open(request, timeout=timeout) as response:
            answer = response.read()
    except urllib.error.HTTPError as exc:
        detail = _error_message(exc.read())
        return f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
    except Exception as exc:  # the user's command already ran: never fail because of this
        return _reason(exc)
    rejected = _partial_success(answer)
    if rejected:
        return f"the receiver rejected the span: {rejected}"
    return None


def _error_message(body: bytes) -> str:
    """The ``message`` of an OTLP/HTTP error body (a JSON ``google.rpc.Status``), if any."""
    with contextlib.suppress(ValueError, AttributeError):
        return _one_line(str(json.loads(body).get("message", "")))
    return ""


def _one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at ``limit`` characters: failures are said in one line."""
    return " ".join(text.split())[:limit]


def _partial_success(body: bytes) -> str:
    """Why spans were rejected, from an ``ExportTraceServiceResponse`` in JSON ("" if none)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        partial = json.loads(body or b"{}").get("partialSuccess") or {}
        if int(partial.get("rejectedSpans") or 0):
            return _one_line(str(partial.get("errorMessage") or "no reason given"))
    return ""


def export_launch_span(launch: Launch, command: Sequence[str], result: RunResult) -> str | None:
    """Build and send the ``cc.launch`` span; None on success, else why not (never raises)."""
    body = build_span_request(launch, command, result)
    return send_span(launch.traces_url, body, token=launch.token, ca_file=launch.ca_file)


# --- command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cc-launch",
        usage="cc-launch [--task ID] [--ticket ID] [--endpoint URL] [--http-endpoint URL] "
        "[--token-file FILE] "
        "[--ca-file FILE] [--hooks] [--hooks-url URL] [-v] [--] [COMMAND ...]",
        description=(
            "Run Claude Code (default command: claude) with telemetry to the receiver, a "
            "launch trace context, and the codex shim on PATH; send one cc.launch span at exit."
        ),
        epilog="example: cc-launch --task T-42 -- claude -p 'fix the build'",
    )
    parser.add_argument("--task", metavar="ID", help="task id, stored as task.id")
    parser.add_argument("--ticket", metavar="ID", help="ticket id, stored as ticket.id")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"receiver OTLP/gRPC endpoint (default: ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--http-endpoint",
        metavar="URL",
        help=f"receiver OTLP/HTTP endpoint for the launch span (default: ${HTTP_ENDPOINT_ENV}, "
        "else the gRPC endpoint's host and the next port: 4317 -> 4318)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"bearer token for the receiver (default: ${TOKEN_FILE_ENV}, else ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--ca-file",
        metavar="FILE",
        help=f"CA bundle that signed the receiver's TLS certificate (default: ${CA_FILE_ENV})",
    )
    parser.add_argument(
        "--hooks",
        action="store_true",
        help="also send Claude Code's hook events to the receiver, for this run only",
    )
    parser.add_argument(
        "--hooks-url",
        metavar="URL",
        help=f"receiver hooks URL (default: ${HOOKS_URL_ENV}, else the OTLP/HTTP endpoint plus "
        f"{HOOKS_PATH})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=f"say what is decided and sent (also: {DEBUG_ENV}=1)",
    )
    return parser


_VALUE_OPTIONS = (
    "--task",
    "--ticket",
    "--endpoint",
    "--http-endpoint",
    "--token-file",
    "--ca-file",
    "--hooks-url",
)


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split into cc-launch's own options and the command: the command starts at ``--`` or
    at the first argument that is neither an option nor an option's value."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return list(argv[:index]), list(argv[index + 1 :])
        if not arg.startswith("-") or arg == "-":
            break
        index += 2 if arg in _VALUE_OPTIONS else 1
    return list(argv[:index]), list(argv[index:])


def main(argv: Sequence[str] | None = None) -> int:
    own, command = split_argv(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    command = command or [DEFAULT_COMMAND]
    verbose = args.verbose or bool(os.environ.get(DEBUG_ENV))

    def say(message: str) -> None:
        print(f"cc-launch: {message}", file=sys.stderr, flush=True)

    shim_dir = tempfile.mkdtemp(prefix="cc-launch-")  # 0700
    try:
        install_shim(shim_dir)
        launch = prepare(
            os.environ,
            task=args.task,
            ticket=args.ticket,
            endpoint=args.endpoint,
            http_endpoint=args.http_endpoint,
            shim_dir=shim_dir,
            token_file=args.token_file,
            ca_file=args.ca_file,
        )
        if args.hooks or args.hooks_url:
            url = args.hooks_url or default_hooks_url(launch, os.environ)
            command = add_hooks(command, launch, shim_dir, url)
        for warning in launch.warnings:
            say(f"warning: {warning}")
        if verbose:
            for note in launch.notes:
                say(note)
            say(f"launch {launch.launch_id} TRACEPARENT={launch.env['TRACEPARENT']}")

        with SignalForwarder(verbose) as forwarder:
            result = run_command(command, launch.env, forwarder)
            if result.error:
                hint = ""
                if result.exit_code == EXIT_NOT_FOUND and command == [DEFAULT_COMMAND]:
                    hint = " (install Claude Code, or give the command to run after --)"
                say(f"{command[0]}: {result.error}{hint}")
            failure = export_launch_span(launch, command, result)
        if failure:  # one line, whatever the command's exit code (which stays its own)
            say(f"cc.launch span not sent to {launch.traces_url}: {failure}")
        elif verbose:
            say(f"cc.launch span sent to {launch.traces_url}")
        return result.exit_code
    finally:
        shutil.rmtree(shim_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
