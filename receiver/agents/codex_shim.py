"""The codex shim (``codex-spawn``): the ``codex`` that cc-launch puts first on ``PATH``.

It finds the real ``codex`` further down ``PATH`` and replaces itself with it (exec), all
arguments intact. For ``codex exec`` (alias ``codex e``) it first:

- inserts, right after ``exec``, three ``-c`` overrides that send Codex's logs, traces and
  metrics to the receiver over OTLP/gRPC (Codex reads its OTel settings only from
  ``config.toml`` ``[otel]`` or ``-c``, and its metrics default to OpenAI's collector)::

      -c otel.exporter={otlp-grpc={endpoint="http://127.0.0.1:4317"}}
      -c otel.trace_exporter={otlp-grpc={endpoint="http://127.0.0.1:4317"}}
      -c otel.metrics_exporter={otlp-grpc={endpoint="http://127.0.0.1:4317"}}

  (``-c key=value`` parses the value as TOML; ``-c`` is global, so it is accepted after the
  subcommand, and a user's own ``-c otel.…`` later on the command line still wins);
- stamps ``OTEL_RESOURCE_ATTRIBUTES`` (Claude Code strips ``OTEL_*`` from its Bash children,
  so it is rebuilt here; entries already present are kept) with a fresh ``agent.run.id``,
  ``agent.parent.session.id`` (``$CLAUDE_CODE_SESSION_ID``), ``agent.parent.span.id`` (the
  span id of a valid ``$TRACEPARENT``) and ``cc.launch.id`` (``$CC_LAUNCH_ID``), each when
  known. They replace entries of the same key, and inherited ``agent.run.id`` /
  ``agent.parent.*`` entries are always removed: an outer run's ids must not be reused.

Every other invocation (``codex --version``, ``codex login``, the interactive TUI ...) is passed
through untouched: same arguments, same environment.

The endpoint is ``$CC_LAUNCH_ENDPOINT`` (set by cc-launch), else ``$OTEL_EXPORTER_OTLP_ENDPOINT``,
else ``http://127.0.0.1:4317``. No recursion: the shim's own directory, a ``codex`` that
resolves to the shim itself, and any other launcher of the shim (a nested cc-launch's, or
``codex-spawn`` linked as ``codex``) are skipped on ``PATH``. No real codex: a message on
stderr and exit 127.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence

from receiver.agents.launch import (
    CA_FILE_ENV,
    DEFAULT_ENDPOINT,
    ENDPOINT_ENV,
    LAUNCH_ID_ENV,
    RESOURCE_ENV,
    SHIM_MARKER,
    TOKEN_FILE_ENV,
    merge_resource_attributes,
    new_id,
    normalize_endpoint,
    parse_traceparent,
    read_token,
)

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
EXEC_SUBCOMMANDS = frozenset({"exec", "e"})
# The stamps describe one run: an outer run's values, inherited, are removed even when this
# run has no value for a key (cc.launch.id, the launch context, is legitimately inherited).
RUN_KEYS = ("agent.run.id", "agent.parent.session.id", "agent.parent.span.id")
OTEL_EXPORTER_KEYS = ("exporter", "trace_exporter", "metrics_exporter")
# Codex's top-level options that take a separate value, so ``codex -m exec exec`` finds the
# right subcommand. Anything else starting with ``-`` is taken as a flag without a value.
VALUE_OPTIONS = frozenset(
    {
        "-c",
        "--config",
        "-m",
        "--model",
        "-p",
        "--profile",
        "-s",
        "--sandbox",
        "-a",
        "--ask-for-approval",
        "-C",
        "--cd",
        "-i",
        "--image",
        "--add-dir",
        "--enable",
        "--disable",
        "--local-provider",
    }
)


def find_subcommand(args: Sequence[str]) -> int | None:
    """Index of codex's subcommand (its first positional argument) in ``args``, if any."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if arg.startswith("-") and arg != "-":
            index += 2 if arg in VALUE_OPTIONS else 1
            continue
        return index
    return None


