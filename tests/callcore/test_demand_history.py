"""The scenario's demand section (holidays, trend, day noise) and the offered-calls history."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from callcore.scenario import ScenarioError, load_scenario
from callcore.simulator import Simulation, arrival_history
from ingest.contract import Event, Payload
from queuecast.cli import app

WEEK = {"mon": 1.2, "tue": 1.0, "wed": 1.0, "thu": 1.0, "fri": 1.0, "sat": 0.5, "sun": 0.4}
WORKDAY = (1.2 + 1.0 + 1.0 + 1.0 + 1.0) / 5  # a holiday's and a make-up workday's base
DAILY = 1_000.0  # expected calls of a Tuesday on each number (two intervals of 500)


def _scenario(demand: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Two numbers into two queues, 10:00-11:00 in two 30-minute intervals, Asia/Shanghai."""
    raw: dict[str, Any] = {
        "name": "demand", "start": "2026-02-09", "days": 21, "timezone": "Asia/Shanghai",
        "seed": 5,
        "center": {
            "queues": [{"name": "qa", "after_call_work_s": 0},
                       {"name": "qb", "after_call_work_s": 0}],
            "numbers": [{"number": "4001", "entry": {"kind": "queue", "target": "qa"}},
                        {"number": "4002", "entry": {"kind": "queue", "target": "qb"}}],
            "agents": [{"id": f"a{i}", "skills": {"qa": 1, "qb": 1}} for i in range(6)],
        },
        "queue_defaults": {"handle_time": {"dist": "exponential", "mean": 20}},
        "arrivals": [
            {"number": "4001", "start": "10:00", "calls": [500, 500], "weekdays": WEEK},
            {"number": "4002", "start": "10:00", "calls": [250, 250], "weekdays": WEEK,
             "scale": 2},
        ],
    }
    if demand is not None:
        raw["demand"] = demand
    raw.update(overrides)
    return raw


def _daily_expected(model: Simulation) -> dict[date, float]:
    """Expected calls of the first number per local day, from the model's rates."""
    return {model.scenario.start + timedelta(days=d):
            sum(c for s, _, _, c in model.day_intervals(d) if s == 0)
            for d in range(model.scenario.days)}


# -- holidays and make-up workdays --------------------------------------------------------


HOLIDAYS = {"holidays": {"country": "CN", "factor": 0.35, "names": {"spring": 0.25},
                         "before": 1.1, "after": 1.3}}


def test_holidays_make_up_workdays_and_the_days_around_them_from_the_rates() -> None:
    # 2026-02-09 .. 03-01: Spring Festival 02-15 (Sun) .. 02-23 (Mon); make-up workdays
    # Saturday 02-14 and Saturday 02-28 (chinese_calendar).
    spring = _daily_expected(Simulation(_scenario({"holidays": {**HOLIDAYS["holidays"],
                                                                "names": {}}})))
    named = _daily_expected(Simulation(_scenario(HOLIDAYS)))
    plain = _daily_expected(Simulation(_scenario()))
    assert plain[date(2026, 2, 10)] == pytest.approx(DAILY)
    assert plain[date(2026, 2, 14)] == pytest.approx(0.5 * DAILY)  # without: a Saturday
    for day in (date(2026, 2, 15), date(2026, 2, 18), date(2026, 2, 21), date(2026, 2, 23)):
        assert spring[day] == pytest.approx(0.35 * WORKDAY * DAILY)
        assert named[day] == pytest.approx(0.25 * WORKDAY * DAILY)  # "spring" matches
    # The make-up Saturday is a workday, and the last one before the holiday.
    assert spring[date(2026, 2, 14)] == pytest.approx(WORKDAY * 1.1 * DAILY)
    assert spring[date(2026, 2, 13)] == pytest.approx(1.0 * DAILY)  # Friday, not the last
    assert spring[date(2026, 2, 24)] == pytest.approx(1.0 * 1.3 * DAILY)  # first day back
    assert spring[date(2026, 2, 28)] == pytest.approx(WORKDAY * DAILY)  # plain make-up day
    assert spring[date(2026, 3, 1)] == pytest.approx(0.4 * DAILY)  # an ordinary Sunday
    assert spring[date(2026, 2, 10)] == plain[date(2026, 2, 10)]


