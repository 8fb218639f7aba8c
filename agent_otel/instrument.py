"""Instrument the model clients that are installed: OpenAI (the official
``opentelemetry-instrumentation-openai-v2``, plus ``agent_otel.openai_responses`` for the
Responses API it does not cover yet) and Anthropic.

Anthropic: the OpenTelemetry project publishes no Anthropic instrumentation, and none is
needed: the Anthropic SDK (``anthropic`` >= 1.14) traces its own API calls with the GenAI
conventions (scope ``com.anthropic.sdk.python``; model, ``gen_ai.usage.*``, metadata only)
through the global tracer provider that ``agent_otel`` sets. Message text is recorded only
with ``ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content``, which is set when the user turns
content on with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``. An older ``anthropic``
is instrumented by OpenLLMetry's ``opentelemetry-instrumentation-anthropic`` when the user has
installed it (it is not in the ``sdk`` extra: with a current SDK it would record every call
twice); it records message text unless ``TRACELOOP_TRACE_CONTENT=false``, so that is set from
the same switch.

A client or instrumentation that is missing, or fails to instrument, is skipped: the script
runs as it would without ``agent_otel``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import MutableMapping

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from agent_otel import openai_responses
from agent_otel.environment import capture_content

log = logging.getLogger("agent_otel")


def instrument_clients(
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    logger_provider: LoggerProvider,
    env: MutableMapping[str, str] = os.environ,
) -> list[str]:
    """Instrument what is installed; the names of the instrumented clients."""
    providers = {
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "logger_provider": logger_provider,
    }
    done: list[str] = []
    try:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
        done.append("openai")
    except Exception as exc:  # not installed, or incompatible with the installed openai
        log.debug("openai instrumentation skipped: %s", exc)
    try:
        tracer = tracer_provider.get_tracer(openai_responses.SCOPE)
        meter = meter_provider.get_meter(openai_responses.SCOPE)
        if openai_responses.instrument(tracer, meter):
            done.append("openai.responses")
    except Exception as exc:
        log.debug("openai responses instrumentation skipped: %s", exc)
    try:
        done.append(_anthropic(providers, env))
    except Exception as exc:
        log.debug("anthropic instrumentation skipped: %s", exc)
    return done


def _anthropic(providers: dict[str, object], env: MutableMapping[str, str]) -> str:
    """Turn on what traces the Anthropic client; what it was (raises when nothing can)."""
    if importlib.util.find_spec("anthropic") is None:
        raise ImportError("anthropic is not installed")
    if importlib.util.find_spec("anthropic._tracing") is not None:
        if capture_content(env):
            env.setdefault("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", "content")
        return "anthropic (its own tracing)"
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    env.setdefault("TRACELOOP_TRACE_CONTENT", "true" if capture_content(env) else "false")
    AnthropicInstrumentor().instrument(**providers)
    return "anthropic (opentelemetry-instrumentation-anthropic)"
