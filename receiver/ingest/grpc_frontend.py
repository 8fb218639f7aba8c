"""The OTLP/gRPC front end: TraceService, MetricsService and LogsService ``Export``, plus the
standard gRPC health service.

It only receives bytes and answers; decoding and storage live in the pipeline. Requests are
taken as raw bytes (no generated deserializer) so that an undecodable body is answered
``INVALID_ARGUMENT`` with a message, instead of grpc's generic ``INTERNAL``. gzip and deflate
request compression are handled by grpc itself.

Security (README "Security"): ``Export`` calls are checked for a bearer token in the
``authorization`` metadata when tokens are configured (``receiver.ingest.auth``; the health service
stays open), TLS / mTLS come from ``receiver.ingest.tls``, and requests over the input limits get
``RESOURCE_EXHAUSTED`` (``receiver.ingest.limits``).

Memory (``receiver.ingest.admission``): ``Export`` is served as a stream-unary method (a unary
call on the wire, the same for clients) so that the request message is read only once the
admission gate lets the call in; until then grpc holds no more of it than the HTTP/2 flow
control window, kept small (16 KiB, no bandwidth-delay probing). grpc's own
``maximum_concurrent_rpcs`` backs the gate up against a flood.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from receiver.config import ConfigError, how_to_set
from receiver.delivery.deliver import Unavailable
from receiver.ingest.admission import Admission
from receiver.ingest.auth import UNAUTHENTICATED_MESSAGE, Authenticator, Unauthenticated
from receiver.ingest.limits import LimitExceeded
from receiver.ingest.otlp import SERVICES, export_response, invalid_request_message
from receiver.ingest.pipeline import Pipeline

log = structlog.get_logger("receiver.grpc")


def retry_info_metadata(retry_after: float, message: str) -> tuple[tuple[str, bytes], ...]:
    """``grpc-status-details-bin`` carrying a RetryInfo, which OTLP clients honour as the
    minimum delay before they retry an UNAVAILABLE answer."""
    retry_info = error_details_pb2.RetryInfo()
    retry_info.retry_delay.FromMilliseconds(int(retry_after * 1000))
    status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message=message)
    status.details.add().Pack(retry_info)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def _export_handler(
    pipeline: Pipeline,
    signal: str,
    authenticator: Authenticator | None,
    admission: Admission,
    max_receive_bytes: int,
) -> grpc.RpcMethodHandler:
    response_type = SERVICES[signal].response_type
    accepted = response_type()  # the answer when nothing was rejected: built once, never changed

    async def export(_: Any, context: grpc.aio.ServicerContext) -> Any:
        tenant = ""
        if authenticator is not None and authenticator.enabled:
            try:
                tenant = authenticator.authenticate(_authorization(context), "grpc")
            except Unauthenticated:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        try:
            # The size is known once the message is read: charged the largest until then.
            async with admission.admit(signal, max_receive_bytes) as ticket:
                body = await context.read()
                if body is grpc.aio.EOF:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
                await ticket.resize(len(body))
                decoded = await pipeline.export(signal, body, tenant)
        except LimitExceeded as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except DecodeError as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, invalid_request_message(signal, exc)
            )
        except Unavailable as exc:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                str(exc),
                trailing_metadata=retry_info_metadata(exc.retry_after, str(exc)),
            )
        return export_response(signal, decoded) if decoded.rejected else accepted

    return grpc.stream_unary_rpc_method_handler(
        export, request_deserializer=None, response_serializer=response_type.SerializeToString
    )


class GrpcFrontEnd:
    """An aio gRPC server bound to one address."""

    def __init__(
        self,
        pipeline: Pipeline,
        listen: str,
        max_receive_bytes: int,
        authenticator: Authenticator | None = None,
        credentials: grpc.ServerCredentials | None = None,
        admission: Admission | None = None,
    ) -> None:
        admission = admission or Admission()
        self._server = grpc.aio.server(
            # admitted + waiting calls, and room for health checks
            maximum_concurrent_rpcs=2 * admission.max_requests + 16
            if admission.max_requests
            else None,
            options=[
                ("grpc.max_receive_message_length", max_receive_bytes),
                # A second receiver on the same port must fail, not silently share it.
                ("grpc.so_reuseport", 0),
                # A call waiting for admission must hold little, but grpc reads ahead on each
                # stream (64 KiB by default) and bandwidth-delay probing widens the windows
                # on a fast link. Reading ahead 16 KiB without probing took RSS at 2 x 512
                # calls in flight from 326 to 268 MB at the same throughput on loopback
                # (docs/BENCHMARKS.md, round 3); a distant client's large message takes more
                # round trips to arrive.
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", 16 * 1024),
            ],
        )
        handlers: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for signal, spec in SERVICES.items():
            handlers[spec.service] = {
                "Export": _export_handler(
                    pipeline, signal, authenticator, admission, max_receive_bytes
                )
            }
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(s, h) for s, h in handlers.items()]
        )
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._listen = listen
        try:
            if credentials is None:
                self.port = self._server.add_insecure_port(listen)
            else:
                self.port = self._server.add_secure_port(listen, credentials)
        except RuntimeError as exc:
            raise ConfigError(
                f"grpc_listen: cannot listen on {listen} (address in use or not local): {exc}; "
                f"choose another with {how_to_set('grpc_listen')}"
            ) from None

    async def start(self) -> None:
        await self._server.start()
        for service in ["", *(spec.service for spec in SERVICES.values())]:
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def set_serving(self, serving: bool) -> None:
        """Follow the receiver's health (``receiver.ops.health``); on the event loop."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

        async def update() -> None:
            for service in ["", *(spec.service for spec in SERVICES.values())]:
                await self._health.set(service, status)

        self._health_update = asyncio.get_running_loop().create_task(update())

    async def stop(self, grace: float) -> None:
        """Stop taking new calls, let calls in progress finish within ``grace`` seconds."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
