"""What ``agent_otel`` reads from the environment before it touches the OpenTelemetry SDK:
where to export, over which protocol, with which credentials, and the resource attributes that
tie this run to the tool call that started it.

Standard library only (it reuses cc-launch's and the codex shim's helpers, which are), so the
decisions are testable without the SDK. The stamps are the codex shim's, so the receiver's
stitcher treats a Python agent exactly like a codex run: ``agent.run.id`` (fresh),
``agent.parent.session.id``, ``agent.parent.span.id``, ``cc.launch.id``; plus
``agent.kind=python_agent``, which names the run kind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from receiver.agents.codex_shim import RUN_KEYS, stamps
from receiver.agents.launch import (
    CA_FILE_ENV,
    DEFAULT_ENDPOINT,
    ENDPOINT_ENV,
    RESOURCE_ENV,
    TOKEN_FILE_ENV,
    normalize_endpoint,
    parse_resource_attributes,
    read_token,
)

KIND_KEY = "agent.kind"
PYTHON_AGENT = "python_agent"
# Says why exports failed (on stderr); otherwise agent_otel is silent, like cc-launch.
DEBUG_ENVS = ("AGENT_OTEL_DEBUG", "CC_LAUNCH_DEBUG")
GRPC = "grpc"
HTTP = "http/protobuf"
DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318"


@dataclass(frozen=True)
class ExportSettings:
    """Where and how the three signals are exported."""

    endpoint: str  # base URL, e.g. http://127.0.0.1:4317 (HTTP adds /v1/<signal>)
    protocol: str  # GRPC or HTTP
    token: str = ""  # bearer token from cc-launch's token file ("" when none or user headers)
    ca_file: str = ""  # CA bundle from cc-launch ("" when none or the user's certificate)


def export_settings(env: Mapping[str, str]) -> ExportSettings:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` over ``OTEL_EXPORTER_OTLP_PROTOCOL`` (default gRPC), else
    cc-launch's receiver (``CC_LAUNCH_ENDPOINT``, gRPC: Claude Code strips ``OTEL_*`` from its
    Bash children but keeps it), else the local receiver's default port for the protocol.

    The SDK exporters still read ``OTEL_EXPORTER_OTLP_HEADERS`` and ``..._CERTIFICATE``
    themselves; cc-launch's token and CA files are used only when those are not set.
    """
    protocol = HTTP if env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").startswith("http") else GRPC
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = normalize_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    elif env.get(ENDPOINT_ENV) and protocol == GRPC:
        endpoint = normalize_endpoint(env[ENDPOINT_ENV])
    else:
        endpoint = DEFAULT_ENDPOINT if protocol == GRPC else DEFAULT_HTTP_ENDPOINT
    token = ""
    if not env.get("OTEL_EXPORTER_OTLP_HEADERS") and env.get(TOKEN_FILE_ENV):
        token = read_token(env[TOKEN_FILE_ENV])
    ca_file = "" if env.get("OTEL_EXPORTER_OTLP_CERTIFICATE") else env.get(CA_FILE_ENV, "")
    return ExportSettings(endpoint, protocol, token, ca_file)


def default_service_name() -> str:
    """The script's file name without ``.py`` (``python-agent`` for ``python -c``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    name = name.removesuffix(".py")
    return name if name and name != "-c" else "python-agent"


def resource_attributes(
    env: Mapping[str, str],
    service_name: str,
    task_id: str | None = None,
    ticket_id: str | None = None,
) -> dict[str, str]:
    """The run's resource: ``OTEL_RESOURCE_ATTRIBUTES`` (cc-launch's ``task.id`` /
    ``ticket.id`` when the script runs directly under it) without an outer run's stamps, then
    this run's stamps, the kind marker, ``service.name`` and the ids given."""
    inherited = parse_resource_attributes(env.get(RESOURCE_ENV))
    attributes = {k: v for k, v in inherited.items() if k not in RUN_KEYS}
    attributes.update(stamps(env))
    attributes[KIND_KEY] = PYTHON_AGENT
    attributes["service.name"] = service_name
    if task_id:
        attributes["task.id"] = task_id
    if ticket_id:
        attributes["ticket.id"] = ticket_id
    return attributes


def debug_enabled(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in DEBUG_ENVS)


def capture_content(env: Mapping[str, str]) -> bool:
    """Whether the user asked for prompt and completion text
    (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: ``true`` or a content mode)."""
    value = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    return value not in ("", "false", "0", "no_content")