def receiver_endpoint(env: Mapping[str, str]) -> str:
    for name in (ENDPOINT_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if env.get(name):
            return normalize_endpoint(env[name])
    return DEFAULT_ENDPOINT


def otel_overrides(endpoint: str, token: str = "", ca_file: str = "") -> list[str]:
    """``-c`` arguments that send codex's logs, traces and metrics to ``endpoint`` (gRPC),
    with the receiver's bearer token (``headers``) and CA (``tls.ca-certificate``) when set.

    Codex takes its exporter headers only from its config, so the token is on codex's
    command line: visible to other users of the machine in ``ps``. On a shared machine give
    each user their own token (README "Security").
    """
    # A JSON string is a valid TOML basic string.
    fields = [f"endpoint={json.dumps(endpoint)}"]
    if token:
        fields.append(f"headers={{authorization={json.dumps('Bearer ' + token)}}}")
    if ca_file:
        fields.append(f"tls={{ca-certificate={json.dumps(ca_file)}}}")
    value = f"{{otlp-grpc={{{', '.join(fields)}}}}}"
    overrides: list[str] = []
    for key in OTEL_EXPORTER_KEYS:
        overrides += ["-c", f"otel.{key}={value}"]
    return overrides


def stamps(env: Mapping[str, str]) -> dict[str, str]:
    """The resource attributes that tie this codex run to its parent."""
    added = {"agent.run.id": new_id()}
    if env.get("CLAUDE_CODE_SESSION_ID"):
        added["agent.parent.session.id"] = env["CLAUDE_CODE_SESSION_ID"]
    parent = parse_traceparent(env.get("TRACEPARENT"))
    if parent is not None:
        added["agent.parent.span.id"] = parent.span_id
    if env.get(LAUNCH_ID_ENV):
        added["cc.launch.id"] = env[LAUNCH_ID_ENV]
    return added


def rewrite(args: Sequence[str], env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment to exec the real codex with."""
    args, env = list(args), dict(env)
    index = find_subcommand(args)
    if index is None or args[index] not in EXEC_SUBCOMMANDS:
        return args, env
    token = read_token(env[TOKEN_FILE_ENV]) if env.get(TOKEN_FILE_ENV) else ""
    overrides = otel_overrides(receiver_endpoint(env), token, env.get(CA_FILE_ENV, ""))
    args[index + 1 : index + 1] = overrides
    env[RESOURCE_ENV] = merge_resource_attributes(env.get(RESOURCE_ENV), stamps(env), RUN_KEYS)
    return args, env


def _is_shim(path: str) -> bool:
    """True for a launcher of this shim (it names ``receiver.agents.codex_shim`` near its top)."""
    try:
        with open(path, "rb") as file:
            return SHIM_MARKER.encode() in file.read(1024)
    except OSError:
        return False


def find_real_codex(path_value: str, self_path: str | None) -> str | None:
    """The first executable ``codex`` on ``path_value`` that is not this shim.

    Skipped: the shim's own directory when the shim runs as ``codex`` (a ``codex-spawn``
    installed next to the real codex, e.g. in /usr/local/bin, does not hide it), any ``codex``
    that resolves to the shim file, and any other launcher of this shim (a nested cc-launch's
    generated shim, ``bin/codex-spawn`` or the console script linked as ``codex``).
    """
    own_file = os.path.realpath(self_path) if self_path else None
    own_dir = None
    if self_path and os.path.basename(self_path) == "codex":
        own_dir = os.path.realpath(os.path.dirname(os.path.abspath(self_path)))
    for entry in path_value.split(os.pathsep):
        directory = entry or "."  # an empty entry means the current directory
        if own_dir is not None and os.path.realpath(directory) == own_dir:
            continue
        candidate = os.path.join(directory, "codex")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if own_file is not None and os.path.realpath(candidate) == own_file:
            continue
        if _is_shim(candidate):
            continue
        return candidate
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    self_path, args = (argv[0] if argv else None), argv[1:]
    real = find_real_codex(os.environ.get("PATH", os.defpath), self_path)
    if real is None:
        print(
            "codex-spawn: no real `codex` found on PATH after the cc-launch shim; install it "
            "(npm install -g @openai/codex) or fix PATH",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    args, env = rewrite(args, os.environ)
    try:
        os.execve(real, [real, *args], env)
    except OSError as exc:
        print(f"codex-spawn: cannot run {real}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NOT_EXECUTABLE
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(main())