def test_weekends_next_to_a_holiday_are_skipped_for_the_days_around_it() -> None:
    # Qingming 2026-04-04 (Sat) .. 04-06 (Mon): Friday before, Tuesday after.
    model = Simulation(_scenario(HOLIDAYS, start="2026-04-01", days=8))
    daily = _daily_expected(model)
    assert daily[date(2026, 4, 2)] == pytest.approx(DAILY)
    assert daily[date(2026, 4, 3)] == pytest.approx(1.1 * DAILY)
    assert daily[date(2026, 4, 4)] == pytest.approx(0.35 * WORKDAY * DAILY)
    assert daily[date(2026, 4, 7)] == pytest.approx(1.3 * DAILY)
    assert daily[date(2026, 4, 8)] == pytest.approx(DAILY)


def test_holiday_counts_are_the_factor_times_a_workday_within_poisson_noise() -> None:
    raw = _scenario({"holidays": {"factor": 0.35}}, start="2026-01-05", days=182)
    history = arrival_history(load_scenario(raw), interval_minutes=60)
    days = history.groupby([history["timestamp"].dt.normalize(), "queue"])["calls"].sum()
    qa = days.xs("qa", level="queue")
    holiday = [date(2026, 2, d) for d in range(15, 24)] + [date(2026, 4, d) for d in (4, 5, 6)]
    holiday += [date(2026, 5, d) for d in range(1, 6)] + [date(2026, 6, d) for d in (19, 20, 21)]
    makeup = [date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9)]
    tuesdays = [d.date() for d in qa.index if d.weekday() == 1 and d.date() not in holiday]
    by_day = {d.date(): v for d, v in qa.items()}
    workday_rate = np.mean([by_day[d] for d in tuesdays])  # a Tuesday has factor 1.0
    assert workday_rate == pytest.approx(DAILY, rel=0.025)  # 24 Tuesdays: sd 0.65 %
    holiday_mean = np.mean([by_day[d] for d in holiday])
    # 20 holiday days of 364 expected calls each: sd of the mean 1.1 %.
    assert holiday_mean / (WORKDAY * DAILY) == pytest.approx(0.35, rel=0.04)
    makeup_mean = np.mean([by_day[d] for d in makeup])
    assert makeup_mean == pytest.approx(WORKDAY * DAILY, rel=0.06)  # sd 1.8 %


# -- trend and day noise ----------------------------------------------------------------


def test_trend_compounds_per_week_from_its_origin() -> None:
    daily = _daily_expected(Simulation(_scenario(
        {"trend_per_week": 0.01, "trend_origin": "2026-02-17"})))
    assert daily[date(2026, 2, 10)] == pytest.approx(DAILY / 1.01)
    assert daily[date(2026, 2, 17)] == pytest.approx(DAILY)
    assert daily[date(2026, 2, 24)] == pytest.approx(DAILY * 1.01)
    assert daily[date(2026, 2, 27)] == pytest.approx(DAILY * 1.01 ** (10 / 7))
    assert daily[date(2026, 2, 11)] == pytest.approx(DAILY * 1.01 ** (-6 / 7))


def test_day_factors_multiply_single_dates() -> None:
    daily = _daily_expected(Simulation(_scenario({"day_factors": {"2026-02-11": 1.6}})))
    assert daily[date(2026, 2, 11)] == pytest.approx(1.6 * DAILY)
    assert daily[date(2026, 2, 12)] == pytest.approx(DAILY)


def _noise_levels(cv: float, source_cv: float, persistence: float, days: int,
                  seed: int = 3) -> np.ndarray:
    """Day factors of both numbers over ``days`` days of flat weeks (rates / base)."""
    raw = _scenario({"day_noise": {"cv": cv, "source_cv": source_cv,
                                   "persistence": persistence}},
                    arrivals=[{"number": "4001", "calls": [100]},
                              {"number": "4002", "calls": [100]}])
    model = Simulation(load_scenario(raw), seed=seed, days=days)
    levels = np.zeros((days, 2))
    for d in range(days):
        for source, _, _, calls in model.day_intervals(d):
            levels[d, source] = calls / 100
    return levels


