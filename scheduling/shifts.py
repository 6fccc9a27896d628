"""Shift scheduling (WF-05, WF-06): a MIP choosing how many agents work each shift.

Two problems share one solver layer (PuLP; CBC bundled, HiGHS through highspy):

* ``ShiftProblem``: shift templates (start windows, lengths, paid and unpaid breaks and lunch
  placed within windows, weekdays offered, min/max agents per day, costs) against a
  per-interval requirement over a planning horizon (usually one week), optionally linked
  across days by days-off patterns. Breaks are placed *implicitly* (Bechtold & Jacobs, 1990):
  integer break counts per break rule and start interval, with forward/backward constraints
  that guarantee every agent can be given each break inside its window; concrete breaks are
  assigned to shifts after solving, so the shift frame holds real times.
* ``CoverageProblem``: the generic "columns" model, shifts given directly as 0/1 coverage
  vectors over the periods of a day, with pyworkforce's two objectives (minimum cost cover,
  ``MinRequiredResources``; minimum absolute difference, ``MinAbsDifference``).

The model is written out in ``docs/scheduling.md`` ("Shift scheduling").
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import math
import re
import tempfile
import time as _clock_time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pulp
from numpy.typing import ArrayLike, NDArray

from scheduling.model import SHIFT_COLUMNS, Activity, check_shift_frame

__all__ = [
    "BreakRule",
    "CoveragePlan",
    "CoverageProblem",
    "DaysOffPattern",
    "ShiftInfeasibleError",
    "ShiftPlan",
    "ShiftProblem",
    "ShiftSolveError",
    "ShiftTemplate",
]

SolverName = Literal["auto", "cbc", "highs"]
CoverageObjective = Literal["min_cost_cover", "min_abs_difference", "weighted"]

_WEEKDAY_ABBR = tuple(calendar.day_abbr[i].lower() for i in range(7))
_WEEKDAY_FULL = tuple(calendar.day_name[i].lower() for i in range(7))
_MAX_PATTERNS = 5_000
_SHOWN = 5  # culprits named in an error message before "and N more"
_OPTIMAL_GAP = 1e-6  # a solution this close to the best bound is reported as "optimal"
_BY_DAY_SHARE = 0.75  # of the time limit, at most, for the day-by-day starting schedule
_MAX_SWEEPS = 4


class ShiftInfeasibleError(ValueError):
    """No schedule satisfies the hard constraints; ``culprits`` names what blocks one."""

    def __init__(self, message: str, culprits: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.culprits: tuple[str, ...] = tuple(culprits)


class ShiftSolveError(RuntimeError):
    """The solver stopped without any schedule (time limit hit first, or a solver failure)."""


# -- input helpers ---------------------------------------------------------------------


def _whole(name: str, value: object, *, positive: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number of minutes/agents; got {value!r}")
    if value < (1 if positive else 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}; got {value!r}")
    return int(value)


def _amount(name: str, value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return out


def _weekday(value: object, argument: str) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and 0 <= value <= 6:
        return int(value)
    if isinstance(value, str):
        key = value.strip().lower()
        for names in (_WEEKDAY_ABBR, _WEEKDAY_FULL):
            if key in names:
                return names.index(key)
    raise ValueError(f"{argument}: {value!r} is not a weekday; use names like 'Mon' or "
                     "'Monday', or 0 (Monday) .. 6 (Sunday)")


def _minutes_of_day(value: object, argument: str) -> int:
    if isinstance(value, time):
        if value.second or value.microsecond:
            raise ValueError(f"{argument}: {value} has seconds; give whole minutes")
        return value.hour * 60 + value.minute
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
        if match and int(match[1]) < 24 and int(match[2]) < 60:
            return int(match[1]) * 60 + int(match[2])
    raise ValueError(f"{argument} must be a time of day 'HH:MM' (00:00..23:59) or a "
                     f"datetime.time; got {value!r}")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# -- inputs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakRule:
    """A break, lunch or other activity each agent on a shift takes once, off the phones.

    It starts between ``earliest_after_minutes`` and ``latest_after_minutes`` (inclusive)
    after the shift start and lasts ``minutes``; an unpaid one is not paid time.
    """

    kind: str = "break"
    minutes: int = 15
    paid: bool = True
    earliest_after_minutes: int = 60
    latest_after_minutes: int = 180

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"kind must be a non-empty name like 'break' or 'lunch'; "
                             f"got {self.kind!r}")
        _whole("minutes", self.minutes, positive=True)
        _whole("earliest_after_minutes", self.earliest_after_minutes)
        _whole("latest_after_minutes", self.latest_after_minutes)
        if self.latest_after_minutes < self.earliest_after_minutes:
            raise ValueError(
                f"{self.kind}: latest_after_minutes={self.latest_after_minutes} is before "
                f"earliest_after_minutes={self.earliest_after_minutes}; give a window with "
                "earliest <= latest")


@dataclass(frozen=True, slots=True)
class ShiftTemplate:
    """A kind of shift: length, start window, breaks, weekdays offered, limits and cost (WF-05).

    Agents may start it every ``start_step_minutes`` from ``earliest_start`` to
    ``latest_start`` (inclusive; ``None`` = only ``earliest_start``) on each weekday in
    ``days`` (names or 0 = Monday; ``None`` = every day). ``min_count`` / ``max_count`` bound
    the agents working it per day it is offered, over all its start times. Each shift costs
    ``cost_per_shift + cost_per_hour * paid hours``. ``breaks`` are in time order and their
    windows may not overlap. Times are normalised: starts to ``datetime.time``, ``days`` to
    weekday numbers.
    """

    name: str
    length_minutes: int
    earliest_start: str | time
    latest_start: str | time | None = None
    start_step_minutes: int = 15
    breaks: tuple[BreakRule, ...] = ()
    days: tuple[str | int, ...] | None = None
    min_count: int = 0
    max_count: int | None = None
    cost_per_hour: float = 1.0
    cost_per_shift: float = 0.0
    skill: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; got {self.name!r}")
        where = f"template {self.name!r}"
        length = _whole(f"{where}: length_minutes", self.length_minutes, positive=True)
        if length > 24 * 60:
            raise ValueError(f"{where}: length_minutes={length} is longer than a day; "
                             "split it into shifts of at most 1440 minutes")
        first = _minutes_of_day(self.earliest_start, f"{where}: earliest_start")
        last = first if self.latest_start is None else _minutes_of_day(
            self.latest_start, f"{where}: latest_start")
        if last < first:
            raise ValueError(f"{where}: latest_start {_hhmm(last)} is before earliest_start "
                             f"{_hhmm(first)}; start windows may not cross midnight, use two "
                             "templates instead")
        _whole(f"{where}: start_step_minutes", self.start_step_minutes, positive=True)
        object.__setattr__(self, "earliest_start", time(first // 60, first % 60))
        object.__setattr__(self, "latest_start", time(last // 60, last % 60))
        breaks = tuple(self.breaks)
        for rule in breaks:
            if not isinstance(rule, BreakRule):
                raise ValueError(f"{where}: breaks must be BreakRule objects; got {rule!r}")
            if rule.latest_after_minutes + rule.minutes > length:
                raise ValueError(
                    f"{where}: {rule.kind} may start {rule.latest_after_minutes} min after the "
                    f"start and last {rule.minutes} min, past the {length}-minute shift; give "
                    "latest_after_minutes <= length_minutes - minutes")
        for before, after in itertools.pairwise(breaks):
            if before.latest_after_minutes + before.minutes > after.earliest_after_minutes:
                raise ValueError(
                    f"{where}: {before.kind} may end {before.latest_after_minutes + before.minutes}"
                    f" min after the start but {after.kind} may begin at "
                    f"{after.earliest_after_minutes}; list breaks in time order with windows "
                    "that do not overlap")
        object.__setattr__(self, "breaks", breaks)
        if self.days is not None:
            if isinstance(self.days, str | int):
                raise ValueError(f"{where}: days must be a tuple of weekdays, e.g. ('Mon',); "
                                 f"got {self.days!r}")
            days = tuple(sorted({_weekday(d, f"{where}: days") for d in self.days}))
            if not days:
                raise ValueError(f"{where}: days is empty; give weekdays or None for every day")
            object.__setattr__(self, "days", days)
        low = _whole(f"{where}: min_count", self.min_count)
        if self.max_count is not None and _whole(f"{where}: max_count", self.max_count) < low:
            raise ValueError(f"{where}: max_count={self.max_count} is below min_count={low}; "
                             "give max_count >= min_count")
        _amount(f"{where}: cost_per_hour", self.cost_per_hour)
        _amount(f"{where}: cost_per_shift", self.cost_per_shift)

    @property
    def start_minutes(self) -> tuple[int, ...]:
        """Allowed start times, in minutes after midnight."""
        first = _minutes_of_day(self.earliest_start, "earliest_start")
        last = _minutes_of_day(self.latest_start, "latest_start")
        return tuple(range(first, last + 1, self.start_step_minutes))

    @property
    def paid_minutes(self) -> int:
        """Length minus unpaid breaks."""
        return self.length_minutes - sum(b.minutes for b in self.breaks if not b.paid)

    @property
    def shift_cost(self) -> float:
        """Cost of one agent working one shift of this template."""
        return float(self.cost_per_shift) + float(self.cost_per_hour) * self.paid_minutes / 60.0

    def offered_on(self, day: date) -> bool:
        """Whether agents may start this template on ``day``."""
        return self.days is None or day.weekday() in self.days  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class DaysOffPattern:
    """Days-off patterns linking the days of the horizon: every agent follows one pattern.

    Default: ``off_days`` consecutive days off, every rotation, wrapping around the horizon
    (5 on / 2 off over a week: 7 patterns). ``consecutive=False`` allows any ``off_days`` days
    off (21 patterns over a week). ``patterns`` lists explicit choices of weekdays off instead,
    e.g. ``(("Sat", "Sun"), ("Sun", "Mon"))``. ``agent_cost`` is charged per agent over the
    horizon; its small default makes the plan use the fewest agents that can work the shifts.
    """

    off_days: int = 2
    consecutive: bool = True
    patterns: tuple[tuple[str | int, ...], ...] = ()
    agent_cost: float = 0.01

    def __post_init__(self) -> None:
        _whole("days_off.off_days", self.off_days)
        _amount("days_off.agent_cost", self.agent_cost)
        patterns = tuple(tuple(sorted({_weekday(d, "days_off.patterns") for d in p}))
                         for p in self.patterns)
        object.__setattr__(self, "patterns", patterns)

    def over(self, days: Sequence[date]) -> dict[str, tuple[bool, ...]]:
        """Working-day flags over ``days`` per pattern, keyed by a label like ``off Sat+Sun``."""
        n = len(days)
        names = [calendar.day_abbr[d.weekday()] if n <= 7 else d.isoformat() for d in days]
        if self.patterns:
            offs = [tuple(i for i, d in enumerate(days) if d.weekday() in p)
                    for p in self.patterns]
        elif self.off_days >= n:
            raise ValueError(f"days_off: off_days={self.off_days} leaves no working day in a "
                             f"{n}-day horizon; give off_days < {n}")
        elif self.consecutive:
            offs = [tuple(sorted((i + k) % n for k in range(self.off_days))) for i in range(n)]
        else:
            if math.comb(n, self.off_days) > _MAX_PATTERNS:
                raise ValueError(f"days_off: {math.comb(n, self.off_days)} patterns of "
                                 f"{self.off_days} days off in {n} days is too many; use "
                                 "consecutive=True or explicit patterns")
            offs = list(itertools.combinations(range(n), self.off_days))
        out: dict[str, tuple[bool, ...]] = {}
        for off in offs:
            label = "off " + ("+".join(names[i] for i in off) if off else "none")
            out[label] = tuple(i not in off for i in range(n))
        return out


# -- solver layer ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str  # optimal | feasible | infeasible | unbounded | no_solution
    objective: float | None
    bound: float | None
    gap: float | None
    solve_time_s: float
    solver: str


def _highs_available() -> bool:
    return bool(pulp.HiGHS(msg=False).available())


def _pick_solver(solver: str) -> str:
    if solver == "auto":
        return "highs" if _highs_available() else "cbc"
    if solver == "highs" and not _highs_available():
        raise ValueError("solver='highs' needs the highspy package; install it or pass "
                         "solver='cbc'")
    if solver not in ("cbc", "highs"):
        raise ValueError(f"solver must be 'auto', 'cbc' or 'highs'; got {solver!r}")
    return solver


def _check_solve_args(solver: str, time_limit_s: float, gap: float, threads: int) -> str:
    if isinstance(time_limit_s, bool) or not (
            isinstance(time_limit_s, int | float) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be > 0 seconds, e.g. 60; got {time_limit_s!r}")
    if isinstance(gap, bool) or not (isinstance(gap, int | float) and 0 <= gap < 1):
        raise ValueError(f"gap must be a relative MIP gap in [0, 1), e.g. 0.01; got {gap!r}")
    _whole("threads", threads, positive=True)
    return _pick_solver(solver)


def _relative_gap(objective: float, bound: float) -> float:
    diff = max(objective - bound, 0.0)
    if diff <= 1e-9 * max(1.0, abs(objective)):
        return 0.0
    return diff / abs(objective) if objective != 0 else math.inf


class _HiGHSWithStart(pulp.HiGHS):  # type: ignore[misc, valid-type]
    """PuLP's HiGHS API with an optional MIP start, which PuLP's own class lacks."""

    def __init__(self, start: Mapping[str, float] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.start = start

    def createAndConfigureSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (PuLP's)
        import highspy

        # HiGHS keeps one thread scheduler per process and silently refuses to solve when
        # asked for another thread count than it was first started with
        highspy.Highs.resetThreadScheduler(True)
        super().createAndConfigureSolver(lp)

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (PuLP's name)
        if self.start:
            import highspy

            values = [0.0] * lp.solverModel.getNumCol()
            for var in lp.variables():
                values[var.index] = float(self.start.get(var.name, 0.0))
            solution = highspy.HighsSolution()
            solution.col_value = values
            solution.value_valid = True
            lp.solverModel.setSolution(solution)
        super().callSolver(lp)


def _set_start(prob: pulp.LpProblem, start: Mapping[str, float]) -> None:
    """Put ``start`` in the variables' values, where CBC's warm start reads it."""
    for var in prob.variables():
        value = start.get(var.name, 0.0)
        if var.cat == pulp.LpInteger:
            value = float(round(value))
        low = var.lowBound if var.lowBound is not None else -math.inf
        high = var.upBound if var.upBound is not None else math.inf
        var.varValue = min(max(value, low), high)


def _run(prob: pulp.LpProblem, *, solver: str, time_limit_s: float, gap: float, threads: int,
         msg: bool, mip: bool = True, gap_abs: float | None = None,
         start: Mapping[str, float] | None = None) -> _Outcome:
    """One solver call on the minimisation ``prob``; the gap comes from the solver's bound."""
    bound: float | None = None
    log = ""
    options: dict[str, Any] = {"mip": mip, "timeLimit": time_limit_s, "gapRel": gap}
    if gap_abs is not None:
        options["gapAbs"] = gap_abs
    try:
        if solver == "cbc":
            if start is not None:
                _set_start(prob, start)
            with tempfile.TemporaryDirectory() as tmp:
                log_path = Path(tmp) / "cbc.log"
                # CBC's "threads 1" runs its parallel code with one worker: slower than serial
                cmd = _cbc_command(msg=False, threads=threads if threads > 1 else None,
                                        logPath=str(log_path), warmStart=start is not None,
                                        **options)
                started = _clock_time.perf_counter()
                prob.solve(cmd)
                elapsed = _clock_time.perf_counter() - started
                log = log_path.read_text() if log_path.exists() else ""
            if msg:
                print(log)
        else:
            cmd = _HiGHSWithStart(start, msg=msg, threads=threads, **options)
            started = _clock_time.perf_counter()
            prob.solve(cmd)
            elapsed = _clock_time.perf_counter() - started
    except pulp.PulpSolverError as exc:
        raise ShiftSolveError(f"the {solver} solver failed ({exc}); rerun with msg=True to "
                              "see its log, or try the other solver") from None
    sol = prob.sol_status
    if sol in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        objective = float(pulp.value(prob.objective) or 0.0)
        if not mip:
            bound = objective if sol == pulp.LpSolutionOptimal else None
        elif solver == "highs":
            info = prob.solverModel.getInfo()
            if math.isfinite(info.mip_dual_bound):
                bound = float(info.mip_dual_bound)
        else:
            found = re.search(r"^(?:Lower|Upper) bound:\s*(\S+)", log, re.MULTILINE)
            if found:
                bound = float(found[1])
            elif sol == pulp.LpSolutionOptimal and "Optimal solution found" in log:
                bound = objective  # proven optimal: CBC prints no bound then
        gap_value = None if bound is None else _relative_gap(objective, bound)
        proven = sol == pulp.LpSolutionOptimal and gap_value is not None and (
            gap_value <= _OPTIMAL_GAP)
        return _Outcome("optimal" if proven else "feasible", objective, bound, gap_value,
                        elapsed, solver)
    if prob.status == pulp.LpStatusInfeasible or sol == pulp.LpSolutionInfeasible:
        status = "infeasible"
    elif prob.status == pulp.LpStatusUnbounded or sol == pulp.LpSolutionUnbounded:
        status = "unbounded"
    else:
        status = "no_solution"
    return _Outcome(status, None, None, None, elapsed, solver)


