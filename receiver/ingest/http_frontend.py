"""The OTLP/HTTP front end: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with
``application/x-protobuf`` or ``application/json`` bodies, plus ``GET /health``.

Like the gRPC front end it only receives bytes and answers. An OTLP/JSON body is turned into
the protobuf Export request and serialized, so the pipeline gets the same bytes a gRPC or
HTTP/protobuf client would have sent and every transport yields identical rows. The answer
uses the request's content type, with the status codes the OTLP/HTTP specification gives:
200 with the Export response (and partial success when items were rejected), 400 with a
``google.rpc.Status`` for an undecodable body, 413 over the size limit, 415 for an unknown
content type or encoding, 404 and 405 for other paths and methods, and 503 with
``Retry-After`` when the receiver cannot make the data durable now. With tokens configured, an
aiohttp middleware answers 401 (``WWW-Authenticate: Bearer``) on the OTLP paths without a valid
``Authorization: Bearer`` header (``receiver.ingest.auth``; ``/health`` stays open); TLS and
mTLS come from ``receiver.ingest.tls``; requests over the input limits get 413
(``receiver.ingest.limits``).

``POST /v1/hooks`` takes a Claude Code or Codex hook payload (``receiver.ingest.hooks``): it
becomes one OTLP log record and goes through the same pipeline, authentication and limits, is
made durable at once (the agent waits for the answer) and is answered ``{}`` (a hook answer
must never steer the agent); a body that is not a hook payload gets 400 naming the problem.

Every OTLP and hook request passes the admission gate (``receiver.ingest.admission``) before
its body is read: charged its Content-Length when that is its size (uncompressed), else the
largest accepted body until it is read; 503 with ``Retry-After`` when too much is in flight.

Why aiohttp: it is asyncio-native, so the server runs on the daemon's event loop next to
grpc.aio and the batcher and a request simply awaits ``Pipeline.export`` as the gRPC handler
does (no second loop, no ASGI layer); it is mature and actively maintained
(aio-libs, regular security releases); it parses HTTP with a C parser (llhttp) and does
keep-alive, ``Expect: 100-continue`` and graceful shutdown itself; and it exposes the request
body as a stream. The last point decides it: with its automatic decompression off, the body
is inflated here chunk by chunk with a hard output cap, so a gzip bomb is refused with 413
after at most the limit, never inflated in full. uvicorn (+ Starlette) is as fast but
wants to own the loop and signal handling and adds the ASGI layer; hypercorn and the
standard library's threaded ``http.server`` are slower and do not fit the asyncio daemon.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import math
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import hdrs, web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2

from receiver.config import ConfigError, how_to_set, parse_host_port
from receiver.delivery.deliver import Unavailable
from receiver.ingest.admission import READ_TIMEOUT, Admission, Overloaded, Ticket
from receiver.ingest.auth import UNAUTHENTICATED_MESSAGE, Authenticator, Unauthenticated
from receiver.ingest.hooks import HOOKS_PATH, BadHookPayload, hook_request
from receiver.ingest.limits import LimitExceeded
from receiver.ingest.otlp import SERVICES, export_response, invalid_request_message
from receiver.ingest.pipeline import Pipeline
from receiver.ops.health import Health
from receiver.ops.selfmetrics import REQUESTS_REJECTED

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_CONTENT_TYPES = {PROTOBUF: "protobuf", JSON: "json"}
# otel_receiver_requests_rejected_total's reason for a request refused before decoding.
_REJECTION_REASONS = {
    400: "undecodable",  # bad JSON, bad ids, bad compressed data
    413: "too_large",
    415: "unsupported_media_type",  # Content-Type or Content-Encoding
    408: "read_timeout",  # body not received within admission.READ_TIMEOUT
}
_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_LISTEN_BACKLOG = 1024
_OTLP_PATHS = frozenset(spec.http_path for spec in SERVICES.values())
_AUTHENTICATED_PATHS = _OTLP_PATHS | {HOOKS_PATH}


class HttpError(Exception):
    """An answer other than 200: HTTP status, ``google.rpc.Code`` and message."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _bad_request(message: str) -> HttpError:
    return HttpError(400, code_pb2.INVALID_ARGUMENT, message)


