"""End to end: secrets sent over OTLP/gRPC to a real receiver process never reach ClickHouse,
the spool, or any other file under the receiver's data dir (or its log)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import grpc
from clickhouse_connect.driver.client import Client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from receiver.delivery.spool import MAGIC, CorruptBatch, decode
from receiver.ingest.otlp import SERVICES
from receiver.processors.redact import HASH_KEY_FILE_NAME, Redactor
from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.sink import connect
from receiver.store.tables import TABLE_COLUMNS

from . import redaction_corpus as corpus
from .receiver_process import ReceiverProcess, wait_for

# No ' or \ in these, so ClickHouse's TSV output shows them verbatim if they were stored.
SECRETS = {
    "github_token": corpus.GITHUB_PAT,
    "aws_secret_key": corpus.AWS_SECRET,
    "jwt": corpus.JWT,
    "url_credentials": corpus.URL_PASSWORD,
    "anthropic_key": corpus.ANTHROPIC,
    "openai_key": corpus.OPENAI_PROJECT,
    "connection_string": corpus.DB_PASSWORD,
    "slack_token": corpus.SLACK_BOT,
    "stripe_key": corpus.STRIPE_LIVE,
    "secret_attribute": corpus.DB_ATTR_PASSWORD,
    "private_key": corpus.RSA_LINES[3],
    "secret_assignment": corpus.YAML_PASSWORD,  # no < > &: Go-style JSON would escape them
}
# People's passwords (issue 18), sent as Bash commands; each with the detector that names it.
PEOPLE_PASSWORDS = [pair for case in corpus.ISSUE_18_CASES for pair in case.found]
ALL_SECRETS = [*SECRETS.items(), *PEOPLE_PASSWORDS]
EMAIL = "dev@example.com"


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


RESOURCE = Resource(
    attributes=[
        kv("service.name", "claude-code"),
        kv("user.email", EMAIL),
        kv("deploy.note", f"export AWS_SECRET_ACCESS_KEY={corpus.AWS_SECRET}"),
    ]
)


def requests(now: int) -> dict[str, bytes]:
    """A span, a log record and a metric point carrying every secret in ``ALL_SECRETS``."""
    span = trace_pb2.Span(
        trace_id=bytes(range(1, 17)),
        span_id=bytes(range(1, 9)),
        name="claude_code.tool",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1_000_000,
        attributes=[
            kv("tool_name", "Bash"),
            kv(
                "tool_parameters",
                corpus.bash(f"gh auth login --with-token <<< {corpus.GITHUB_PAT}"),
            ),
            kv("full_command", f"curl https://ops:{corpus.URL_PASSWORD}@internal.example.com/"),
            kv("db.password", corpus.DB_ATTR_PASSWORD),
            *(kv(f"command.{i}", case.value) for i, case in enumerate(corpus.ISSUE_18_CASES)),
        ],
        status=trace_pb2.Status(code=2, message=f"401: token {corpus.JWT} expired"),
        events=[
            trace_pb2.Span.Event(
                name="tool.output",
                time_unix_nano=now + 500_000,
                attributes=[kv("output", corpus.RSA_KEY)],
            )
        ],
    )
    traces = ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=RESOURCE,
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=InstrumentationScope(name="com.anthropic.claude_code.tracing"),
                        spans=[span],
                    )
                ],
            )
        ]
    )
    record = logs_pb2.LogRecord(
        time_unix_nano=now,
        body=AnyValue(string_value=f"API Error: 401 invalid x-api-key {corpus.ANTHROPIC}"),
        attributes=[
            kv("event.name", "codex.tool_result"),
            kv("arguments", corpus.codex_args(f"OPENAI_API_KEY={corpus.OPENAI_PROJECT} ./run")),
            kv("output", f"psql postgres://app:{corpus.DB_PASSWORD}@db:5432/orders\n"),
            kv("user.email", EMAIL),
        ],
    )
    body_record = logs_pb2.LogRecord(
        time_unix_nano=now + 1,
        body=AnyValue(kvlist_value={"values": [kv("password", corpus.YAML_PASSWORD)]}),
    )
    logs = ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=RESOURCE,
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=InstrumentationScope(name="codex"),
                        log_records=[record, body_record],
                    )
                ],
            )
        ]
    )
    point = metrics_pb2.NumberDataPoint(
        time_unix_nano=now,
        start_time_unix_nano=now - 1_000_000_000,
        as_int=3,
        attributes=[kv("model", "gpt-5.4"), kv("note", f"bot {corpus.SLACK_BOT}")],
        exemplars=[
            metrics_pb2.Exemplar(
                time_unix_nano=now,
                as_int=1,
                filtered_attributes=[kv("stripe", f"STRIPE_KEY={corpus.STRIPE_LIVE}")],
            )
        ],
    )
    metrics = ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=RESOURCE,
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=InstrumentationScope(name="codex"),
                        metrics=[
                            metrics_pb2.Metric(
                                name="codex.tool.call",
                                sum=metrics_pb2.Sum(
                                    data_points=[point],
                                    aggregation_temporality=1,
                                    is_monotonic=True,
                                ),
                            )
                        ],
                    )
                ],
            )
        ]
    )
    return {
        "traces": traces.SerializeToString(),
        "logs": logs.SerializeToString(),
        "metrics": metrics.SerializeToString(),
    }


def export(target: str, signal: str, body: bytes) -> None:
    spec = SERVICES[signal]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            f"/{spec[0]}/Export",
            request_serializer=None,
            response_deserializer=spec.response_type.FromString,
        )
        response = call(body, timeout=30)
    assert not response.HasField("partial_success"), response


def stored_text(client: Client, database: str) -> str:
    """Every row of every table the receiver writes, all columns, as unescaped text."""
    existing = {r[0] for r in client.query(f"SHOW TABLES FROM {database}").result_rows}
    dumps = []
    for table in sorted(existing & set(TABLE_COLUMNS)):
        raw = client.raw_query(f"SELECT * FROM {database}.{table} FORMAT TSVRaw")
        dumps.append(f"== {table}\n{raw.decode()}")
    return "\n".join(dumps)


def row_counts(client: Client, database: str) -> dict[str, int]:
    query = "SELECT count() FROM {}.{}"
    return {
        table: client.query(query.format(database, table)).result_rows[0][0]
        for table in ("otel_traces", "otel_logs", "otel_metrics_sum")
    }


def readable_bytes(path: Path) -> bytes:
    """A file's bytes, plus the decompressed rows when it is a spool batch (the spool
    compresses its payload: a plain byte search would miss a spooled secret)."""
    data = path.read_bytes()
    if data.startswith(MAGIC):
        try:
            batch = decode(data)
        except CorruptBatch:
            return data
        return data + json.dumps(batch.rows, ensure_ascii=False).encode()
    return data


def files_holding_secrets(*roots: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = readable_bytes(path)
            for kind, secret in ALL_SECRETS:
                if secret.encode() in data:
                    found.setdefault(str(path), []).append(kind)
            if EMAIL.encode() in data:
                found.setdefault(str(path), []).append("user.email")
    return found


def assert_nothing_secret_stored(text: str, hash_key: bytes) -> None:
    for kind, secret in ALL_SECRETS:
        assert secret not in text, f"{kind} secret stored in ClickHouse"
        assert f"[REDACTED:{kind}]" in text, f"no [REDACTED:{kind}] in ClickHouse"
    assert EMAIL not in text
    email_hash = Redactor(hash=("user.email",), hash_key=hash_key).hash_value(EMAIL)
    assert email_hash in text  # hashed with the key the receiver generated in its data dir


def test_secrets_sent_over_grpc_reach_neither_clickhouse_nor_disk(
    receiver: ReceiverProcess, client: Client, database: str, tmp_path: Path
) -> None:
    for signal, body in requests(time.time_ns()).items():
        export(receiver.grpc_target, signal, body)
    wait_for(
        lambda: (
            row_counts(client, database)
            == {"otel_traces": 1, "otel_logs": 2, "otel_metrics_sum": 1}
        ),
        20,
        "the span, the log records and the metric point in ClickHouse",
    )
    data_dir = tmp_path / "data"
    hash_key = (data_dir / HASH_KEY_FILE_NAME).read_bytes().strip()
    assert_nothing_secret_stored(stored_text(client, database), hash_key)
    assert receiver.stop() == 0
    assert files_holding_secrets(data_dir, receiver.workdir) == {}
    assert re.search(rb"redaction_configured", receiver.log_path.read_bytes())


def test_spooled_batches_hold_no_secrets(tmp_path: Path) -> None:
    """With ClickHouse down, the batches go to the spool: read them back, decompressed."""
    clickhouse = EmbeddedClickHouse(tmp_path / "clickhouse", http_port=0, tcp_port=0)
    clickhouse.start()
    data_dir = tmp_path / "data"
    process = ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse.dsn,
        "redact",
        "--http-listen",
        "",
        data_dir=data_dir,
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    )
    try:
        process.start()
        clickhouse.stop()
        for signal, body in requests(time.time_ns()).items():
            export(process.grpc_target, signal, body)
        wait_for(lambda: process.event("batch_spooled"), 30, "a batch in the spool")
        spooled = [
            p for p in data_dir.rglob("*") if p.is_file() and readable_bytes(p) != p.read_bytes()
        ]
        assert spooled, "no spool batch file to inspect"
        assert files_holding_secrets(data_dir, process.workdir) == {}
        assert any(b"[REDACTED:github_token]" in readable_bytes(p) for p in spooled)

        clickhouse = EmbeddedClickHouse(
            tmp_path / "clickhouse", http_port=clickhouse.http_port, tcp_port=clickhouse.tcp_port
        )
        clickhouse.start()
        client = connect(clickhouse.dsn)
        wait_for(
            lambda: (
                row_counts(client, "redact")
                == {"otel_traces": 1, "otel_logs": 2, "otel_metrics_sum": 1}
            ),
            60,
            "the spool replayed into ClickHouse",
            interval=0.5,
        )
        hash_key = (data_dir / HASH_KEY_FILE_NAME).read_bytes().strip()
        assert_nothing_secret_stored(stored_text(client, "redact"), hash_key)
        client.close()
        assert process.stop() == 0
    finally:
        if process.process and process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        clickhouse.stop()
