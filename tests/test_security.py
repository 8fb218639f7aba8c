"""Authentication (bearer tokens, tenants), TLS and mTLS, and the exposure rule, against real
receiver processes with real grpc and HTTP clients."""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from receiver.agents.launch import prepare
from receiver.store.sink import connect

from .certs import Certs, make_certs
from .receiver_process import ReceiverProcess, wait_for

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TENANT_TOKEN = "acme:" + "a" * 8 + secrets.token_urlsafe(16)
PLAIN_TOKEN = secrets.token_urlsafe(24)


def trace_request(service: str, spans: int = 1, **resource: str) -> ExportTraceServiceRequest:
    now = time.time_ns()
    attrs = [KeyValue(key="service.name", value=AnyValue(string_value=service))]
    attrs += [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in resource.items()]
    items = [
        Span(
            trace_id=secrets.token_bytes(16),
            span_id=secrets.token_bytes(8),
            name=f"op{i}",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
        )
        for i in range(spans)
    ]
    request = ExportTraceServiceRequest()
    request.resource_spans.append(
        ResourceSpans(resource={"attributes": attrs}, scope_spans=[ScopeSpans(spans=items)])
    )
    return request


def grpc_export(
    channel: grpc.Channel, request: ExportTraceServiceRequest, token: str | None = None
) -> ExportTraceServiceResponse:
    export = channel.unary_unary(
        EXPORT,
        request_serializer=ExportTraceServiceRequest.SerializeToString,
        response_deserializer=ExportTraceServiceResponse.FromString,
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    return export(request, timeout=10, metadata=metadata)


def http_post(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-protobuf", **(headers or {})},
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def count_spans(client: Client, database: str, service: str) -> int:
    return int(
        client.command(
            f"SELECT count() FROM {database}.otel_traces WHERE ServiceName = '{service}'"
        )
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def ch(clickhouse_url: str) -> Iterator[Client]:
    client = connect(clickhouse_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def authed(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_url: str, ch: Client
) -> Iterator[tuple[ReceiverProcess, str]]:
    """A receiver on loopback with two tokens: one with tenant ``acme`` (file), one plain
    (environment)."""
    tmp = tmp_path_factory.mktemp("authed")
    tokens = tmp / "tokens"
    tokens.write_text(f"# team tokens\n{TENANT_TOKEN}\n")
    tokens.chmod(0o600)
    database = "test_security_auth"
    process = ReceiverProcess.serving(
        tmp / "receiver",
        clickhouse_url,
        database,
        data_dir=tmp / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.05",
        OTEL_RECEIVER_AUTH_TOKENS_FILE=str(tokens),
        OTEL_RECEIVER_AUTH_TOKENS=PLAIN_TOKEN,
    ).start()
    yield process, database
    process.stop()
    ch.command(f"DROP DATABASE IF EXISTS {database}")


def test_grpc_requires_a_valid_token(authed: tuple[ReceiverProcess, str], ch: Client) -> None:
    receiver, database = authed
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        for token in (None, "wrong-token-" + "x" * 20, TENANT_TOKEN + "x"):
            with pytest.raises(grpc.RpcError) as refused:
                grpc_export(channel, trace_request("auth-grpc-refused"), token)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.value.details() == "unauthenticated"  # nothing about what was wrong
        # The health service stays open for load balancers.
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        grpc_export(channel, trace_request("auth-grpc-plain"), PLAIN_TOKEN)
        # A client cannot pose as another tenant: the token's tenant replaces its claim.
        claim = trace_request("auth-grpc-tenant", **{"tenant.name": "evil"})
        grpc_export(channel, claim, TENANT_TOKEN.split(":", 1)[1])
    assert count_spans(ch, database, "auth-grpc-refused") == 0
    assert count_spans(ch, database, "auth-grpc-plain") == 1
    tenants = ch.query(
        f"SELECT ResourceAttributes['tenant.name'], ServiceName FROM {database}.otel_traces "
        "WHERE ServiceName LIKE 'auth-grpc-%' ORDER BY ServiceName"
    ).result_rows
    assert tenants == [("", "auth-grpc-plain"), ("acme", "auth-grpc-tenant")]


def test_http_requires_a_valid_token(authed: tuple[ReceiverProcess, str], ch: Client) -> None:
    receiver, database = authed
    url = receiver.http_url + "/v1/traces"
    body = trace_request("auth-http").SerializeToString()
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {PLAIN_TOKEN[:-1]}"},
    ):
        status, answer, response_headers = http_post(url, body, headers)
        assert status == 401
        assert response_headers.get("WWW-Authenticate") == "Bearer"
        assert b"unauthenticated" in answer and PLAIN_TOKEN[:8].encode() not in answer
    with urllib.request.urlopen(receiver.http_url + "/health", timeout=5) as health:
        assert health.status == 200
    status, _, _ = http_post(url, body, {"Authorization": f"bearer {PLAIN_TOKEN}"})
    assert status == 200
    assert count_spans(ch, database, "auth-http") == 1
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{receiver.metrics_port}/metrics", timeout=5
    ).read()
    assert b'otel_receiver_auth_failures_total{reason="invalid",transport="http"} 1.0' in metrics
    assert b'otel_receiver_auth_failures_total{reason="missing",transport="grpc"}' in metrics


def test_sighup_rotates_tokens(authed: tuple[ReceiverProcess, str], ch: Client) -> None:
    """Rotation without a restart: new file contents, SIGHUP, old file token refused."""
    receiver, database = authed
    tokens = Path(receiver.env["OTEL_RECEIVER_AUTH_TOKENS_FILE"])
    rotated = "acme:" + secrets.token_urlsafe(24)
    tokens.write_text(rotated + "\n")
    assert receiver.process is not None
    receiver.process.send_signal(signal.SIGHUP)
    wait_for(lambda: receiver.event("tokens_reloaded"), 10, "the tokens to be re-read")
    with grpc.insecure_channel(receiver.grpc_target) as channel:
        grpc_export(channel, trace_request("auth-rotated"), rotated.split(":", 1)[1])
        with pytest.raises(grpc.RpcError) as refused:
            grpc_export(channel, trace_request("auth-rotated"), TENANT_TOKEN.split(":", 1)[1])
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert count_spans(ch, database, "auth-rotated") == 1


def test_tls_and_mtls(tmp_path: Path, clickhouse_url: str, certs: Certs, ch: Client) -> None:
    database = "test_security_tls"
    receiver = ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse_url,
        database,
        data_dir=tmp_path / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.05",
        OTEL_RECEIVER_TLS_CERT_FILE=str(certs.server_cert),
        OTEL_RECEIVER_TLS_KEY_FILE=str(certs.server_key),
        OTEL_RECEIVER_TLS_CLIENT_CA_FILE=str(certs.ca),
    ).start()
    try:
        ca = certs.ca.read_bytes()
        client_key, client_cert = certs.client_key.read_bytes(), certs.client_cert.read_bytes()
        # gRPC with a client certificate: accepted.
        with_cert = grpc.ssl_channel_credentials(ca, client_key, client_cert)
        with grpc.secure_channel(receiver.grpc_target, with_cert) as channel:
            grpc_export(channel, trace_request("tls-grpc"))
        # Without one, or trusting another CA: the handshake fails.
        for credentials in (
            grpc.ssl_channel_credentials(ca),
            grpc.ssl_channel_credentials(certs.other_ca.read_bytes(), client_key, client_cert),
        ):
            with grpc.secure_channel(receiver.grpc_target, credentials) as channel:
                with pytest.raises(grpc.RpcError) as failed:
                    grpc_export(channel, trace_request("tls-grpc-refused"))
                assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext to a TLS port fails too.
        with grpc.insecure_channel(receiver.grpc_target) as channel, pytest.raises(grpc.RpcError):
            grpc_export(channel, trace_request("tls-grpc-refused"))

        url = f"https://127.0.0.1:{receiver.http_port}/v1/traces"
        body = trace_request("tls-http").SerializeToString()
        context = ssl.create_default_context(cafile=str(certs.ca))
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        assert http_post(url, body, context=context)[0] == 200
        no_cert = ssl.create_default_context(cafile=str(certs.ca))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            http_post(url, body, context=no_cert)
        assert count_spans(ch, database, "tls-grpc") == 1
        assert count_spans(ch, database, "tls-http") == 1
        assert count_spans(ch, database, "tls-grpc-refused") == 0
    finally:
        receiver.stop()
        ch.command(f"DROP DATABASE IF EXISTS {database}")


def _serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "receiver.cli", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )


def test_non_loopback_needs_authentication(tmp_path: Path) -> None:
    refused = _serve(tmp_path, "--grpc-listen", "0.0.0.0:0", "--http-listen", "")
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr
    assert "--insecure-allow-unauthenticated" in refused.stderr
    weak = _serve(tmp_path, env={"OTEL_RECEIVER_AUTH_TOKENS": "short"})
    assert weak.returncode == 2 and "at least 16 characters" in weak.stderr
    assert "short" not in weak.stderr.replace("at least", "")  # the token is never echoed


def test_cc_launch_passes_token_and_ca(tmp_path: Path, certs: Certs) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(PLAIN_TOKEN + "\n")
    launch = prepare(
        {"PATH": "/usr/bin", "OTEL_EXPORTER_OTLP_HEADERS": "x-team=blue"},
        endpoint="https://127.0.0.1:4317",
        shim_dir=tmp_path,
        token_file=str(token_file),
        ca_file=str(certs.ca),
    )
    env = launch.env
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == f"x-team=blue,Authorization=Bearer {PLAIN_TOKEN}"
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == str(certs.ca)
    assert env["CC_LAUNCH_TOKEN_FILE"] == str(token_file)
    assert env["CC_LAUNCH_CA_FILE"] == str(certs.ca)

    from receiver.agents.codex_shim import rewrite

    args, _ = rewrite(["exec", "hi"], env)
    assert f'headers={{authorization="Bearer {PLAIN_TOKEN}"}}' in args[2]
    assert f'tls={{ca-certificate="{certs.ca}"}}' in args[2]

    # From the environment, the token reaches the shim as a private file, not a variable.
    launch = prepare({"PATH": "/usr/bin", "CC_LAUNCH_TOKEN": PLAIN_TOKEN}, shim_dir=tmp_path)
    assert "CC_LAUNCH_TOKEN" not in launch.env
    token_path = Path(launch.env["CC_LAUNCH_TOKEN_FILE"])
    assert token_path.read_text().strip() == PLAIN_TOKEN
    assert token_path.stat().st_mode & 0o077 == 0