def test_day_noise_has_mean_one_the_cv_and_the_persistence_asked_for() -> None:
    levels = _noise_levels(0.06, 0.03, 0.7, 4_000)
    logs = np.log(levels)
    # Effective sample ~ 4,000 * 0.3 / 1.7 = 700 days: the mean's sd is 0.25 %.
    assert levels.mean(axis=0) == pytest.approx([1.0, 1.0], abs=0.01)
    total_cv = np.sqrt((1 + 0.06**2) * (1 + 0.03**2) - 1)
    assert levels.std(axis=0) / levels.mean(axis=0) == pytest.approx([total_cv] * 2, rel=0.1)
    for source in (0, 1):
        lag1 = np.corrcoef(logs[1:, source], logs[:-1, source])[0, 1]
        assert lag1 == pytest.approx(0.7, abs=0.05)
    # The center-wide part is shared: log variances 0.0036 and 0.0009 correlate 0.8.
    shared = np.log1p(0.06**2) / (np.log1p(0.06**2) + np.log1p(0.03**2))
    assert np.corrcoef(logs[:, 0], logs[:, 1])[0, 1] == pytest.approx(shared, abs=0.05)
    independent = np.log(_noise_levels(0.1, 0.0, 0.0, 2_000))
    assert abs(np.corrcoef(independent[1:, 0], independent[:-1, 0])[0, 1]) < 0.08
    assert np.array_equal(independent[:, 0], independent[:, 1])  # no per-number part


def test_day_noise_is_reproducible_by_seed_and_anchored_to_dates() -> None:
    first = _noise_levels(0.06, 0.03, 0.7, 30, seed=3)
    assert np.array_equal(first, _noise_levels(0.06, 0.03, 0.7, 30, seed=3))
    assert not np.allclose(first, _noise_levels(0.06, 0.03, 0.7, 30, seed=4))
    demand = {"day_noise": {"cv": 0.06, "source_cv": 0.03}}
    early = Simulation(_scenario(demand, days=21))
    late = Simulation(_scenario(demand, start="2026-02-16", days=7))
    assert [c for *_, c in early.day_intervals(7)] == [c for *_, c in late.day_intervals(0)]


# -- without a demand section ---------------------------------------------------------------


def test_scenarios_without_the_section_are_unchanged() -> None:
    # Figures of the demo scenario computed with the simulator before the demand section.
    model = Simulation("demo", days=2)
    assert sum(c for *_, c in model.day_intervals(1)) == 1674.75
    result = model.run()
    assert (result.calls, result.events) == (3501, 46726)
    assert {q: v.offered for q, v in result.queues.items()} == {
        "sales": 903, "support": 2023, "billing": 528}
    empty = Simulation(load_scenario(_scenario({})))
    none = Simulation(load_scenario(_scenario()))
    assert all(empty.day_intervals(d) == none.day_intervals(d) for d in range(21))


def test_bad_demand_settings_name_the_path() -> None:
    with pytest.raises(ScenarioError, match=r"demand\.holidays: country/subdivision"):
        load_scenario(_scenario({"holidays": {"country": "XX"}}))
    with pytest.raises(ScenarioError, match=r"at `\$.demand.day_noise.persistence`"):
        load_scenario(_scenario({"day_noise": {"persistence": 1.0}}))
    with pytest.raises(ScenarioError, match=r"unknown field `trend`.*trend_per_week"):
        load_scenario(_scenario({"trend": 0.1}))


# -- the history --------------------------------------------------------------------------


