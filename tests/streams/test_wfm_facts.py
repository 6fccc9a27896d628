"""Published schedules and forecasts from the wfm topic into the warehouse (WF-02, WF-06),
on both engines: every version a snapshot, redeliveries write nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.contract import Event, make_event
from ingest.contract.wfm import (
    ForecastInterval,
    ForecastPublished,
    ScheduleChanged,
    ScheduledActivity,
    ScheduledShift,
    SchedulePublished,
)
from streams.facts import FactRows, FactsState, apply
from streams.sink import WarehouseSink
from warehouse.client import Warehouse
from warehouse.migrations import migrate


def t(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


def shift(agent: str, start: int, end: int, *, lunch: int | None = None) -> ScheduledShift:
    activities = ([ScheduledActivity(kind="lunch", start=t(lunch), end=t(lunch, 30),
                                     paid=False)] if lunch is not None else [])
    return ScheduledShift(agent_id=agent, start=t(start), end=t(end), template="8h",
                          activities=activities)


def events() -> list[Event]:
    published = SchedulePublished(
        queue="support", schedule_id="w10", version=1, start=t(0), end=t(23),
        published_by="planner", shifts=[shift("a1", 8, 16, lunch=12), shift("a2", 9, 17)])
    changed = ScheduleChanged(
        queue="support", schedule_id="w10", version=2, previous_version=1,
        changed_by="planner", reason="a2 sick", agent_ids=["a2"], start=t(0), end=t(23),
        shifts=[shift("a3", 9, 17)])
    forecast = ForecastPublished(
        queue="support", forecast_id="f1", version=1, interval_minutes=15, start=t(8),
        end=t(8, 30), model="holt-winters", published_by="planner",
        intervals=[ForecastInterval(start=t(8), calls=12.5, aht_s=240.0, calls_low=9.0,
                                    calls_high=16.0),
                   ForecastInterval(start=t(8, 15), calls=14.0)])
    return [make_event(p, occurred_at=t(7, n), source="test", event_id=f"w{n}")
            for n, p in enumerate([published, changed, forecast])]


def fold(stream: list[Event]) -> FactRows:
    state, out = FactsState(), FactRows()
    for event in stream:
        state, rows = apply(state, event)
        out.extend(rows)
    return out


def test_every_version_is_a_snapshot_and_redelivery_adds_nothing() -> None:
    out = fold(events() + events()[:2])  # the two schedule events delivered twice
    rows = [(r["version"], r["agent_id"], r["kind"], r["start_utc"].hour, r["paid"])
            for r in out.schedules]
    assert rows == [
        (1, "a1", "shift", 8, True), (1, "a1", "lunch", 12, False), (1, "a2", "shift", 9, True),
        (2, "a1", "shift", 8, True), (2, "a1", "lunch", 12, False), (2, "a3", "shift", 9, True),
    ]
    assert [r["row_id"] for r in out.schedules][:3] == ["w0:0", "w0:1", "w0:2"]
    assert [(r["calls"], r["calls_low"]) for r in out.forecasts] == [(12.5, 9.0), (14.0, None)]
    assert out.forecasts[1]["aht"] is None


def test_written_to_the_warehouse(warehouse: Warehouse) -> None:
    migrate(warehouse)
    sink = WarehouseSink(warehouse)
    sink.add(fold(events()))
    assert sink.write() == {"schedules": 6, "forecasts": 2}
    sink.add(fold(events()))
    assert sink.write() == {"schedules": 0, "forecasts": 0}
    current = warehouse.query(
        "SELECT agent_id, kind, paid FROM schedules FINAL WHERE schedule_id = %(s)s "
        "AND version = 2 ORDER BY agent_id, kind", {"s": "w10"})
    assert current.values.tolist() == [["a1", "lunch", 0], ["a1", "shift", 1],
                                       ["a3", "shift", 1]]
    forecast = warehouse.query(
        "SELECT calls, aht, calls_low, calls_high FROM forecasts FINAL ORDER BY interval_start")
    assert forecast["calls"].tolist() == [12.5, 14.0]
    assert forecast["calls_low"].isna().tolist() == [False, True]
    assert forecast["aht"].isna().tolist() == [False, True]
