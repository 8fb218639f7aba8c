"""Hook payloads (Claude Code and Codex) as OTLP log records.

A coding agent's hooks say what its telemetry does not: that it waits for a person (a
permission prompt), what a tool was asked to do before it ran, why a session stopped, when a
subagent started or stopped, when the context was compacted. Claude Code posts a hook's JSON
itself (``type: "http"`` hooks, to ``POST /v1/hooks``); Codex runs command hooks, and
``receiver.agents.hook`` posts for it.

This module only turns one payload into the serialized ``ExportLogsServiceRequest`` of one log
record; the HTTP front end hands that to the same pipeline as OTLP, so input limits,
redaction (a Bash ``tool_input.command`` carries secrets as often as telemetry does),
stitching and the spool apply unchanged, and the row lands in ``otel_logs`` like any other
event:

- ``EventName`` ``claude_code.hook.<hook_event_name>`` (Codex: ``codex.hook.<...>``), set as
  the record's ``event_name``, which decode stores as it is;
- ``ServiceName`` ``claude-code`` (Codex: ``codex_exec``), as the agents name themselves in
  their own telemetry, so the row sits next to the session's other events;
- ``Timestamp`` the receive time (payloads carry none);
- ``LogAttributes``: every top-level field, the join keys renamed to the telemetry's names
  (``session_id`` -> ``session.id``, ``prompt_id`` -> ``prompt.id``; ``tool_use_id`` is
  already the name Claude Code's ``tool_result`` event uses), objects and arrays as compact
  JSON, plus ``agent`` (``claude`` or ``codex``); a Codex ``session_id`` (its thread id) is
  also ``conversation.id``, the attribute codex's own log events carry;
- resource ``service.name``, and for Codex under the codex shim ``agent.run.id`` (the helper
  sends the shim's stamp as ``agent_run_id``), so stitching files the row under the same run
  as codex's telemetry;
- ``Body`` the payload's JSON text as it arrived.

It never logs a payload: nothing here has been redacted yet.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO

HOOKS_PATH = "/v1/hooks"
AGENTS = {
    # agent -> (EventName prefix, ServiceName)
    "claude": ("claude_code.hook.", "claude-code"),
    "codex": ("codex.hook.", "codex_exec"),
}
DEFAULT_AGENT = "claude"
SCOPE_NAME = "agent-otel-receiver.hooks"
# Payload keys stored under the telemetry's own attribute names, so joins need no mapping.
RENAMED = {"session_id": "session.id", "prompt_id": "prompt.id"}
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_INT64 = range(-(2**63), 2**63)


class BadHookPayload(ValueError):
    """A hook payload that cannot be stored; the message names what is wrong."""


def agent_of(payload: dict[str, Any], query_agent: str | None) -> str:
    """Which agent sent the payload: the ``agent`` query parameter, else the payload's own
    ``agent`` field (the command-hook helper adds it), else Claude Code (whose http hooks
    post the bare payload)."""
    agent = query_agent or payload.get("agent") or DEFAULT_AGENT
    if agent not in AGENTS:
        raise BadHookPayload(f"agent: {agent!r} is not one of {', '.join(sorted(AGENTS))}")
    return str(agent)


def parse_payload(text: str) -> dict[str, Any]:
    """The payload object of a hook request; raises BadHookPayload naming the problem."""
    if not text or text.isspace():
        raise BadHookPayload("empty body: a hook payload is a JSON object")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadHookPayload(f"hook payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadHookPayload(f"hook payload is a JSON {type(payload).__name__}, not an object")
    name = payload.get("hook_event_name")
    if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise BadHookPayload(
            "hook_event_name: "
            + ("missing" if name is None else f"{shown} is not an event name like PreToolUse")
        )
    return payload


def _value(value: Any) -> AnyValue:
    """A JSON value as an attribute value: scalars typed, objects and arrays as JSON text."""
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int) and value in _INT64:
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def hook_attributes(payload: dict[str, Any], agent: str) -> dict[str, AnyValue]:
    """The record's attributes: every top-level field (join keys renamed), plus ``agent``.
    ``null`` fields are left out, as an absent attribute."""
    attributes = {
        RENAMED.get(key, key): _value(value)
        for key, value in payload.items()
        if value is not None and key
    }
    attributes["agent"] = AnyValue(string_value=agent)
    session = payload.get("session_id")
    if agent == "codex" and isinstance(session, str) and session:
        attributes["conversation.id"] = AnyValue(string_value=session)
    return attributes


def hook_resource(payload: dict[str, Any], agent: str) -> dict[str, str]:
    """Resource attributes: the agent's service name, and the codex shim's run id if sent."""
    resource = {"service.name": AGENTS[agent][1]}
    run_id = payload.get("agent_run_id")
    if agent == "codex" and isinstance(run_id, str) and run_id:
        resource["agent.run.id"] = run_id
    return resource


def hook_request(
    body: bytes, query_agent: str | None = None, received_ns: int | None = None
) -> bytes:
    """The serialized ``ExportLogsServiceRequest`` holding one hook call's log record.

    Raises BadHookPayload for a body that is not a hook payload.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadHookPayload(f"hook payload is not UTF-8: {exc}") from None
    payload = parse_payload(text)
    agent = agent_of(payload, query_agent)
    prefix = AGENTS[agent][0]
    now = received_ns or time.time_ns()
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in hook_resource(payload, agent).items():
        resource_logs.resource.attributes.append(
            KeyValue(key=key, value=AnyValue(string_value=value))
        )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = SCOPE_NAME
    record = scope_logs.log_records.add()
    record.time_unix_nano = now
    record.observed_time_unix_nano = now
    record.severity_number = SEVERITY_NUMBER_INFO
    record.severity_text = "INFO"
    record.event_name = prefix + payload["hook_event_name"]
    record.body.string_value = text
    for key, value in hook_attributes(payload, agent).items():
        record.attributes.append(KeyValue(key=key, value=value))
    return request.SerializeToString()
