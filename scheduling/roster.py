"""Rostering: named agents on a shift frame (WF-07 schedule bidding, WF-08 employee data).

The shift MIP leaves a *shift frame* (``scheduling.model.SHIFT_COLUMNS``): concrete shifts with a
``count`` of agents each. :class:`RosterProblem` puts named agents on those slots with a MIP:

* ``x[a, r]`` binary, agent ``a`` works shift ``r``; created only for pairs that pass the
  availability, leave and skill filters, so those rules hold by construction. Rows that no rule
  or bid tells apart (same day, times, paid minutes, skill; they differ in break placement)
  form one ``r`` with their summed count, and agents are dealt out to the rows afterwards;
* ``sum_a x[a, r] + unfilled[r] = count[r]`` (``unfilled`` is 0 with ``fill_all=True``);
* at most one shift a day per agent;
* minimum rest: each shift occupies ``[start, end + rest)``; two shifts whose occupied spans
  overlap conflict. That conflict graph is an interval graph, so one ``<= 1`` row per maximal
  clique (found by a sweep) is exact; cliques within one day are implied by the day rows;
* at most ``K`` consecutive days: every ``K + 1`` consecutive days hold at most ``K`` worked days;
* paid minutes in each 7-day block from ``week_start`` lie in ``[min, max]``.

Preferences are :class:`ShiftBid` s: an agent spreads points over wishes ("weekends off",
"start before 09:00", "no template N8"). Each bid is checked day by day, so the points an
assignment breaks are linear in ``x`` and satisfaction is ``1 - broken / bid`` per agent.
The objective is ``unfilled_penalty * unfilled + cost + preference_weight * sum(1 - s_a)
+ fairness_weight * (max s_a - min s_a)`` over agents with bids (or ``* (1 - min s_a)`` with
``fairness="worst"``). See ``docs/rostering.md``.

When the rules cannot all hold, :class:`RosterInfeasibleError` lists plain reasons, from
up-front checks or from an elastic re-solve; solver errors never reach the caller.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from scheduling.model import SHIFT_COLUMNS, check_shift_frame

__all__ = [
    "Agent",
    "Availability",
    "Roster",
    "RosterInfeasibleError",
    "RosterProblem",
    "RosterRules",
    "RosterSolveError",
    "ShiftBid",
]

_DAY = 1440
_ELIGIBLE, _NO_SKILL, _ON_LEAVE, _UNAVAILABLE = 0, 1, 2, 3
Solver = Literal["auto", "cbc", "highs"]


# -- inputs ------------------------------------------------------------------------------


def _clock(value: str | dtime, name: str, *, allow_24: bool = False) -> int:
    """Minutes after midnight of an ``"HH:MM"`` string or ``datetime.time``."""
    if isinstance(value, dtime):
        return value.hour * 60 + value.minute
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value))
    if match is not None:
        minutes = int(match[1]) * 60 + int(match[2])
        if int(match[2]) < 60 and (minutes < _DAY or (allow_24 and minutes == _DAY)):
            return minutes
    latest = "24:00" if allow_24 else "23:59"
    raise ValueError(f"{name} must be a time 'HH:MM' between 00:00 and {latest}; got {value!r}")


def _day_key(value: int | date, name: str) -> int | date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | np.integer) and 0 <= int(value) <= 6:
        return int(value)
    raise ValueError(f"{name} must be a weekday 0-6 (0 = Monday) or a datetime.date; got {value!r}")


@dataclass(frozen=True, slots=True)
class Availability:
    """A window an agent can work in: on a weekday (0 = Monday) or a date, ``start``-``end``.

    ``end`` at or before ``start`` runs past midnight ("22:00"-"06:00"); "00:00"-"24:00" is the
    whole day. A shift must lie inside the union of the agent's windows.
    """

    day: int | date
    start: str | dtime = "00:00"
    end: str | dtime = "24:00"

    def __post_init__(self) -> None:
        object.__setattr__(self, "day", _day_key(self.day, "Availability.day"))
        begin = _clock(self.start, "Availability.start")
        finish = _clock(self.end, "Availability.end", allow_24=True)
        if begin == finish:
            raise ValueError(f"Availability {self.start}-{self.end} is empty; give end != start "
                             "('00:00'-'24:00' for the whole day)")

    def span(self) -> tuple[int, int]:
        """Start and end in minutes after midnight of its day; end may exceed 1440."""
        begin = _clock(self.start, "start")
        finish = _clock(self.end, "end", allow_24=True)
        return begin, finish if finish > begin else finish + _DAY


@dataclass(frozen=True, slots=True)
class ShiftBid:
    """A preference an agent spends ``points`` on (WF-07 schedule bidding).

    The bid covers ``days`` (weekdays 0-6 and/or dates; ``None``: every day) and
    picks shifts by ``templates`` and a start window ``start_from``-``start_until`` (inclusive;
    wraps past midnight when ``start_from > start_until``). With ``avoid=False`` it says "on
    these days, if I work, give me such a shift"; with ``avoid=True`` "give me no such shift on
    these days" (no filters: the days off). It is judged day by day; its points are split
    evenly over its days in the planned weeks, and a day counts as met unless a breaking shift
    is worked.
    """

    points: float
    days: tuple[int | date, ...] | None = None
    avoid: bool = False
    templates: frozenset[str] | None = None
    start_from: str | dtime | None = None
    start_until: str | dtime | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.points) and self.points > 0):
            raise ValueError(f"ShiftBid.points must be > 0, e.g. 20; got {self.points!r}")
        if self.days is not None:
            days = tuple(_day_key(d, "ShiftBid.days") for d in self.days)
            if not days:
                raise ValueError("ShiftBid.days is empty; give weekdays/dates or None for all")
            object.__setattr__(self, "days", days)
        if self.templates is not None:
            object.__setattr__(self, "templates", frozenset(self.templates))
        for name in ("start_from", "start_until"):
            if getattr(self, name) is not None:
                _clock(getattr(self, name), f"ShiftBid.{name}")
        if not self.avoid and self.templates is None and self.start_from is None \
                and self.start_until is None:
            raise ValueError("ShiftBid with avoid=False and no templates/start window is always "
                             "met; give templates or start_from/start_until, or avoid=True for "
                             "days off")

    def matches(self, template: NDArray[Any], start_of_day: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which shifts (by template and start minute of day) the bid's filters pick."""
        hit = np.ones(len(template), dtype=bool)
        if self.templates is not None:
            hit &= np.isin(template, list(self.templates))
        low = 0 if self.start_from is None else _clock(self.start_from, "start_from")
        high = _DAY - 1 if self.start_until is None else _clock(self.start_until, "start_until")
        if low <= high:
            hit &= (start_of_day >= low) & (start_of_day <= high)
        else:
            hit &= (start_of_day >= low) | (start_of_day <= high)
        return hit


