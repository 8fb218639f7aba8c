"""Instrument the model clients that are installed: OpenAI (the official
``opentelemetry-instrumentation-openai-v2``, plus ``agent_otel.openai_responses`` for the
Responses API it does not cover yet) and Anthropic.

Anthropic: the OpenTelemetry project publishes no Anthropic instrumentation; the PyPI package
``opentelemetry-instrumentation-anthropic`` is OpenLLMetry's (Traceloop), the maintained one.
It records prompts and completions unless ``TRACELOOP_TRACE_CONTENT=false``, so that variable
is set from ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` when the user has not set
it: no message text unless the user turns it on, for every client alike.

A client or instrumentation that is missing, or fails to instrument, is skipped: the script
runs as it would without ``agent_otel``.
"""

from __future__ import annotations

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
        import anthropic  # noqa: F401  (the instrumentation imports it lazily)
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

        env.setdefault("TRACELOOP_TRACE_CONTENT", "true" if capture_content(env) else "false")
        AnthropicInstrumentor().instrument(**providers)
        done.append("anthropic")
    except Exception as exc:
        log.debug("anthropic instrumentation skipped: %s", exc)
    return done