# --- OTLP/JSON -----------------------------------------------------------------------------

# Where the ids live in each Export request, as (id fields, {child field: child node}).
# OTLP/JSON writes these as hex; protobuf's JSON mapping (json_format) expects base64. Every
# other bytes field (``bytesValue``) stays base64, as the OTLP specification says.
_Node = tuple[tuple[str, ...], dict[str, Any]]
_LINK: _Node = (("traceId", "spanId"), {})
_SPAN: _Node = (("traceId", "spanId", "parentSpanId"), {"links": _LINK})
_LOG_RECORD: _Node = (("traceId", "spanId"), {})
_POINT: _Node = ((), {"exemplars": (("traceId", "spanId"), {})})
_METRIC: _Node = (
    (),
    {
        kind: ((), {"dataPoints": _POINT})
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram")
    },
)
ID_FIELDS: dict[str, _Node] = {
    "traces": ((), {"resourceSpans": ((), {"scopeSpans": ((), {"spans": _SPAN})})}),
    "logs": ((), {"resourceLogs": ((), {"scopeLogs": ((), {"logRecords": _LOG_RECORD})})}),
    "metrics": ((), {"resourceMetrics": ((), {"scopeMetrics": ((), {"metrics": _METRIC})})}),
}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


@functools.cache
def _names(camel: str) -> tuple[str, ...]:
    """The lowerCamelCase name OTLP/JSON uses, and the proto name json_format also takes."""
    snake = _CAMEL_HUMP.sub("_", camel).lower()
    return (camel, snake) if snake != camel else (camel,)


