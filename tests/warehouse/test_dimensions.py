"""Dimensions (queues, agents, teams, sites, calendar) from a center and the business
calendar, on both engines; a reload keeps the newest row per key."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from callcore.calendar import BusinessCalendar, CalendarConfig
from callcore.scenario import load_scenario
from queuecast.cli import app
from queuecast.dimensions import calendar_rows, center_rows, scenario_rows
from warehouse.client import Warehouse
from warehouse.migrations import migrate

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 2, tzinfo=UTC)


def load(warehouse: Warehouse, frames: dict) -> None:
    for table, frame in frames.items():
        warehouse.insert(table, frame)


def test_demo_center_and_the_2026_chinese_calendar(warehouse: Warehouse) -> None:
    migrate(warehouse)
    frames = scenario_rows(load_scenario("demo"), updated_at=T0)
    frames["calendar"] = calendar_rows(BusinessCalendar(CalendarConfig()), region="CN",
                                       start=date(2026, 1, 1), end=date(2026, 12, 31),
                                       updated_at=T0)
    load(warehouse, frames)
    queues = warehouse.query("SELECT queue, service_level_s, site FROM queues FINAL "
                             "ORDER BY queue")
    assert queues.values.tolist() == [["billing", 20, "shanghai"], ["sales", 20, "shanghai"],
                                      ["support", 30, "shanghai"]]
    agents = warehouse.query("SELECT team, count() AS n FROM agents FINAL GROUP BY team "
                             "ORDER BY team")
    assert agents.values.tolist() == [["billing", 6], ["sales", 10], ["support", 24]]
    blended = warehouse.query("SELECT skills FROM agents FINAL WHERE agent_id = %(a)s",
                              {"a": "blended-001"})["skills"].iloc[0]
    assert list(blended) == ["billing", "sales", "support"]
    sites = warehouse.query("SELECT site, timezone FROM sites FINAL")
    assert sites.values.tolist() == [["shanghai", "Asia/Shanghai"]]
    days = warehouse.query(
        "SELECT toString(date) AS d, is_workday, is_holiday, holiday_name FROM calendar FINAL "
        "WHERE date IN %(days)s ORDER BY date",
        {"days": (date(2026, 2, 14), date(2026, 2, 17), date(2026, 3, 2), date(2026, 3, 7),
                  date(2026, 10, 1))})
    assert days.values.tolist() == [
        ["2026-02-14", 1, 0, "Spring Festival"],  # a Saturday worked in exchange
        ["2026-02-17", 0, 1, "Spring Festival"],
        ["2026-03-02", 1, 0, ""],
        ["2026-03-07", 0, 0, ""],  # an ordinary Saturday
        ["2026-10-01", 0, 1, "National Day"],
    ]
    totals = warehouse.query("SELECT sum(is_holiday) AS h, sum(is_workday) AS w, count() AS n "
                             "FROM calendar FINAL")
    calendar = BusinessCalendar(CalendarConfig())
    first = date(2026, 1, 1).toordinal()
    holidays = [n for n in range(365)
                if calendar.day(date.fromordinal(first + n)).kind == "holiday"]
    assert int(totals["h"].iloc[0]) == len(holidays)
    assert int(totals["n"].iloc[0]) == 365


def test_reload_keeps_the_newest_row(warehouse: Warehouse) -> None:
    migrate(warehouse)
    center = load_scenario("demo").center
    assert center is not None
    load(warehouse, center_rows(center, timezone="Asia/Shanghai", updated_at=T0))
    load(warehouse, center_rows(center, timezone="Asia/Shanghai", updated_at=T1,
                                targets={"support": 0.9}))
    got = warehouse.query("SELECT service_level_target AS t FROM queues FINAL "
                          "WHERE queue = 'support'")
    assert got["t"].tolist() == [0.9]


def test_command_loads_a_scenario_and_refuses_ambiguity(home: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["warehouse", "dimensions", "--scenario", "demo", "--from",
                               "2026-01-01", "--to", "2026-01-31", "--json"])
    assert done.exit_code == 0, done.output
    assert '"calendar": 31' in done.output
    assert '"agents": 40' in done.output
    both = runner.invoke(app, ["warehouse", "dimensions"])
    assert both.exit_code == 2
    assert "exactly one of --scenario" in both.output
