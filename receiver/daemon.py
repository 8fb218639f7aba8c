"""The receiver daemon: ClickHouse (embedded or remote), schema, pipeline and front ends,
started in that order and stopped in reverse, so nothing is accepted before it can be stored
and nothing accepted is dropped on the way down."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import platform
import signal
from dataclasses import dataclass

import structlog
from clickhouse_connect.driver.client import Client

from receiver.config import ConfigError, Settings
from receiver.delivery.batch import Batcher
from receiver.delivery.deadletter import DeadLetters
from receiver.delivery.deliver import Delivery
from receiver.delivery.partitions import max_partitions_per_insert
from receiver.delivery.spool import Spool
from receiver.ingest import tls
from receiver.ingest.admission import INFLIGHT_BYTES, INFLIGHT_REQUESTS, Admission
from receiver.ingest.auth import Authenticator, check_exposure, load_tokens
from receiver.ingest.fastpath import decoder_in_use
from receiver.ingest.grpc_frontend import GrpcFrontEnd
from receiver.ingest.http_frontend import HttpFrontEnd
from receiver.ingest.limits import Limits
from receiver.ingest.pipeline import Pipeline
from receiver.ops.health import Health
from receiver.ops.ports import check_listen_free
from receiver.ops.selfmetrics import QUEUE_BYTES, SPOOL_BYTES, SPOOL_FILES, MetricsServer, watch
from receiver.processors.redact import Redactor
from receiver.processors.stitch import RunResolver, stitch
from receiver.query.alerts import AlertEvaluator, check_rules
from receiver.store.codex_prices import store_prices
from receiver.store.credentials import Credentials, clickhouse_credentials, safe_url
from receiver.store.drift import check_schema
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.schema import apply_schema
from receiver.store.sink import ClickHouseSink, connect
from receiver.store.tables import TABLE_COLUMNS
from receiver.store.unreachable import ClickHouseUnreachable, cause
from receiver.web.app import UiServer
from receiver.web.login import check_ui_exposure
from receiver.web.queries import connect_readonly

log = structlog.get_logger("receiver.daemon")


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
    delivery: Delivery | None = None
    batcher: Batcher | None = None
    grpc: GrpcFrontEnd | None = None
    http: HttpFrontEnd | None = None
    resolver: RunResolver | None = None
    authenticator: Authenticator | None = None
    metrics: MetricsServer | None = None
    health: Health | None = None
    alerts: AlertEvaluator | None = None
    ui: UiServer | None = None

    @property
    def clickhouse_url(self) -> str:
        return self.embedded.url if self.embedded else self.settings.clickhouse_url

    @property
    def clickhouse_credentials(self) -> Credentials:
        if self.embedded:
            return self.embedded.credentials
        return clickhouse_credentials(self.settings)

    def connect(self) -> Client:
        """A ClickHouse client with the configured credentials (blocking: run in a thread).

        In cluster mode inserts into the Distributed tables wait until the shards have the
        rows, so an acknowledged request is durable there too.
        """
        extra = {"distributed_foreground_insert": 1} if self.settings.clickhouse_cluster else {}
        return connect(self.clickhouse_url, credentials=self.clickhouse_credentials, **extra)

    def _first_connection(self) -> Client:
        """``connect``, failing with one line that names the URL and the cause."""
        try:
            return self.connect()
        except Exception as exc:
            where = "the embedded ClickHouse at" if self.embedded else "ClickHouse at"
            setting = "" if self.embedded else " (clickhouse.url, --clickhouse-url)"
            raise ClickHouseUnreachable(
                f"cannot reach {where} {safe_url(self.clickhouse_url)}{setting}: {cause(exc)}"
            ) from None

    def reload_tokens(self) -> None:
        """SIGHUP: re-read the bearer tokens (rotation without a restart)."""
        if self.authenticator is None:
            return
        try:
            tokens = load_tokens(self.settings)
        except ConfigError as exc:
            log.error("tokens_not_reloaded", error=str(exc))
            return
        if not tokens and self.authenticator.enabled:
            log.error("tokens_not_reloaded", error="no token left: keeping the current ones")
            return
        self.authenticator.replace(tokens)
        log.info("tokens_reloaded", tokens=len(tokens))

    async def start(self) -> None:
        s = self.settings
        # Security settings first: a refused configuration must not start ClickHouse.
        tokens = load_tokens(s)
        for warning in check_exposure(s, tokens) + check_ui_exposure(s, tokens):
            log.warning("security_warning", message=warning)
        self.authenticator = Authenticator(tokens)
        grpc_credentials = tls.grpc_credentials(s)
        ssl_context = tls.server_context(s)
        for setting in ("grpc_listen", "http_listen", "metrics_listen"):
            if getattr(s, setting):  # busy ports stop start-up before ClickHouse starts
                check_listen_free(getattr(s, setting), setting)
        if s.uses_embedded_clickhouse:
            self.embedded = await asyncio.to_thread(start_embedded_clickhouse, s)
        client = await asyncio.to_thread(self._first_connection)
        applied = await asyncio.to_thread(apply_schema, client, s.clickhouse_database, s)
        migrated = await asyncio.to_thread(check_schema, client, s.clickhouse_database, s)
        log.info(
            "schema_ready", database=s.clickhouse_database, newly_applied=applied, changed=migrated
        )
        # Alert rules are checked by ClickHouse before anything is accepted (a bad one: exit 2).
        await asyncio.to_thread(check_rules, client, s.clickhouse_database, s.alerts)
        await asyncio.to_thread(store_prices, client, s.clickhouse_database, s.codex_prices)
        self.sink = ClickHouseSink(client, s.clickhouse_database)
        spool = Spool(s.spool_dir, s.spool_max_bytes)
        if len(spool):
            log.info("spool_found", files=len(spool), bytes=spool.bytes)
        dead_letters = DeadLetters(s.dead_letter_dir, s.deadletter_max_bytes)
        dead_letters.watch()
        self.health = Health()
        self.delivery = Delivery(
            self.sink,
            spool,
            dead_letters,
            self.health,
            ack_timeout=s.delivery_ack_timeout,
            max_attempts=s.delivery_max_attempts,
            max_partitions=await asyncio.to_thread(max_partitions_per_insert, client),
        )
        self.delivery.start()
        self.batcher = Batcher(
            self.delivery,
            TABLE_COLUMNS,
            s.batch_max_rows,
            s.batch_max_delay,
            s.batch_max_queue_bytes,
            idle_rows=s.batch_idle_rows,
            idle_delay=s.batch_idle_delay,
        )
        pipeline = Pipeline(
            self.batcher,
            processors=[Redactor.from_settings(s).process, stitch],
            limits=Limits.from_settings(s),
        )
        self.resolver = RunResolver(await asyncio.to_thread(self.connect), s.clickhouse_database)
        self.resolver.start()
        admission = Admission.from_settings(s)  # one gate for both front ends
        self.grpc = GrpcFrontEnd(
            pipeline,
            s.grpc_listen,
            s.grpc_max_receive_bytes,
            authenticator=self.authenticator,
            credentials=grpc_credentials,
            admission=admission,
        )
        loop = asyncio.get_running_loop()
        grpc_frontend = self.grpc
        self.health.on_change(
            lambda serving: loop.call_soon_threadsafe(grpc_frontend.set_serving, serving)
        )
        if s.http_listen:
            self.http = HttpFrontEnd(
                pipeline,
                s.http_listen,
                s.http_max_receive_bytes,
                s.shutdown_timeout,
                authenticator=self.authenticator,
                ssl_context=ssl_context,
                health=self.health,
                admission=admission,
            )
        watch(SPOOL_BYTES, lambda: spool.bytes)
        watch(SPOOL_FILES, lambda: spool.files)
        batcher = self.batcher
        watch(QUEUE_BYTES, lambda: batcher.queued_bytes)
        watch(INFLIGHT_BYTES, lambda: admission.bytes)
        watch(INFLIGHT_REQUESTS, lambda: admission.requests)
        if s.metrics_listen:
            self.metrics = MetricsServer(s.metrics_listen)
            await self.metrics.start()
        await self.grpc.start()
        if self.http:
            await self.http.start()
        if s.alerts:  # on its own thread with its own client: never on this event loop
            self.alerts = AlertEvaluator(self.connect, s.clickhouse_database, s.alerts)
            self.alerts.start()
        if s.ui_listen:  # its own thread and loop: a slow page never delays an acknowledgement
            self.ui = UiServer(
                s,
                lambda: connect_readonly(self.clickhouse_url, self.clickhouse_credentials),
                self.authenticator,
                ssl_context,
            )
            await asyncio.to_thread(self.ui.start)
        log.info(
            "receiver_started",
            grpc_port=self.grpc.port,
            grpc_listen=s.grpc_listen,
            http_port=self.http.port if self.http else None,
            http_listen=s.http_listen,
            clickhouse_url=safe_url(self.clickhouse_url),
            embedded_clickhouse=self.embedded is not None,
            metrics_port=self.metrics.port if self.metrics else None,
            ui_port=self.ui.port if self.ui else None,
            tls=ssl_context is not None,
            client_certificates=bool(s.tls_client_ca_file),
            auth_tokens=len(tokens),
            spool_dir=str(s.spool_dir),
            alert_rules=len(s.alerts),
            decoder=decoder_in_use(),
        )

    async def stop(self) -> None:
        """Stop accepting, make everything accepted durable, then stop ClickHouse.

        Requests waiting for their batch are answered as soon as the flush makes it durable;
        the whole shutdown is bounded by ``shutdown_timeout``.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout
        if self.alerts:
            await asyncio.to_thread(self.alerts.stop, 2.0)
        if self.ui:
            await asyncio.to_thread(self.ui.stop)
        try:
            async with asyncio.timeout_at(deadline - 1.0):
                http_stopping = asyncio.create_task(self.http.stop()) if self.http else None
                stopping = (
                    asyncio.create_task(self.grpc.stop(grace=self.settings.shutdown_timeout))
                    if self.grpc
                    else None
                )
                if self.batcher:
                    await self.batcher.flush()
                if http_stopping:
                    await http_stopping
                if stopping:
                    await stopping
        except TimeoutError:
            log.error("shutdown_timed_out", seconds=self.settings.shutdown_timeout)
        if self.resolver:
            await self.resolver.stop()
        if self.delivery:
            await self.delivery.stop()
        if self.sink:
            self.sink.close()
        if self.metrics:
            await self.metrics.stop()
        if self.embedded:
            remaining = max(deadline - asyncio.get_running_loop().time(), 1.0)
            await asyncio.to_thread(self.embedded.stop, remaining)
        log.info("receiver_stopped")


