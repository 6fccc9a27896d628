"""The in-process host end to end: the embedded event log through the fact fold into the
warehouse (both engines): restart, rebuild, redelivery, outage and poison events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import demo_events

from ingest.contract import Event, Topic
from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from ingest.log.transport import OutgoingRecord
from streams.alarms import AlarmRule
from streams.facts import FACT_TABLES, FactRows, FactsState, apply, fold_events
from streams.runner import Backoff, StreamsRunner
from streams.sink import WarehouseSink
from streams.views import Boards, apply_boards
from warehouse import reports
from warehouse.client import Warehouse, WarehouseError
from warehouse.digest import table_digest, truncate
from warehouse.migrations import migrate


@pytest.fixture(scope="module")
def simulated() -> list[Event]:
    """A simulated day of the demo center (about 24,000 events)."""
    return list(demo_events(seed=11))


@pytest.fixture
def log(tmp_path: Path, simulated: list[Event]) -> Iterator[EventLog]:
    with EventLog(EmbeddedTransport(tmp_path / "events.sqlite3")) as opened:
        opened.produce(simulated)
        yield opened


@pytest.fixture
def migrated(warehouse: Warehouse) -> Warehouse:
    migrate(warehouse)
    return warehouse


def digests(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    return {t: (d.rows, d.checksum) for t in FACT_TABLES
            for d in [table_digest(warehouse, t)]}


def direct_rows(events: list[Event]) -> FactRows:
    return fold_events(events)[1]


def test_run_restart_and_rebuild_agree(log: EventLog, migrated: Warehouse,
                                       simulated: list[Event]) -> None:
    runner = StreamsRunner(log, WarehouseSink(migrated))
    first = runner.run(until_idle=True, idle_s=0.2)
    assert first.events == len(simulated)
    boards_equal_reports(runner, migrated)
    want = direct_rows(simulated)
    assert first.written == {t: len(getattr(want, t)) for t in FACT_TABLES}
    live = digests(migrated)
    assert live["calls"][0] == sum(1 for e in simulated if e.type == "call.offered")

    again = StreamsRunner(log, WarehouseSink(migrated)).run(until_idle=True, idle_s=0.2)
    assert (again.events, again.restored) == (0, len(simulated))  # state rebuilt, nothing new
    assert sum(again.written.values()) == 0

    truncate(migrated, FACT_TABLES)
    rebuilt = StreamsRunner(log, WarehouseSink(migrated), from_scratch=True).run(
        until_idle=True, idle_s=0.2)
    assert rebuilt.events == len(simulated)
    assert digests(migrated) == live


def same_up_to_rounding(a: object, b: object) -> bool:
    """Equal snapshots, floats up to summation order (the host folds partition by partition,
    the reference in time order)."""
    for name in a.__dataclass_fields__:  # type: ignore[attr-defined]
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float):
            if x != pytest.approx(y, rel=1e-12):
                return False
        elif x != y:
            return False
    return True


def boards_equal_reports(runner: StreamsRunner, warehouse: Warehouse) -> None:
    """The live queue board at the end of the day says what the warehouse report says."""
    board = {q.queue: q for q in runner.boards.snapshot()["queues"]}  # type: ignore[attr-defined]
    report = reports.queue_report(warehouse, start="2026-01-01", end="2027-01-01")
    assert sorted(board) == report["queue"].tolist()
    for row in report.itertuples():
        live = board[row.queue]
        assert (live.offered, live.answered, live.abandoned) == (
            row.offered, row.answered, row.abandoned)
        assert live.service_level == pytest.approx(row.service_level, rel=1e-12)
        assert live.asa_s == pytest.approx(row.asa_s, rel=1e-9)
        assert live.aht_s == pytest.approx(row.aht_s, rel=1e-9)


def test_crash_before_commit_redelivers_without_duplicates(
        log: EventLog, migrated: Warehouse, simulated: list[Event]) -> None:
    """Rows written but offsets not committed (the process died in between): the restart
    redelivers those events, and the sink's key check keeps every fact single."""

    class DiesAfterWrite(WarehouseSink):
        writes = 0

        def write(self) -> dict[str, int]:
            added = super().write()
            DiesAfterWrite.writes += 1
            if DiesAfterWrite.writes == 2:
                raise SystemExit("killed between the write and the commit")
            return added

    with pytest.raises(SystemExit):
        StreamsRunner(log, DiesAfterWrite(migrated, batch_rows=3_000)).run(
            until_idle=True, idle_s=0.2, max_events=5_000)
    partial = digests(migrated)["calls"][0]
    assert 0 < partial < 1_900
    resumed = StreamsRunner(log, WarehouseSink(migrated)).run(until_idle=True, idle_s=0.2)
    assert resumed.restored > 0
    got = digests(migrated)
    truncate(migrated, FACT_TABLES)
    StreamsRunner(log, WarehouseSink(migrated), from_scratch=True).run(until_idle=True,
                                                                      idle_s=0.2)
    assert got == digests(migrated)
    counts = migrated.query("SELECT count() AS n, uniqExact(call_id) AS u FROM calls")
    assert int(counts["n"].iloc[0]) == int(counts["u"].iloc[0])  # no duplicate ever inserted


