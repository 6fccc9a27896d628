"""The simulation check of a schedule (WF-04, WF-06, WF-09): agreement with Erlang A where
its assumptions hold, and what it misses where they do not (backlog across intervals)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from support import REAL_DATA

from callcore.scenario import Deterministic, Exponential
from ingest.contract import (
    ForecastInterval,
    ForecastPublished,
    ScheduledActivity,
    ScheduledShift,
    SchedulePublished,
)
from queuecast.schedule_check import (
    ScheduleCheckError,
    bank_demonstration,
    check_schedule,
    staffing_schedule,
)
from scheduling.erlang import queue_metrics
from scheduling.model import Activity

BANK = REAL_DATA / "anonymous_bank_one_month_calls.csv"


def _grid(periods: int, start: str = "2026-01-05 08:00") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=periods, freq="30min")


def test_stationary_day_agrees_with_erlang_a_within_the_confidence_interval() -> None:
    # M/M/14+M: 100 calls per 30 min, AHT 180 s, mean patience 300 s, 8 hours
    starts = _grid(16)
    forecast = pd.DataFrame({"calls": 100.0, "aht_s": 180.0}, index=starts)
    result = check_schedule(
        forecast=forecast, schedule=staffing_schedule([14] * 16, starts, interval_minutes=30),
        handle_time=Exponential(mean=180), patience=Exponential(mean=300),
        replications=30, seed=100, confidence=0.99)
    assert (result.intervals["staffed"] == 14).all()
    theory = queue_metrics(calls=100, aht=180, agents=14, patience=300)
    assert float(theory.service_level) == pytest.approx(0.9168, abs=1e-4)
    steady = result.pooled(start=starts[1])  # the first interval starts with nobody waiting
    assert steady["offered"] == pytest.approx(1500, rel=0.02)
    for name, value in (("service_level", theory.service_level), ("asa_s", theory.asa),
                        ("abandon_rate", theory.p_abandon)):
        assert steady[f"{name}_low"] <= float(value) <= steady[f"{name}_high"], name
        assert steady[f"erlang_a_{name}"] == pytest.approx(float(value))
    assert steady["service_level_high"] - steady["service_level_low"] < 0.03
    # Erlang C ignores abandonment and lies below the simulated service level
    assert steady["erlang_c_service_level"] == pytest.approx(0.8884, abs=1e-4)
    assert steady["erlang_c_service_level"] < steady["service_level_low"]
    # the empty start: the first interval is better than steady state
    first = result.intervals.iloc[0]
    assert first["service_level_low"] > float(theory.service_level)


def test_backlog_after_a_peak_pulls_the_next_interval_below_erlang() -> None:
    # a 200-call peak on 14 agents, then 12 agents for 100 calls: Erlang sees each interval
    # alone; in the simulation the peak's queue is still there when the dip begins
    starts = _grid(4)
    forecast = pd.DataFrame({"calls": [100.0, 200.0, 100.0, 100.0], "aht_s": 180.0},
                            index=starts)
    result = check_schedule(
        forecast=forecast,
        schedule=staffing_schedule([14, 14, 12, 12], starts, interval_minutes=30),
        handle_time=Exponential(mean=180), patience=Exponential(mean=300),
        replications=60, seed=11, confidence=0.99)
    peak, dip, after = (result.intervals.iloc[i] for i in (1, 2, 3))
    assert dip["erlang_a_service_level"] == pytest.approx(0.772, abs=0.001)
    assert dip["service_level_high"] < dip["erlang_a_service_level"] - 0.05
    assert dip["service_level"] == pytest.approx(0.632, abs=0.001)
    assert dip["asa_s_low"] > 1.5 * dip["erlang_a_asa_s"]
    assert dip["abandon_rate_low"] > dip["erlang_a_abandon_rate"]
    # the peak itself starts with a short queue, so it does better than Erlang's steady state
    assert peak["service_level_low"] > peak["erlang_a_service_level"]
    # an hour later the backlog is gone and Erlang is right again
    assert after["service_level_low"] <= after["erlang_a_service_level"] <= after[
        "service_level_high"]


def test_published_forecast_and_schedule_with_breaks_in_a_local_timezone() -> None:
    # Shanghai 09:00-11:00 local is 01:00-03:00 UTC; two agents, one on a break 09:30-09:45
    start = datetime(2026, 1, 5, 1, tzinfo=UTC)
    forecast = ForecastPublished(
        queue="sales", forecast_id="f", version=3, interval_minutes=30, start=start,
        end=start + timedelta(hours=2), model="ets", published_by="planner",
        intervals=[ForecastInterval(start=start + timedelta(minutes=30 * i), calls=20,
                                    aht_s=240) for i in range(4)])
    schedule = SchedulePublished(
        queue="sales", schedule_id="s", version=1, start=start,
        end=start + timedelta(hours=2), published_by="planner",
        shifts=[ScheduledShift(agent_id="li", start=start, end=start + timedelta(hours=2)),
                ScheduledShift(agent_id="wang", start=start, end=start + timedelta(hours=1),
                               activities=[ScheduledActivity(
                                   kind="break", start=start + timedelta(minutes=30),
                                   end=start + timedelta(minutes=45))])])
    result = check_schedule(forecast=forecast, schedule=schedule,
                            handle_time=Deterministic(value=240), patience=None,
                            replications=3, seed=1, timezone="Asia/Shanghai")
    frame = result.intervals
    assert [t.strftime("%H:%M") for t in frame.index] == ["09:00", "09:30", "10:00", "10:30"]
    np.testing.assert_allclose(frame["staffed"], [2.0, 1.5, 1.0, 1.0])
    # 1.5 agents: the mean of Erlang C with 1 and with 2 agents
    one, two = (queue_metrics(calls=20, aht=240, agents=n) for n in (1, 2))
    assert frame["erlang_c_service_level"].iloc[1] == pytest.approx(
        (float(one.service_level) + float(two.service_level)) / 2)
    assert frame["erlang_a_service_level"].isna().all()  # no patience, no Erlang A
    assert frame["offered"].sum() == pytest.approx(80, rel=0.3)
    assert (frame["abandoned"].iloc[:2] == 0).all()  # nobody hangs up while agents work
    assert result.notes == ()
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["intervals"][0]["start"] == "2026-01-05T09:00:00"
    assert payload["patience"] is None
    assert payload["handle_time"] == {"dist": "deterministic", "value": 240.0}
    assert result.summary().row_count == 5


def test_shift_frame_rows_breaks_and_an_empty_interval() -> None:
    starts = _grid(4)
    forecast = pd.DataFrame({"calls": [30.0, 30.0, 30.0, 30.0]}, index=starts)
    shifts = pd.DataFrame([{
        "template": "early", "day": starts[0].date(), "start": starts[0],
        "end": starts[0] + pd.Timedelta(hours=1, minutes=30), "count": 3,
        "paid_minutes": 90, "skill": None,
        "activities": (Activity("break", starts[1], starts[1] + pd.Timedelta(minutes=10)),)}])
    result = check_schedule(forecast=forecast, schedule=shifts,
                            handle_time=Exponential(mean=120), patience=Exponential(mean=60),
                            replications=4, seed=2)
    frame = result.intervals
    np.testing.assert_allclose(frame["staffed"], [3.0, 2.0, 3.0, 0.0])
    assert frame["aht_s"].tolist() == [120.0] * 4  # no AHT in the forecast: the mean
    # nobody works the last interval: every caller waits out their patience
    last = frame.iloc[3]
    assert last["service_level"] == 0
    assert last["abandon_rate"] == 1
    assert last["erlang_a_abandon_rate"] == 1
    assert last["erlang_c_service_level"] == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"replications": 0}, "replications must be at least 1"),
    ({"forecast": pd.DataFrame({"x": [1.0, 2.0]}, index=_grid(2))}, "'calls'"),
    ({"schedule": pd.DataFrame({"start": [], "end": []})}, "agent_id .* or count"),
    ({"handle_time": 180}, "handle_time must be a callcore.scenario distribution"),
    ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is unknown"),
    ({"forecast": pd.DataFrame({"calls": [1.0, 2.0]},
                               index=pd.DatetimeIndex(["2026-01-05 08:00",
                                                       "2026-01-05 08:50"]))},
     "interval_minutes must divide a day"),
])
def test_bad_inputs_name_the_argument_and_the_fix(change: dict[str, object],
                                                  message: str) -> None:
    starts = _grid(2)
    options: dict[str, object] = {
        "forecast": pd.DataFrame({"calls": [1.0, 2.0]}, index=starts),
        "schedule": staffing_schedule([1, 1], starts, interval_minutes=30),
        "handle_time": Exponential(mean=60), "replications": 1}
    options.update(change)
    with pytest.raises(ScheduleCheckError, match=message):
        check_schedule(**options)  # type: ignore[arg-type]


def test_staffing_schedule_puts_exactly_the_required_agents_on_the_phones() -> None:
    starts = _grid(5)
    roster = staffing_schedule([2, 3, 1, 0, 2], starts, interval_minutes=30)
    assert roster["agent_id"].tolist() == ["agent-001", "agent-001", "agent-002",
                                           "agent-002", "agent-003"]
    assert [(s.strftime("%H:%M"), e.strftime("%H:%M")) for s, e in
            zip(roster["start"], roster["end"], strict=True)] == [
        ("08:00", "09:30"), ("10:00", "10:30"), ("08:00", "09:00"), ("10:00", "10:30"),
        ("08:30", "09:00")]


@pytest.mark.skipif(not BANK.exists(), reason=f"real data absent: {BANK}")
def test_bank_day_staffed_by_erlang_a_checked_by_simulation() -> None:
    demo = bank_demonstration(BANK, day="2010-08-02", replications=8, seed=1)
    assert demo.calls == 2217
    assert demo.forecast["calls"].sum() == 2217
    assert demo.handle_time.chosen == "empirical"
    assert demo.handle_time.mean == pytest.approx(217.37, abs=0.01)
    assert demo.patience.median == 360.0
    assert demo.patience.exponential_mean == pytest.approx(385.78, abs=0.01)
    assert int(demo.agents.max()) == 16
    # the bank's own staffing that day was far below 80/20
    assert demo.observed["abandon_rate"] == pytest.approx(0.289, abs=0.001)
    assert demo.observed["service_level"] == pytest.approx(0.162, abs=0.001)
    totals = demo.check.totals
    assert totals["erlang_a_service_level"] >= 0.8
    # Erlang A staffing meets 80/20 in the simulation too, with fitted distributions
    assert totals["service_level_low"] > 0.8
    assert totals["abandon_rate"] < 0.05
    assert (demo.check.intervals["erlang_a_service_level"] >= 0.8).all()
