"""Shared fixtures: one real ClickHouse per test session, and receivers in child processes.

The embedded ClickHouse (chdb-core) always runs; when a Docker engine is reachable the same
tests also run against ``clickhouse/clickhouse-server`` through testcontainers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from receiver.store.embedded import EmbeddedClickHouse
from receiver.store.sink import connect

from .receiver_process import ReceiverProcess

# The server image the Docker runs use: pinned, and the same engine as the embedded server
# (chdb-core 26.9), so both runs test one ClickHouse version and a new release cannot
# change the results of an old commit.
CLICKHOUSE_SERVER_IMAGE = "clickhouse/clickhouse-server:26.9"


def _docker_available() -> str | None:
    """None when a Docker engine answers, else the reason it does not."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__})"
    return None


@pytest.fixture(scope="session", params=["embedded", "docker"])
def clickhouse_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The HTTP URL of a real ClickHouse server shared by the whole session."""
    if request.param == "embedded":
        server = EmbeddedClickHouse(tmp_path_factory.mktemp("clickhouse"), http_port=0, tcp_port=0)
        server.start()
        yield server.dsn  # with the generated password (receiver.store.credentials)
        server.stop()
        return
    reason = _docker_available()
    if reason:
        pytest.skip(f"clickhouse/clickhouse-server via testcontainers: {reason}")
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer(CLICKHOUSE_SERVER_IMAGE) as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(8123)
        user, password = container.username, container.password
        yield f"http://{user}:{password}@{host}:{port}"


_databases = itertools.count()


@pytest.fixture
def database(clickhouse_url: str) -> str:
    """A fresh database name per test, so tests never see each other's rows."""
    return f"test_{next(_databases)}"


@pytest.fixture
def client(clickhouse_url: str, database: str) -> Iterator[Client]:
    ch = connect(clickhouse_url)
    yield ch
    # A fresh connection for the drop: the embedded server closes connections idle for 1 s, and
    # a pooled one reused as it closes fails a DROP, which (not read-only) is never retried.
    ch.close_connections()
    ch.command(f"DROP DATABASE IF EXISTS {database}")
    ch.close()


@pytest.fixture
def receiver(
    tmp_path: Path, clickhouse_url: str, database: str, client: Client
) -> Iterator[ReceiverProcess]:
    """A running ``otel-receiver serve`` on an OS-assigned port, writing to ``database``."""
    process = ReceiverProcess.serving(
        tmp_path / "receiver",
        clickhouse_url,
        database,
        data_dir=tmp_path / "data",
        OTEL_RECEIVER_BATCH_MAX_DELAY="0.2",
    ).start()
    yield process
    process.stop()