def test_launch_span_carries_token_over_tls(
    tmp_path: Path, clickhouse_url: str, certs: Certs, ch: Client
) -> None:
    """cc-launch's own span export uses the token and the CA it was given."""
    database = "test_security_launch"
    receiver = ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse_url,
        database,
        data_dir=tmp_path / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.05",
        OTEL_RECEIVER_TLS_CERT_FILE=str(certs.server_cert),
        OTEL_RECEIVER_TLS_KEY_FILE=str(certs.server_key),
        OTEL_RECEIVER_AUTH_TOKENS=PLAIN_TOKEN,
    ).start()
    try:
        token_file = tmp_path / "token"
        token_file.write_text(PLAIN_TOKEN)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "receiver.agents.launch",
                "--endpoint",
                f"https://localhost:{receiver.grpc_port}",
                "--http-endpoint",
                f"https://localhost:{receiver.http_port}",
                "--token-file",
                str(token_file),
                "--ca-file",
                str(certs.ca),
                "-v",
                "--",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert "cc.launch span sent" in result.stderr
        wait_for(
            lambda: int(
                ch.command(
                    f"SELECT count() FROM {database}.otel_traces WHERE SpanName = 'cc.launch'"
                )
            ),
            10,
            "the cc.launch span",
        )
    finally:
        receiver.stop()
        ch.command(f"DROP DATABASE IF EXISTS {database}")
