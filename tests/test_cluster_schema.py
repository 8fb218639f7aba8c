"""Cluster mode: the rendered DDL, and as much of it as the embedded server can run.

The embedded ClickHouse (clickhouse-local from chdb-core) has no distributed DDL worker
(``ON CLUSTER`` answers "Replicated DDL queries are disabled") and, with its in-process test
Keeper, creates ``Replicated*`` tables whose inserts never complete. So the full cluster
DDL is checked as text here, and the embedded server, configured with a one-node cluster,
runs it with ``ON CLUSTER`` removed and plain engines under the ``Distributed`` tables: the
sharding keys, the ``_local`` / ``Distributed`` pairs, the materialized view wiring and
deduplication through the ``Distributed`` tables are real.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.schema import render, render_statements, schema_files
from receiver.store.sink import connect
from receiver.store.tables import TABLE_COLUMNS, TRACES

CLUSTER = "otel_cluster"


def _sql(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.startswith("--"))


@pytest.mark.unit
def test_rendered_cluster_ddl() -> None:
    files = schema_files()
    tables = 0
    for schema in files:
        single = _sql(render_statements(schema, "otel", 30)[0])
        assert "ON CLUSTER" not in single
        assert "Replicated" not in single and "_local" not in single
        statements = render_statements(schema, "otel", 30, CLUSTER)
        for statement in statements:
            assert f"ON CLUSTER {CLUSTER}" in _sql(statement)
        body = _sql(statements[0])
        if "ENGINE" in body:
            tables += 1
            assert len(statements) == 2
            assert re.search(r"ENGINE = Replicated\w*MergeTree", body), schema.name
            name = re.search(r"\.[\"`](\w+)[\"`] ON CLUSTER", body).group(1)
            assert name.endswith("_local")
            distributed = statements[1]
            assert f"ENGINE = Distributed({CLUSTER}, otel, {name}, cityHash64(" in distributed
            assert "rand()" not in distributed  # replays must shard the same way
        elif "MATERIALIZED VIEW" in body:
            assert '"otel"."otel_traces_local"' in body
            assert 'TO "otel"."otel_traces_trace_id_ts_local"' in body
        assert render(schema, "otel", 30, CLUSTER) == ";\n".join(statements)
    assert tables >= 9
    agent_runs = next(s for s in files if s.name == "agent_runs")
    assert "ReplicatedReplacingMergeTree(Version)" in render(agent_runs, "otel", 0, CLUSTER)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def one_node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tcp_port = _free_port()
    extra = (
        f"  <remote_servers><{CLUSTER}><shard><replica><host>127.0.0.1</host>"
        f"<port>{tcp_port}</port></replica></shard></{CLUSTER}></remote_servers>\n"
    )
    server = EmbeddedClickHouse(
        Path(tmp_path_factory.mktemp("cluster")),
        http_port=0,
        tcp_port=tcp_port,
        extra_config=extra,
    )
    server.start()
    client = connect(server.url, credentials=server.credentials)
    yield client
    client.close()
    server.stop()


def _runnable_here(statement: str) -> str:
    """What clickhouse-local can run: no ON CLUSTER, plain engines under Distributed."""
    statement = statement.replace(f" ON CLUSTER {CLUSTER}", "")
    return re.sub(r"ENGINE = Replicated(\w*MergeTree)", r"ENGINE = \1", statement)


def test_cluster_ddl_applies_and_deduplicates(one_node_cluster: Client) -> None:
    client = one_node_cluster
    database = "cluster_test"
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for schema in schema_files():
        for statement in render_statements(schema, database, 30, CLUSTER):
            client.command(_runnable_here(statement))
    now = time.time_ns()
    columns = TABLE_COLUMNS[TRACES]
    trace_id = secrets.token_hex(16)
    row = {
        "Timestamp": now,
        "TraceId": trace_id,
        "SpanId": secrets.token_hex(8),
        "SpanName": "op",
        "ServiceName": "cluster",
        "Duration": 5,
    }
    defaults = {
        "ResourceAttributes": {},
        "SpanAttributes": {},
        "Events.Timestamp": [],
        "Events.Name": [],
        "Events.Attributes": [],
        "Links.TraceId": [],
        "Links.SpanId": [],
        "Links.TraceState": [],
        "Links.Attributes": [],
    }
    values = tuple(row.get(c, defaults.get(c, "")) for c in columns)
    settings = {
        "insert_deduplication_token": "batch-1",
        "insert_deduplicate": 1,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "distributed_foreground_insert": 1,
    }
    for _ in range(2):  # a replayed batch: same rows, same token
        client.insert(
            TRACES, [values], column_names=list(columns), database=database, settings=settings
        )
    assert client.command(f"SELECT count() FROM {database}.otel_traces") == 1
    assert client.command(f"SELECT count() FROM {database}.otel_traces_local") == 1
    lookup = client.command(
        f"SELECT count() FROM {database}.otel_traces_trace_id_ts WHERE TraceId = '{trace_id}'"
    )
    assert lookup == 1  # the materialized view fed the _local lookup table once