def _no_solution(outcome: _Outcome, time_limit_s: float) -> ShiftSolveError:
    return ShiftSolveError(
        f"{outcome.solver} found no schedule within time_limit_s={time_limit_s} "
        f"(status {outcome.status}); raise time_limit_s or pass a larger gap")


def _var(prob: pulp.LpProblem, name: str, *, low: float | None = 0.0,
         high: float | None = None, integer: bool = False) -> pulp.LpVariable:
    """A variable of ``prob`` (PuLP >= 3.3 wants them made through the problem)."""
    cat = pulp.LpInteger if integer else pulp.LpContinuous
    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lowBound=low, upBound=high, cat=cat)
    return pulp.LpVariable(name, lowBound=low, upBound=high, cat=cat)


def _cbc_command(**options: Any) -> pulp.LpSolver:
    """CBC: the binary bundled with PuLP (deprecated there for 4.0), else COIN_CMD's."""
    bundled = getattr(pulp, "PULP_CBC_CMD", None)
    if bundled is None:
        return pulp.COIN_CMD(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return bundled(**options)


def _var_value(var: pulp.LpVariable) -> int:
    return round(var.varValue or 0.0)


def _fixed(values: Mapping[str, float] | None, var: pulp.LpVariable) -> float:
    return float(round(values.get(var.name, 0.0))) if values else 0.0


def _outcome_fields(outcome: _Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "solver": outcome.solver, "gap": outcome.gap,
            "bound": outcome.bound, "solve_time_s": outcome.solve_time_s}


def _fmt_gap(gap: float | None) -> str:
    return "unknown" if gap is None else f"{gap:.4%}"


# -- implicit break placement helpers -------------------------------------------------

_PREFIX_BLOCK = 16


def _components(starts: Sequence[int], first: int, last: int) -> list[list[int]]:
    """Runs of sorted start intervals whose break windows ``[s + first, s + last]`` chain."""
    out: list[list[int]] = []
    for s in starts:
        if out and s + first <= out[-1][-1] + last:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def _prefix_sums(prob: pulp.LpProblem, items: Sequence[Mapping[pulp.LpVariable, float]],
                 name: str) -> Any:
    """``upto(i)``: the terms of ``items[0] + ... + items[i]`` (empty for ``i < 0``).

    Sums stay short: every ``_PREFIX_BLOCK`` items a continuous checkpoint variable holds the
    total so far (tied by an equality), so long components do not make dense rows.
    """
    checkpoints: list[pulp.LpVariable | None] = [None]
    for c in range(1, (len(items) - 1) // _PREFIX_BLOCK + 1):
        aux = _var(prob, f"{name}_sum{c}")
        terms: dict[pulp.LpVariable, float] = {aux: 1.0}
        if checkpoints[-1] is not None:
            terms[checkpoints[-1]] = -1.0
        for item in items[(c - 1) * _PREFIX_BLOCK:c * _PREFIX_BLOCK]:
            for var, coef in item.items():
                terms[var] = terms.get(var, 0.0) - coef
        prob += pulp.LpAffineExpression(terms) == 0, f"{name}_sum{c}"
        checkpoints.append(aux)

    def upto(i: int) -> dict[pulp.LpVariable, float]:
        out: dict[pulp.LpVariable, float] = {}
        if i < 0:
            return out
        block = i // _PREFIX_BLOCK
        if checkpoints[block] is not None:
            out[checkpoints[block]] = 1.0
        for item in items[block * _PREFIX_BLOCK:i + 1]:
            for var, coef in item.items():
                out[var] = out.get(var, 0.0) + coef
        return out

    return upto


def _minus(left: Mapping[pulp.LpVariable, float], right: Mapping[pulp.LpVariable, float]
           ) -> pulp.LpAffineExpression:
    terms = dict(left)
    for var, coef in right.items():
        terms[var] = terms.get(var, 0.0) - coef
    return pulp.LpAffineExpression(terms)


# -- ShiftProblem ----------------------------------------------------------------------


class _Instance(NamedTuple):
    """One concrete shift: a template started on a day at an interval of the grid."""

    template: int
    day: date
    pos: int  # interval index of the start, from the first interval of the requirement


@dataclass(frozen=True, eq=False)
class ShiftPlan:
    """Result of ``ShiftProblem.solve``.

    ``shifts`` is a shift frame (``scheduling.model.SHIFT_COLUMNS``) with concrete breaks;
    ``coverage`` is indexed by interval with ``required``, ``scheduled`` (agents on the phones,
    not on a break), ``under`` and ``over``. ``cost`` is the shift cost plus the agent cost of
    days-off patterns; ``objective`` adds the weighted under/over-staffing. ``gap`` is the
    relative gap to the solver's best bound (``None`` if the solver gave none); ``status`` is
    ``optimal`` (proven, gap <= 1e-6) or ``feasible`` (stopped by the time limit or the gap
    tolerance).
    """

    shifts: pd.DataFrame
    coverage: pd.DataFrame
    cost: float
    objective: float
    status: str
    gap: float | None
    bound: float | None
    solve_time_s: float
    build_time_s: float
    solver: str
    interval_minutes: int
    agents: int | None = None
    agents_by_pattern: pd.Series | None = None

    @property
    def under_hours(self) -> float:
        """Agent-hours of under-staffing."""
        return float(self.coverage["under"].sum()) * self.interval_minutes / 60.0

    @property
    def over_hours(self) -> float:
        """Agent-hours of over-staffing."""
        return float(self.coverage["over"].sum()) * self.interval_minutes / 60.0

    def summary(self) -> str:
        """A short plain-text report."""
        n_shifts = int(self.shifts["count"].sum()) if len(self.shifts) else 0
        paid = float((self.shifts["count"] * self.shifts["paid_minutes"]).sum()) / 60.0 if len(
            self.shifts) else 0.0
        short = int((self.coverage["under"] > 1e-9).sum())
        lines = [
            f"Shift plan: {self.status} ({self.solver}, gap {_fmt_gap(self.gap)}, "
            f"{self.solve_time_s:.2f} s solve + {self.build_time_s:.2f} s build)",
            f"  objective {self.objective:.4f}, cost {self.cost:.4f}",
            f"  {n_shifts} shifts in {len(self.shifts)} distinct rows, {paid:.2f} paid hours",
            f"  under-staffing {self.under_hours:.2f} agent-hours ({short} intervals short), "
            f"over-staffing {self.over_hours:.2f} agent-hours",
        ]
        if self.agents is not None:
            lines.append(f"  {self.agents} agents on days-off patterns")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures, shifts and coverage (times as ISO strings)."""
        shifts = [
            {"template": r.template, "day": r.day.isoformat(), "start": r.start.isoformat(),
             "end": r.end.isoformat(), "count": int(r.count),
             "paid_minutes": int(r.paid_minutes), "skill": r.skill,
             "activities": [{"kind": a.kind, "start": a.start.isoformat(),
                             "end": a.end.isoformat(), "paid": a.paid} for a in r.activities]}
            for r in self.shifts.itertuples(index=False)]
        coverage = [
            {"interval": ts.isoformat(), "required": float(r.required),
             "scheduled": int(r.scheduled), "under": float(r.under), "over": float(r.over)}
            for ts, r in zip(self.coverage.index, self.coverage.itertuples(index=False),
                             strict=True)]
        return {
            "status": self.status, "solver": self.solver, "objective": self.objective,
            "cost": self.cost, "gap": self.gap, "bound": self.bound,
            "solve_time_s": self.solve_time_s, "build_time_s": self.build_time_s,
            "under_hours": self.under_hours, "over_hours": self.over_hours,
            "agents": self.agents,
            "agents_by_pattern": None if self.agents_by_pattern is None else {
                str(k): int(v) for k, v in self.agents_by_pattern.items()},
            "shifts": shifts, "coverage": coverage,
        }


@dataclass(eq=False)
class _ShiftModel:
    prob: pulp.LpProblem
    x: list[pulp.LpVariable]
    z: list[dict[int, pulp.LpVariable]]
    w: dict[str, pulp.LpVariable]
    slack: dict[tuple[Any, ...], pulp.LpVariable]


class ShiftProblem:
    """Agents per shift template, day and start time against a per-interval requirement (WF-06).

    ``requirement``: required agents per interval, a Series on a regular naive (local
    wall-clock) DatetimeIndex of interval starts; shift lengths, start times and break
    windows must lie on its grid. Minimises shift cost (plus ``days_off.agent_cost`` per
    agent) plus ``under_weight`` / ``over_weight`` per agent-hour of under / over-staffing;
    ``hard_coverage=True`` forbids under-staffing. ``max_per_interval`` caps the agents on
    the phones (a number or a Series on the requirement's index). ``cyclic=True`` wraps shift
    time past the end of the horizon to its start (a repeating week).
    """

    def __init__(
        self,
        templates: Sequence[ShiftTemplate],
        requirement: pd.Series,
        *,
        under_weight: float = 10.0,
        over_weight: float = 0.0,
        hard_coverage: bool = False,
        days_off: DaysOffPattern | None = None,
        max_per_interval: float | pd.Series | None = None,
        cyclic: bool = False,
    ) -> None:
        self.templates: tuple[ShiftTemplate, ...] = tuple(templates)
        if not self.templates:
            raise ValueError("templates is empty; give at least one ShiftTemplate")
        names = [t.name for t in self.templates if isinstance(t, ShiftTemplate)]
        if len(names) != len(self.templates):
            raise ValueError("templates must all be ShiftTemplate objects")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"templates: names {dup} are used twice; give each template a "
                             "unique name")
        self.under_weight = _amount("under_weight", under_weight)
        self.over_weight = _amount("over_weight", over_weight)
        self.hard_coverage = bool(hard_coverage)
        self.cyclic = bool(cyclic)
        if days_off is not None and not isinstance(days_off, DaysOffPattern):
            raise ValueError("days_off must be a DaysOffPattern or None")
        self.days_off = days_off
        self.requirement, self.interval_minutes = self._check_requirement(requirement)
        self.cap = self._check_cap(max_per_interval)
        self._t0: pd.Timestamp = self.requirement.index[0]
        last: pd.Timestamp = self.requirement.index[-1]
        self.days: tuple[date, ...] = tuple(
            d.date() for d in pd.date_range(self._t0.normalize(), last.normalize(), freq="D"))
        self._check_grid()
        self.instances: tuple[_Instance, ...] = self._expand()
        if not self.instances:
            raise ValueError("templates: no template can start inside the requirement's "
                             f"horizon {self._t0} .. {last}; check their days and start times")
        self._patterns = days_off.over(self.days) if days_off is not None else {}

    # -- validation

    @staticmethod
    def _check_requirement(requirement: pd.Series) -> tuple[pd.Series, int]:
        if not isinstance(requirement, pd.Series):
            raise ValueError("requirement must be a pandas Series of required agents indexed "
                             "by interval start (a DatetimeIndex)")
        idx = requirement.index
        if not isinstance(idx, pd.DatetimeIndex) or len(idx) == 0:
            raise ValueError("requirement must have a non-empty DatetimeIndex of interval "
                             "starts; build it with pd.date_range(start, periods=n, freq='15min')")
        if idx.tz is not None:
            raise ValueError("requirement: the index is timezone-aware; the planning grid is "
                             "naive local wall-clock, use .tz_convert(site_tz).tz_localize(None)")
        if len(idx) > 1:
            steps = idx[1:] - idx[:-1]
            step = pd.Timedelta(steps[0])
            if step <= pd.Timedelta(0) or not (steps == step).all():
                raise ValueError("requirement: the index must be sorted and regular (one "
                                 "interval length); reindex it onto pd.date_range(...)")
        elif idx.freq is not None:
            step = pd.Timedelta(idx.freq)
        else:
            raise ValueError("requirement: a single interval needs an index with a freq, e.g. "
                             "pd.date_range(start, periods=1, freq='15min')")
        minutes = step / pd.Timedelta(minutes=1)
        if minutes != int(minutes) or (24 * 60) % int(minutes):
            raise ValueError(f"requirement: interval of {step} does not divide a day into whole "
                             "minutes; use e.g. 15 or 30 minutes")
        minutes = int(minutes)
        offset = (idx[0] - idx[0].normalize()) / pd.Timedelta(minutes=1)
        if offset % minutes:
            raise ValueError(f"requirement: the first interval {idx[0]} is not on the "
                             f"{minutes}-minute grid from midnight; start at e.g. 00:00")
        try:
            values = np.asarray(requirement, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("requirement must hold numbers of required agents") from None
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("requirement must be finite and >= 0; fill NaN with 0 and clip "
                             "negative values")
        return pd.Series(values, index=idx.rename("interval"), name="required"), minutes

    def _check_cap(self, cap: float | pd.Series | None) -> NDArray[np.float64] | None:
        if cap is None:
            return None
        if isinstance(cap, pd.Series):
            if not cap.index.equals(self.requirement.index):
                raise ValueError("max_per_interval: a Series must have the requirement's index; "
                                 "reindex it onto requirement.index")
            arr = np.asarray(cap, dtype=np.float64)
        else:
            arr = np.full(len(self.requirement), _amount("max_per_interval", cap))
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("max_per_interval must be finite and >= 0")
        return arr

    def _check_grid(self) -> None:
        step = self.interval_minutes
        for i, t in enumerate(self.templates):
            where = f"templates[{i}] ({t.name!r})"
            fields = [("length_minutes", t.length_minutes),
                      ("earliest_start", _minutes_of_day(t.earliest_start, "earliest_start")),
                      ("start_step_minutes", t.start_step_minutes)]
            for rule in t.breaks:
                fields += [(f"{rule.kind}.minutes", rule.minutes),
                           (f"{rule.kind}.earliest_after_minutes", rule.earliest_after_minutes),
                           (f"{rule.kind}.latest_after_minutes", rule.latest_after_minutes)]
            for label, value in fields:
                if value % step:
                    raise ValueError(
                        f"{where}: {label}={value} is not on the requirement's {step}-minute "
                        f"grid; use multiples of {step} minutes or give the requirement at a "
                        "finer interval")

    # -- model

    def _expand(self) -> tuple[_Instance, ...]:
        step, n = self.interval_minutes, len(self.requirement)
        first_day = self._t0.date()
        offset = int((self._t0 - self._t0.normalize()) / pd.Timedelta(minutes=1))
        out = []
        for ti, t in enumerate(self.templates):
            for day in self.days:
                if not t.offered_on(day):
                    continue
                base = (day - first_day).days * 24 * 60 - offset
                for m in t.start_minutes:
                    pos = (base + m) // step
                    if 0 <= pos < n:
                        out.append(_Instance(ti, day, pos))
        return tuple(out)

    def _slot(self, k: int) -> int | None:
        n = len(self.requirement)
        if k < n:
            return k
        return k % n if self.cyclic else None

    def _groups(self) -> list[tuple[BreakRule, list[int]]]:
        """Break rules with the shifts taking them; equal rules of different templates merge."""
        groups: dict[BreakRule, list[int]] = {}
        for j, inst in enumerate(self.instances):
            for rule in self.templates[inst.template].breaks:
                groups.setdefault(rule, []).append(j)
        return list(groups.items())

    def _build(self, *, elastic: Literal["off", "penalty", "diagnose"] = "off") -> _ShiftModel:
        """The MIP; ``elastic`` adds slacks to the hard constraints, penalised or alone."""
        step = self.interval_minutes
        n = len(self.requirement)
        hours = step / 60.0
        req = self.requirement.to_numpy()
        soft = elastic != "off"
        prob = pulp.LpProblem("shift_scheduling", pulp.LpMinimize)
        slack: dict[tuple[Any, ...], pulp.LpVariable] = {}

        def new_slack(*key: Any) -> pulp.LpVariable:
            var = _var(prob, f"slack{len(slack)}")
            slack[key] = var
            return var

        x = [_var(prob, f"x{j}", integer=True,
                  high=None if soft else self.templates[i.template].max_count)
             for j, i in enumerate(self.instances)]
        rows: list[dict[pulp.LpVariable, float]] = [{} for _ in range(n)]
        for j, inst in enumerate(self.instances):
            for slot in self._span(inst):
                rows[slot][x[j]] = rows[slot].get(x[j], 0.0) + 1.0

        # implicit breaks: z[g][k] agents start a break of rule g at interval k
        z: list[dict[int, pulp.LpVariable]] = []
        for g, (rule, members) in enumerate(self._groups()):
            first, last = rule.earliest_after_minutes // step, rule.latest_after_minutes // step
            by_start: dict[int, dict[pulp.LpVariable, float]] = {}
            for j in members:
                by_start.setdefault(self.instances[j].pos, {})[x[j]] = 1.0
            starts = sorted(by_start)
            ks = sorted({s + d for s in starts for d in range(first, last + 1)})
            zg = {k: _var(prob, f"z{g}_{k}", integer=True) for k in ks}
            z.append(zg)
            for k, var in zg.items():
                for d in range(rule.minutes // step):
                    slot = self._slot(k + d)
                    if slot is not None:
                        rows[slot][var] = rows[slot].get(var, 0.0) - 1.0
            for c, comp in enumerate(_components(starts, first, last)):
                comp_ks = [k for k in ks if comp[0] + first <= k <= comp[-1] + last]
                name = f"g{g}c{c}"
                shifts_upto = _prefix_sums(prob, [by_start[s] for s in comp], f"{name}x")
                breaks_upto = _prefix_sums(prob, [{zg[k]: 1.0} for k in comp_ks], f"{name}z")
                prob += _minus(shifts_upto(len(comp) - 1), breaks_upto(len(comp_ks) - 1)) == 0, \
                    f"{name}_total"
                for i, s in enumerate(comp):
                    # forward: shifts up to i find their breaks by the end of i's window
                    end = bisect.bisect_right(comp_ks, s + last) - 1
                    prob += _minus(shifts_upto(i), breaks_upto(end)) <= 0, f"{name}_fwd{i}"
                    # backward: breaks before i's window belong to shifts started before i
                    before = bisect.bisect_left(comp_ks, s + first) - 1
                    if before >= 0:
                        prob += _minus(breaks_upto(before), shifts_upto(i - 1)) <= 0, \
                            f"{name}_bwd{i}"

        under: list[pulp.LpVariable] = []
        over: list[pulp.LpVariable] = []
        for k in range(n):
            expr = pulp.LpAffineExpression(rows[k])
            o = _var(prob, f"over{k}")
            over.append(o)
            if not self.hard_coverage:
                u = _var(prob, f"under{k}")
                under.append(u)
                prob += expr - o + u == float(req[k]), f"cover{k}"
            elif soft:
                prob += expr - o + new_slack("coverage", k) == float(req[k]), f"cover{k}"
            else:
                prob += expr - o == float(req[k]), f"cover{k}"
            if self.cap is not None:
                relief = new_slack("cap", k) if soft else 0
                prob += expr - relief <= float(self.cap[k]), f"cap{k}"

        per_day: dict[tuple[int, date], list[pulp.LpVariable]] = {}
        for j, inst in enumerate(self.instances):
            per_day.setdefault((inst.template, inst.day), []).append(x[j])
        for (ti, day), xs in per_day.items():
            t = self.templates[ti]
            if t.min_count:
                relief = new_slack("min", ti, day) if soft else 0
                prob += pulp.lpSum(xs) + relief >= t.min_count, f"min{ti}_{day:%Y%m%d}"
            if t.max_count is not None and (soft or len(xs) > 1):
                relief = new_slack("max", ti, day) if soft else 0
                prob += pulp.lpSum(xs) - relief <= t.max_count, f"max{ti}_{day:%Y%m%d}"

        w = {label: _var(prob, f"w{p}", integer=True)
             for p, label in enumerate(self._patterns)}
        if w:
            on_day: dict[date, list[pulp.LpVariable]] = {}
            for j, inst in enumerate(self.instances):
                on_day.setdefault(inst.day, []).append(x[j])
            for d, day in enumerate(self.days):
                working = [w[label] for label, flags in self._patterns.items() if flags[d]]
                prob += pulp.lpSum(on_day.get(day, [])) - pulp.lpSum(working) <= 0, \
                    f"days_off_{day:%Y%m%d}"

        costs = [self.templates[i.template].shift_cost for i in self.instances]
        agent_cost = self.days_off.agent_cost if self.days_off is not None else 0.0
        objective = (pulp.LpAffineExpression(zip(x, costs, strict=True))
                     + agent_cost * pulp.lpSum(w.values())
                     + self.under_weight * hours * pulp.lpSum(under)
                     + self.over_weight * hours * pulp.lpSum(over))
        if elastic == "diagnose":
            prob += pulp.lpSum(slack.values())
        elif elastic == "penalty":
            # a unit of slack costs more than one more shift (with its over-staffing) would,
            # so it is used only where no shift can help; kept moderate for the numerics
            longest = max(t.length_minutes for t in self.templates) / 60.0
            big = 10.0 * (1.0 + max(costs) + agent_cost + self.over_weight * longest
                          + self.under_weight * hours)
            prob += objective + big * pulp.lpSum(slack.values())
        else:
            prob += objective
        return _ShiftModel(prob, x, z, w, slack)

    def _span(self, inst: _Instance) -> list[int]:
        """Requirement slots a shift spans (wrapped when cyclic, cut at the horizon if not)."""
        end = inst.pos + self.templates[inst.template].length_minutes // self.interval_minutes
        return [s for s in map(self._slot, range(inst.pos, end)) if s is not None]

    # -- diagnosis

    def _precheck(self) -> None:
        if not self.hard_coverage:
            return
        covered = np.zeros(len(self.requirement), dtype=bool)
        for inst in self.instances:
            covered[self._span(inst)] = True
        req = self.requirement.to_numpy()
        idx = self.requirement.index
        problems = [f"no template covers {idx[k]} (required {req[k]:g})"
                    for k in np.flatnonzero((req > 0) & ~covered)]
        if self.cap is not None:
            problems += [f"max_per_interval={self.cap[k]:g} is below the requirement "
                         f"{req[k]:g} at {idx[k]}" for k in np.flatnonzero(req > self.cap + 1e-9)]
        if problems:
            raise ShiftInfeasibleError(
                "hard_coverage cannot be met: " + _listing(problems) + ". Add a template "
                "whose shifts cover these intervals, raise max_per_interval, or pass "
                "hard_coverage=False to report under-staffing instead.", problems)

    def _diagnose(self, *, solver: str, time_limit_s: float, threads: int) -> ShiftInfeasibleError:
        model = self._build(elastic="diagnose")
        outcome = _run(model.prob, solver=solver, time_limit_s=time_limit_s, gap=0.0,
                       threads=threads, msg=False)
        idx = self.requirement.index
        problems: list[str] = []
        if outcome.objective is not None:
            for key, var in model.slack.items():
                amount = var.varValue or 0.0
                if amount <= 1e-6:
                    continue
                kind = key[0]
                if kind == "coverage":
                    problems.append(f"hard_coverage: {idx[key[1]]} is short by {amount:g} "
                                    f"(required {self.requirement.iloc[key[1]]:g})")
                elif kind == "cap":
                    cap = self.cap[key[1]]  # type: ignore[index]
                    problems.append(f"max_per_interval={cap:g} at {idx[key[1]]} is exceeded by "
                                    f"{amount:g}")
                else:
                    t = self.templates[key[1]]
                    limit = "min_count" if kind == "min" else "max_count"
                    value = t.min_count if kind == "min" else t.max_count
                    problems.append(f"template {t.name!r}: {limit}={value} on {key[2]} is off "
                                    f"by {amount:g}")
        if not problems:
            return ShiftInfeasibleError(
                "no schedule meets the hard constraints (hard_coverage, max_per_interval, "
                "min_count/max_count) together, though each can be met alone; relax one")
        return ShiftInfeasibleError(
            "no schedule meets the hard constraints; the fewest changes that would allow one: "
            + _listing(problems) + ". Relax these (add or widen templates, raise max_count or "
            "max_per_interval, lower min_count) or pass hard_coverage=False.", problems)

    # -- solve

    def _by_day(self, *, solver: str, budget_s: float, gap_abs: float, target: float,
                lower: float, threads: int, msg: bool) -> tuple[dict[str, float] | None, float]:
        """A starting schedule by fix-and-optimise over start days.

        Each step re-optimises the shifts starting on one day with every other day fixed,
        on the model with penalised slack on the hard constraints so every step is feasible.
        The first sweep goes forward from an empty schedule (later days still empty); later
        sweeps revisit each day with both neighbours known, until the schedule is within
        ``target`` of ``lower``, a sweep gains less than ``gap_abs``, or ``budget_s`` is spent.
        Returns the variable values (``None`` if none without slack was found) and the time.
        """
        model = self._build(elastic="penalty")
        step = self.interval_minutes
        groups = self._groups()
        values: dict[str, float] | None = None
        spent, best = 0.0, math.inf
        n_days = len(self.days)
        for sweep in range(_MAX_SWEEPS):
            objective: float | None = None
            for d, day in enumerate(self.days):
                if sweep and spent >= budget_s:
                    break
                free = {j for j, inst in enumerate(self.instances) if inst.day == day}
                if not free:
                    continue
                for j, var in enumerate(model.x):
                    var.lowBound, var.upBound = (0, None) if j in free else (
                        (_fixed(values, var),) * 2)
                for g, (rule, members) in enumerate(groups):
                    first = rule.earliest_after_minutes // step
                    last = rule.latest_after_minutes // step
                    window = {self.instances[j].pos + o for j in members if j in free
                              for o in range(first, last + 1)}
                    for k, var in model.z[g].items():
                        var.lowBound, var.upBound = (0, None) if k in window else (
                            (_fixed(values, var),) * 2)
                limit = max((budget_s - spent) / (n_days - d), 0.2)
                outcome = _run(model.prob, solver=solver, time_limit_s=limit, gap=0.0,
                               gap_abs=gap_abs, threads=threads, msg=msg, start=values)
                spent += outcome.solve_time_s
                if outcome.objective is None:
                    if values is None:
                        return None, spent
                    continue  # keep this day as it was
                values = {v.name: float(v.varValue or 0.0) for v in model.prob.variables()}
                objective = outcome.objective
            assert values is not None
            if objective is None or any(values[v.name] > 1e-6 for v in model.slack.values()):
                if spent >= budget_s:
                    break
                continue
            if _relative_gap(objective, lower) <= target or best - objective < gap_abs:
                break
            best = objective
            if spent >= budget_s:
                break
        if values is None or any(values[v.name] > 1e-6 for v in model.slack.values()):
            return None, spent
        return values, spent

    def solve(
        self,
        *,
        solver: SolverName = "auto",
        time_limit_s: float = 60.0,
        gap: float = 0.0,
        threads: int = 1,
        msg: bool = False,
        by_day_start: bool | None = None,
    ) -> ShiftPlan:
        """Solve the MIP; raises ``ShiftInfeasibleError`` naming the culprits if none exists.

        ``solver='auto'`` is HiGHS when highspy is importable, else CBC. ``gap`` is the
        relative MIP gap at which to stop (0 = prove optimality); ``time_limit_s`` bounds the
        solver time in all (HiGHS may overrun it by a few seconds). With ``by_day_start``
        (default: on for CBC, off for HiGHS, whose root node can overrun short time limits)
        and more than one day, the LP relaxation is solved first (a lower bound), then a
        starting schedule is built day by day in up to 3/4 of the time, and the whole horizon
        is solved from it in the rest, unless the start is already within ``gap`` of the bound.
        """
        name = _check_solve_args(solver, time_limit_s, gap, threads)
        if by_day_start is None:
            by_day_start = name == "cbc"
        self._precheck()
        started = _clock_time.perf_counter()
        model = self._build()
        build_time = _clock_time.perf_counter() - started
        spent = 0.0
        lower: float | None = None
        start: dict[str, float] | None = None
        if by_day_start and len(self.days) > 1:
            relaxed = _run(model.prob, solver=name, time_limit_s=time_limit_s, gap=0.0,
                           threads=threads, msg=msg, mip=False)
            spent += relaxed.solve_time_s
            if relaxed.status == "infeasible":
                raise self._diagnose(solver=name, time_limit_s=time_limit_s, threads=threads)
            lower = relaxed.bound
            if lower is not None:
                scale = max(abs(lower), 1.0) * max(gap, 1e-3) / len(self.days)
                start, used = self._by_day(
                    solver=name, budget_s=_BY_DAY_SHARE * time_limit_s - spent, gap_abs=scale,
                    target=gap, lower=lower, threads=threads, msg=msg)
                spent += used
        outcome: _Outcome | None = None
        start_value = math.inf
        if start is not None:
            assert lower is not None
            _set_start(model.prob, start)
            start_value = float(pulp.value(model.prob.objective) or 0.0)
            start_gap = _relative_gap(start_value, lower)
            if start_gap <= gap or time_limit_s - spent < 1.0:
                outcome = _Outcome("optimal" if start_gap <= _OPTIMAL_GAP else "feasible",
                                   start_value, lower, start_gap, 0.0, name)
        if outcome is None:
            outcome = _run(model.prob, solver=name, time_limit_s=max(time_limit_s - spent, 1.0),
                           gap=gap, threads=threads, msg=msg, start=start)
            if outcome.status == "infeasible":
                raise self._diagnose(solver=name, time_limit_s=time_limit_s, threads=threads)
            if start is not None and (outcome.objective is None
                                      or outcome.objective > start_value + 1e-6):
                _set_start(model.prob, start)  # the solver did not improve on the start
                outcome = _Outcome("feasible", start_value, outcome.bound, None,
                                   outcome.solve_time_s, name)
            if outcome.objective is None:
                raise _no_solution(outcome, time_limit_s)
            bounds = [b for b in (outcome.bound, lower) if b is not None]
            if bounds:  # the LP relaxation's bound is valid too; keep the better one
                bound = max(bounds)
                gap_value = _relative_gap(outcome.objective, bound)
                status = "optimal" if outcome.status == "optimal" or gap_value <= _OPTIMAL_GAP \
                    else "feasible"
                outcome = _Outcome(status, outcome.objective, bound, gap_value,
                                   outcome.solve_time_s, name)
        if model.w:
            spent += self._fewest_agents(model, solver=name, threads=threads)
        return self._plan(model, outcome, solve_time=spent + outcome.solve_time_s,
                          build_time=build_time)

    def _fewest_agents(self, model: _ShiftModel, *, solver: str, threads: int) -> float:
        """Re-solve the days-off patterns alone for the chosen shifts: the fewest agents.

        Inside the MIP gap the solver may leave spare agents (their cost is tiny); this
        small exact problem removes them, which can only lower the objective.
        """
        per_day = dict.fromkeys(self.days, 0)
        for var, inst in zip(model.x, self.instances, strict=True):
            per_day[inst.day] += _var_value(var)
        prob = pulp.LpProblem("fewest_agents", pulp.LpMinimize)
        w = {label: _var(prob, f"w{p}", integer=True)
             for p, label in enumerate(self._patterns)}
        prob += pulp.lpSum(w.values())
        for d, day in enumerate(self.days):
            prob += pulp.lpSum(w[label] for label, flags in self._patterns.items()
                               if flags[d]) >= per_day[day], f"day{d}"
        outcome = _run(prob, solver=solver, time_limit_s=10.0, gap=0.0, threads=threads,
                       msg=False)
        if outcome.objective is not None and outcome.objective < sum(
                _var_value(v) for v in model.w.values()):
            for label, var in model.w.items():
                var.varValue = float(_var_value(w[label]))
        return outcome.solve_time_s

    def _plan(self, model: _ShiftModel, outcome: _Outcome, *, solve_time: float,
              build_time: float) -> ShiftPlan:
        counts = [_var_value(v) for v in model.x]
        shifts = self._shift_frame(counts, model.z)
        check_shift_frame(shifts)
        scheduled = self._on_phones(shifts)
        if not np.array_equal(scheduled, self._model_coverage(counts, model.z)):
            raise RuntimeError("internal error: assigned breaks do not reproduce the model's "
                               "coverage; please report this with the problem")
        req = self.requirement.to_numpy()
        under = np.maximum(req - scheduled, 0.0)
        over = np.maximum(scheduled - req, 0.0)
        coverage = pd.DataFrame({"required": req, "scheduled": scheduled, "under": under,
                                 "over": over}, index=self.requirement.index)
        cost = float(sum(c * self.templates[i.template].shift_cost
                         for c, i in zip(counts, self.instances, strict=True)))
        agents = agents_by_pattern = None
        if self.days_off is not None:
            agents_by_pattern = pd.Series({k: _var_value(v) for k, v in model.w.items()},
                                          name="agents", dtype=np.int64)
            agents = int(agents_by_pattern.sum())
            cost += self.days_off.agent_cost * agents
        hours = self.interval_minutes / 60.0
        objective = cost + hours * (self.under_weight * float(under.sum())
                                    + self.over_weight * float(over.sum()))
        # the plan's own objective against the solver's bound (polishing may have lowered it)
        gap = None if outcome.bound is None else _relative_gap(objective, outcome.bound)
        status = "optimal" if outcome.status == "optimal" or (
            gap is not None and gap <= _OPTIMAL_GAP) else "feasible"
        return ShiftPlan(shifts=shifts, coverage=coverage, cost=cost, objective=objective,
                         status=status, gap=gap, bound=outcome.bound,
                         solve_time_s=solve_time, build_time_s=build_time,
                         solver=outcome.solver, interval_minutes=self.interval_minutes,
                         agents=agents, agents_by_pattern=agents_by_pattern)

    # -- results

    def _shift_frame(self, counts: list[int], z: list[dict[int, pulp.LpVariable]]
                     ) -> pd.DataFrame:
        """Disaggregate the break counts: the i-th agent (by start) takes the i-th break."""
        step = self.interval_minutes
        taken: dict[tuple[int, BreakRule], list[int]] = {}
        for g, (rule, members) in enumerate(self._groups()):
            first, last = rule.earliest_after_minutes // step, rule.latest_after_minutes // step
            pool = sorted(k for k, var in z[g].items() for _ in range(_var_value(var)))
            order = sorted(members, key=lambda j: (self.instances[j].pos, j))
            cursor = 0
            for j in order:
                pos = self.instances[j].pos
                mine = pool[cursor:cursor + counts[j]]
                cursor += counts[j]
                if len(mine) < counts[j] or any(not pos + first <= k <= pos + last
                                                 for k in mine):
                    raise RuntimeError("internal error: break counts cannot be assigned to "
                                       "shifts; please report this with the problem")
                taken[j, rule] = mine
        rows: dict[tuple[int, tuple[int, ...]], int] = {}
        for j, count in enumerate(counts):
            t = self.templates[self.instances[j].template]
            for c in range(count):
                key = (j, tuple(taken[j, rule][c] for rule in t.breaks))
                rows[key] = rows.get(key, 0) + 1
        minute = pd.Timedelta(minutes=1)
        records = []
        for (j, ks), count in sorted(rows.items(),
                                     key=lambda kv: (self.instances[kv[0][0]].pos, kv[0])):
            inst = self.instances[j]
            t = self.templates[inst.template]
            start = self._t0 + inst.pos * step * minute
            acts = tuple(Activity(rule.kind, self._t0 + k * step * minute,
                                  self._t0 + (k * step + rule.minutes) * minute, rule.paid)
                         for rule, k in zip(t.breaks, ks, strict=True))
            records.append({"template": t.name, "day": inst.day, "start": start,
                            "end": start + t.length_minutes * minute, "count": count,
                            "paid_minutes": t.paid_minutes, "skill": t.skill,
                            "activities": acts})
        return pd.DataFrame.from_records(records, columns=list(SHIFT_COLUMNS))

    def _slots(self, start: pd.Timestamp, end: pd.Timestamp) -> NDArray[np.int64]:
        step = pd.Timedelta(minutes=self.interval_minutes)
        ks = np.arange((start - self._t0) // step, (end - self._t0) // step)
        n = len(self.requirement)
        return ks % n if self.cyclic else ks[ks < n]

    def _on_phones(self, shifts: pd.DataFrame) -> NDArray[np.int64]:
        """Agents on the phones per interval, from a shift frame."""
        out = np.zeros(len(self.requirement), dtype=np.int64)
        for row in shifts.itertuples(index=False):
            np.add.at(out, self._slots(row.start, row.end), int(row.count))
            for act in row.activities:
                np.add.at(out, self._slots(act.start, act.end), -int(row.count))
        return out

    def _model_coverage(self, counts: list[int], z: list[dict[int, pulp.LpVariable]]
                        ) -> NDArray[np.int64]:
        step = self.interval_minutes
        out = np.zeros(len(self.requirement), dtype=np.int64)
        for c, inst in zip(counts, self.instances, strict=True):
            for k in range(inst.pos, inst.pos + self.templates[inst.template].length_minutes
                           // step):
                slot = self._slot(k)
                if slot is not None:
                    out[slot] += c
        for (rule, _), zg in zip(self._groups(), z, strict=True):
            for k, var in zg.items():
                for d in range(rule.minutes // step):
                    slot = self._slot(k + d)
                    if slot is not None:
                        out[slot] -= _var_value(var)
        return out


# -- CoverageProblem (generic columns) -------------------------------------------------


@dataclass(frozen=True, eq=False)
class CoveragePlan:
    """Result of ``CoverageProblem.solve``.

    ``counts``: agents per day (rows) and shift (columns); ``coverage``: indexed by
    (day, period) with ``required``, ``scheduled``, ``under`` and ``over``; ``objective`` is
    the value of the chosen objective, ``cost`` the shift cost; ``uncoverable`` lists the
    (day, period) pairs with a requirement no shift covers.
    """

    counts: pd.DataFrame
    coverage: pd.DataFrame
    cost: float
    objective: float
    objective_name: str
    status: str
    gap: float | None
    bound: float | None
    solve_time_s: float
    solver: str
    uncoverable: tuple[tuple[int, int], ...] = ()

    def resources_shifts(self) -> list[dict[str, Any]]:
        """Counts in pyworkforce's shape: ``[{"day", "shift", "resources"}, ...]``."""
        return [{"day": int(d), "shift": str(s), "resources": int(self.counts.loc[d, s])}
                for d in self.counts.index for s in self.counts.columns]

    def summary(self) -> str:
        """A short plain-text report."""
        return "\n".join([
            f"Coverage plan ({self.objective_name}): {self.status} ({self.solver}, gap "
            f"{_fmt_gap(self.gap)}, {self.solve_time_s:.2f} s)",
            f"  objective {self.objective:g}, cost {self.cost:g}, "
            f"{int(self.counts.to_numpy().sum())} shifts",
            f"  under {self.coverage['under'].sum():g}, over {self.coverage['over'].sum():g}"
            + (f", {len(self.uncoverable)} uncoverable periods" if self.uncoverable else ""),
        ])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures and counts."""
        return {"objective_name": self.objective_name, "objective": self.objective,
                "cost": self.cost, "status": self.status, "solver": self.solver,
                "gap": self.gap, "bound": self.bound, "solve_time_s": self.solve_time_s,
                "resources_shifts": self.resources_shifts(),
                "uncoverable": [list(p) for p in self.uncoverable]}


class CoverageProblem:
    """Shifts given as coverage vectors over the periods of a day, per day (WF-06).

    ``coverage`` maps shift names to per-period presence (1 = on the phones); ``required``
    is days x periods. Objectives, with ``x[d, s]`` agents on shift ``s`` on day ``d`` and
    ``cov[d, p] = sum_s coverage[s][p] * x[d, s]``:

    * ``min_cost_cover``: min ``sum cost[s] x[d, s]`` subject to ``cov >= required``
      (pyworkforce ``MinRequiredResources``; ``cost`` defaults to 1 per shift);
    * ``min_abs_difference``: min ``sum |cov - required|`` (pyworkforce ``MinAbsDifference``;
      with ``max_period_concurrency`` the shortfall is also capped by it, as there);
    * ``weighted``: min ``sum cost x + under_weight * sum under + over_weight * sum over``.

    ``max_shift_concurrency`` caps each ``x[d, s]``, ``max_period_concurrency`` each
    ``cov[d, p]``.
    """

    def __init__(
        self,
        coverage: Mapping[str, Sequence[float]],
        required: ArrayLike,
        *,
        cost: Mapping[str, float] | None = None,
        objective: CoverageObjective = "min_cost_cover",
        under_weight: float = 1.0,
        over_weight: float = 1.0,
        max_period_concurrency: float | None = None,
        max_shift_concurrency: int | None = None,
    ) -> None:
        if not isinstance(coverage, Mapping) or not coverage:
            raise ValueError("coverage must be a non-empty dict {shift name: [0/1 per period]}")
        self.shifts: tuple[str, ...] = tuple(str(s) for s in coverage)
        try:
            self.required = np.atleast_2d(np.asarray(required, dtype=np.float64))
        except (TypeError, ValueError):
            raise ValueError("required must be a days x periods array of numbers") from None
        if self.required.ndim != 2 or self.required.size == 0:
            raise ValueError("required must be 2-D: one row per day, one column per period")
        if not np.all(np.isfinite(self.required)) or np.any(self.required < 0):
            raise ValueError("required must be finite and >= 0")
        periods = self.required.shape[1]
        rows = []
        for name, vector in coverage.items():
            arr = np.asarray(vector, dtype=np.float64)
            if arr.shape != (periods,):
                raise ValueError(f"coverage[{name!r}] has {arr.size} entries but required has "
                                 f"{periods} periods per day; give one entry per period")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"coverage[{name!r}] must be 0/1 (or >= 0) per period")
            rows.append(arr)
        self.matrix: NDArray[np.float64] = np.vstack(rows)  # shifts x periods
        if cost is None:
            self.cost = np.ones(len(self.shifts))
        else:
            if set(map(str, cost)) != set(self.shifts):
                raise ValueError(f"cost must have exactly the keys of coverage {list(self.shifts)}"
                                 f"; got {list(cost)}")
            by_name = {str(k): v for k, v in cost.items()}
            self.cost = np.array([_amount(f"cost[{s!r}]", by_name[s]) for s in self.shifts])
        if objective not in ("min_cost_cover", "min_abs_difference", "weighted"):
            raise ValueError("objective must be 'min_cost_cover', 'min_abs_difference' or "
                             f"'weighted'; got {objective!r}")
        self.objective: CoverageObjective = objective
        self.under_weight = _amount("under_weight", under_weight)
        self.over_weight = _amount("over_weight", over_weight)
        self.max_period_concurrency = None if max_period_concurrency is None else _amount(
            "max_period_concurrency", max_period_concurrency)
        self.max_shift_concurrency = None if max_shift_concurrency is None else _whole(
            "max_shift_concurrency", max_shift_concurrency)
        covers = self.matrix.sum(axis=0) > 0
        self.uncoverable: tuple[tuple[int, int], ...] = tuple(
            (int(d), int(p)) for d, p in zip(*np.nonzero((self.required > 0) & ~covers),
                                             strict=True))

    def _precheck(self) -> None:
        if self.objective != "min_cost_cover":
            return
        problems = [f"day {d} period {p}: required {self.required[d, p]:g} but no shift "
                    "covers it" for d, p in self.uncoverable]
        reach = self.matrix.sum(axis=0) if self.max_shift_concurrency is None else (
            self.matrix.sum(axis=0) * self.max_shift_concurrency)
        if self.max_shift_concurrency is not None:
            problems += [f"day {d} period {p}: required {self.required[d, p]:g} but the shifts "
                         f"covering it reach at most {reach[p]:g} with max_shift_concurrency="
                         f"{self.max_shift_concurrency}"
                         for d, p in zip(*np.nonzero((self.required > reach) & (reach > 0)),
                                         strict=True)]
        if self.max_period_concurrency is not None:
            problems += [f"day {d} period {p}: required {self.required[d, p]:g} exceeds "
                         f"max_period_concurrency={self.max_period_concurrency:g}"
                         for d, p in zip(*np.nonzero(
                             self.required > self.max_period_concurrency), strict=True)]
        if problems:
            raise ShiftInfeasibleError(
                "min_cost_cover cannot cover every period: " + _listing(problems) + ". Add "
                "shifts covering them, raise the caps, or use objective='weighted' / "
                "'min_abs_difference', which report under-staffing instead.", problems)

    def _build(self, *, elastic: bool) -> tuple[pulp.LpProblem, NDArray[np.object_], dict[
            tuple[int, int], pulp.LpVariable]]:
        days, periods = self.required.shape
        prob = pulp.LpProblem("coverage", pulp.LpMinimize)
        x = np.empty((days, len(self.shifts)), dtype=object)
        for d in range(days):
            for s in range(len(self.shifts)):
                x[d, s] = _var(prob, f"x{d}_{s}", high=self.max_shift_concurrency,
                               integer=True)
        short: dict[tuple[int, int], pulp.LpVariable] = {}
        terms = []
        hard = self.objective == "min_cost_cover"
        for d in range(days):
            for p in range(periods):
                expr = pulp.LpAffineExpression(
                    {x[d, s]: float(self.matrix[s, p]) for s in range(len(self.shifts))
                     if self.matrix[s, p]})
                r = float(self.required[d, p])
                if self.max_period_concurrency is not None:
                    prob += expr <= self.max_period_concurrency, f"cap{d}_{p}"
                if hard:
                    relief = 0
                    if elastic:
                        relief = short[d, p] = _var(prob, f"short{d}_{p}")
                    prob += expr + relief >= r, f"cover{d}_{p}"
                    continue
                # pyworkforce bounds |cov - required| by max_period_concurrency
                cap = self.max_period_concurrency if self.objective == "min_abs_difference" \
                    else None
                u = _var(prob, f"under{d}_{p}", high=cap)
                o = _var(prob, f"over{d}_{p}")
                prob += expr + u - o == r, f"cover{d}_{p}"
                terms += [(u, self.under_weight), (o, self.over_weight)]
        if elastic:
            prob += pulp.lpSum(short.values())
        elif self.objective == "min_abs_difference":
            prob += pulp.LpAffineExpression([(v, 1.0) for v, _ in terms])
        else:
            cost = [(x[d, s], float(self.cost[s])) for d in range(days)
                    for s in range(len(self.shifts))]
            prob += pulp.LpAffineExpression(cost + (terms if not hard else []))
        return prob, x, short

    def solve(
        self,
        *,
        solver: SolverName = "auto",
        time_limit_s: float = 60.0,
        gap: float = 0.0,
        threads: int = 1,
        msg: bool = False,
    ) -> CoveragePlan:
        """Solve; raises ``ShiftInfeasibleError`` naming the periods if no plan exists."""
        name = _check_solve_args(solver, time_limit_s, gap, threads)
        self._precheck()
        prob, x, _ = self._build(elastic=False)
        outcome = _run(prob, solver=name, time_limit_s=time_limit_s, gap=gap, threads=threads,
                       msg=msg)
        if outcome.status == "infeasible":
            relaxed, _, short = self._build(elastic=True)
            _run(relaxed, solver=name, time_limit_s=time_limit_s, gap=0.0, threads=threads,
                 msg=False)
            problems = [f"day {d} period {p} short by {(v.varValue or 0.0):g}"
                        for (d, p), v in short.items() if (v.varValue or 0.0) > 1e-6]
            raise ShiftInfeasibleError(
                "no plan covers every period within the caps: " + (_listing(problems) or
                "the caps conflict") + ". Raise max_period_concurrency / "
                "max_shift_concurrency or use objective='weighted'.", problems)
        if outcome.objective is None:
            raise _no_solution(outcome, time_limit_s)
        counts = np.vectorize(_var_value, otypes=[np.int64])(x)
        scheduled = counts @ self.matrix
        under = np.maximum(self.required - scheduled, 0.0)
        over = np.maximum(scheduled - self.required, 0.0)
        cost = float((counts * self.cost).sum())
        if self.objective == "min_cost_cover":
            objective = cost
        elif self.objective == "min_abs_difference":
            objective = float(under.sum() + over.sum())
        else:
            objective = cost + self.under_weight * float(under.sum()) + self.over_weight * float(
                over.sum())
        days, periods = self.required.shape
        index = pd.MultiIndex.from_product([range(days), range(periods)],
                                           names=["day", "period"])
        coverage = pd.DataFrame({"required": self.required.ravel(),
                                 "scheduled": scheduled.ravel(), "under": under.ravel(),
                                 "over": over.ravel()}, index=index)
        frame = pd.DataFrame(counts, index=pd.RangeIndex(days, name="day"),
                             columns=list(self.shifts))
        return CoveragePlan(counts=frame, coverage=coverage, cost=cost, objective=objective,
                            objective_name=self.objective, uncoverable=self.uncoverable,
                            **_outcome_fields(outcome))
