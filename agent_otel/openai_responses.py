"""Spans and metrics for the OpenAI Responses API (``client.responses.create`` / ``parse``).

The official instrumentation, ``opentelemetry-instrumentation-openai-v2`` (2.4b0, the newest
published), instruments chat completions and embeddings only: its Responses API code ships but
is not wired to ``Responses.create``. Until it is, this module wraps ``create`` (streamed or
not) and ``parse`` of ``Responses`` and ``AsyncResponses`` (not the ``stream()`` helper) with
what that instrumentation records for a chat call, on the GenAI semantic conventions: a
CLIENT span ``chat <model>`` with ``gen_ai.operation.name``, ``gen_ai.system``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``,
``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
``server.address`` / ``server.port``, and the histograms ``gen_ai.client.operation.duration``
and ``gen_ai.client.token.usage``.

It never records prompt or completion text. It steps aside when ``Responses.create`` is
already wrapped (a later official instrumentation), and it never changes what the call
returns or raises: a failure inside the telemetry is swallowed.
"""

from __future__ import annotations

import contextlib
import timeit
from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from wrapt import ObjectProxy, wrap_function_wrapper

SCOPE = "agent_otel.openai_responses"
# Bucket boundaries the GenAI semantic conventions recommend for the two histograms.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class _Call:
    """One ``create`` call: its span, its metric attributes, and how it ends."""

    def __init__(self, tracer: Tracer, histograms: _Histograms, instance: Any, kwargs: Any):
        model = kwargs.get("model")
        self.attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
        }
        if isinstance(model, str):
            self.attributes["gen_ai.request.model"] = model
        with contextlib.suppress(Exception):
            url = instance._client.base_url
            self.attributes["server.address"] = url.host
            if url.port:
                self.attributes["server.port"] = url.port
        span_attributes = dict(self.attributes)
        for key, name in (("temperature", "temperature"), ("top_p", "top_p")):
            if isinstance(kwargs.get(key), int | float):
                span_attributes[f"gen_ai.request.{name}"] = kwargs[key]
        if isinstance(kwargs.get("max_output_tokens"), int):
            span_attributes["gen_ai.request.max_tokens"] = kwargs["max_output_tokens"]
        name = f"chat {model}" if isinstance(model, str) else "chat"
        self.histograms = histograms
        self.span: Span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=span_attributes)
        self.started = timeit.default_timer()
        self.ended = False

    def finish(self, response: Any = None, error: BaseException | None = None) -> None:
        """End the span and record the metrics, once; never raises."""
        if self.ended:
            return
        self.ended = True
        try:
            self._finish(response, error)
        except Exception:  # telemetry must not break the user's call
            with contextlib.suppress(Exception):
                self.span.end()

    def _finish(self, response: Any, error: BaseException | None) -> None:
        span, attributes = self.span, dict(self.attributes)
        usage = getattr(response, "usage", None)
        if response is not None:
            if getattr(response, "model", None):
                attributes["gen_ai.response.model"] = response.model
            if getattr(response, "id", None):
                span.set_attribute("gen_ai.response.id", response.id)
            if getattr(response, "status", None):
                span.set_attribute("gen_ai.response.finish_reasons", [str(response.status)])
        if usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None)
            if isinstance(cached, int):
                span.set_attribute("gen_ai.usage.cache_read.input_tokens", cached)
        if error is not None:
            attributes["error.type"] = type(error).__qualname__
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        for key in ("gen_ai.response.model", "error.type"):
            if key in attributes:
                span.set_attribute(key, attributes[key])
        span.end()
        duration = max(timeit.default_timer() - self.started, 0.0)
        self.histograms.duration.record(duration, attributes=attributes)
        if usage is not None:
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
                self.histograms.tokens.record(
                    count, attributes={**attributes, "gen_ai.token.type": kind}
                )


class _Histograms:
    def __init__(self, meter: Meter) -> None:
        self.duration: Histogram = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.tokens: Histogram = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )


def _final_response(event: Any) -> Any:
    """The ``Response`` a terminal stream event carries, else None."""
    return getattr(event, "response", None) if getattr(event, "type", "") in _FINAL_EVENTS else None


class _CallStream(ObjectProxy):  # type: ignore[misc]
    """What both stream proxies share: the call whose span they end, and the final
    ``Response`` seen so far (its usage goes on the span)."""

    def __init__(self, stream: Any, call: _Call) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_response: Any = None

    def _seen(self, event: Any) -> Any:
        self._self_response = _final_response(event) or self._self_response
        return event

    def _end(self, error: BaseException | None = None) -> None:
        self._self_call.finish(self._self_response, error)


class _Stream(_CallStream):
    """A ``Stream`` of events that ends the call's span when the stream ends, fails or is
    closed, whether it is read with ``for`` or ``next()``."""

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> Any:
        try:
            event = next(self.__wrapped__)
        except StopIteration:
            self._end()
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        return self._seen(event)

    def __enter__(self) -> _Stream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        self._end()
        return self.__wrapped__.__exit__(*exc_info)

    def close(self) -> None:
        self._end()
        self.__wrapped__.close()


class _AsyncStream(_CallStream):
    """The ``AsyncStream`` counterpart of ``_Stream``."""

    def __aiter__(self) -> _AsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._end()
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        return self._seen(event)

    async def __aenter__(self) -> _AsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        self._end()
        return await self.__wrapped__.__aexit__(*exc_info)

    async def close(self) -> None:
        self._end()
        await self.__wrapped__.close()


def _start(tracer: Tracer, histograms: _Histograms, instance: Any, kwargs: Any) -> _Call | None:
    """A started call, or None when the telemetry itself fails (the call then runs bare)."""
    try:
        return _Call(tracer, histograms, instance, kwargs)
    except Exception:
        return None


def _returned(call: _Call, result: Any, stream: type[_CallStream] | None) -> Any:
    """What ``create`` hands back: a streamed result wrapped in ``stream``, which ends the span
    when the stream ends; else the result itself, its span ended now."""
    if stream is not None:
        return stream(result, call)
    call.finish(result)
    return result


def _sync_wrapper(tracer: Tracer, histograms: _Histograms) -> Callable[..., Any]:
    def create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(tracer, histograms, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        return _returned(call, result, _Stream if kwargs.get("stream") else None)

    return create


def _async_wrapper(tracer: Tracer, histograms: _Histograms) -> Callable[..., Any]:
    async def create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(tracer, histograms, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.finish(error=exc)
            raise
        return _returned(call, result, _AsyncStream if kwargs.get("stream") else None)

    return create


def instrument(tracer: Tracer, meter: Meter) -> bool:
    """Wrap ``create`` and ``parse`` of ``Responses`` and ``AsyncResponses``; False when openai
    is missing or ``Responses.create`` is already wrapped."""
    try:
        from openai.resources.responses import Responses
    except ImportError:
        return False
    if hasattr(Responses.create, "__wrapped__"):
        return False
    histograms = _Histograms(meter)
    module = "openai.resources.responses"
    for method in ("create", "parse"):  # parse: structured outputs, a Response all the same
        wrap_function_wrapper(module, f"Responses.{method}", _sync_wrapper(tracer, histograms))
        wrap_function_wrapper(
            module, f"AsyncResponses.{method}", _async_wrapper(tracer, histograms)
        )
    return True
