"""Schema drift is caught at start: a missing or retyped column stops the receiver with the
table, the column and the fix; ``schema apply --migrate`` adds missing columns; a changed
``clickhouse.ttl_days`` is applied with ``MODIFY TTL``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from receiver.config import Settings
from receiver.store.drift import SchemaDrift, check_schema
from receiver.store.schema import apply_schema


def engine_full(client: Client, database: str, table: str) -> str:
    return client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows[0][0]


def test_a_fresh_schema_has_no_drift(client: Client, database: str) -> None:
    apply_schema(client, database, Settings())
    assert check_schema(client, database, Settings()) == []


def test_missing_and_retyped_columns_are_named_with_their_fix(
    client: Client, database: str
) -> None:
    apply_schema(client, database, Settings())
    client.command(f"ALTER TABLE {database}.otel_logs DROP COLUMN EventName")
    client.command(f"ALTER TABLE {database}.otel_traces MODIFY COLUMN Duration Int64")
    with pytest.raises(SchemaDrift) as drift:
        check_schema(client, database, Settings())
    found = {(d.table, d.column, d.actual) for d in drift.value.drifts}
    assert found == {("otel_logs", "EventName", ""), ("otel_traces", "Duration", "Int64")}
    assert "schema apply --migrate" in str(drift.value)
    assert "MODIFY COLUMN `Duration` UInt64" in str(drift.value)


def test_a_changed_ttl_is_applied(client: Client, database: str) -> None:
    apply_schema(client, database, Settings(clickhouse_ttl_days=30))
    changed = check_schema(client, database, Settings(clickhouse_ttl_days=7))
    assert any(change.startswith("otel_traces TTL") for change in changed)
    assert "toIntervalDay(7)" in engine_full(client, database, "otel_traces")
    check_schema(client, database, Settings(clickhouse_ttl_days=0))
    assert " TTL " not in engine_full(client, database, "otel_traces")


def test_the_receiver_refuses_to_start_and_migrate_repairs_it(
    tmp_path: Path, clickhouse_url: str, client: Client, database: str
) -> None:
    apply_schema(client, database, Settings())
    client.command(f"ALTER TABLE {database}.otel_logs DROP COLUMN EventName")
    env = {**os.environ, "OTEL_RECEIVER_CLICKHOUSE_DATABASE": database}
    common = ["--clickhouse-url", clickhouse_url, "--data-dir", str(tmp_path / "data")]
    serve = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "serve", *common, "--grpc-listen", "127.0.0.1:0",
         "--http-listen", "", "--metrics-listen", ""],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert serve.returncode == 2, serve.stderr
    assert "otel_logs.EventName is missing" in serve.stderr
    assert "schema apply --migrate" in serve.stderr
    migrate = subprocess.run(
        [sys.executable, "-m", "receiver.cli", "schema", "apply", "--migrate", *common],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    assert "otel_logs.EventName added" in migrate.stdout
    assert check_schema(client, database, Settings()) == []