def test_history_counts_equal_the_simulated_offered_calls() -> None:
    demand = {**HOLIDAYS, "trend_per_week": 0.01, "day_noise": {"cv": 0.1, "source_cv": 0.05}}
    raw = _scenario(demand, start="2026-02-13", days=4,
                    arrivals=[{"number": "4001", "start": "10:00", "calls": [30, 30]},
                              {"number": "4002", "start": "09:00", "interval_minutes": 60,
                               "calls": [20, 40]}])
    scenario = load_scenario(raw)
    events: list[Event[Payload]] = []
    Simulation(scenario, seed=9).run(on_events=events.extend)
    zone = ZoneInfo("Asia/Shanghai")
    queue_of = {"4001": "qa", "4002": "qb"}
    simulated: Counter[tuple[datetime, str]] = Counter()
    for event in events:
        if event.type == "call.offered":
            local = event.occurred_at.astimezone(zone).replace(tzinfo=None)
            slot = local.replace(minute=local.minute // 15 * 15, second=0, microsecond=0)
            simulated[slot, queue_of[event.payload.dialed]] += 1  # type: ignore[attr-defined]
    history = arrival_history(scenario, seed=9, interval_minutes=15)
    drawn = {(t.to_pydatetime(), q): c for t, q, c in history.itertuples(index=False) if c}
    assert sum(simulated.values()) > 150
    assert drawn == dict(simulated)
    assert len(history) == 4 * 96 * 2  # every interval of every day, zeros included
    hourly = arrival_history(scenario, seed=9, interval_minutes=60)
    regrouped = (history.assign(timestamp=history["timestamp"].dt.floor("60min"))
                 .groupby(["timestamp", "queue"], sort=False)["calls"].sum().reset_index())
    pd.testing.assert_frame_equal(regrouped, hourly, check_dtype=False)


def test_history_counts_daylight_saving_days_by_wall_clock() -> None:
    # Berlin: 2026-03-29 has no 02:00-03:00, 2026-10-25 has it twice.
    hourly = {"number": "4001", "interval_minutes": 60, "calls": [20] * 24}
    zone = ZoneInfo("Europe/Berlin")
    for start in ("2026-03-29", "2026-10-25"):
        scenario = load_scenario(_scenario(timezone="Europe/Berlin", start=start, days=1,
                                           arrivals=[hourly]))
        events: list[Event[Payload]] = []
        Simulation(scenario, seed=4).run(on_events=events.extend)
        simulated = Counter(e.occurred_at.astimezone(zone).hour for e in events
                            if e.type == "call.offered")
        history = arrival_history(scenario, seed=4, interval_minutes=60)
        assert len(history) == 24  # the one queue that has arrivals
        assert dict(zip(history["timestamp"].dt.hour, history["calls"], strict=True)) == {
            hour: simulated.get(hour, 0) for hour in range(24)}
        if start == "2026-03-29":
            assert simulated[2] == 0


def test_history_overrides_and_bad_arguments() -> None:
    scenario = load_scenario(_scenario())
    history = arrival_history(scenario, start=date(2026, 3, 2), days=2)
    assert history["timestamp"].iloc[0] == pd.Timestamp("2026-03-02 00:00")
    assert history["timestamp"].iloc[-1] == pd.Timestamp("2026-03-03 23:30")
    assert list(history.columns) == ["timestamp", "queue", "calls"]
    with pytest.raises(ValueError, match="interval_minutes must divide a day"):
        arrival_history(scenario, interval_minutes=7)
    with pytest.raises(ValueError, match="days must be at least 1"):
        arrival_history(scenario, days=0)


def test_the_command_writes_the_forecasting_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario(HOLIDAYS)))
    out = tmp_path / "history.csv"
    result = CliRunner().invoke(app, [
        "simulate", "arrivals", "--scenario", str(path), "--start", "2026-02-14",
        "--days", "3", "--interval", "60", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, parse_dates=["timestamp"])
    assert list(written.columns) == ["timestamp", "queue", "calls"]
    assert len(written) == 3 * 24 * 2
    expected = arrival_history(path, seed=2, start=date(2026, 2, 14), days=3,
                               interval_minutes=60)
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    per_day = written.groupby(written["timestamp"].dt.date)["calls"].sum()
    assert per_day[date(2026, 2, 15)] < 0.5 * per_day[date(2026, 2, 14)]  # holiday vs make-up
    bad = CliRunner().invoke(app, ["simulate", "arrivals", "--scenario", str(path),
                                   "--interval", "7", "--out", str(out)])
    assert bad.exit_code == 2
    assert "interval_minutes must divide a day" in bad.output
