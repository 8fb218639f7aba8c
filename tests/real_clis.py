"""The real Claude Code and Codex CLIs, and how the real-client tests run them.

The CLIs come from npm (``@anthropic-ai/claude-code`` and ``@openai/codex``, pinned to the
versions of the captures in ``fixtures/real``), installed once into a cache directory that is
reused between runs: ``$OTEL_RECEIVER_E2E_CACHE``, else ``~/.cache/agent-otel-receiver-e2e``.
Only the native executables inside the platform packages are run (no Node.js at run time).
When the cache is cold and npm or its registry is unreachable, a test using ``real_clis`` is
skipped with the reason; a reachable registry that cannot install the pinned versions is a
failure. They run against the mock model APIs in a clean environment (``mock_clients``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from .mock_model_apis import EgressBlocker, MockAnthropic, MockOpenAI
from .receiver_process import REPO

CLAUDE_CODE_VERSION = "2.1.330"
CODEX_VERSION = "0.169.0"
PACKAGES = (f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}", f"@openai/codex@{CODEX_VERSION}")
CACHE_ENV = "OTEL_RECEIVER_E2E_CACHE"
NPM_TIMEOUT_S = 600  # a cold install downloads ~780 MB of native binaries
RUN_TIMEOUT_S = 90

# npm's error codes (and messages) when it cannot reach its registry at all.
_UNREACHABLE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|ENETUNREACH|"
    r"EHOSTUNREACH|ERR_SOCKET_TIMEOUT|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT|"
    r"network request to .* failed|request to .* failed"
)


# --- the real CLIs from npm -------------------------------------------------------------


@dataclass(frozen=True)
class RealClis:
    claude: Path  # the native Claude Code executable
    codex: Path  # the native codex executable
    prefix: Path  # the npm prefix they were installed into


def _cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "agent-otel-receiver-e2e"


def _on_musl() -> bool:
    return "musl" in (platform.libc_ver()[0] or "") or Path("/etc/alpine-release").exists()


def _is_native(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return head in (b"\x7fELF", b"\xcf\xfa\xed\xfe") and os.access(path, os.X_OK)


def _find_executables(prefix: Path) -> RealClis | None:
    """The native executables inside the installed platform packages, if present."""
    modules = prefix / "node_modules"
    # Claude Code: @anthropic-ai/claude-code-<os>-<arch>[-musl]/claude (the wrapper's
    # bin/claude.exe is a copy made by its postinstall script, which may not have run).
    claudes = sorted(
        (p for p in modules.glob("@anthropic-ai/claude-code-*/claude") if _is_native(p)),
        key=lambda p: ("musl" in p.parent.name) != _on_musl(),
    )
    fallback = modules / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"
    claude = claudes[0] if claudes else (fallback if _is_native(fallback) else None)
    # Codex: @openai/codex-<os>-<arch>/vendor/<target triple>/bin/codex.
    codexes = [p for p in modules.glob("@openai/codex-*/vendor/*/bin/codex") if _is_native(p)]
    if claude is None or not codexes:
        return None
    return RealClis(claude=claude, codex=codexes[0], prefix=prefix)


def _npm(npm: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [npm, *args, "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )


def _unreachable(output: str) -> str | None:
    """npm's own line saying the registry cannot be reached, if that is what failed."""
    lines = [line.strip() for line in output.splitlines()]
    reasons = [line for line in lines if "request to" in line and "failed" in line]
    if reasons or _UNREACHABLE.search(output):
        return (reasons or [line for line in lines if _UNREACHABLE.search(line)])[0][:300]
    return None