@dataclass(frozen=True, slots=True)
class RosterRules:
    """Site-wide rules; an :class:`Agent` field left ``None`` takes the value from here.

    ``leave_credit_minutes`` is credited toward the weekly minimum for each leave day in a
    week (paid leave); 0 keeps the minimum whole.
    """

    min_weekly_minutes: int = 0
    max_weekly_minutes: int | None = None
    max_consecutive_days: int | None = None
    min_rest_minutes: int = 0
    leave_credit_minutes: int = 0

    def __post_init__(self) -> None:
        _check_limits("RosterRules", self.min_weekly_minutes, self.max_weekly_minutes,
                      self.max_consecutive_days, self.min_rest_minutes)
        if self.leave_credit_minutes < 0:
            raise ValueError(f"RosterRules.leave_credit_minutes must be >= 0; got "
                             f"{self.leave_credit_minutes!r}")


def _check_limits(owner: str, min_weekly: int | None, max_weekly: int | None,
                  max_consecutive: int | None, min_rest: int | None) -> None:
    for name, value in (("min_weekly_minutes", min_weekly), ("max_weekly_minutes", max_weekly),
                        ("min_rest_minutes", min_rest)):
        if value is not None and not value >= 0:
            raise ValueError(f"{owner}.{name} must be >= 0 minutes; got {value!r}")
    if max_consecutive is not None and not max_consecutive >= 1:
        raise ValueError(f"{owner}.max_consecutive_days must be >= 1; got {max_consecutive!r}")
    if min_weekly is not None and max_weekly is not None and min_weekly > max_weekly:
        raise ValueError(f"{owner}: min_weekly_minutes {min_weekly} > max_weekly_minutes "
                         f"{max_weekly}; lower the minimum or raise the maximum")


@dataclass(frozen=True, slots=True)
class Agent:
    """A named agent (WF-08): skills, availability, leave, bids and personal limits.

    ``availability=None`` means any time. ``leave`` dates block every shift overlapping that
    calendar day. Limits left ``None`` come from :class:`RosterRules`.
    """

    agent_id: str
    skills: frozenset[str] = frozenset()
    availability: tuple[Availability, ...] | None = None
    leave: frozenset[date] = frozenset()
    preferences: tuple[ShiftBid, ...] = ()
    min_weekly_minutes: int | None = None
    max_weekly_minutes: int | None = None
    max_consecutive_days: int | None = None
    min_rest_minutes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.agent_id, str) or not self.agent_id:
            raise ValueError(f"Agent.agent_id must be a non-empty string; got {self.agent_id!r}")
        object.__setattr__(self, "skills", frozenset(self.skills))
        object.__setattr__(self, "leave", frozenset(_day_key(d, "Agent.leave") for d in self.leave))
        if any(isinstance(d, int) for d in self.leave):
            raise ValueError(f"agent {self.agent_id}: leave holds dates, not weekdays")
        if self.availability is not None:
            object.__setattr__(self, "availability", tuple(self.availability))
        object.__setattr__(self, "preferences", tuple(self.preferences))
        _check_limits(f"agent {self.agent_id}", self.min_weekly_minutes, self.max_weekly_minutes,
                      self.max_consecutive_days, self.min_rest_minutes)


# -- errors ------------------------------------------------------------------------------


class RosterInfeasibleError(ValueError):
    """No roster meets every hard rule; ``reasons`` says which rule fails for whom."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("no roster meets the rules:\n" + "\n".join(f"- {r}" for r in reasons))


class RosterSolveError(RuntimeError):
    """The solver found no roster within its time limit (infeasibility not proven)."""


# -- prepared data -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """The shift frame as arrays, one entry per *class* of interchangeable rows.

    Rows alike in day, times, paid minutes, skill and (when some bid names it) template differ
    only in where their breaks fall; no rule or bid tells them apart, so the MIP sees one class
    with the summed count and agents are dealt out to the rows afterwards. Times are minutes
    after midnight of ``origin``; ``members`` holds each class's row positions in ``frame``.
    """

    frame: pd.DataFrame
    origin: date
    day: NDArray[np.int64]
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    paid: NDArray[np.int64]
    count: NDArray[np.int64]
    template: NDArray[Any]
    skill: NDArray[Any]
    week: NDArray[np.int64]
    horizon: tuple[int, int]  # first and last day offsets of the weeks the frame spans
    members: tuple[NDArray[np.int64], ...]
    week_origin: int  # day offset where week 0 starts

    def label(self, r: int) -> str:
        first = self.members[r][0]
        row = self.frame.iloc[first]
        more = len(self.members[r]) - 1
        alike = f" and {more} more row{'s' * (more > 1)} alike" if more else ""
        return (f"shift {self.frame.index[first]!r} ({row['template']}, "
                f"{row['start']:%Y-%m-%d %H:%M}-{row['end']:%H:%M}){alike}")

    def date_of(self, offset: int) -> date:
        return self.origin + timedelta(days=int(offset))

    def week_first(self, week: int) -> date:
        """The first day of 7-day block ``week``."""
        return self.date_of(self.week_origin + 7 * week)


@dataclass(frozen=True, slots=True)
class _Person:
    """One agent's resolved limits, eligible shift rows and bid penalties."""

    agent: Agent
    rows: NDArray[np.int64]           # eligible shift rows, by start
    why: NDArray[np.int8]             # per shift row: _ELIGIBLE or the first failing filter
    broken: NDArray[np.float64]       # points of bid-days broken by working each eligible row
    points: float                     # points bid on days of the frame
    min_weekly: int
    max_weekly: int | None
    max_consecutive: int | None
    min_rest: int
    rate: float                       # cost per paid hour

    def weekly_minimum(self, frame: _Frame, week: int, credit: int) -> int:
        first = frame.week_first(week)
        leave_days = sum(1 for d in self.agent.leave if 0 <= (d - first).days < 7)
        return max(0, self.min_weekly - credit * leave_days)


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