class Outage:
    """The real warehouse behind a switch: ``failures`` writes fail as if it were down."""

    def __init__(self, inner: Warehouse, failures: int) -> None:
        self.inner, self.failures = inner, failures
        self.dialect = inner.dialect

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        if self.failures > 0:
            self.failures -= 1
            raise WarehouseError("Connection refused (test outage)")
        return self.inner.query(sql, params)

    def insert(self, table: str, data: pd.DataFrame) -> int:
        return self.inner.insert(table, data)

    def execute(self, sql: str, params: dict | None = None) -> None:
        self.inner.execute(sql, params)


def test_outage_is_retried_with_backoff_and_loses_nothing(
        log: EventLog, migrated: Warehouse, simulated: list[Event]) -> None:
    waits: list[float] = []
    sink = WarehouseSink(Outage(migrated, failures=6), batch_rows=5_000)  # type: ignore[arg-type]
    report = StreamsRunner(log, sink, backoff=Backoff(first=0.5, longest=4.0),
                           sleep=waits.append).run(until_idle=True, idle_s=0.2)
    assert report.retries == 6
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    want = direct_rows(simulated)
    assert {t: rows for t, (rows, _) in digests(migrated).items()} == {
        t: len(getattr(want, t)) for t in FACT_TABLES}


def test_malformed_records_are_dead_lettered_and_facts_unaffected(
        log: EventLog, migrated: Warehouse, simulated: list[Event]) -> None:
    topic = log.topic_name(Topic.CALLS)
    log.transport.append([OutgoingRecord(topic, n % log.partition_count(Topic.CALLS),
                                         b"call-x", b'{"not": "an event", "n": %d}' % n, ())
                          for n in range(1_000)])
    runner = StreamsRunner(log, WarehouseSink(migrated))
    report = runner.run(until_idle=True, idle_s=0.2)
    assert report.events == len(simulated)
    clean = Boards(runner.boards.settings)
    state = FactsState()
    for event in simulated:  # the boards as if the malformed records had never been there
        state, rows = apply(state, event)
        apply_boards(clean, event, rows.calls)
    got, want = runner.boards.snapshot(), clean.snapshot()
    for kind in ("queues", "agents"):
        for mine, theirs in zip(got[kind], want[kind], strict=True):
            assert same_up_to_rounding(mine, theirs), (kind, mine, theirs)
    with log.dead_letters() as dead:
        letters = [d for batch in dead.drain(idle=0.2) for d in batch]
    assert len(letters) == 1_000
    assert {d.stage for d in letters} == {"consume"}
    assert all(d.origin == topic for d in letters)
    assert digests(migrated)["calls"][0] == len(direct_rows(simulated).calls)


def test_alarms_are_appended_once_and_survive_a_restart(log: EventLog, migrated: Warehouse
                                                        ) -> None:
    rules = (AlarmRule(name="backlog", kind="queue_length", threshold=2.0, clear=0.0),)
    first = StreamsRunner(log, WarehouseSink(migrated), alarms=rules, idle_partition_s=60)
    report = first.run(until_idle=True, idle_s=0.2, max_events=500)
    with log.consumer(group=None, topics=(Topic.ALARMS,)) as alarms:
        events = [d.event for batch in alarms.drain(idle=0.2) for d in batch]
    assert report.alarms == len(events) > 0
    kinds = [e.type for e in events]
    raised = kinds.count("alarm.raised")
    assert raised - kinds.count("alarm.cleared") == len(first.active)
    assert all(e.payload.value >= 2 for e in events if e.type == "alarm.raised")
    again = StreamsRunner(log, WarehouseSink(migrated), alarms=rules)
    assert again.run(until_idle=True, idle_s=0.2).alarms == 0
    assert again.active.keys() == first.active.keys()
