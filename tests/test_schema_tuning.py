"""Tuning files of ``schema/`` (``-- tuning:``): MergeTree settings applied to new and existing
tables, skipped or only logged where the server cannot take them, invisible to drift."""

from __future__ import annotations

import re
import time

import pytest
from clickhouse_connect.driver.client import Client

from receiver.config import Settings
from receiver.store.drift import check_schema
from receiver.store.schema import SchemaFile, apply_schema, render_statements, schema_files
from receiver.store.tables import AGENT_SPANS, TABLE_COLUMNS

TUNED = re.compile(r'ALTER TABLE "\$\{database\}"\."(\w+)"')


def _tuning_file() -> SchemaFile:
    return next(s for s in schema_files() if s.needs_setting == "merge_selector_base")


def _tuned_tables() -> list[str]:
    return TUNED.findall(_tuning_file().text)


def _engine_full(client: Client, database: str) -> dict[str, str]:
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return dict(rows)


@pytest.mark.unit
def test_a_tuning_file_renders_one_alter_per_table_and_local_tables_on_a_cluster() -> None:
    tables = _tuned_tables()
    assert {"otel_traces", "otel_logs", "agent_spans"} <= set(tables)
    single = render_statements(_tuning_file(), "otel", 30)
    assert len(single) == len(tables)
    for statement, table in zip(single, tables, strict=True):
        assert statement.rstrip().endswith("MODIFY SETTING merge_selector_base = 20")
        assert f'"otel"."{table}"  MODIFY' in statement
    clustered = render_statements(_tuning_file(), "otel", 30, "c1")
    for statement, table in zip(clustered, tables, strict=True):
        assert f'"otel"."{table}_local" ON CLUSTER c1 MODIFY SETTING' in statement


def test_new_and_existing_tables_get_the_setting_and_drift_ignores_it(
    client: Client, database: str
) -> None:
    apply_schema(client, database, Settings())
    tables = _engine_full(client, database)
    for table in _tuned_tables():
        assert "merge_selector_base = 20" in tables[table], table
    # An existing table without it (made by an older receiver, or by the exporter) gets it.
    client.command(f"ALTER TABLE `{database}`.otel_traces RESET SETTING merge_selector_base")
    assert "merge_selector_base" not in _engine_full(client, database)["otel_traces"]
    apply_schema(client, database, Settings())
    assert "merge_selector_base = 20" in _engine_full(client, database)["otel_traces"]
    assert check_schema(client, database, Settings()) == []


def test_a_table_that_refuses_the_setting_is_logged_not_fatal(
    client: Client, database: str
) -> None:
    # A table made by hand with an engine without MergeTree settings: its ALTER fails (as it
    # would for a user without ALTER SETTINGS); the schema is still applied.
    client.command(f"CREATE DATABASE `{database}`")
    client.command(
        f"CREATE TABLE `{database}`.otel_metrics_summary (TimeUnix DateTime) ENGINE = Memory"
    )
    apply_schema(client, database, Settings())
    tables = _engine_full(client, database)
    assert tables["otel_metrics_summary"] == "Memory"
    assert "merge_selector_base = 20" in tables["otel_traces"]  # before it in the file
    assert {"otel_metrics_sum", "agent_runs", "codex_usage"} <= set(tables)


def test_the_resolver_reads_a_runs_spans_through_the_by_run_projection(
    client: Client, database: str
) -> None:
    apply_schema(client, database, Settings())
    now = time.time_ns()
    client.insert(
        "agent_spans",
        # Enough granules that reading the projection is clearly cheaper: with one granule
        # either way ClickHouse may read the table itself (seen once in a full-suite run).
        # Timestamp now: a 1970 one is past the table's TTL, and its rows may be gone when the
        # plan is made (a table without parts reads no projection; seen in a full-suite run).
        [
            (f"s{i}", "t", "p", f"run-{i % 5000}", "claude_code", "x", now, 1)
            for i in range(200_000)
        ],
        column_names=TABLE_COLUMNS[AGENT_SPANS],
        database=database,
    )
    plan = "\n".join(
        row[0]
        for row in client.query(
            f"EXPLAIN projections = 1 SELECT SpanId, ParentSpanId FROM `{database}`.agent_spans "
            "WHERE RunId IN ('run-1', 'run-2') AND ParentSpanId != ''"
        ).result_rows
    )
    assert "by_run" in plan, plan


def test_an_insert_of_wide_rows_is_one_compact_part(client: Client, database: str) -> None:
    """12,000 spans of ~1 KB: over ClickHouse's 10 MiB default for a wide part, under the
    tuned 60,000 rows, so one file for all columns instead of one per column (0019)."""
    apply_schema(client, database, Settings())
    for table in ("otel_traces", "otel_logs"):
        assert "min_rows_for_wide_part = 60000" in _engine_full(client, database)[table]
    client.command(
        f"INSERT INTO `{database}`.otel_traces (Timestamp, TraceId, SpanId, ServiceName, "
        "SpanName, SpanAttributes) SELECT now64(9), hex(number), hex(number), 'svc', 'span', "
        "map('k', repeat('x', 1000)) FROM numbers(12000)"
    )
    parts = client.query(
        "SELECT part_type, rows, data_uncompressed_bytes FROM system.parts "
        "WHERE database = {db:String} AND table = 'otel_traces' AND active",
        parameters={"db": database},
    ).result_rows
    assert len(parts) == 1
    part_type, rows, size = parts[0]
    assert (part_type, rows) == ("Compact", 12000)
    assert size > 10 * 1024 * 1024