def _prepare_frame(shifts: pd.DataFrame, week_start: date | None,
                   named: frozenset[str]) -> _Frame:
    """Validate the shift frame and group it into classes (``named``: templates some bid names)."""
    check_shift_frame(shifts)
    if shifts.empty:
        raise ValueError("shifts: the shift frame has no rows; roster a frame with shifts")
    if not shifts.index.is_unique:
        raise ValueError("shifts: index labels must be unique; call shifts.reset_index(drop=True)")
    days = [_as_date(d) for d in shifts["day"]]
    origin = min(days) if week_start is None else min([*days, week_start])
    base = pd.Timestamp(origin)
    minute = pd.Timedelta(minutes=1)
    start = np.array([(pd.Timestamp(t) - base) // minute for t in shifts["start"]], dtype=np.int64)
    end = np.array([(pd.Timestamp(t) - base) // minute for t in shifts["end"]], dtype=np.int64)
    day = np.array([(d - origin).days for d in days], dtype=np.int64)
    paid = shifts["paid_minutes"].to_numpy(dtype=np.int64)
    if np.any(paid < 0):
        raise ValueError("shifts: paid_minutes must be >= 0")
    skill = np.array([None if s is None or (isinstance(s, float) and math.isnan(s)) else str(s)
                      for s in shifts["skill"]], dtype=object)
    template = shifts["template"].astype(str).to_numpy(dtype=object)
    count = shifts["count"].to_numpy(dtype=np.int64)
    classes: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(zip(day.tolist(), start.tolist(), end.tolist(), paid.tolist(),
                                skill, (t if t in named else None for t in template),
                                strict=False)):
        classes.setdefault(key, []).append(i)
    members = tuple(np.array(m, dtype=np.int64) for m in classes.values())
    first = np.array([m[0] for m in members], dtype=np.int64)
    week_origin = 0 if week_start is None else (week_start - origin).days
    weeks = (day - week_origin) // 7
    return _Frame(
        frame=shifts[list(SHIFT_COLUMNS)], origin=origin, day=day[first], start=start[first],
        end=end[first], paid=paid[first], count=np.array([count[m].sum() for m in members]),
        template=template[first], skill=skill[first], week=weeks[first],
        horizon=(week_origin + 7 * int(weeks.min()), week_origin + 7 * int(weeks.max()) + 6),
        members=members, week_origin=week_origin)


def _windows(agent: Agent, frame: _Frame) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The agent's availability over the frame as merged [start, end) minute intervals."""
    spans: list[tuple[int, int]] = []
    assert agent.availability is not None
    for offset in range(frame.horizon[0] - 1, frame.horizon[1] + 2):
        today = frame.date_of(offset)
        for window in agent.availability:
            if window.day == today or window.day == today.weekday():
                begin, finish = window.span()
                spans.append((offset * _DAY + begin, offset * _DAY + finish))
    merged: list[list[int]] = []
    for begin, finish in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finish)
        else:
            merged.append([begin, finish])
    arr = np.array(merged, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _eligibility(agent: Agent, frame: _Frame) -> NDArray[np.int8]:
    """Per shift row: _ELIGIBLE or the first filter (skill, leave, availability) that fails."""
    why = np.full(len(frame.day), _ELIGIBLE, dtype=np.int8)
    if agent.availability is not None:
        starts, ends = _windows(agent, frame)
        at = np.searchsorted(starts, frame.start, side="right") - 1
        inside = (at >= 0) & (ends[np.maximum(at, 0)] >= frame.end)
        why[~inside] = _UNAVAILABLE
    for leave_day in agent.leave:
        offset = (leave_day - frame.origin).days
        hit = (frame.start < (offset + 1) * _DAY) & (frame.end > offset * _DAY)
        why[hit] = _ON_LEAVE
    needs = np.array([s is not None and s not in agent.skills for s in frame.skill], dtype=bool)
    why[needs] = _NO_SKILL
    return why


def _bid_penalty(agent: Agent, frame: _Frame) -> tuple[NDArray[np.float64], float]:
    """Points of bid-days broken by working each shift row, and the points bid in the frame."""
    broken = np.zeros(len(frame.day))
    points = 0.0
    offsets = range(frame.horizon[0], frame.horizon[1] + 1)
    start_of_day = frame.start % _DAY
    for bid in agent.preferences:
        scope = [o for o in offsets if bid.days is None
                 or frame.date_of(o) in bid.days or frame.date_of(o).weekday() in bid.days]
        if not scope:
            continue
        points += bid.points
        hit = bid.matches(frame.template, start_of_day)
        breaks = hit if bid.avoid else ~hit
        broken += np.where(np.isin(frame.day, scope) & breaks, bid.points / len(scope), 0.0)
    return broken, points


# -- the MIP -----------------------------------------------------------------------------


class _Model:
    """A MIP assembled as arrays: columns with bounds/costs and rows ``lo <= a x <= hi``."""

    def __init__(self) -> None:
        self.cost: list[NDArray[np.float64]] = []
        self.upper: list[NDArray[np.float64]] = []
        self.integer: list[NDArray[np.bool_]] = []
        self.n_cols = 0
        self.row_cols: list[NDArray[np.int64]] = []
        self.row_vals: list[NDArray[np.float64]] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []

    def add_cols(self, n: int, *, cost: Any = 0.0, upper: Any = 1.0,
                 integer: bool = False) -> NDArray[np.int64]:
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        self.integer.append(np.full(n, integer))
        cols = np.arange(self.n_cols, self.n_cols + n, dtype=np.int64)
        self.n_cols += n
        return cols

    def add_row(self, cols: Any, vals: Any, lo: float, hi: float) -> None:
        cols = np.asarray(cols, dtype=np.int64)
        self.row_cols.append(cols)
        self.row_vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape))
        self.row_lo.append(lo)
        self.row_hi.append(hi)

    def matrix(self) -> sparse.csc_matrix:
        lengths = [len(c) for c in self.row_cols]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        cols = np.concatenate(self.row_cols) if self.row_cols else np.zeros(0, np.int64)
        vals = np.concatenate(self.row_vals) if self.row_vals else np.zeros(0)
        csr = sparse.csr_matrix((vals, cols, indptr), shape=(len(lengths), self.n_cols))
        return csr.tocsc()


@dataclass(frozen=True, slots=True)
class _Solution:
    status: str  # optimal | feasible | infeasible | none
    values: NDArray[np.float64] | None
    bound: float | None


def _highs(model: _Model, time_limit_s: float, gap: float, threads: int) -> Any:
    import highspy

    try:  # the first Highs() prints a banner on fd 1; keep a library quiet
        saved = os.dup(1)
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
    except OSError:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(gap))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 0)
    a = model.matrix()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_ = np.concatenate(model.cost)
    lp.col_lower_ = np.zeros(a.shape[1])
    lp.col_upper_ = np.concatenate(model.upper)
    lp.row_lower_ = np.array(model.row_lo, dtype=np.float64)
    lp.row_upper_ = np.array(model.row_hi, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    integer = np.concatenate(model.integer)
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in integer]
    h.passModel(lp)
    return h


