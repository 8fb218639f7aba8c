"""The run resolver writes an ``agent_runs`` row only when the run changed: idle runs (stamped,
launch and orphan runs are recomputed every tick) cost no inserts at all."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from receiver.config import Settings
from receiver.processors import stitch
from receiver.processors.stitch import RunResolver
from receiver.store.schema import apply_schema
from receiver.store.tables import AGENT_RUN_SIGHTINGS, TABLE_COLUMNS


@pytest.fixture
def runs_db(client: Client, database: str) -> Iterator[str]:
    apply_schema(client, database, Settings())
    # Count every row written: no merge may fold a rewrite away while the test looks.
    client.command(f"SYSTEM STOP MERGES {database}.agent_runs")
    yield database


# A run id is telemetry: quotes, backslashes and binding syntax must survive the candidate list.
ODD_RUN_ID = "orphan-'7' %(runs)s \\ {since_ms:Int64}"


def sighting(run_id: str, kind: str, when: int, **stamps: str) -> tuple:
    return (
        run_id,  # RunId
        kind,  # Kind
        "codex_exec" if kind == "codex_run" else "claude-code",  # ServiceName
        when,  # FirstSeen
        when + 10**9,  # LastSeen
        ["ab" * 16],  # TraceIds
        stamps.get("launch", ""),  # LaunchId
        "",  # TaskId
        "",  # TicketId
        stamps.get("parent", ""),  # StampedParentRunId
        stamps.get("parent_span", ""),  # StampedParentSpanId
        "",  # ThreadId
    )


def rows_written(client: Client, database: str) -> tuple[int, int]:
    """(rows, highest Version): a rewrite of any run raises the Version."""
    return client.query(f"SELECT count(), max(Version) FROM {database}.agent_runs").result_rows[0]


@pytest.mark.parametrize("listed", [True, False], ids=["runs-listed", "runs-by-subquery"])
def test_idle_runs_are_not_rewritten_and_a_changed_run_is(
    client: Client, runs_db: str, listed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not listed:  # more candidates than the resolver hands over as a list
        monkeypatch.setattr(stitch, "MAX_LISTED_CANDIDATES", 10)
    now = time.time_ns()
    runs = [sighting(f"orphan-{i}", "codex_run", now) for i in range(299)]
    runs.append(sighting(ODD_RUN_ID, "codex_run", now))
    runs += [sighting(f"stamped-{i}", "codex_run", now, parent="s-1", parent_span="1" * 16)
             for i in range(300)]  # fmt: skip
    runs += [sighting(f"launched-{i}", "claude_session", now, launch="l-1") for i in range(400)]
    client.insert(
        AGENT_RUN_SIGHTINGS,
        runs,
        column_names=list(TABLE_COLUMNS[AGENT_RUN_SIGHTINGS]),
        database=runs_db,
    )
    resolver = RunResolver(client, runs_db)
    resolver.resolve_once()
    first = rows_written(client, runs_db)
    assert first[0] == 1000
    for _ in range(5):  # idle ticks, the sightings now older than the resolver's margin too
        resolver.resolve_once()
    resolver._since_ms = 0  # even recomputing every run from scratch writes nothing
    resolver.resolve_once()
    assert rows_written(client, runs_db) == first
    client.insert(
        AGENT_RUN_SIGHTINGS,
        [sighting(ODD_RUN_ID, "codex_run", now + 60 * 10**9)],
        column_names=list(TABLE_COLUMNS[AGENT_RUN_SIGHTINGS]),
        database=runs_db,
    )
    resolver.resolve_once()
    assert rows_written(client, runs_db)[0] == 1001  # exactly the changed run, once more
    rewritten = client.query(
        f"SELECT count() FROM {runs_db}.agent_runs WHERE RunId = {{id:String}}",
        parameters={"id": ODD_RUN_ID},
    ).result_rows[0][0]
    assert rewritten == 2


class _TimedResolver(RunResolver):
    """The real scheduling loop around a tick of a chosen duration (no ClickHouse)."""

    def __init__(self, tick_seconds: float, interval: float) -> None:
        super().__init__(client=None, database="otel", interval=interval)  # type: ignore[arg-type]
        self.tick_seconds = tick_seconds
        self.started: list[float] = []

    def resolve_once(self) -> None:
        self.started.append(time.monotonic())
        time.sleep(self.tick_seconds)


@pytest.mark.unit
@pytest.mark.parametrize(("tick", "least_gap"), [(0.0, 0.05), (0.02, 0.02 * stitch.BACKOFF)])
def test_slow_ticks_space_the_resolver_out(tick: float, least_gap: float) -> None:
    resolver = _TimedResolver(tick, interval=0.05)

    async def three_ticks() -> None:
        resolver.start()
        deadline = time.monotonic() + 10
        while len(resolver.started) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await resolver.stop()

    asyncio.run(three_ticks())
    gaps = [b - a for a, b in itertools.pairwise(resolver.started)]
    assert len(gaps) >= 2
    assert min(gaps) >= least_gap
    assert max(gaps) < least_gap + tick + 0.4  # not slower than asked either
