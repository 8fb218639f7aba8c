"""Every input limit, the self-metrics moving as data flows, and ``otel-receiver status``,
against one real receiver with small limits."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from receiver.query.status import scrape
from receiver.store.sink import connect

from .receiver_process import ReceiverProcess
from .test_security import count_spans, grpc_export, http_post, trace_request

DATABASE = "test_limits"


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_url: str
) -> Iterator[tuple[ReceiverProcess, Client]]:
    tmp = tmp_path_factory.mktemp("limited")
    process = ReceiverProcess.serving(
        tmp / "receiver",
        clickhouse_url,
        DATABASE,
        data_dir=tmp / "data",
        **{
            "OTEL_RECEIVER_BATCH_MAX_DELAY": "0.05",
            "OTEL_RECEIVER_GRPC_MAX_RECEIVE_BYTES": "65536",
            "OTEL_RECEIVER_HTTP_MAX_RECEIVE_BYTES": "65536",
            "OTEL_RECEIVER_LIMITS_MAX_ITEMS_PER_REQUEST": "20",
            "OTEL_RECEIVER_LIMITS_MAX_ATTRIBUTES": "5",
            "OTEL_RECEIVER_LIMITS_MAX_ATTRIBUTE_KEY_BYTES": "32",
            "OTEL_RECEIVER_LIMITS_MAX_ATTRIBUTE_VALUE_BYTES": "100",
            "OTEL_RECEIVER_LIMITS_MAX_NESTING_DEPTH": "2",
            "OTEL_RECEIVER_LIMITS_MAX_SPAN_EVENTS": "3",
            "OTEL_RECEIVER_LIMITS_MAX_SPAN_LINKS": "2",
        },
    ).start()
    client = connect(clickhouse_url)
    yield process, client
    process.stop()
    client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
    client.close()


def _metrics(receiver: ReceiverProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    return scrape(f"http://127.0.0.1:{receiver.metrics_port}/metrics")


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == x for k, x in labels.items())
    )


def _nested(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for _ in range(depth):
        value = AnyValue(array_value=ArrayValue(values=[value]))
    return value


def _kv(key: str, value: AnyValue | str) -> KeyValue:
    return KeyValue(
        key=key, value=value if isinstance(value, AnyValue) else AnyValue(string_value=value)
    )


def test_each_limit_over_grpc(limited: tuple[ReceiverProcess, Client]) -> None:
    receiver, ch = limited
    before = _metrics(receiver)
    request = trace_request("limits", spans=8)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].attributes.extend(_kv(f"k{i}", "v") for i in range(6))  # 6 > 5 attributes
    spans[1].attributes.append(_kv("k" * 40, "v"))  # key of 40 > 32 bytes
    spans[2].attributes.append(_kv("deep", _nested(3)))  # depth 3 > 2
    spans[3].events.extend(Span.Event(name=f"e{i}") for i in range(4))  # 4 > 3 events
    spans[4].links.extend(
        Span.Link(trace_id=secrets.token_bytes(16), span_id=secrets.token_bytes(8))
        for _ in range(3)
    )  # 3 > 2 links
    spans[5].attributes.append(_kv("long", "é" * 200))  # 400 bytes > 100: truncated, kept
    spans[6].attributes.append(_kv("ok", _nested(2)))  # depth 2: fine
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        response = grpc_export(channel, request)
        assert response.partial_success.rejected_spans == 5
        message = response.partial_success.error_message
        for limit in (
            "limits.max_attributes",
            "limits.max_attribute_key_bytes",
            "limits.max_nesting_depth",
            "limits.max_span_events",
        ):
            assert limit in message  # (at most five reasons are listed)
        # Over the items-per-request limit: the whole request, not retryable.
        with pytest.raises(grpc.RpcError) as refused:
            grpc_export(channel, trace_request("limits-items", spans=21))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limits.max_items_per_request" in refused.value.details()
        # Over the message size limit.
        big = trace_request("limits-size", **{"blob": "x" * 70_000})
        with pytest.raises(grpc.RpcError) as too_big:
            grpc_export(channel, big)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # A resource over the attribute limit rejects all its spans.
        crowded = trace_request("limits-resource", spans=3, a="1", b="2", c="3", d="4", e="5")
        assert grpc_export(channel, crowded).partial_success.rejected_spans == 3
    assert count_spans(ch, DATABASE, "limits") == 3
    assert count_spans(ch, DATABASE, "limits-items") == 0
    long = ch.command(
        f"SELECT SpanAttributes['long'] FROM {DATABASE}.otel_traces "
        "WHERE SpanAttributes['long'] != ''"
    )
    assert len(long.encode()) <= 100 and long.endswith("bytes]") and "…[TRUNCATED" in long
    after = _metrics(receiver)
    for reason in ("attributes", "key_length", "nesting_depth", "span_events", "span_links"):
        grown = _value(after, "otel_receiver_items_rejected_total", signal="traces", reason=reason)
        assert grown > _value(
            before, "otel_receiver_items_rejected_total", signal="traces", reason=reason
        ), reason
    assert _value(after, "otel_receiver_values_truncated_total", signal="traces") >= 1
    assert (
        _value(
            after,
            "otel_receiver_requests_rejected_total",
            signal="traces",
            reason="items_per_request",
        )
        >= 1
    )


def test_limits_over_http(limited: tuple[ReceiverProcess, Client]) -> None:
    receiver, _ = limited
    url = receiver.http_url + "/v1/traces"
    status, body, _ = http_post(url, trace_request("limits-http", spans=21).SerializeToString())
    assert status == 413 and b"limits.max_items_per_request" in body
    request = trace_request("limits-http", spans=2)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.append(_kv("d", _nested(5)))
    status, body, _ = http_post(url, request.SerializeToString())
    assert status == 200
    parsed = ExportTraceServiceResponse.FromString(body)
    assert parsed.partial_success.rejected_spans == 1


def test_metrics_move_and_status(
    limited: tuple[ReceiverProcess, Client], clickhouse_url: str
) -> None:
    receiver, _ = limited
    before = _metrics(receiver)
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        for _ in range(3):
            grpc_export(channel, trace_request("metrics-flow", spans=4))
    after = _metrics(receiver)
    grown = _value(after, "otel_receiver_items_received_total", signal="traces") - _value(
        before, "otel_receiver_items_received_total", signal="traces"
    )
    assert grown == 12
    for name in (
        "otel_receiver_received_bytes_total",
        "otel_receiver_insert_duration_seconds_count",
        "otel_receiver_batch_rows_sum",
    ):
        assert _value(after, name) > _value(before, name), name
    assert "otel_receiver_spool_bytes" in after and "otel_receiver_queue_bytes" in after
    assert _value(after, "process_resident_memory_bytes") > 0
    assert (
        "otel_receiver_redactions_total" in after or "otel_receiver_redaction_rules_total" in after
    )

    def status(metrics_port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "receiver.cli",
                "status",
                "--metrics-listen",
                f"127.0.0.1:{metrics_port}",
                "--clickhouse-url",
                clickhouse_url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=Path(receiver.workdir),
            env=dict(os.environ),
        )

    up = status(receiver.metrics_port or 0)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "receiver:          up" in up.stdout
    assert "traces" in up.stdout and "reachable, version" in up.stdout
    password = clickhouse_url.split("@")[0].rsplit(":", 1)[-1]
    assert password not in up.stdout  # the URL is shown without its password
    down = status(1)
    assert down.returncode == 1 and "not answering" in down.stdout
