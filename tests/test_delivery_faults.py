"""Delivery against a real ClickHouse, one fault per error class: a request spanning 150 day
partitions mixed with ordinary traffic (partition-shaped inserts), a broken schema
(configuration: never acknowledged, unhealthy, then recovered), and a ClickHouse that hangs
instead of refusing, with a client that retries like the OpenTelemetry SDK
(``delivery.ack_timeout``: answered from the spool before the client gives up, stored once).

Transient outages (ClickHouse stopped), data errors (a CHECK constraint) and corrupt spool
files are in ``test_faults.py``; the same harness serves both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from receiver.query.status import scrape

from .load import CHANNEL_OPTIONS, EXPORT, SpanLoad, spans_on_days, spans_request
from .receiver_process import ReceiverProcess, wait_for
from .test_faults import DATABASE, Harness, assert_stored_exactly_once, stored_counts


@pytest.fixture
def harness(tmp_path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def export(target: str, body: bytes, timeout: float = 20) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            EXPORT,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        return call(body, timeout=timeout)


def test_150_days_future_rejected_past_split_by_partition_ordinary_spans_land_promptly(
    harness: Harness,
) -> None:
    receiver = harness.receiver(OTEL_RECEIVER_CLICKHOUSE_TTL_DAYS="0")
    load = SpanLoad(receiver.grpc_target, spans_per_request=20, pause=0.05)
    load.start()
    load.wait_for_acks(100)
    future = spans_on_days([os.urandom(8) for _ in range(150)], [-d for d in range(2, 152)])
    rejected = export(receiver.grpc_target, future).partial_success
    assert rejected.rejected_spans == 150 and "limits.max_future_skew" in rejected.error_message
    odd = [os.urandom(8) for _ in range(150)]
    response = export(receiver.grpc_target, spans_on_days(odd, list(range(1, 151))))
    assert response.partial_success.rejected_spans == 0
    sent_at = len(load.acked)
    load.wait_for_acks(sent_at + 200)
    load.stop()
    # Ordinary spans acknowledged after the odd request are stored promptly, not behind it.
    client = harness.client()
    ordinary = load.acked[sent_at:]
    wait_for(
        lambda: len(stored_counts(client, ordinary)) == len(ordinary),
        10,
        "the ordinary spans sent after the 150-day request",
        interval=0.2,
    )
    assert_stored_exactly_once(harness, load.acked + [i.hex() for i in odd], timeout=20)
    days = client.query(
        f"SELECT uniqExact(toDate(Timestamp)) FROM {DATABASE}.otel_traces WHERE SpanName = 'clock'"
    ).result_rows[0][0]
    assert days == 150
    assert not [e for e in receiver.events() if e.get("event") == "replay_deferred"]
    assert not list((harness.root / "data" / "spool").glob("*.batch"))
    client.close()
    assert receiver.stop() == 0


def receiver_with_http(harness: Harness, name: str, dsn: str, **env: str) -> ReceiverProcess:
    """A receiver on the harness's database and spool, with OTLP/HTTP (for ``/health``)."""
    process = ReceiverProcess.serving(
        harness.root / name,
        dsn,
        DATABASE,
        data_dir=harness.root / "data",
        **{"OTEL_RECEIVER_BATCH_MAX_DELAY": "0.2", **env},
    ).start()
    harness.receivers.append(process)
    return process


def grpc_health(receiver: ReceiverProcess) -> str:
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def test_a_broken_schema_is_never_acknowledged_and_makes_the_receiver_unhealthy(
    harness: Harness,
) -> None:
    receiver = receiver_with_http(harness, "broken", harness.clickhouse.dsn)
    metrics_url = f"http://127.0.0.1:{receiver.metrics_port}/metrics"
    health_url = f"http://127.0.0.1:{receiver.http_port}/health"
    client = harness.client()
    client.command(f"ALTER TABLE {DATABASE}.otel_traces RENAME COLUMN StatusMessage TO Renamed")
    lost = [os.urandom(8) for _ in range(5)]
    with pytest.raises(grpc.RpcError) as refused:
        export(receiver.grpc_target, spans_request(lost))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "fix:" in refused.value.details()
    with pytest.raises(urllib.error.HTTPError) as unhealthy:
        urllib.request.urlopen(health_url, timeout=5)
    assert unhealthy.value.code == 503
    problems = json.loads(unhealthy.value.read())["problems"]
    assert problems[0]["problem"] == "clickhouse_schema:otel_traces" and problems[0]["fix"]
    assert scrape(metrics_url)["otel_receiver_healthy"][0][1] == 0
    wait_for(lambda: grpc_health(receiver) == "NOT_SERVING", 5, "gRPC health NOT_SERVING")
    status = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "status", "--metrics-listen",
         f"127.0.0.1:{receiver.metrics_port}", "--clickhouse-url", harness.clickhouse.dsn],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 1 and "UNHEALTHY" in status.stdout, status.stdout
    # Nothing was acknowledged, so nothing may be kept as if it had been.
    spool = harness.root / "data" / "spool"
    assert not list(spool.glob("*.batch")) and not list((spool / "dead").glob("*.batch"))
    assert receiver.event("receiver_unhealthy")["fix"]

    client.command(f"ALTER TABLE {DATABASE}.otel_traces RENAME COLUMN Renamed TO StatusMessage")
    later = [os.urandom(8) for _ in range(5)]
    export(receiver.grpc_target, spans_request(later))
    with urllib.request.urlopen(health_url, timeout=5) as answer:
        assert answer.status == 200
    wait_for(lambda: grpc_health(receiver) == "SERVING", 5, "gRPC health SERVING again")
    assert_stored_exactly_once(harness, [i.hex() for i in later])
    assert not stored_counts(client, [i.hex() for i in lost])
    client.close()
    assert receiver.stop() == 0