def _solve_highs(model: _Model, time_limit_s: float, gap: float, threads: int) -> _Solution:
    import highspy

    h = _highs(model, time_limit_s, gap, threads)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kInfeasible:
        return _Solution("infeasible", None, None)
    if info.primal_solution_status != 2:  # no feasible point
        return _Solution("none", None, None)
    values = _checked(model, np.asarray(h.getSolution().col_value, dtype=np.float64))
    if values is None:
        return _Solution("none", None, None)
    optimal = status == highspy.HighsModelStatus.kOptimal
    bound = float(info.mip_dual_bound)
    if not np.concatenate(model.integer).any() or not math.isfinite(bound):
        # a pure LP (no agent may work anything) has no MIP bound; optimal means exact
        bound = float(info.objective_function_value) if optimal else math.nan
    return _Solution("optimal" if optimal else "feasible", values,
                     None if math.isnan(bound) else bound)


def _cbc_path() -> str:
    """The CBC binary PuLP bundles, else one on PATH."""
    import pulp

    bundled = getattr(getattr(pulp, "PULP_CBC_CMD", None), "pulp_cbc_path", None)
    for path in (bundled, shutil.which("cbc")):
        if path and os.access(path, os.X_OK):
            return str(path)
    raise RosterSolveError("solver='cbc' needs the CBC binary (bundled with PuLP < 4, or "
                           "`cbc` on PATH); install it or use solver='highs'")


def _solve_cbc(model: _Model, time_limit_s: float, gap: float, threads: int) -> _Solution:
    with tempfile.TemporaryDirectory(prefix="roster-") as tmp:
        mps, sol = Path(tmp, "roster.mps"), Path(tmp, "roster.sol")
        _highs(model, time_limit_s, gap, threads).writeModel(str(mps))
        command = [_cbc_path(), str(mps), "-sec", f"{time_limit_s:g}",
                   "-ratio", f"{gap:g}", "-threads", str(threads), "-timeMode", "elapsed",
                   "-branch", "-printingOptions", "all", "-solution", str(sol)]
        try:
            run = subprocess.run(command, capture_output=True, text=True, check=False,
                                 timeout=time_limit_s + 60)
        except subprocess.TimeoutExpired:
            return _Solution("none", None, None)
        if not sol.exists():
            return _Solution("none", None, None)
        lines = sol.read_text().splitlines()
    head = lines[0] if lines else ""
    if head.startswith(("Infeasible", "Integer infeasible")):
        return _Solution("infeasible", None, None)
    if not (head.startswith("Optimal") or "objective value" in head):
        return _Solution("none", None, None)
    values = np.zeros(model.n_cols)
    for line in lines[1:]:
        parts = line.replace("**", " ").split()
        if len(parts) >= 3 and parts[1].startswith("c") and parts[1][1:].isdigit():
            values[int(parts[1][1:])] = float(parts[2])
    checked = None if "No feasible solution found" in run.stdout else _checked(model, values)
    if checked is None:
        return _Solution("none", None, None)  # CBC writes a point even when it has none
    values = checked
    bound = re.search(r"Lower bound:\s+(\S+)", run.stdout)
    stopped = "Stopped" in head
    return _Solution("feasible" if stopped else "optimal", values,
                     float(bound[1]) if bound else None)


