"""The receiver daemon: ClickHouse (embedded or remote), schema, pipeline and front ends,
started in that order and stopped in reverse, so nothing is accepted before it can be stored
and nothing accepted is dropped on the way down."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog

from receiver.batch import Batcher
from receiver.clickhouse_server import EmbeddedClickHouse
from receiver.config import Settings
from receiver.grpc_frontend import GrpcFrontEnd
from receiver.pipeline import Pipeline
from receiver.schema_apply import apply_schema
from receiver.sink import ClickHouseSink, connect
from receiver.tables import TABLE_COLUMNS

log = structlog.get_logger("receiver.daemon")

SHUTDOWN_GRACE_SECONDS = 5.0


def start_embedded_clickhouse(settings: Settings) -> EmbeddedClickHouse:
    """Start the embedded ClickHouse the settings describe; raises EmbeddedClickHouseError."""
    server = EmbeddedClickHouse(
        settings.clickhouse_data_dir,
        listen_host=settings.embedded_listen_host,
        http_port=settings.embedded_http_port,
        tcp_port=settings.embedded_tcp_port,
    )
    server.start()
    log.info(
        "clickhouse_started",
        url=server.url,
        tcp_port=server.tcp_port,
        data_dir=str(settings.clickhouse_data_dir),
    )
    return server


@dataclass
class Receiver:
    """A running receiver; ``start`` brings it up, ``stop`` takes it down without loss."""

    settings: Settings
    embedded: EmbeddedClickHouse | None = None
    sink: ClickHouseSink | None = None
    batcher: Batcher | None = None
    grpc: GrpcFrontEnd | None = None

    @property
    def clickhouse_url(self) -> str:
        return self.embedded.url if self.embedded else self.settings.clickhouse_url

    async def start(self) -> None:
        s = self.settings
        if s.uses_embedded_clickhouse:
            self.embedded = await asyncio.to_thread(start_embedded_clickhouse, s)
        client = await asyncio.to_thread(connect, self.clickhouse_url)
        applied = await asyncio.to_thread(apply_schema, client, s.clickhouse_database, s)
        log.info("schema_ready", database=s.clickhouse_database, newly_applied=applied)
        self.sink = ClickHouseSink(client, s.clickhouse_database)
        self.batcher = Batcher(self.sink.insert, TABLE_COLUMNS, s.batch_max_rows, s.batch_max_delay)
        pipeline = Pipeline(self.batcher, processors=[])
        self.grpc = GrpcFrontEnd(pipeline, s.grpc_listen, s.grpc_max_receive_bytes)
        await self.grpc.start()
        log.info(
            "receiver_started",
            grpc_port=self.grpc.port,
            grpc_listen=s.grpc_listen,
            clickhouse_url=self.clickhouse_url,
            embedded_clickhouse=self.embedded is not None,
        )

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish, flush, then stop ClickHouse."""
        if self.grpc:
            await self.grpc.stop(SHUTDOWN_GRACE_SECONDS)
        if self.batcher:
            await self.batcher.flush()
        if self.sink:
            self.sink.close()
        if self.embedded:
            await asyncio.to_thread(self.embedded.stop)
        log.info("receiver_stopped")


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly."""
    receiver = Receiver(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await receiver.start()
        await stopping.wait()
        log.info("shutdown_requested")
    finally:
        await receiver.stop()