def _hex_ids_to_base64(value: Any, node: _Node, path: str) -> None:
    """Rewrite, in place, every hex id under ``value`` into the base64 json_format wants."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            _hex_ids_to_base64(item, node, f"{path}[{index}]")
        return
    if not isinstance(value, dict):
        return  # not an object: json_format reports the type error with its own message
    id_fields, children = node
    for camel in id_fields:
        for name in _names(camel):
            raw = value.get(name)
            if raw is None:
                continue
            where = f"{path}.{name}" if path else name
            if not isinstance(raw, str) or not _HEX.fullmatch(raw):
                shown = repr(raw) if len(repr(raw)) <= 80 else repr(raw)[:77] + "..."
                raise _bad_request(f"{where}: {shown} is not a hex string (OTLP/JSON ids are hex)")
            value[name] = base64.b64encode(bytes.fromhex(raw)).decode("ascii")
    for camel, child in children.items():
        for name in _names(camel):
            if name in value:
                _hex_ids_to_base64(value[name], child, f"{path}.{name}" if path else name)


def json_to_protobuf(signal: str, body: bytes) -> bytes:
    """The protobuf bytes of the Export request an OTLP/JSON body holds.

    OTLP/JSON is protobuf's JSON mapping with lowerCamelCase names, integer enums, 64-bit
    integers as strings or numbers, and hex (not base64) trace and span ids; unknown fields
    are ignored. Raises HttpError (400) naming what is wrong.
    """
    request_type = SERVICES[signal].request_type
    try:
        document = json.loads(body) if body and not body.isspace() else {}
    except (ValueError, RecursionError) as exc:
        raise _bad_request(invalid_request_message(signal, f"invalid JSON: {exc}")) from None
    if not isinstance(document, dict):
        raise _bad_request(invalid_request_message(signal, "the JSON body is not an object"))
    _hex_ids_to_base64(document, ID_FIELDS[signal], "")
    message = request_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise _bad_request(invalid_request_message(signal, e)) from None
    return message.SerializeToString()


# --- bodies ----------------------------------------------------------------------------------


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        code_pb2.RESOURCE_EXHAUSTED,
        f"request body is over the limit of {limit} bytes (counted after decompression)",
    )


class _Inflater:
    """Streaming gzip / deflate decompression that never produces more than the limit."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._limit = limit
        self._head = b""
        self._fed = False
        self._inflater: Any = zlib.decompressobj(_GZIP_WBITS) if self._gzip else None

    def feed(self, data: bytes, out: bytearray) -> None:
        """Inflate ``data`` onto ``out``; raise 413 as soon as ``out`` passes the limit."""
        self._fed = self._fed or bool(data)
        if self._inflater is None:
            # HTTP "deflate" is the zlib format; some clients send raw deflate. Tell them
            # apart by the two-byte zlib header.
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            zlib_header = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        while data:
            if self._inflater.eof:
                if not self._gzip:
                    raise _bad_request("data after the end of the deflate stream")
                self._inflater = zlib.decompressobj(_GZIP_WBITS)  # the next gzip member
            try:
                # At most one byte past the limit: enough to know it was passed.
                out += self._inflater.decompress(data, self._limit - len(out) + 1)
            except zlib.error as exc:
                raise _bad_request(f"request body is not valid compressed data: {exc}") from None
            if len(out) > self._limit:
                raise _too_large(self._limit)
            data = self._inflater.unconsumed_tail or self._inflater.unused_data

    def finish(self) -> None:
        if not self._fed:
            return  # an empty body is an empty request, whatever its encoding says
        if self._inflater is None or not self._inflater.eof:
            raise _bad_request("request body is truncated compressed data")


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, decompressed, at most ``limit`` bytes; raises HttpError."""
    encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower() or "identity"
    if encoding not in _ENCODINGS:
        raise HttpError(
            415,
            code_pb2.INVALID_ARGUMENT,
            f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none",
            {hdrs.ACCEPT_ENCODING: "gzip, deflate"},
        )
    inflater = None if encoding == "identity" else _Inflater(encoding, limit)
    # Compressed bytes may exceed the inflated size a little (incompressible data).
    wire_limit = limit if inflater is None else limit + limit // 1024 + 1024
    if request.content_length is not None and request.content_length > wire_limit:
        raise _too_large(limit)
    body = bytearray()
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        if received > wire_limit:
            raise _too_large(limit)
        if inflater is None:
            body += chunk
        else:
            inflater.feed(chunk, body)
    if inflater is not None:
        inflater.finish()
    return bytes(body)


# --- responses -------------------------------------------------------------------------------


def _unavailable(exc: Unavailable) -> HttpError:
    """503 with ``Retry-After``: the client should send the request again later."""
    return HttpError(
        503,
        code_pb2.UNAVAILABLE,
        str(exc),
        {hdrs.RETRY_AFTER: str(max(1, math.ceil(exc.retry_after)))},
    )


def _media_type(request: web.BaseRequest) -> str:
    return request.headers.get(hdrs.CONTENT_TYPE, "").split(";", 1)[0].strip().lower()


def _encode(message: Any, media_type: str) -> web.Response:
    if media_type == PROTOBUF:
        return web.Response(body=message.SerializeToString(), content_type=PROTOBUF)
    text = json_format.MessageToJson(message, indent=None)
    return web.Response(body=text.encode(), content_type=JSON)


def _error_response(error: HttpError, media_type: str) -> web.Response:
    """A ``google.rpc.Status`` body in the request's content type (JSON when unknown)."""
    status = status_pb2.Status(code=error.code, message=error.message)
    response = _encode(status, media_type if media_type in _CONTENT_TYPES else JSON)
    response.set_status(error.status)
    response.headers.update(error.headers)
    return response