def _checked(model: _Model, values: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """``values`` with integer columns rounded, or None unless they keep every bound and row
    of ``model`` (to a relative 1e-6)."""
    integer = np.concatenate(model.integer)
    upper = np.concatenate(model.upper)
    if np.any(np.abs(values[integer] - np.round(values[integer])) > 1e-5):
        return None
    values = np.where(integer, np.round(values), values)
    lo, hi = np.array(model.row_lo), np.array(model.row_hi)
    activity = model.matrix() @ values
    with np.errstate(invalid="ignore"):
        ok = (np.all(values >= -1e-6) and np.all(values <= upper + 1e-6 * (1 + np.abs(upper)))
              and np.all(activity >= lo - 1e-6 * (1 + np.abs(lo)))
              and np.all(activity <= hi + 1e-6 * (1 + np.abs(hi))))
    return values if ok else None


def _cross_day_cliques(start: NDArray[np.int64], busy_until: NDArray[np.int64],
                       day: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Maximal cliques of the spans ``[start, busy_until)`` that hold shifts of two or more days.

    A sweep over start and end events: the active set just before an end that follows a start
    is a maximal clique of the interval graph. Single-day cliques are dropped since the
    one-shift-a-day rows already cover them.
    """
    by_start = np.argsort(start, kind="stable")
    by_end = np.argsort(busy_until, kind="stable")
    active: set[int] = set()
    cliques: list[NDArray[np.int64]] = []
    grew = False
    i = j = 0
    while i < len(start):
        if busy_until[by_end[j]] <= start[by_start[i]]:
            if grew:
                members = np.fromiter(active, dtype=np.int64)
                if len(np.unique(day[members])) > 1:
                    cliques.append(np.sort(members))
                grew = False
            active.discard(int(by_end[j]))
            j += 1
        else:
            active.add(int(by_start[i]))
            i += 1
            grew = True
    if grew:
        members = np.fromiter(active, dtype=np.int64)
        if len(np.unique(day[members])) > 1:
            cliques.append(np.sort(members))
    return cliques


def _agent_rules(model: _Model, person: _Person, frame: _Frame, x: NDArray[np.int64], *,
                 min_weekly: Mapping[int, int], shortfall_cost: float | None = None,
                 use_rest: bool = True, use_consecutive: bool = True) -> dict[int, int]:
    """Add one agent's day, rest, consecutive-day and weekly rows over its columns ``x``.

    Returns the shortfall column of each week when ``shortfall_cost`` makes the weekly
    minimum elastic.
    """
    rows = person.rows
    days = frame.day[rows]
    day_cols: dict[int, NDArray[np.int64]] = {}
    for d in np.unique(days):
        day_cols[int(d)] = x[days == d]
    k = person.max_consecutive if use_consecutive else None
    if k is not None and len(day_cols) > k:
        worked = dict(zip(day_cols, model.add_cols(len(day_cols), integer=True), strict=True))
        for d, cols in day_cols.items():
            model.add_row(np.append(cols, worked[d]), np.append(np.ones(len(cols)), -1.0), 0, 0)
        first, last = min(worked), max(worked)
        for begin in range(first, last - k + 1):
            window = [worked[d] for d in range(begin, begin + k + 1) if d in worked]
            if len(window) > k:
                model.add_row(window, 1.0, -np.inf, k)
    else:
        for cols in day_cols.values():
            if len(cols) > 1:
                model.add_row(cols, 1.0, -np.inf, 1)
    rest = person.min_rest if use_rest else 0
    for clique in _cross_day_cliques(frame.start[rows], frame.end[rows] + rest, days):
        model.add_row(x[clique], 1.0, -np.inf, 1)
    shortfall: dict[int, int] = {}
    weeks = frame.week[rows]
    paid = frame.paid[rows].astype(np.float64)
    for week in np.unique(weeks):
        mask = weeks == week
        floor = min_weekly.get(int(week), 0)
        most = sum(frame.paid[rows[mask & (days == d)]].max()
                   for d in np.unique(days[mask]))
        cap = person.max_weekly if person.max_weekly is not None and person.max_weekly < most \
            else None
        if floor <= 0 and cap is None:
            continue
        cols, vals = x[mask], paid[mask]
        if shortfall_cost is not None and floor > 0:
            slack = int(model.add_cols(1, cost=shortfall_cost, upper=floor)[0])
            shortfall[int(week)] = slack
            cols, vals = np.append(cols, slack), np.append(vals, 1.0)
        model.add_row(cols, vals, floor if floor > 0 else -np.inf,
                      np.inf if cap is None else cap)
    return shortfall


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Roster:
    """A solved roster (WF-07/08).

    ``assignments``: one row per agent and shift (``agent_id``, ``shift`` = the shift frame's
    index label, and the shift frame columns but ``count``). ``unfilled``: shift frame rows with
    ``count`` = slots nobody took. ``agents``: per agent ``shifts``, ``paid_minutes``, ``cost``,
    ``points_bid``, ``points_met``, ``satisfaction`` (met / bid, NaN without bids).
    ``fairness`` is the spread ``max - min`` of satisfaction over agents with bids (0 with fewer
    than two). ``gap`` is ``(objective - bound) / |objective|`` from the solver's bound, or
    ``None`` when the solver gave no bound. ``status`` is ``"optimal"`` (gap 0),
    ``"gap_reached"`` (stopped at the requested gap) or ``"time_limit"`` (best roster found).
    """

    assignments: pd.DataFrame
    unfilled: pd.DataFrame
    agents: pd.DataFrame
    fairness: float
    min_satisfaction: float
    cost: float
    objective: float
    status: str
    gap: float | None
    solve_time_s: float
    solver: str
    weights: dict[str, Any] = field(default_factory=dict)

    @property
    def satisfaction(self) -> pd.Series:
        """Preference points met / points bid, per agent (NaN for agents without bids)."""
        return self.agents["satisfaction"]

    @property
    def unfilled_slots(self) -> int:
        """Slots of the shift frame left without an agent."""
        return int(self.unfilled["count"].sum())

    def summary(self) -> str:
        """A short plain-text report."""
        rostered = int((self.agents["shifts"] > 0).sum())
        gap = "n/a" if self.gap is None else f"{self.gap:.2%}"
        mean = self.agents["satisfaction"].mean()
        lines = [
            f"Roster ({self.status}, {self.solver}, gap {gap}, {self.solve_time_s:.1f} s)",
            f"  shifts assigned    {len(self.assignments)} to {rostered} of "
            f"{len(self.agents)} agents",
            f"  unfilled slots     {self.unfilled_slots}",
            f"  paid hours         {self.agents['paid_minutes'].sum() / 60:.1f}",
            f"  cost               {self.cost:.2f}",
            f"  satisfaction       mean {mean:.3f}, min {self.min_satisfaction:.3f}, "
            f"spread (fairness) {self.fairness:.3f}",
            f"  objective          {self.objective:.4f}",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: scalars, assignments, unfilled slots and per-agent figures."""
        def stamp(value: Any) -> Any:
            if isinstance(value, pd.Timestamp | date):
                return value.isoformat()
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, np.integer | np.floating):
                return value.item()
            return value

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            out = []
            for rec in frame.drop(columns=["activities"], errors="ignore").to_dict("records"):
                out.append({k: stamp(v) for k, v in rec.items()})
            return out

        agents = self.agents.reset_index()
        return {
            "status": self.status, "solver": self.solver, "gap": self.gap,
            "solve_time_s": self.solve_time_s, "objective": self.objective, "cost": self.cost,
            "fairness": self.fairness, "min_satisfaction": stamp(self.min_satisfaction),
            "unfilled_slots": self.unfilled_slots, "weights": dict(self.weights),
            "assignments": records(self.assignments),
            "unfilled": records(self.unfilled.reset_index(names="shift")),
            "agents": records(agents),
        }


# -- the problem -------------------------------------------------------------------------


class RosterProblem:
    """Named agents for the slots of a shift frame (WF-07, WF-08).

    ``unfilled_penalty`` (per slot) defaults to more than the costliest shift plus every
    preference and fairness term together, so coverage comes first. ``preference_weight``
    weighs one agent's whole dissatisfaction ``1 - satisfaction``; ``fairness_weight`` weighs
    the satisfaction spread ``max - min`` over agents with bids (``fairness="spread"``), or
    with ``fairness="worst"`` the worst-off agent's ``1 - min satisfaction``, which never
    pays for making the happiest agents less happy. ``cost_per_paid_hour`` is one
    rate or a rate per ``agent_id``. Weekly limits apply to 7-day blocks from ``week_start``
    (default: the frame's first day). ``fill_all=True`` makes every slot a hard rule.
    """

    def __init__(
        self,
        shifts: pd.DataFrame,
        agents: Sequence[Agent],
        *,
        rules: RosterRules | None = None,
        fill_all: bool = False,
        unfilled_penalty: float | None = None,
        preference_weight: float = 1.0,
        fairness_weight: float = 1.0,
        cost_per_paid_hour: float | Mapping[str, float] | None = None,
        week_start: date | None = None,
        fairness: Literal["spread", "worst"] = "spread",
    ) -> None:
        self.rules = RosterRules() if rules is None else rules
        self.agents = tuple(agents)
        if not self.agents:
            raise ValueError("agents is empty; give at least one Agent")
        ids = Counter(a.agent_id for a in self.agents)
        if twice := sorted(i for i, n in ids.items() if n > 1):
            raise ValueError(f"agents: agent_id must be unique; repeated {twice[:5]}")
        for name, value in (("preference_weight", preference_weight),
                            ("fairness_weight", fairness_weight)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, e.g. 1.0; got {value!r}")
        if fairness not in ("spread", "worst"):
            raise ValueError(f"fairness must be 'spread' or 'worst'; got {fairness!r}")
        self.fairness = fairness
        self.fill_all = bool(fill_all)
        self.preference_weight = float(preference_weight)
        self.fairness_weight = float(fairness_weight)
        self.week_start = week_start
        named = frozenset(t for a in self.agents for b in a.preferences for t in b.templates or ())
        self.frame = _prepare_frame(shifts, week_start, named)
        rates = self._rates(cost_per_paid_hour)
        self.people = [self._person(a, rates[a.agent_id]) for a in self.agents]
        if unfilled_penalty is None:
            costliest = max(p.rate for p in self.people) * float(self.frame.paid.max()) / 60
            bidders = sum(p.points > 0 for p in self.people)
            unfilled_penalty = 1.0 + costliest + preference_weight * bidders + fairness_weight
        if not (math.isfinite(unfilled_penalty) and unfilled_penalty >= 0):
            raise ValueError(f"unfilled_penalty must be >= 0 per slot; got {unfilled_penalty!r}")
        self.unfilled_penalty = float(unfilled_penalty)

    def _rates(self, cost: float | Mapping[str, float] | None) -> dict[str, float]:
        if cost is None:
            return {a.agent_id: 0.0 for a in self.agents}
        if isinstance(cost, Mapping):
            if missing := [a.agent_id for a in self.agents if a.agent_id not in cost]:
                raise ValueError(f"cost_per_paid_hour has no rate for agents {missing[:5]}; "
                                 "give every agent_id a rate or one number for all")
            rates = {a.agent_id: float(cost[a.agent_id]) for a in self.agents}
        else:
            rates = {a.agent_id: float(cost) for a in self.agents}
        if bad := [k for k, v in rates.items() if not (math.isfinite(v) and v >= 0)]:
            raise ValueError(f"cost_per_paid_hour must be >= 0; check agents {bad[:5]}")
        return rates

    def _person(self, agent: Agent, rate: float) -> _Person:
        rules = self.rules
        why = _eligibility(agent, self.frame)
        broken, points = _bid_penalty(agent, self.frame)
        rows = np.flatnonzero(why == _ELIGIBLE)
        rows = rows[np.argsort(self.frame.start[rows], kind="stable")]
        pick = _pick
        min_weekly = pick(agent.min_weekly_minutes, rules.min_weekly_minutes) or 0
        max_weekly = pick(agent.max_weekly_minutes, rules.max_weekly_minutes)
        if max_weekly is not None and min_weekly > max_weekly:
            raise ValueError(f"agent {agent.agent_id}: min weekly {min_weekly} minutes > max "
                             f"weekly {max_weekly} minutes (rules and agent combined)")
        return _Person(
            agent=agent, rows=rows, why=why, broken=broken[rows], points=points,
            min_weekly=min_weekly, max_weekly=max_weekly,
            max_consecutive=pick(agent.max_consecutive_days, rules.max_consecutive_days),
            min_rest=pick(agent.min_rest_minutes, rules.min_rest_minutes) or 0, rate=rate)

    # -- up-front checks ----------------------------------------------------------------

    def _weeks(self) -> range:
        return range(int(self.frame.week.min()), int(self.frame.week.max()) + 1)

    def _floor(self, person: _Person, week: int) -> int:
        return person.weekly_minimum(self.frame, week, self.rules.leave_credit_minutes)

    def check(self) -> list[str]:
        """Plain reasons the rules cannot hold, from cheap checks; empty if none is found.

        Checks each agent's weekly minimum against the best shift of each day it may work
        (and its consecutive-day limit), and with ``fill_all`` each shift's count against the
        agents who may work it. Passing does not prove the roster feasible; ``solve`` does.
        """
        reasons = [r for p in self.people for w in self._weeks() if (r := self._short(p, w))]
        if self.fill_all:
            for r in range(len(self.frame.day)):
                if reason := self._too_few(r):
                    reasons.append(reason)
        return reasons

    def _short(self, person: _Person, week: int) -> str | None:
        floor = self._floor(person, week)
        if floor <= 0:
            return None
        frame = self.frame
        rows = person.rows[frame.week[person.rows] == week]
        best = {int(d): int(frame.paid[rows[frame.day[rows] == d]].max())
                for d in np.unique(frame.day[rows])}
        total = sum(best.values())
        head = (f"agent {person.agent.agent_id}: min weekly {floor} minutes cannot be met in the "
                f"week from {frame.week_first(week)}")
        if total < floor:
            first = frame.week_first(week)
            leave = sorted(d for d in person.agent.leave if 0 <= (d - first).days < 7)
            after = f" after leave on {', '.join(map(str, leave))}" if leave else ""
            return (f"{head}: available for at most {_n(len(best), 'shift')} ({total} paid minutes)"
                    f"{after}; widen availability or lower min_weekly_minutes")
        k = person.max_consecutive
        if k is not None:
            days, most = _best_days(best, k)
            if most < floor:
                return (f"{head}: with at most {_n(k, 'consecutive day')} at most "
                        f"{_n(days, 'shift')} ({most} paid minutes) fit; raise "
                        "max_consecutive_days or lower min_weekly_minutes")
        return None

    def _too_few(self, r: int) -> str | None:
        need = int(self.frame.count[r])
        why = np.array([p.why[r] for p in self.people])
        able = int((why == _ELIGIBLE).sum())
        if able >= need:
            return None
        parts = [f"{n} {text}" for code, text in (
            (_NO_SKILL, f"lack skill {self.frame.skill[r]!r}"), (_ON_LEAVE, "on leave"),
            (_UNAVAILABLE, "not available")) if (n := int((why == code).sum()))]
        others = f" ({', '.join(parts)})" if parts else ""
        return (f"{self.frame.label(r)} needs {_n(need, 'agent')} but only {able} may work it"
                f"{others}; fill_all cannot hold")

    # -- the model ----------------------------------------------------------------------

    def _build(self, *, elastic: bool) -> tuple[_Model, list[NDArray[np.int64]],
                                                NDArray[np.int64], dict[tuple[int, int], int]]:
        """The MIP. ``elastic`` makes the demands (weekly minimums, fill_all) soft at a big
        weight and drops preferences, so the model is always feasible and positive slack
        names what cannot be met."""
        frame, model = self.frame, _Model()
        xs: list[NDArray[np.int64]] = []
        for p in self.people:
            cost = p.rate * frame.paid[p.rows] / 60.0
            if p.points > 0 and not elastic:
                cost = cost + self.preference_weight * p.broken / p.points
            xs.append(model.add_cols(len(p.rows), cost=0.0 if elastic else cost, integer=True))
        slack_cost = 1.0
        if self.fill_all and not elastic:
            unfilled = model.add_cols(len(frame.day), upper=0.0)
        elif self.fill_all:
            unfilled = model.add_cols(len(frame.day), cost=slack_cost * frame.paid.max(),
                                      upper=frame.count)
        else:
            unfilled = model.add_cols(len(frame.day), cost=0.0 if elastic else
                                      self.unfilled_penalty, upper=frame.count)
        covering: list[list[NDArray[np.int64]]] = [[] for _ in frame.day]
        for p, x in zip(self.people, xs, strict=True):
            for r, col in zip(p.rows, x, strict=True):
                covering[r].append(col)
        for r, cols in enumerate(covering):
            model.add_row(np.append(np.array(cols, dtype=np.int64), unfilled[r]), 1.0,
                          frame.count[r], frame.count[r])
        shortfall: dict[tuple[int, int], int] = {}
        for i, (p, x) in enumerate(zip(self.people, xs, strict=True)):
            floors = {w: self._floor(p, w) for w in self._weeks()}
            slack = _agent_rules(model, p, frame, x, min_weekly=floors,
                                 shortfall_cost=slack_cost if elastic else None)
            shortfall.update({(i, w): col for w, col in slack.items()})
        bidders = [i for i, p in enumerate(self.people) if p.points > 0]
        if self.fairness_weight > 0 and len(bidders) > 1 and not elastic:
            # worst >= dissatisfaction_a (>= best); "worst" mode leaves the happiest alone
            spread = self.fairness == "spread"
            worst = model.add_cols(1, cost=self.fairness_weight)[0]
            best = model.add_cols(1, cost=-self.fairness_weight)[0] if spread else None
            for i in bidders:
                p = self.people[i]
                share = p.broken / p.points
                keep = share > 0
                cols, vals = xs[i][keep], share[keep]
                model.add_row(np.append(cols, worst), np.append(-vals, 1.0), 0, np.inf)
                if best is not None:
                    model.add_row(np.append(cols, best), np.append(-vals, 1.0), -np.inf, 0)
        return model, xs, unfilled, shortfall

    def solve(self, *, solver: Solver = "auto", time_limit_s: float = 60.0, gap: float = 1e-4,
              threads: int = 1) -> Roster:
        """Solve the roster MIP; raise :class:`RosterInfeasibleError` with plain reasons when
        the hard rules cannot all hold, :class:`RosterSolveError` when no roster was found in
        ``time_limit_s``. ``gap`` is the relative MIP gap to stop at (0: prove optimality)."""
        began = time.perf_counter()
        if solver not in ("auto", "cbc", "highs"):
            raise ValueError(f"solver must be 'auto', 'cbc' or 'highs'; got {solver!r}")
        if not time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0 seconds, e.g. 60; got {time_limit_s!r}")
        if not 0 <= gap < 1:
            raise ValueError(f"gap must be a fraction in [0, 1), e.g. 0.01; got {gap!r}")
        if not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"threads must be an int >= 1; got {threads!r}")
        if reasons := self.check():
            raise RosterInfeasibleError(reasons)
        name = "highs" if solver == "auto" else solver
        run = _solve_highs if name == "highs" else _solve_cbc
        model, xs, unfilled, _ = self._build(elastic=False)
        solution = run(model, time_limit_s, gap, threads)
        if solution.status == "infeasible":
            left = max(1.0, time_limit_s - (time.perf_counter() - began))
            raise RosterInfeasibleError(self._explain(run, left, threads))
        if solution.values is None:
            raise RosterSolveError(
                f"no roster found within time_limit_s={time_limit_s:g} with {name}; raise "
                "time_limit_s, or loosen the weekly minimums or fill_all")
        return self._roster(solution, model, xs, unfilled, name, time.perf_counter() - began)

    # -- explanations -------------------------------------------------------------------

    def _explain(self, run: Any, time_limit_s: float, threads: int) -> list[str]:
        model, xs, unfilled, shortfall = self._build(elastic=True)
        solution = run(model, time_limit_s, 0.0, threads)
        if solution.values is None:
            return ["the rules conflict, but the elastic re-solve found no explanation within "
                    "the time limit; run solve() with a larger time_limit_s"]
        values = solution.values
        taken = [set(p.rows[values[x] > 0.5].tolist()) for p, x in zip(self.people, xs,
                                                                         strict=True)]
        reasons = []
        for (i, week), col in sorted(shortfall.items()):
            if values[col] > 0.5:
                reasons.append(self._explain_minimum(i, week, run, threads,
                                                     round(values[col])))
        for r in np.flatnonzero(values[unfilled] > 0.5) if self.fill_all else []:
            reasons.append(self._explain_unfilled(int(r), round(values[unfilled[r]]),
                                                  taken))
        return reasons or ["the solver reports the rules infeasible but the elastic re-solve "
                           "meets them all; retry with another solver"]

    def _most_minutes(self, person: _Person, week: int, run: Any, threads: int, *,
                      rules: frozenset[str]) -> tuple[int, int]:
        """Shifts and paid minutes of the agent's fullest week alone, one shift a day, under
        the chosen ``rules`` ("rest", "consecutive", "cap")."""
        frame = self.frame
        rows = person.rows[frame.week[person.rows] == week]
        alone = _Person(agent=person.agent, rows=rows, why=person.why, broken=person.broken,
                        points=0.0, min_weekly=0,
                        max_weekly=person.max_weekly if "cap" in rules else None,
                        max_consecutive=person.max_consecutive, min_rest=person.min_rest,
                        rate=0.0)
        model = _Model()
        x = model.add_cols(len(rows), cost=-frame.paid[rows].astype(np.float64), integer=True)
        _agent_rules(model, alone, frame, x, min_weekly={}, use_rest="rest" in rules,
                     use_consecutive="consecutive" in rules)
        solution = run(model, 30.0, 0.0, threads)
        if solution.values is None:
            return 0, 0
        chosen = rows[solution.values[x] > 0.5]
        return len(chosen), int(frame.paid[chosen].sum())

    def _explain_minimum(self, i: int, week: int, run: Any, threads: int, short: int) -> str:
        """Name the smallest set of the agent's own rules that keeps it under its minimum, or
        else the other agents' claims on the same slots."""
        person = self.people[i]
        floor = self._floor(person, week)
        head = (f"agent {person.agent.agent_id}: min weekly {floor} minutes cannot be met in the "
                f"week from {self.frame.week_first(week)}")
        texts = {}
        if person.min_rest:
            texts["rest"] = f"a min rest of {person.min_rest} minutes between shifts"
        if person.max_consecutive is not None:
            texts["consecutive"] = f"at most {_n(person.max_consecutive, 'consecutive day')}"
        if person.max_weekly is not None:
            texts["cap"] = f"max weekly {person.max_weekly} minutes"
        names = list(texts)
        subsets = [frozenset(c) for size in range(1, len(names) + 1)
                   for c in itertools.combinations(names, size)]
        for rules in subsets:
            shifts, minutes = self._most_minutes(person, week, run, threads, rules=rules)
            if minutes < floor:
                text = " and ".join(texts[r] for r in names if r in rules)
                return (f"{head}: with {text} at most {_n(shifts, 'shift')} ({minutes} paid "
                        "minutes) fit; lower min_weekly_minutes or relax those rules")
        return (f"{head}: the shift frame's slots it may work are needed by other agents "
                f"({short} minutes short); add slots or lower min_weekly_minutes")

    def _explain_unfilled(self, r: int, open_slots: int, taken: list[set[int]]) -> str:
        frame = self.frame
        if reason := self._too_few(r):
            return reason
        tally: Counter[str] = Counter()
        for p, mine in zip(self.people, taken, strict=True):
            if p.why[r] != _ELIGIBLE or r in mine:
                continue
            tally.update(self._would_break(p, mine, r) or ["nothing (solver stopped early)"])
        broken = ", ".join(f"{rule} ({n})" for rule, n in tally.most_common())
        return (f"{frame.label(r)}: {open_slots} of {frame.count[r]} slots cannot be filled; "
                f"every eligible agent not on it would break: {broken}; fill_all cannot hold")

    def _would_break(self, person: _Person, mine: set[int], r: int) -> list[str]:
        """The rules the agent would break by also working shift row ``r``."""
        frame, out = self.frame, []
        rows = np.array(sorted(mine), dtype=np.int64)
        if np.any(frame.day[rows] == frame.day[r]):
            out.append("one shift a day")
        rest = person.min_rest
        if len(rows) and np.any((frame.start[rows] < frame.end[r] + rest)
                                & (frame.start[r] < frame.end[rows] + rest)
                                & (frame.day[rows] != frame.day[r])):
            out.append("min rest")
        k = person.max_consecutive
        if k is not None:
            worked = set(frame.day[rows].tolist()) | {int(frame.day[r])}
            d, run = int(frame.day[r]), 1
            run += next((n for n in range(k + 1) if d - n - 1 not in worked), k + 1)
            run += next((n for n in range(k + 1) if d + n + 1 not in worked), k + 1)
            if run > k:
                out.append("max consecutive days")
        if person.max_weekly is not None:
            same = rows[frame.week[rows] == frame.week[r]]
            if frame.paid[same].sum() + frame.paid[r] > person.max_weekly:
                out.append("max weekly minutes")
        return out

    # -- results ------------------------------------------------------------------------

    def _roster(self, solution: _Solution, model: _Model, xs: list[NDArray[np.int64]],
                unfilled: NDArray[np.int64], name: str, seconds: float) -> Roster:
        frame = self.frame
        values = solution.values
        assert values is not None
        picks, per_agent = [], []
        for p, x in zip(self.people, xs, strict=True):
            chosen = values[x] > 0.5
            rows = p.rows[chosen]
            picks.extend((p.agent.agent_id, int(r)) for r in rows)
            broken = float(p.broken[chosen].sum())
            minutes = int(frame.paid[rows].sum())
            per_agent.append({
                "agent_id": p.agent.agent_id, "shifts": len(rows), "paid_minutes": minutes,
                "cost": p.rate * minutes / 60.0, "points_bid": p.points,
                "points_met": p.points - broken,
                "satisfaction": 1.0 - broken / p.points if p.points > 0 else math.nan})
        agents = pd.DataFrame(per_agent).set_index("agent_id")
        source = frame.frame
        counts = source["count"].to_numpy(dtype=np.int64)
        staffed = np.zeros(len(source), dtype=np.int64)
        names, places = [], []
        for c, group in _by_class(picks).items():
            members = frame.members[c]
            # deal agents out round-robin so open slots spread over a class's break variants
            slots = [m for k in range(int(counts[members].max())) for m in members
                     if counts[m] > k]
            for agent_id, row in zip(group, slots, strict=False):
                names.append(agent_id)
                places.append(int(row))
                staffed[row] += 1
        columns = [c for c in SHIFT_COLUMNS if c != "count"]
        assignments = source.iloc[places][columns].copy()
        assignments.insert(0, "shift", source.index[places])
        assignments.insert(0, "agent_id", names)
        assignments = assignments.sort_values(["agent_id", "start"]).reset_index(drop=True)
        left = counts - staffed
        unfilled_rows = source.loc[left > 0].copy()
        unfilled_rows["count"] = left[left > 0]
        sat = agents["satisfaction"].dropna()
        spread = float(sat.max() - sat.min()) if len(sat) > 1 else 0.0
        cost = float(agents["cost"].sum())
        unfair = spread if self.fairness == "spread" else 1.0 - float(sat.min())
        objective = (self.unfilled_penalty * float(left.sum()) + cost
                     + self.preference_weight * float((1.0 - sat).sum())
                     + (self.fairness_weight * unfair if len(sat) > 1 else 0.0))
        gap = None if solution.bound is None else _rel_gap(_model_value(model, values),
                                                           solution.bound)
        if solution.status == "optimal":
            gap = 0.0 if gap is None else gap
            status = "optimal" if gap <= 1e-6 else "gap_reached"
        else:
            status = "time_limit"
        return Roster(
            assignments=assignments, unfilled=unfilled_rows, agents=agents, fairness=spread,
            min_satisfaction=float(sat.min()) if len(sat) else math.nan, cost=cost,
            objective=objective, status=status, gap=gap, solve_time_s=seconds,
            solver=name, weights={"unfilled_penalty": self.unfilled_penalty,
                                  "preference_weight": self.preference_weight,
                                  "fairness_weight": self.fairness_weight,
                                  "fairness": self.fairness})


def _pick(own: int | None, default: int | None) -> int | None:
    return default if own is None else own


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _by_class(picks: Sequence[tuple[str, int]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for agent_id, c in picks:
        out.setdefault(c, []).append(agent_id)
    return out


def _model_value(model: _Model, values: NDArray[np.float64]) -> float:
    return float(np.concatenate(model.cost) @ values)


def _rel_gap(value: float, bound: float) -> float:
    return max(0.0, value - bound) / max(abs(value), 1e-9)


def _best_days(best: Mapping[int, int], k: int) -> tuple[int, int]:
    """Most paid minutes (and shifts) from per-day maxima with no run of more than k days."""
    if not best:
        return 0, 0
    first, last = min(best), max(best)
    # state: length of the current run of worked days -> (minutes, shifts)
    states: dict[int, tuple[int, int]] = {0: (0, 0)}
    for d in range(first, last + 1):
        nxt: dict[int, tuple[int, int]] = {}
        for run, (minutes, shifts) in states.items():
            nxt[0] = max(nxt.get(0, (-1, 0)), (minutes, shifts))
            if d in best and run < k:
                nxt[run + 1] = max(nxt.get(run + 1, (-1, 0)), (minutes + best[d], shifts + 1))
        states = nxt
    minutes, shifts = max(states.values())
    return shifts, minutes