def _registry_problem(npm: str) -> str | None:
    """None when the registry has both pinned versions; a skip reason when it is unreachable.
    Fails the test when the registry answers but lacks a pinned version."""
    for package in PACKAGES:
        try:
            view = _npm(npm, "view", package, "version", timeout=60)
        except subprocess.TimeoutExpired:
            return f"npm view {package} timed out: registry unreachable"
        output = f"{view.stdout}\n{view.stderr}".strip()
        if view.returncode != 0:
            if reason := _unreachable(output):
                return f"npm registry unreachable ({package}): {reason}"
            pytest.fail(f"npm view {package} failed with a reachable registry:\n{output}")
        if view.stdout.strip().strip("'\"") != package.rsplit("@", 1)[1]:
            pytest.fail(f"npm view {package} answered {view.stdout.strip()!r}")
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock, so concurrent test runs do not install into the cache at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def real_clis() -> RealClis:
    """Claude Code and Codex from npm, installed once into the reused cache directory."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip(f"the real-client test runs on Linux x64/arm64, not {sys.platform}")
    root = _cache_root()
    prefix = root / f"claude-code-{CLAUDE_CODE_VERSION}_codex-{CODEX_VERSION}"
    with _locked(root / ".lock"):
        found = _find_executables(prefix)
        if found is not None:
            print(f"\ne2e: using the cached npm install in {prefix}", file=sys.stderr)
            return found
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (needed once to install Claude Code and Codex)")
        reason = _registry_problem(npm)
        if reason:
            pytest.skip(reason)
        # Install into a staging directory and rename it into place: an interrupted install
        # never looks like a complete one.
        staging = root / f".{prefix.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(prefix, ignore_errors=True)
        started = time.monotonic()
        # --ignore-scripts: Claude Code's postinstall only copies the native binary out of
        # its platform package, which is where we run it from.
        install = _npm(
            npm,
            "install",
            "--prefix",
            str(staging),
            "--no-save",
            "--ignore-scripts",
            *PACKAGES,
            timeout=NPM_TIMEOUT_S,
        )
        took = time.monotonic() - started
        if install.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = f"{install.stdout}\n{install.stderr}".strip()[-2000:]
            if reason := _unreachable(output):
                pytest.skip(f"npm install could not reach the registry: {reason}")
            pytest.fail(f"npm install {' '.join(PACKAGES)} failed after {took:.0f}s:\n{output}")
        staging.rename(prefix)
        print(f"\ne2e: npm install of {' '.join(PACKAGES)} took {took:.1f}s", file=sys.stderr)
        found = _find_executables(prefix)
        if found is None:
            listing = sorted(str(p.relative_to(prefix)) for p in prefix.glob("node_modules/*/*"))
            pytest.fail(f"no native claude/codex executables after npm install: {listing}")
        return found


# --- running the CLIs against the mocks -------------------------------------------------


def cc_launch() -> list[str]:
    """The installed ``cc-launch``, else the repository's script."""
    installed = Path(sys.executable).parent / "cc-launch"
    if installed.exists():
        return [str(installed)]
    return [sys.executable, str(REPO / "bin" / "cc-launch")]


def codex_home(path: Path, openai: MockOpenAI) -> Path:
    """A CODEX_HOME whose config.toml uses the mock Responses API; no [otel] section: the
    shim that cc-launch puts on PATH adds the OTel export settings."""
    path.mkdir()
    (path / "config.toml").write_text(
        f"""model = "gpt-5.4"
model_provider = "mock"
check_for_update_on_startup = false

[model_providers.mock]
name = "Mock OpenAI"
base_url = "{openai.url}/v1"
env_key = "MOCK_OPENAI_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""
    )
    return path


def client_env(
    tmp: Path, clis: RealClis, anthropic: MockAnthropic, codex_home: Path, egress: EgressBlocker
) -> dict[str, str]:
    """A clean environment: nothing from the runner's OTEL_/CLAUDE_/CODEX_/... variables.

    Everything not on loopback goes to a proxy that refuses it (codex calls github.com and
    chatgpt.com at start): the test never depends on, or waits for, the Internet."""
    dirs = {name: tmp / name for name in ("home", "claude_config", "tmp")}
    for directory in dirs.values():
        directory.mkdir()
    system_path = os.environ.get("PATH", os.defpath)
    env = {
        # The real CLIs' directories first: a `codex` installed on this machine must not be
        # the one the shim finds after the shim directory cc-launch prepends.
        "PATH": os.pathsep.join([str(clis.claude.parent), str(clis.codex.parent), system_path]),
        "HOME": str(dirs["home"]),
        "CLAUDE_CONFIG_DIR": str(dirs["claude_config"]),
        "TMPDIR": str(dirs["tmp"]),
        "CODEX_HOME": str(codex_home),
        "ANTHROPIC_BASE_URL": anthropic.url,
        "ANTHROPIC_API_KEY": "dummy",
        "MOCK_OPENAI_KEY": "dummy",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_LOGS_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_EXPORT_INTERVAL": "1000",
    }
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = egress.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    for name in ("LANG", "LC_ALL", "TERM", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


class MockedClients(NamedTuple):
    anthropic: MockAnthropic
    openai: MockOpenAI
    egress: EgressBlocker
    codex_home: Path
    env: dict[str, str]  # client_env: the CLIs reach only the mocks
    work: Path  # an empty working directory for the run


@contextlib.contextmanager
def mock_clients(tmp: Path, clis: RealClis, bash_command: str) -> Iterator[MockedClients]:
    """The mock model APIs (Anthropic asking for one Bash call of ``bash_command``), the
    egress blocker, a CODEX_HOME on the mock Responses API and the clean environment."""
    with (
        MockAnthropic(bash_command) as anthropic,
        MockOpenAI() as openai,
        EgressBlocker() as egress,
    ):
        home = codex_home(tmp / "codex_home", openai)
        env = client_env(tmp, clis, anthropic, home, egress)
        work = tmp / "work"
        work.mkdir()
        yield MockedClients(anthropic, openai, egress, home, env, work)


def run_claude(
    mocks: MockedClients, prompt: str, *launch_args: str
) -> subprocess.CompletedProcess[str]:
    """``cc-launch LAUNCH_ARGS -- claude -p PROMPT --allowedTools Bash``, as a user runs it."""
    return subprocess.run(
        [*cc_launch(), *launch_args, "--", "claude", "-p", prompt, "--allowedTools", "Bash"],
        env=mocks.env,
        cwd=mocks.work,
        stdin=subprocess.DEVNULL,  # claude -p waits 3 s for piped stdin otherwise
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
