"""Telemetry for your own Python agents, in the same tree as the Claude Code tool call (or
codex run) that started them.

    import agent_otel
    agent_otel.configure(service_name="triage-bot")

One call sets up the OpenTelemetry SDK (traces, metrics, logs over OTLP to
``OTEL_EXPORTER_OTLP_ENDPOINT``, else cc-launch's receiver, else 127.0.0.1:4317), starts the
run's root span as a child of ``TRACEPARENT``, stamps the resource like the codex shim does
(``agent.run.id``, ``agent.parent.session.id``, ``agent.parent.span.id``, ``cc.launch.id``,
``agent.kind=python_agent``), instruments the OpenAI and Anthropic clients when installed
(model, token usage, duration; message text only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``) and flushes at exit.

It never breaks the script: without the SDK (``pip install 'agent-otel-receiver[sdk]'``) it
says so once on stderr and does nothing; with the receiver down, exports are dropped quietly
and the exit waits at most a few seconds. Importing this package needs neither the SDK nor the
receiver's server dependencies.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from agent_otel.environment import default_service_name

if TYPE_CHECKING:
    from agent_otel.providers import AgentRun

__all__ = ["configure"]

_run: AgentRun | None = None


def configure(
    service_name: str | None = None,
    *,
    task_id: str | None = None,
    ticket_id: str | None = None,
) -> AgentRun | None:
    """Set up telemetry for this process, once (later calls return the first run).

    ``service_name`` defaults to the script's name; ``task_id`` / ``ticket_id`` are stamped on
    the resource (cc-launch's are inherited when the script runs directly under it, and the
    receiver takes the launch's otherwise). Returns the run (its ``run_id`` names it in the
    receiver), or None when the OpenTelemetry SDK is not installed or cannot be set up (said
    on stderr).
    """
    global _run
    if _run is not None:
        return _run
    try:
        from agent_otel.providers import start
    except ImportError as exc:
        print(
            f"agent_otel: no telemetry ({exc.name or exc} is not installed); "
            "pip install 'agent-otel-receiver[sdk]'",
            file=sys.stderr,
        )
        return None
    try:
        _run = start(service_name or default_service_name(), task_id, ticket_id)
    except Exception as exc:  # e.g. an unreadable CA file: the script runs on, untraced
        print(f"agent_otel: no telemetry ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return _run