class HttpFrontEnd:
    """An aiohttp server bound to one address, on the running event loop."""

    def __init__(
        self,
        pipeline: Pipeline,
        listen: str,
        max_receive_bytes: int,
        shutdown_timeout: float = 10.0,
        authenticator: Authenticator | None = None,
        ssl_context: ssl.SSLContext | None = None,
        health: Health | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission or Admission()
        self._receiver_health = health
        self._authenticator = authenticator
        self._ssl_context = ssl_context
        self._limit = max_receive_bytes
        self._serving = False
        self._socket = _bind(listen)
        self.port: int = self._socket.getsockname()[1]
        app = web.Application(middlewares=[self._authenticate])
        for signal, spec in SERVICES.items():
            app.router.add_route("*", spec.http_path, self._export_route(signal))
        app.router.add_route("*", HOOKS_PATH, self._hook)
        app.router.add_route("*", "/health", self._health)
        app.router.add_route("*", "/{path:.*}", self._not_found)
        self._runner = web.AppRunner(
            app,
            access_log=None,  # one log line per request would drown the meaningful events
            auto_decompress=False,  # decompressed here, under the size limit
            handle_signals=False,  # the daemon owns SIGTERM / SIGINT
            shutdown_timeout=shutdown_timeout,
        )

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(
            self._runner, self._socket, backlog=_LISTEN_BACKLOG, ssl_context=self._ssl_context
        ).start()
        self._serving = True

    async def stop(self) -> None:
        """Stop listening, let requests in progress finish within the shutdown timeout."""
        self._serving = False
        await self._runner.cleanup()
        self._socket.close()  # already closed by the site once started; not before

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Bearer-token check on the OTLP paths (``/health`` stays open for load balancers);
        the token's tenant goes to the export as ``request["tenant"]``."""
        request["tenant"] = ""
        authenticator = self._authenticator
        if (
            authenticator is None
            or not authenticator.enabled
            or request.path not in _AUTHENTICATED_PATHS
        ):
            return await handler(request)
        try:
            request["tenant"] = authenticator.authenticate(
                request.headers.get(hdrs.AUTHORIZATION), "http"
            )
        except Unauthenticated:
            error = HttpError(
                401,
                code_pb2.UNAUTHENTICATED,
                UNAUTHENTICATED_MESSAGE,
                {hdrs.WWW_AUTHENTICATE: "Bearer"},
            )
            return _error_response(error, _media_type(request))
        return await handler(request)

    def _export_route(self, signal: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            media_type = _media_type(request)
            try:
                if request.method != hdrs.METH_POST:
                    REQUESTS_REJECTED.labels(signal, "method_not_allowed").inc()
                    raise HttpError(
                        405,
                        code_pb2.UNIMPLEMENTED,
                        f"{request.method} is not allowed on {request.path}; use POST",
                        {hdrs.ALLOW: hdrs.METH_POST},
                    )
                return await self._export(signal, request, media_type)
            except HttpError as error:
                return _error_response(error, media_type)

        return handle

    async def _export(self, signal: str, request: web.Request, media_type: str) -> web.Response:
        async with self._admitted(signal, request) as ticket:
            try:
                body = await self._protobuf_body(signal, request, media_type, ticket)
            except HttpError as error:
                # Counted here; what the pipeline and the gate refuse (undecodable protobuf,
                # limits, no room) they count themselves.
                reason = _REJECTION_REASONS.get(error.status, "invalid")
                REQUESTS_REJECTED.labels(signal, reason).inc()
                raise
            decoded = await self._store(signal, body, request["tenant"])
        return _encode(export_response(signal, decoded), media_type)

    @contextlib.asynccontextmanager
    async def _admitted(self, signal: str, request: web.Request) -> AsyncIterator[Ticket]:
        """Through the admission gate before the body is read; 503 when it is full."""
        size = request.content_length
        encoding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
        exact = size is not None and size <= self._limit and encoding in ("", "identity")
        if not exact:
            size = self._limit  # its size after decompression is known once read
        try:
            async with self._admission.admit(signal, size, exact) as ticket:
                yield ticket
        except Overloaded as exc:
            raise _unavailable(exc) from None

    async def _read(self, request: web.Request, ticket: Ticket) -> bytes:
        """The decompressed body, charged at its real size (Overloaded if it no longer fits).
        A body that takes longer than ``READ_TIMEOUT`` gets 408: a stalled upload must not
        hold its admission for ever."""
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                body = await read_body(request, self._limit)
        except TimeoutError:
            raise HttpError(
                408,
                code_pb2.DEADLINE_EXCEEDED,
                f"request body not received within {READ_TIMEOUT:g} s",
            ) from None
        await ticket.resize(len(body))
        return body

    async def _store(self, signal: str, body: bytes, tenant: str, urgent: bool = False) -> Any:
        """Hand an Export request to the pipeline; its failures as HTTP errors."""
        try:
            return await self._pipeline.export(signal, body, tenant, urgent)
        except LimitExceeded as exc:
            raise HttpError(413, code_pb2.RESOURCE_EXHAUSTED, str(exc)) from None
        except DecodeError as exc:
            raise _bad_request(invalid_request_message(signal, exc)) from None
        except Unavailable as exc:
            raise _unavailable(exc) from None

    async def _hook(self, request: web.Request) -> web.Response:
        """One hook call: stored as an ``otel_logs`` row, durable before the ``{}`` answer."""
        try:
            if request.method != hdrs.METH_POST:
                raise HttpError(
                    405,
                    code_pb2.UNIMPLEMENTED,
                    f"{request.method} is not allowed on {HOOKS_PATH}; use POST",
                    {hdrs.ALLOW: hdrs.METH_POST},
                )
            async with self._admitted("logs", request) as ticket:
                try:
                    body = await self._read(request, ticket)
                except HttpError as error:
                    if error.status == 413:
                        REQUESTS_REJECTED.labels("logs", "too_large").inc()
                    raise
                try:
                    logs = await asyncio.to_thread(hook_request, body, request.query.get("agent"))
                except BadHookPayload as exc:
                    REQUESTS_REJECTED.labels("logs", "undecodable").inc()
                    raise _bad_request(str(exc)) from None
                await self._store("logs", logs, request["tenant"], urgent=True)
        except HttpError as error:
            return _error_response(error, JSON)
        return web.json_response({})

    async def _protobuf_body(
        self, signal: str, request: web.Request, media_type: str, ticket: Ticket
    ) -> bytes:
        """The request body as protobuf bytes: content type checked, decompressed under the
        size limit, OTLP/JSON converted; raises HttpError."""
        kind = _CONTENT_TYPES.get(media_type)
        if kind is None:
            raise HttpError(
                415,
                code_pb2.INVALID_ARGUMENT,
                f"unsupported Content-Type {media_type or '(none)'!r}; use {PROTOBUF} or {JSON}",
            )
        body = await self._read(request, ticket)
        if kind == "json":
            body = await asyncio.to_thread(json_to_protobuf, signal, body)
        return body

    async def _health(self, request: web.Request) -> web.Response:
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return _error_response(
                HttpError(
                    405,
                    code_pb2.UNIMPLEMENTED,
                    f"{request.method} is not allowed on /health; use GET",
                    {hdrs.ALLOW: "GET, HEAD"},
                ),
                JSON,
            )
        health = self._receiver_health
        serving = self._serving and (health is None or health.serving)
        body: dict[str, Any] = {"status": "SERVING" if serving else "NOT_SERVING"}
        if health is not None and health.problems():
            body["problems"] = [
                {"problem": p.name, "severity": p.severity, "cause": p.cause, "fix": p.fix}
                for p in health.problems()
            ]
        return web.json_response(body, status=200 if serving else 503)

    async def _not_found(self, request: web.Request) -> web.Response:
        paths = ", ".join(spec.http_path for spec in SERVICES.values())
        error = HttpError(
            404,
            code_pb2.NOT_FOUND,
            f"no such endpoint {request.path}; OTLP/HTTP uses {paths} (hooks: {HOOKS_PATH})",
        )
        return _error_response(error, _media_type(request))


def _bind(listen: str) -> socket.socket:
    """A listening socket for ``listen``, or a ConfigError naming ``http_listen``.

    Bound and listening before anything starts, so a busy port stops start-up with a clear
    message; SO_REUSEADDR (not SO_REUSEPORT) lets a restart reuse the port while refusing a
    second receiver on it.
    """
    host, port = parse_host_port(listen, "http_listen")
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_LISTEN_BACKLOG)
    except OSError as exc:
        if sock is not None:
            sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"http_listen: cannot listen on {listen} ({reason}; address in use or not local); "
            f"choose another with {how_to_set('http_listen')}"
        ) from None
    sock.setblocking(False)
    return sock
