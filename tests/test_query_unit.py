"""The query commands' checks and messages that need no server: report flags, where the
embedded ClickHouse's password is read from, and a failed request said in a few words."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from receiver.config import load_settings
from receiver.ops.log import configure_logging
from receiver.query import reports
from receiver.query.target import QueryTargetError, query_target
from receiver.store.unreachable import cause

from .conftest import CLICKHOUSE_SERVER_IMAGE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_since_after_until_names_both_flags() -> None:
    tools = reports.get("tools")
    with pytest.raises(reports.ReportError, match=r"--since 1h is not before --until 2h"):
        reports.parameters(tools, "otel", "1h", "2h", now=NOW)
    with pytest.raises(reports.ReportError, match="not before"):
        reports.parameters(tools, "otel", "2026-06-01T10:00", "2026-06-01T10:00", now=NOW)
    values = reports.parameters(tools, "otel", "2h", "1h", now=NOW)
    assert float(values["since"]) < float(values["until"])


@pytest.mark.parametrize("value", ["many", "-1", "1.5", "4294967296", ""])
def test_a_parameter_of_the_wrong_type_names_the_flag(value: str) -> None:
    spans = reports.get("slowest_spans")
    with pytest.raises(reports.ReportError, match=rf"--param limit={value}: limit is a UInt32"):
        reports.parameters(spans, "otel", extra={"limit": value}, now=NOW)
    assert reports.parameters(spans, "otel", extra={"limit": " 7"}, now=NOW)["limit"] == "7"


def test_query_target_reads_the_data_dirs_port_and_password(tmp_path: Path) -> None:
    clickhouse = tmp_path / "clickhouse"
    settings = load_settings(flags={"data_dir": str(tmp_path)}, environ={})
    with pytest.raises(QueryTargetError, match=f"no embedded ClickHouse password in {clickhouse}"):
        query_target(settings)
    assert not (clickhouse / "password").exists()  # never created by a query command
    (clickhouse / "run").mkdir(parents=True)
    (clickhouse / "password").write_text("secret\n")
    assert query_target(settings).url == "http://127.0.0.1:8123"  # never started: the setting
    (clickhouse / "run" / "ports.tsv").write_text("40123\t40124\n")
    target = query_target(settings)
    assert target.url == "http://127.0.0.1:40123"
    assert target.credentials.password == "secret"
    assert target.password_from == str(clickhouse / "password")
    chosen = load_settings(
        flags={"data_dir": str(tmp_path), "embedded_http_port": "18123"}, environ={}
    )
    assert query_target(chosen).url == "http://127.0.0.1:18123"  # a chosen port wins


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "Error HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
            '/?query_id=x (Caused by NewConnectionError("...: Failed to establish a new '
            'connection: [Errno 111] Connection refused"))',
            "connection refused",
        ),
        ("... [Errno -2] Name or service not known", "unknown host"),
        ("Read timed out. (read timeout=10)", "timed out"),
        ("Code: 516. DB::Exception: otel: Authentication failed (AUTHENTICATION_FAILED)", None),
        ("something else\nwith a second line", "something else"),
    ],
)
def test_a_failed_request_is_said_in_a_few_words(text: str, said: str | None) -> None:
    assert cause(RuntimeError(text)) == (said or "authentication failed")


def test_library_log_records_are_json_and_clickhouse_connect_is_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info")
        logging.getLogger("clickhouse_connect.driver").error("Unexpected Http Driver Exception")
        logging.getLogger("urllib3.connectionpool").warning("Retrying (Retry(total=0))")
        logging.getLogger("asyncio").warning("a library warning")
    finally:
        root.handlers, root.level = saved
    [line] = stderr.getvalue().splitlines()
    assert json.loads(line) | {"timestamp": ""} == {
        "event": "a library warning",
        "level": "warning",
        "logger": "asyncio",
        "timestamp": "",
    }


def test_the_docker_clickhouse_is_pinned_to_the_embedded_engine() -> None:
    image, tag = CLICKHOUSE_SERVER_IMAGE.rsplit(":", 1)
    assert image == "clickhouse/clickhouse-server" and tag != "latest"
    engine = ".".join(metadata.version("chdb-core").split(".")[:2])
    assert tag == engine