class FreezingProxy(threading.Thread):
    """A TCP proxy to ClickHouse that can freeze: connections stay open, nothing moves. A
    hung ClickHouse, which (unlike a stopped one) makes inserts wait instead of fail."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()

    def run(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                s.close()

    def close(self) -> None:
        self.listener.close()


class RetryingLoad(SpanLoad):
    """Retries like the OpenTelemetry SDK's exporter: the same request again after a timeout
    (10 s) or UNAVAILABLE, with exponential backoff. A span counts as acknowledged once any
    attempt of its request is answered OK."""

    def __init__(self, target: str) -> None:
        super().__init__(target, spans_per_request=20, pause=0.05)
        self.deadline_exceeded = 0
        self.sent: list[str] = []

    def run(self) -> None:
        with grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS) as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            while not self._stopping.is_set():
                ids = self._next_ids()
                body = spans_request(ids)
                self.sent.extend(i.hex() for i in ids)
                backoff = 1.0
                while True:
                    try:
                        call(body, timeout=10)
                        break
                    except grpc.RpcError as exc:
                        self.errors[exc.code()] += 1
                        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                            self.deadline_exceeded += 1
                        time.sleep(backoff)
                        backoff = min(backoff * 2, 8.0)
                self.acked.extend(i.hex() for i in ids)
                self._stopping.wait(self.pause)


def test_a_hung_clickhouse_is_answered_from_the_spool_before_clients_resend(
    harness: Harness,
) -> None:
    proxy = FreezingProxy(harness.clickhouse.http_port)
    proxy.start()
    dsn = harness.clickhouse.dsn.replace(f":{harness.clickhouse.http_port}", f":{proxy.port}")
    receiver = receiver_with_http(harness, "hung", dsn, OTEL_RECEIVER_DELIVERY_ACK_TIMEOUT="3")
    load = RetryingLoad(receiver.grpc_target)
    load.start()
    load.wait_for_acks(200)
    proxy.flowing.clear()  # ClickHouse hangs for 20 s
    outage_end = time.monotonic() + 20
    frozen_at = len(load.acked)
    load.wait_for_acks(frozen_at + 200, timeout=30)  # still answered: from the spool
    wait_for(lambda: receiver.event("insert_slow_spooling"), 10, "a slow insert spooled")
    time.sleep(max(outage_end - time.monotonic(), 0))  # the outage itself, not a sync point
    proxy.flowing.set()
    load.wait_for_acks(len(load.acked) + 200)
    load.stop()
    assert load.deadline_exceeded == 0, load.errors
    # Everything acknowledged is stored once, and nothing was stored twice: no resends.
    assert_stored_exactly_once(harness, load.acked)
    assert receiver.stop() == 0
    proxy.close()


def spool_command(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", "spool", *args, "--data-dir",
         str(harness.root / "data")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_too_many_parts_is_retried_then_dead_lettered_and_retried_by_hand(
    harness: Harness,
) -> None:
    receiver = harness.receiver(OTEL_RECEIVER_DELIVERY_MAX_ATTEMPTS="3")
    client = harness.client()
    export(receiver.grpc_target, spans_request([os.urandom(8)]))  # one part in today's partition
    client.command(f"SYSTEM STOP MERGES {DATABASE}.otel_traces")
    client.command(
        f"ALTER TABLE {DATABASE}.otel_traces "
        "MODIFY SETTING parts_to_delay_insert = 1, parts_to_throw_insert = 1"
    )
    refused = [os.urandom(8) for _ in range(10)]
    export(receiver.grpc_target, spans_request(refused))  # acknowledged: spooled
    event = wait_for(lambda: receiver.event("batch_dead_lettered"), 60, "the attempt limit")
    assert "TOO_MANY_PARTS" in event["reason"] and "gave up after 3 attempts" in event["reason"]
    assert [e for e in receiver.events() if e.get("event") == "replay_deferred"]
    listed = spool_command(harness, "list")
    assert listed.returncode == 0 and "dead letters" in listed.stdout
    assert "TOO_MANY_PARTS" in listed.stdout and "10 rows" in listed.stdout

    client.command(
        f"ALTER TABLE {DATABASE}.otel_traces "
        "MODIFY SETTING parts_to_delay_insert = 1000, parts_to_throw_insert = 3000"
    )
    client.command(f"SYSTEM START MERGES {DATABASE}.otel_traces")
    retried = spool_command(harness, "retry", "--all")
    assert retried.returncode == 0 and retried.stdout.startswith("1 dead letters")
    assert_stored_exactly_once(harness, [i.hex() for i in refused], timeout=30)
    assert not list((harness.root / "data" / "spool" / "dead").glob("*.batch"))
    client.close()
    assert receiver.stop() == 0
