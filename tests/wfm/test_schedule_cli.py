"""``queuecast schedule``: plan a small week, publish it twice, read the audit trail, check it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ingest.contract import ForecastInterval, ForecastPublished, encode_event, make_event
from queuecast.cli import app
from queuecast.planning import PlanError, load_plan, offered_calls, requirement
from queuecast.schedule_cli import read_roster

runner = CliRunner()

PLAN = """
name: two days
queue: support
start: 2026-03-02
days: 2
interval_minutes: 30
timezone: UTC
demand:
  calls_per_day: 900
  shape: [["00:00", 0], ["08:00", 1.0], ["12:00", 1.5], ["16:00", 0.8], ["18:00", 0]]
staffing: {aht: 240, service_level: 0.8, answer_within: 20}
templates:
  - name: day
    per_start: true
    length_minutes: 480
    earliest_start: "08:00"
    latest_start: "10:00"
    start_step_minutes: 60
    breaks:
      - {kind: lunch, minutes: 30, paid: false, earliest_after_minutes: 180,
         latest_after_minutes: 270}
agents:
  - agent_id: a
    count: 14
    skills: [support]
  - agent_id: early
    skills: [support]
    preferences: [{points: 10, start_until: "08:00"}]
rules: {max_weekly_minutes: 2400, min_rest_minutes: 600}
"""


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_plan_rosters_the_requirement(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "roster.jsonl"
    result = runner.invoke(app, ["schedule", "plan", str(plan_file), "--out", str(out),
                                 "--json", "--time-limit", "30"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    roster = read_roster(out)
    assert figures["roster"]["unfilled_slots"] == 0
    assert len(roster) == len(figures["roster"]["assignments"])
    assert len(roster) == sum(s["count"] for s in figures["shifts"]["shifts"])
    # one shift a day per agent, and only the plan's agents
    assert not roster.duplicated(["agent_id", "day"]).any()
    assert set(roster["agent_id"]) <= {f"a{k:03d}" for k in range(1, 15)} | {"early"}
    # coverage recomputed from the roster file: agents on the phones per interval
    spec = load_plan(plan_file)
    need = requirement(spec, offered_calls(spec))
    on_phones = pd.Series(0, index=need.index)
    for row in roster.itertuples():
        on_phones[(need.index >= row.start) & (need.index < row.end)] += 1
        for activity in row.activities:
            on_phones[(need.index >= activity.start) & (need.index < activity.end)] -= 1
    short = (need - on_phones).clip(lower=0).sum() * 0.5
    assert figures["shifts"]["under_hours"] == pytest.approx(short)
    assert figures["required_agent_hours"] == pytest.approx(need.sum() * 0.5)
    assert need.max() > 0
    assert on_phones.max() > 0


def test_publish_history_and_stale_version(plan_file: Path, tmp_path: Path, home: Path) -> None:
    out = tmp_path / "roster.jsonl"
    assert runner.invoke(app, ["schedule", "plan", str(plan_file), "--out", str(out),
                               "--time-limit", "30"]).exit_code == 0
    args = ["schedule", "publish", str(out), "--schedule-id", "support-w10", "--queue",
            "support", "--by", "planner1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "version 1" in first.output
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[1:]) + "\n")  # one shift fewer
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "version 2" in second.output
    stale = runner.invoke(app, [*args, "--expected-version", "1"])
    assert stale.exit_code == 2
    assert "version" in stale.output
    dropped = json.loads(lines[0])
    # a manual edit puts the dropped shift back, as a team lead approving a swap would
    moved_file = tmp_path / "edit.jsonl"
    moved_file.write_text(json.dumps(dropped) + "\n")
    edited = runner.invoke(app, ["schedule", "edit", "--schedule-id", "support-w10", "--agent",
                                 dropped["agent_id"], "--start", dropped["day"] + "T00:00:00",
                                 "--end", dropped["day"] + "T23:59:00", "--by", "lead7",
                                 "--reason", "swap approved", "--shifts", str(moved_file)])
    assert edited.exit_code == 0, edited.output
    assert "version 3" in edited.output
    trail = runner.invoke(app, ["schedule", "history", "--schedule-id", "support-w10",
                                "--json"])
    assert trail.exit_code == 0, trail.output
    rows = [json.loads(line) for line in trail.stdout.splitlines()]
    assert sorted({r["version"] for r in rows}) == [1, 2, 3]
    assert {r["by"] for r in rows if r["version"] < 3} == {"planner1"}
    third = [r for r in rows if r["version"] == 3]
    assert {r["by"] for r in third} == {"lead7"}
    assert {r["reason"] for r in third} == {"swap approved"}
    assert third[0]["added"]
    changed = [r for r in rows if r["version"] == 2 and r["agent_id"] == dropped["agent_id"]]
    assert changed
    assert changed[0]["removed"]


def test_check_runs_the_simulator_on_a_roster(plan_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "roster.jsonl"
    assert runner.invoke(app, ["schedule", "plan", str(plan_file), "--out", str(out),
                               "--time-limit", "30"]).exit_code == 0
    spec = load_plan(plan_file)
    calls = offered_calls(spec)
    forecast = make_event(ForecastPublished(
        queue="support", forecast_id="f1", version=1, interval_minutes=30,
        start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 4, tzinfo=UTC),
        model="profile", published_by="planner1",
        intervals=[ForecastInterval(start=t.to_pydatetime().replace(tzinfo=UTC),
                                    calls=float(c), aht_s=240.0)
                   for t, c in calls.items() if c > 0]),
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC), source="test")
    forecast_file = tmp_path / "forecast.jsonl"
    forecast_file.write_bytes(encode_event(forecast) + b"\n")
    result = runner.invoke(app, ["schedule", "check", "--forecast", str(forecast_file),
                                 "--schedule", str(out), "--replications", "2", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    offered = sum(i["forecast_calls"] for i in figures["intervals"])
    assert offered == pytest.approx(float(calls.sum()), rel=1e-6)
    assert 0.0 < figures["totals"]["service_level"] <= 1.0


def test_plan_errors_name_the_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAN.replace("length_minutes: 480", "length_minutes: 4800"))
    result = runner.invoke(app, ["schedule", "plan", str(bad)])
    assert result.exit_code == 2
    assert "templates[0] (day)" in result.output
    assert "longer than a day" in result.output
    bad.write_text(PLAN.replace("calls_per_day: 900", "calls_per_dya: 900"))
    with pytest.raises(PlanError, match="calls_per_dya"):
        load_plan(bad)


def _forecast_file(path: Path, *, queue: str, version: int, calls: float) -> None:
    starts = pd.date_range("2026-03-02", periods=96, freq="30min", tz="UTC")
    event = make_event(ForecastPublished(
        queue=queue, forecast_id="f1", version=version, interval_minutes=30,
        start=starts[0].to_pydatetime(), end=(starts[-1] + pd.Timedelta("30min")).to_pydatetime(),
        model="test", published_by="planner1",
        intervals=[ForecastInterval(start=t.to_pydatetime(), calls=calls if 16 <= k < 36 else 0.0,
                                    aht_s=200.0 + k)
                   for k, t in enumerate(starts)]),
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC), source="test")
    with path.open("ab") as out:
        out.write(encode_event(event) + b"\n")


def test_plan_from_a_published_forecast(tmp_path: Path) -> None:
    forecasts = tmp_path / "forecasts.jsonl"
    _forecast_file(forecasts, queue="support", version=1, calls=10.0)
    _forecast_file(forecasts, queue="support", version=2, calls=40.0)
    _forecast_file(forecasts, queue="sales", version=3, calls=99.0)
    plan_text = PLAN.replace(
        '  calls_per_day: 900\n  shape: [["00:00", 0], ["08:00", 1.0], ["12:00", 1.5], '
        '["16:00", 0.8], ["18:00", 0]]', "  forecast: forecasts.jsonl").replace(
        "interval_minutes: 30", "interval_minutes: 15")
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text)
    spec = load_plan(path)
    calls = offered_calls(spec)
    # version 2 of the support forecast, 30-minute intervals split over two quarter-hours;
    # day 2 has no forecast and is offered nothing
    assert calls.sum() == pytest.approx(20 * 40.0)
    assert calls[pd.Timestamp("2026-03-02 08:00")] == pytest.approx(20.0)
    assert calls[pd.Timestamp("2026-03-03 08:00")] == 0.0
    need = requirement(spec, calls)
    # the forecast's handle time (200 + k s) staffs the interval, not staffing.aht (240 s)
    assert need[pd.Timestamp("2026-03-02 08:00")] == pytest.approx(
        float(requirement_for(20.0, 216.0)))
    path.write_text(plan_text.replace("queue: support", "queue: billing"))
    with pytest.raises(PlanError, match="no forecast for queue 'billing'"):
        offered_calls(load_plan(path))


def requirement_for(calls: float, aht: float) -> int:
    from scheduling import required_agents

    return int(required_agents(calls=calls, aht=aht, interval_minutes=15, service_level=0.8,
                               answer_within=20).agents)