def tune_garbage_collector() -> None:
    """Keep the start-up's objects out of every later garbage collection.

    Rows wait about a second in their batch, so they outlive the young generations and the
    collector runs full collections often; each one used to walk every object of the
    start-up too (the protobuf, gRPC and ClickHouse client modules). Freezing what exists once
    the receiver is up took the collector from about 7 to 5 µs of CPU per item on the
    benchmark (docs/BENCHMARKS.md) at no memory cost. Raising the collection thresholds saved
    1-2 µs more but let cyclic garbage pile up (peak RSS +40 to +100 MB), so they stay at
    CPython's defaults.
    """
    gc.collect()
    gc.freeze()


_M_ARENA_MAX = -8  # glibc's mallopt() parameter number for the arena limit


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX=2`` would), unless the user set that.

    glibc gives each thread that allocates its own arena; the gRPC, insert and event-loop
    threads then keep freed memory in several arenas, and peak RSS under sustained load was
    about 30 MB higher (docs/BENCHMARKS.md). Must run before those threads start. Says
    whether it applied the cap (only glibc has it).
    """
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas))


_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter number for the mmap threshold


def fix_mmap_threshold(threshold: int = 64 * 1024) -> bool:
    """Serve allocations of ``threshold`` bytes and more from their own mappings (as
    ``MALLOC_MMAP_THRESHOLD_=65536`` would), unless the user set that.

    glibc raises its threshold to the largest block freed (up to 32 MiB), after which request
    bodies, protobuf arenas and insert buffers are carved out of the heap between long-lived
    rows, and the heap keeps ~50 MB of free holes it cannot give back. Fixed at 64 KiB, they
    go back to the system when freed: peak RSS at 2 x 512 requests in flight 290-300 MB against
    318-337 MB, no CPU change measured (docs/BENCHMARKS.md "Memory at 2 x 512"). Says whether
    it applied.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold))


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly; a second signal exits at once
    (the spool is consistent at every instant, so nothing durable is lost)."""
    limit_malloc_arenas()
    fix_mmap_threshold()
    receiver = Receiver(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            log.warning("second_signal_exiting_now", signal=signum)
            os._exit(128 + signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, receiver.reload_tokens)
    try:
        await receiver.start()
        tune_garbage_collector()
        await stopping.wait()
        log.info("shutdown_requested")
    finally:
        await receiver.stop()
