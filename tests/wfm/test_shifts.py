"""Shift scheduling MIP (WF-05, WF-06): hand-checked optima, break placement, days-off
patterns, infeasibility messages, the generic columns mode against pyworkforce's README
instance, and a realistic week within a 1% gap."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bench.wfm import PW_COST, PW_COVERAGE, PW_REQUIRED
from scheduling.model import check_shift_frame
from scheduling.shifts import (
    BreakRule,
    CoverageProblem,
    DaysOffPattern,
    ShiftInfeasibleError,
    ShiftProblem,
    ShiftTemplate,
)

DAY = "2024-03-04"  # a Monday


def day_requirement(blocks: dict[tuple[str, str], float], *, days: int = 1,
                    start: str = DAY) -> pd.Series:
    """15-minute requirement over ``days`` days; ``blocks`` maps (HH:MM, HH:MM) to agents."""
    idx = pd.date_range(start, periods=96 * days, freq="15min")
    req = pd.Series(0.0, index=idx)
    minutes = idx.hour * 60 + idx.minute
    for (lo, hi), agents in blocks.items():
        a = int(lo[:2]) * 60 + int(lo[3:])
        b = int(hi[:2]) * 60 + int(hi[3:])
        req[(minutes >= a) & (minutes < b)] = agents
    return req


def on_phones(shifts: pd.DataFrame, index: pd.DatetimeIndex, *, cyclic: bool = False
              ) -> np.ndarray:
    """Agents on the phones per interval start, recomputed row by row from a shift frame;
    ``cyclic`` also counts time one horizon later (shifts wrapping past the end)."""
    out = np.zeros(len(index), dtype=np.int64)
    horizon = len(index) * (index[1] - index[0])
    for times in [index, index + horizon] if cyclic else [index]:
        for row in shifts.itertuples(index=False):
            working = (times >= row.start) & (times < row.end)
            for act in row.activities:
                working &= ~((times >= act.start) & (times < act.end))
            out += row.count * working
    return out


def assert_consistent(plan, problem: ShiftProblem) -> None:
    """Shift frame valid, breaks inside their windows, coverage = recomputed on-phone count."""
    check_shift_frame(plan.shifts)
    templates = {t.name: t for t in problem.templates}
    minute = pd.Timedelta(minutes=1)
    for row in plan.shifts.itertuples(index=False):
        t = templates[row.template]
        assert row.end - row.start == t.length_minutes * minute
        assert row.paid_minutes == t.paid_minutes
        assert len(row.activities) == len(t.breaks)
        for act, rule in zip(row.activities, t.breaks, strict=True):
            assert act.kind == rule.kind
            assert act.paid == rule.paid
            assert act.minutes == rule.minutes
            offset = (act.start - row.start) / minute
            assert rule.earliest_after_minutes <= offset <= rule.latest_after_minutes
    scheduled = on_phones(plan.shifts, problem.requirement.index, cyclic=problem.cyclic)
    np.testing.assert_array_equal(plan.coverage["scheduled"].to_numpy(), scheduled)
    req = problem.requirement.to_numpy()
    np.testing.assert_allclose(plan.coverage["under"], np.maximum(req - scheduled, 0))
    np.testing.assert_allclose(plan.coverage["over"], np.maximum(scheduled - req, 0))
    if plan.bound is not None:
        assert plan.bound <= plan.objective + 1e-6
    if plan.status == "optimal":
        assert plan.gap is not None
        assert plan.gap <= 1e-6


# -- hand-checkable optima ---------------------------------------------------------------


def test_flat_requirement_one_template_needs_three_shifts() -> None:
    req = day_requirement({("08:00", "16:00"): 3})
    problem = ShiftProblem([ShiftTemplate("day", 480, "08:00")], req, hard_coverage=True)
    plan = problem.solve(solver="cbc")
    assert plan.status == "optimal"
    assert plan.gap == 0.0
    assert plan.shifts["count"].sum() == 3
    assert plan.cost == pytest.approx(24.0)  # 3 shifts x 8 paid hours x 1 per hour
    assert plan.objective == pytest.approx(24.0)
    np.testing.assert_array_equal(plan.coverage["scheduled"], req.to_numpy())
    assert plan.under_hours == 0
    assert plan.over_hours == 0
    assert_consistent(plan, problem)


def test_breaks_are_staggered_to_keep_hard_coverage() -> None:
    req = day_requirement({("08:00", "16:00"): 3})
    rule = BreakRule("break", 15, True, 60, 360)
    problem = ShiftProblem([ShiftTemplate("day", 480, "08:00", breaks=(rule,))], req,
                           hard_coverage=True)
    plan = problem.solve(solver="cbc")
    # each agent is off the phones for one interval, so a 4th agent is needed, and no two
    # breaks may overlap or coverage would drop to 2
    assert plan.shifts["count"].sum() == 4
    assert plan.cost == pytest.approx(32.0)
    assert (plan.shifts["count"] == 1).all()
    starts = [acts[0].start for acts in plan.shifts["activities"]]
    assert len(set(starts)) == 4
    working_hours = plan.coverage.loc[f"{DAY} 08:00":f"{DAY} 15:45"]
    assert (working_hours["scheduled"] >= 3).all()
    assert working_hours["scheduled"].sum() == 4 * 32 - 4  # 4 agents, 1 interval off each
    assert_consistent(plan, problem)


def test_soft_coverage_accepts_break_dips_when_cheaper() -> None:
    req = day_requirement({("08:00", "16:00"): 3})
    rule = BreakRule("break", 15, True, 60, 360)
    # one missing agent-interval costs 0.25 h x 10 = 2.5 < 8 for a 4th shift
    problem = ShiftProblem([ShiftTemplate("day", 480, "08:00", breaks=(rule,))], req,
                           under_weight=10.0)
    plan = problem.solve(solver="cbc")
    assert plan.shifts["count"].sum() == 3
    assert plan.under_hours == pytest.approx(0.75)
    assert plan.objective == pytest.approx(24.0 + 0.75 * 10.0)
    assert_consistent(plan, problem)


def test_unpaid_lunch_lowers_paid_minutes_and_cost() -> None:
    req = day_requirement({("08:00", "12:00"): 2, ("12:30", "16:30"): 2})
    lunch = BreakRule("lunch", 30, False, 240, 240)
    template = ShiftTemplate("day", 510, "08:00", breaks=(lunch,), cost_per_hour=10.0)
    assert template.paid_minutes == 480
    assert template.shift_cost == pytest.approx(80.0)
    problem = ShiftProblem([template], req, hard_coverage=True)
    plan = problem.solve(solver="cbc")
    assert plan.shifts["count"].sum() == 2
    assert (plan.shifts["paid_minutes"] == 480).all()
    assert plan.cost == pytest.approx(160.0)
    assert plan.coverage.loc[pd.Timestamp(f"{DAY} 12:15"), "scheduled"] == 0
    (acts,) = set(plan.shifts["activities"])
    assert acts[0].start == pd.Timestamp(f"{DAY} 12:00")
    assert not acts[0].paid
    assert_consistent(plan, problem)


def test_min_and_max_per_template_per_day() -> None:
    req = day_requirement({("08:00", "16:00"): 4})

    def solve(cheap: dict[str, int], dear: dict[str, int]):
        templates = [ShiftTemplate("cheap", 480, "08:00", cost_per_hour=1.0, **cheap),
                     ShiftTemplate("dear", 480, "08:00", cost_per_hour=2.0, **dear)]
        plan = ShiftProblem(templates, req, hard_coverage=True).solve(solver="cbc")
        return plan, plan.shifts.groupby("template")["count"].sum().to_dict()

    plan, counts = solve({}, {})
    assert counts == {"cheap": 4}
    assert plan.cost == pytest.approx(32.0)
    plan, counts = solve({"max_count": 1}, {})
    assert counts == {"cheap": 1, "dear": 3}
    assert plan.cost == pytest.approx(8.0 + 48.0)
    plan, counts = solve({}, {"min_count": 2})
    assert counts == {"cheap": 2, "dear": 2}
    assert plan.cost == pytest.approx(16.0 + 32.0)


def test_max_count_spans_all_start_times_of_a_day() -> None:
    req = day_requirement({("08:30", "16:00"): 4})
    templates = [ShiftTemplate("flex", 480, "08:00", "08:30", 15, max_count=2),
                 ShiftTemplate("dear", 480, "08:30", cost_per_hour=3.0)]
    plan = ShiftProblem(templates, req, hard_coverage=True).solve(solver="cbc")
    counts = plan.shifts.groupby("template")["count"].sum().to_dict()
    assert counts == {"flex": 2, "dear": 2}


def test_under_and_over_weights_trade_off() -> None:
    # 3 agents 08-12, 1 agent 12-16, one 8 h template at 1 per hour: n shifts cost 8n,
    # leave (3 - n) x 4 agent-hours short 08-12 and (n - 1) x 4 over 12-16; the objective
    # is linear in n, so the optimum is n = 1 or n = 3
    req = day_requirement({("08:00", "12:00"): 3, ("12:00", "16:00"): 1})
    template = ShiftTemplate("day", 480, "08:00")
    cases = {(10.0, 0.0): (3, 24.0), (3.0, 0.0): (3, 24.0), (1.5, 0.0): (1, 8.0 + 12.0),
             (10.0, 10.0): (1, 8.0 + 80.0), (4.0, 1.0): (3, 24.0 + 8.0),
             (2.5, 1.0): (1, 8.0 + 20.0)}
    for (under, over), (shifts, objective) in cases.items():
        plan = ShiftProblem([template], req, under_weight=under, over_weight=over).solve(
            solver="cbc")
        assert plan.shifts["count"].sum() == shifts, (under, over)
        assert plan.objective == pytest.approx(objective), (under, over)


def test_cost_per_hour_versus_cost_per_shift() -> None:
    req = day_requirement({("08:00", "16:00"): 1})
    long_ = ShiftTemplate("long", 480, "08:00", cost_per_hour=10.0)
    for per_shift, expected, cost in ((50.0, {"long": 1}, 80.0), (30.0, {"short": 2}, 60.0)):
        short = ShiftTemplate("short", 240, "08:00", "12:00", 240, cost_per_hour=0.0,
                              cost_per_shift=per_shift)
        plan = ShiftProblem([long_, short], req, hard_coverage=True).solve(solver="cbc")
        assert plan.shifts.groupby("template")["count"].sum().to_dict() == expected
        assert plan.cost == pytest.approx(cost)


def test_days_off_patterns_need_seven_agents_for_five_a_day() -> None:
    req = day_requirement({("09:00", "17:00"): 5}, days=7)
    template = ShiftTemplate("day", 480, "09:00")
    problem = ShiftProblem([template], req, hard_coverage=True,
                           days_off=DaysOffPattern(off_days=2, consecutive=True))
    plan = problem.solve(solver="cbc")
    per_day = plan.shifts.groupby("day")["count"].sum()
    assert per_day.tolist() == [5] * 7
    assert plan.agents == 7  # 35 shifts / 5 working days each
    patterns = DaysOffPattern(2, True).over(problem.days)
    assert len(patterns) == 7
    assert set(plan.agents_by_pattern.index) == set(patterns)
    for d in range(7):
        working = sum(n for label, n in plan.agents_by_pattern.items() if patterns[label][d])
        assert working >= 5
    assert plan.cost == pytest.approx(35 * 8 + 7 * 0.01)
    assert len(DaysOffPattern(2, consecutive=False).over(problem.days)) == 21


def test_days_off_patterns_limit_weekend_shifts() -> None:
    req = day_requirement({("09:00", "17:00"): 2}, days=7)
    weekends_off = DaysOffPattern(patterns=(("Sat", "Sun"),))
    problem = ShiftProblem([ShiftTemplate("day", 480, "09:00")], req, days_off=weekends_off)
    plan = problem.solve(solver="cbc")
    assert plan.agents == 2
    days = {d.weekday() for d in plan.shifts["day"]}
    assert days == {0, 1, 2, 3, 4}
    assert plan.under_hours == pytest.approx(2 * 2 * 8)
    with pytest.raises(ShiftInfeasibleError, match=r"2024-03-09 09:00"):
        ShiftProblem([ShiftTemplate("day", 480, "09:00")], req, days_off=weekends_off,
                     hard_coverage=True).solve(solver="cbc")


def test_cyclic_horizon_wraps_night_shifts() -> None:
    req = day_requirement({("00:00", "06:00"): 1, ("22:00", "24:00"): 1})
    night = ShiftTemplate("night", 480, "22:00")
    problem = ShiftProblem([night], req, hard_coverage=True, cyclic=True)
    plan = problem.solve(solver="cbc")
    assert_consistent(plan, problem)
    assert plan.shifts["count"].sum() == 1
    assert plan.shifts["end"].iloc[0] == pd.Timestamp("2024-03-05 06:00")
    np.testing.assert_array_equal(plan.coverage["scheduled"], req.to_numpy())
    with pytest.raises(ShiftInfeasibleError, match=r"2024-03-04 00:00:00"):
        ShiftProblem([night], req, hard_coverage=True).solve(solver="cbc")


# -- solvers agree; results objects ------------------------------------------------------


def medium_problem() -> ShiftProblem:
    idx = pd.date_range(DAY, periods=2 * 96, freq="15min")
    h = (idx.hour + idx.minute / 60).to_numpy()
    shape = np.exp(-0.5 * ((h - 10.5) / 1.5) ** 2) + 0.8 * np.exp(-0.5 * ((h - 15) / 1.5) ** 2)
    req = pd.Series(np.round(12 * shape / shape.max()), index=idx)
    req[(h < 7) | (h >= 20)] = 0
    rules = (BreakRule("break", 15, True, 60, 150), BreakRule("lunch", 30, False, 180, 270),
             BreakRule("break", 15, True, 300, 405))
    templates = [
        ShiftTemplate("full", 480, "07:00", "12:00", 30, breaks=rules),
        ShiftTemplate("part", 360, "10:00", "14:00", 60, cost_per_hour=1.1,
                      breaks=(BreakRule("break", 15, True, 90, 210),)),
    ]
    return ShiftProblem(templates, req, under_weight=5.0, over_weight=0.5)


def test_cbc_and_highs_reach_the_same_optimum() -> None:
    problem = medium_problem()
    cbc = problem.solve(solver="cbc", gap=0.0, by_day_start=False)
    highs = problem.solve(solver="highs", gap=0.0, by_day_start=False)
    assert cbc.status == highs.status == "optimal"
    assert cbc.objective == pytest.approx(highs.objective, abs=1e-6)
    assert cbc.objective == pytest.approx(200.25)
    assert_consistent(cbc, problem)
    assert_consistent(highs, problem)
    # the day-by-day start then the whole horizon: same optimum
    staged = problem.solve(solver="cbc", gap=0.0)
    assert staged.objective == pytest.approx(200.25)
    assert_consistent(staged, problem)


def test_results_summary_and_dict() -> None:
    plan = medium_problem().solve(solver="cbc", gap=0.0, by_day_start=False)
    text = plan.summary()
    assert "optimal" in text
    assert "cbc" in text
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["status"] == "optimal"
    assert data["objective"] == pytest.approx(200.25)
    assert sum(s["count"] for s in data["shifts"]) == plan.shifts["count"].sum()
    assert len(data["coverage"]) == 192
    assert plan.solve_time_s > 0
    assert plan.solver == "cbc"


# -- infeasibility and validation --------------------------------------------------------


def test_interval_no_template_covers_is_named() -> None:
    req = day_requirement({("03:00", "03:30"): 1, ("09:00", "17:00"): 2})
    with pytest.raises(ShiftInfeasibleError, match=r"no template covers 2024-03-04 03:00") as e:
        ShiftProblem([ShiftTemplate("day", 480, "09:00")], req, hard_coverage=True).solve()
    assert len(e.value.culprits) == 2


def test_max_count_too_low_is_named() -> None:
    req = day_requirement({("08:00", "16:00"): 4})
    with pytest.raises(ShiftInfeasibleError, match=r"'day': max_count=2 on 2024-03-04"):
        ShiftProblem([ShiftTemplate("day", 480, "08:00", "08:15", max_count=2)], req,
                     hard_coverage=True).solve(solver="cbc")


def test_max_per_interval_below_requirement_is_named() -> None:
    req = day_requirement({("08:00", "16:00"): 4})
    with pytest.raises(ShiftInfeasibleError, match=r"max_per_interval=3 is below"):
        ShiftProblem([ShiftTemplate("day", 480, "08:00")], req, hard_coverage=True,
                     max_per_interval=3).solve(solver="cbc")


def test_min_count_against_seat_cap_is_named() -> None:
    req = day_requirement({("08:00", "16:00"): 1})
    with pytest.raises(ShiftInfeasibleError, match=r"min_count=3|max_per_interval=2"):
        ShiftProblem([ShiftTemplate("day", 480, "08:00", min_count=3)], req,
                     max_per_interval=2).solve(solver="cbc")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ShiftTemplate("long", 1500, "08:00"), "longer than a day"),
        (lambda: ShiftTemplate("x", 480, "25:00"), "earliest_start"),
        (lambda: ShiftTemplate("x", 480, "09:00", "08:00"), "latest_start 08:00 is before"),
        (lambda: ShiftTemplate("x", 480, "08:00", breaks=(BreakRule("lunch", 60, False, 400,
                                                                    450),)),
         "past the 480-minute shift"),
        (lambda: ShiftTemplate("x", 480, "08:00", breaks=(
            BreakRule("break", 15, True, 60, 200), BreakRule("lunch", 30, False, 180, 240))),
         "windows that do not overlap"),
        (lambda: ShiftTemplate("x", 480, "08:00", days=("Mon", "Funday")), "not a weekday"),
        (lambda: ShiftTemplate("x", 480, "08:00", min_count=3, max_count=2), "max_count=2"),
        (lambda: BreakRule("break", 15, True, 120, 60), "earliest <= latest"),
    ],
)
def test_template_validation(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_requirement_and_grid_validation() -> None:
    template = ShiftTemplate("day", 480, "08:00")
    req = day_requirement({("08:00", "16:00"): 2})
    with pytest.raises(ValueError, match="sorted and regular"):
        ShiftProblem([template], req.drop(req.index[5]))
    with pytest.raises(ValueError, match=">= 0"):
        ShiftProblem([template], req - 5)
    with pytest.raises(ValueError, match="timezone-aware"):
        ShiftProblem([template], req.tz_localize("Europe/Paris"))
    with pytest.raises(ValueError, match=r"length_minutes=470 is not on the requirement's 15"):
        ShiftProblem([ShiftTemplate("odd", 470, "08:00")], req)
    with pytest.raises(ValueError, match="used twice"):
        ShiftProblem([template, template], req)
    with pytest.raises(ValueError, match="solver must be"):
        ShiftProblem([template], req).solve(solver="gurobi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gap must be"):
        ShiftProblem([template], req).solve(gap=1.5)


def test_weekday_filter_and_start_window() -> None:
    req = day_requirement({("08:00", "17:00"): 1}, days=7)
    t = ShiftTemplate("weekday", 480, "08:00", "09:00", 30, days=("Mon", "tuesday", 4))
    assert t.days == (0, 1, 4)
    assert t.start_minutes == (480, 510, 540)
    assert t.offered_on(date(2024, 3, 8))
    assert not t.offered_on(date(2024, 3, 9))
    plan = ShiftProblem([t], req).solve(solver="cbc")
    assert {d.weekday() for d in plan.shifts["day"]} == {0, 1, 4}


# -- generic columns mode: pyworkforce's README instance ---------------------------------

def pyworkforce_problem(objective: str, cost: dict[str, int] | None = None) -> CoverageProblem:
    return CoverageProblem(PW_COVERAGE, PW_REQUIRED, cost=cost, objective=objective,
                           max_period_concurrency=27, max_shift_concurrency=25)


@pytest.mark.parametrize(
    ("objective", "cost", "optimum", "pyworkforce"),
    [
        ("min_cost_cover", None, 113.0, 113.0),  # README: MinRequiredResources cost 113
        ("min_abs_difference", None, 157.0, 157.0),  # README: MinAbsDifference cost 157
        ("min_cost_cover", PW_COST, 979.0, None),  # the costs 8/8/10/7
    ],
)
def test_pyworkforce_readme_instance(objective: str, cost, optimum: float,
                                     pyworkforce: float | None) -> None:
    problem = pyworkforce_problem(objective, cost)
    cbc = problem.solve(solver="cbc")
    highs = problem.solve(solver="highs")
    assert cbc.status == highs.status == "optimal"
    assert cbc.objective == pytest.approx(highs.objective)  # cross-checked true optimum
    assert cbc.objective == pytest.approx(optimum)
    if pyworkforce is not None:
        assert cbc.objective <= pyworkforce
    for plan in (cbc, highs):
        counts = plan.counts.to_numpy()
        assert counts.max() <= 25
        scheduled = counts @ np.array(list(PW_COVERAGE.values()))
        np.testing.assert_array_equal(plan.coverage["scheduled"].to_numpy(),
                                      scheduled.ravel())
        assert scheduled.max() <= 27
        required = np.array(PW_REQUIRED)
        if objective == "min_cost_cover":
            assert (scheduled >= required).all()
            weights = np.array([1 if cost is None else cost[s] for s in PW_COVERAGE])
            assert plan.objective == pytest.approx((counts * weights).sum())
        else:
            assert plan.objective == pytest.approx(np.abs(scheduled - required).sum())
        records = plan.resources_shifts()
        assert len(records) == 8
        assert sum(r["resources"] for r in records) == counts.sum()


def test_columns_mode_reports_uncoverable_periods() -> None:
    coverage = {"day": [0, 1, 1, 1], "late": [0, 0, 1, 1]}
    required = [[2, 1, 1, 1], [0, 1, 2, 2]]
    with pytest.raises(ShiftInfeasibleError, match="day 0 period 0: required 2"):
        CoverageProblem(coverage, required).solve(solver="cbc")
    plan = CoverageProblem(coverage, required, objective="weighted", cost={"day": 1, "late": 1},
                           under_weight=5.0, over_weight=0.0).solve(solver="cbc")
    assert plan.uncoverable == ((0, 0),)
    assert plan.coverage.loc[(0, 0), "under"] == 2
    assert plan.counts.loc[1].to_dict() == {"day": 1, "late": 1}
    assert plan.objective == pytest.approx(1 + 1 + 1 + 5 * 2)  # day 0: one "day" shift
    with pytest.raises(ShiftInfeasibleError, match="exceeds max_period_concurrency=1"):
        CoverageProblem(coverage, [[0, 1, 2, 1]], max_period_concurrency=1).solve(solver="cbc")


def test_columns_mode_validation() -> None:
    with pytest.raises(ValueError, match="has 3 entries but required has 4"):
        CoverageProblem({"a": [1, 1, 0]}, [[1, 1, 1, 1]])
    with pytest.raises(ValueError, match="cost must have exactly the keys"):
        CoverageProblem({"a": [1, 1]}, [[1, 1]], cost={"b": 1})
    with pytest.raises(ValueError, match="objective must be"):
        CoverageProblem({"a": [1, 1]}, [[1, 1]], objective="fastest")  # type: ignore[arg-type]


# -- a realistic week --------------------------------------------------------------------


def week_problem() -> ShiftProblem:
    """One week at 15 minutes, 104 templates (8 h and 9 h, a start every 15 min 05:00-17:45,
    two breaks and a lunch each), a bimodal requirement peaking at 60, 5-on/2-off patterns."""
    idx = pd.date_range(DAY, periods=7 * 96, freq="15min")
    h = (idx.hour + idx.minute / 60).to_numpy()
    shape = np.exp(-0.5 * ((h - 10.5) / 1.6) ** 2) + 0.85 * np.exp(-0.5 * ((h - 15.5) / 1.8) ** 2)
    day_factor = np.array([1.0, 0.95, 0.92, 0.93, 0.9, 0.55, 0.4])[idx.day_of_week]
    req = np.ceil(60 * shape / shape.max() * day_factor + 2 * ((h >= 7) & (h < 21)))
    req[(h < 6) | (h >= 22)] = 0
    first = BreakRule("break", 15, True, 60, 150)
    rules = {480: (first, BreakRule("lunch", 30, False, 180, 300),
                   BreakRule("break", 15, True, 345, 420)),
             540: (first, BreakRule("lunch", 60, False, 180, 300),
                   BreakRule("break", 15, True, 375, 480))}
    templates = [ShiftTemplate(f"{length // 60}h {m // 60:02d}:{m % 60:02d}", length,
                               f"{m // 60:02d}:{m % 60:02d}", breaks=rules[length])
                 for m in range(5 * 60, 18 * 60, 15) for length in (480, 540)]
    return ShiftProblem(templates, pd.Series(req, index=idx), under_weight=10.0,
                        over_weight=1.0, days_off=DaysOffPattern(2, consecutive=True))


@pytest.mark.slow
def test_realistic_week_within_one_percent_on_cbc_one_thread() -> None:
    problem = week_problem()
    assert len(problem.templates) >= 100
    assert problem.requirement.max() == 62
    plan = problem.solve(solver="cbc", time_limit_s=60, gap=0.01, threads=1)
    assert plan.gap is not None
    assert plan.gap <= 0.01
    assert plan.solve_time_s < 60
    assert_consistent(plan, problem)
    # every agent-day is one shift and patterns cover them
    per_day = plan.shifts.groupby("day")["count"].sum()
    patterns = DaysOffPattern(2, True).over(problem.days)
    for d, day in enumerate(problem.days):
        working = sum(n for label, n in plan.agents_by_pattern.items() if patterns[label][d])
        assert working >= per_day.get(day, 0)
    assert plan.under_hours < 0.01 * problem.requirement.sum() / 4
