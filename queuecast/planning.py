"""A week's plan from a YAML file: demand, staffing targets, shift templates and agents.

``load_plan`` reads and validates the file (errors name the path of the bad value);
``run_plan`` computes the per-interval requirement (Erlang C, or Erlang A with patience,
then shrinkage; WF-04), chooses shifts with the MIP (WF-05, WF-06) and rosters the named
agents onto them (WF-07, WF-08). The maths is in ``scheduling``; this module only composes.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import pandas as pd

from callcore.yamlfiles import read_document
from ingest.contract import Event, decode_event
from ingest.contract.codec import InvalidEventError
from scheduling.erlang import required_agents
from scheduling.roster import (
    Agent,
    Availability,
    Roster,
    RosterProblem,
    RosterRules,
    RosterSolveError,
    ShiftBid,
)
from scheduling.shifts import (
    BreakRule,
    DaysOffPattern,
    ShiftPlan,
    ShiftProblem,
    ShiftSolveError,
    ShiftTemplate,
)

__all__ = [
    "BUNDLED_PLANS", "Plan", "PlanError", "PlanResult", "load_plan", "offered_calls",
    "read_events", "requirement", "run_plan",
]

BUNDLED_PLANS = Path(__file__).resolve().parent / "plans"
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Positive = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class PlanError(ValueError):
    """The plan file is unusable; the message names the value and the fix."""


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Profile(_Spec, frozen=True, kw_only=True):
    """Offered calls: a published forecast, or a day's total shaped by time of day and
    scaled per weekday."""

    forecast: str | None = None
    """A file of ``wfm.forecast_published`` events (JSON or JSON lines; relative to the plan
    file): the latest version for the plan's queue, with its per-interval handle times."""
    calls_per_day: Positive | None = None
    shape: list[tuple[str, float]] | None = None
    """``[["HH:MM", weight], ...]``: relative arrival rate from that time on (steps)."""
    weekdays: dict[Weekday, Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=dict)


class Staffing(_Spec, frozen=True, kw_only=True):
    """Targets the requirement is staffed for, per interval."""

    aht: Positive
    service_level: Fraction = 0.8
    answer_within: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    patience: Positive | None = None
    max_occupancy: Fraction | None = None
    shrinkage: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.0


class BreakSpec(_Spec, frozen=True, kw_only=True):
    kind: str = "break"
    minutes: int
    paid: bool = True
    earliest_after_minutes: int
    latest_after_minutes: int


class TemplateSpec(_Spec, frozen=True, kw_only=True):
    """A shift template; ``per_start`` makes one template per start time of the window."""

    name: str
    length_minutes: int
    earliest_start: str
    latest_start: str | None = None
    start_step_minutes: int = 15
    per_start: bool = False
    breaks: list[BreakSpec] = msgspec.field(default_factory=list)
    days: list[Weekday] | None = None
    min_count: int = 0
    max_count: int | None = None
    cost_per_hour: float = 1.0
    cost_per_shift: float = 0.0
    skill: str | None = None


class DaysOffSpec(_Spec, frozen=True, kw_only=True):
    off_days: int = 2
    consecutive: bool = True
    patterns: list[list[Weekday]] = msgspec.field(default_factory=list)


class AvailabilitySpec(_Spec, frozen=True, kw_only=True):
    day: str
    """A weekday (``Mon``) or a date (``2026-03-04``)."""
    start: str = "00:00"
    end: str = "24:00"


class BidSpec(_Spec, frozen=True, kw_only=True):
    points: Annotated[float, msgspec.Meta(gt=0)]
    days: list[Weekday] | None = None
    avoid: bool = False
    templates: list[str] | None = None
    start_from: str | None = None
    start_until: str | None = None


class AgentSpec(_Spec, frozen=True, kw_only=True):
    """A named agent, or with ``count`` a group named ``agent_id`` plus a number."""

    agent_id: str
    count: int | None = None
    skills: list[str] = msgspec.field(default_factory=list)
    availability: list[AvailabilitySpec] | None = None
    leave: list[date] = msgspec.field(default_factory=list)
    preferences: list[BidSpec] = msgspec.field(default_factory=list)
    min_weekly_minutes: int | None = None
    max_weekly_minutes: int | None = None
    max_consecutive_days: int | None = None
    min_rest_minutes: int | None = None


class RulesSpec(_Spec, frozen=True, kw_only=True):
    min_weekly_minutes: int = 0
    max_weekly_minutes: int | None = None
    max_consecutive_days: int | None = None
    min_rest_minutes: int = 0


class Weights(_Spec, frozen=True, kw_only=True):
    under_staffing: float = 10.0
    over_staffing: float = 0.0
    hard_coverage: bool = False
    fairness: float = 1.0
    preferences: float = 1.0


class Plan(_Spec, frozen=True, kw_only=True):
    """A planning week (or any number of days) for one queue."""

    name: str = "plan"
    queue: str
    start: date
    days: Annotated[int, msgspec.Meta(ge=1, le=62)] = 7
    interval_minutes: Annotated[int, msgspec.Meta(ge=5, le=60)] = 15
    timezone: str = "UTC"
    demand: Profile
    staffing: Staffing
    templates: list[TemplateSpec]
    days_off: DaysOffSpec | None = None
    agents: list[AgentSpec]
    rules: RulesSpec = RulesSpec()
    weights: Weights = Weights()


def load_plan(source: Path | str) -> Plan:
    """Read a plan YAML file, or a bundled plan by name (``week``)."""
    path = Path(source)
    if not path.suffix and (BUNDLED_PLANS / f"{source}.yaml").is_file():
        path = BUNDLED_PLANS / f"{source}.yaml"
    try:
        data, name = read_document(path, what="plan", error=PlanError)
    except OSError as exc:
        raise PlanError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        plan = msgspec.convert(data, Plan, strict=False)
    except msgspec.ValidationError as exc:
        raise PlanError(f"{name}: {exc}") from None
    demand = plan.demand
    if (demand.forecast is None) == (demand.calls_per_day is None or demand.shape is None):
        raise PlanError(f"{name}: demand: give either 'forecast' (a file) or both "
                        "'calls_per_day' and 'shape'")
    if demand.forecast is not None:
        where = (path.parent / demand.forecast).resolve()
        plan = msgspec.structs.replace(
            plan, demand=msgspec.structs.replace(demand, forecast=str(where)))
    return plan


def read_events(path: Path, event_type: str) -> list[Event]:
    """The events of ``event_type`` in a file of events (one JSON document or JSON lines)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read it ({exc.strerror})") from None
    lines = [text] if text.startswith("{") and "\n{" not in text else text.splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = decode_event(line.encode())
        except (InvalidEventError, msgspec.DecodeError) as exc:
            raise PlanError(f"{path}:{number}: {exc}") from None
        if event.type == event_type:
            found.append(event)
    if not found:
        raise PlanError(f"{path}: holds no {event_type} event")
    return found


def _forecast(plan: Plan, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Calls and handle time per plan interval from the latest forecast for the queue."""
    assert plan.demand.forecast is not None
    path = Path(plan.demand.forecast)
    try:
        events = read_events(path, "wfm.forecast_published")
    except PlanError as exc:
        raise PlanError(f"demand.forecast: {exc}") from None
    mine = [e.payload for e in events if e.payload.queue == plan.queue]
    if not mine:
        raise PlanError(f"demand.forecast: {path} has no forecast for queue {plan.queue!r}; "
                        f"it has {sorted({e.payload.queue for e in events})}")
    latest = max(mine, key=lambda f: f.version)
    starts = pd.DatetimeIndex([i.start for i in latest.intervals]).tz_convert(
        plan.timezone).tz_localize(None)
    frame = pd.DataFrame({"calls": [i.calls for i in latest.intervals],
                          "aht": [np.nan if i.aht_s is None else i.aht_s
                                  for i in latest.intervals]}, index=starts)
    step, grid = latest.interval_minutes, plan.interval_minutes
    if step % grid == 0:  # coarser forecast: spread its calls evenly over our intervals
        parts = step // grid
        frame = pd.DataFrame(
            {"calls": np.repeat(frame["calls"].to_numpy() / parts, parts),
             "aht": np.repeat(frame["aht"].to_numpy(), parts)},
            index=(frame.index.repeat(parts)
                   + pd.to_timedelta(np.tile(np.arange(parts) * grid, len(frame)), "min")))
    elif grid % step == 0:
        weighted = (frame["calls"] * frame["aht"]).resample(f"{grid}min").sum(min_count=1)
        calls = frame["calls"].resample(f"{grid}min").sum()
        frame = pd.DataFrame({"calls": calls, "aht": weighted / calls.where(calls > 0)})
    else:
        raise PlanError(f"demand.forecast: its {step}-minute intervals do not fit the plan's "
                        f"{grid}-minute grid; use a multiple or a divisor")
    frame = frame.reindex(index)
    if frame["calls"].isna().all():
        raise PlanError(f"demand.forecast: forecast {latest.forecast_id} v{latest.version} "
                        f"does not cover {plan.start} + {plan.days} days")
    return frame.assign(calls=frame["calls"].fillna(0.0))


def _minutes(clock_text: str, where: str) -> int:
    try:
        hours, minutes = clock_text.split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise PlanError(f"{where}: {clock_text!r} is not a time of day like '08:30'") from None
    if not 0 <= value <= 24 * 60:
        raise PlanError(f"{where}: {clock_text!r} is outside 00:00-24:00")
    return value


def _grid(plan: Plan) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(plan.start), periods=plan.days * 1440
                         // plan.interval_minutes, freq=f"{plan.interval_minutes}min")


def offered_calls(plan: Plan) -> pd.Series:
    """Offered calls per interval (naive local interval starts): the forecast or profile."""
    index = _grid(plan)
    if plan.demand.forecast is not None:
        return _forecast(plan, index)["calls"].rename("calls")
    assert plan.demand.shape is not None
    assert plan.demand.calls_per_day is not None
    steps = sorted((_minutes(t, f"demand.shape[{i}]"), w)
                   for i, (t, w) in enumerate(plan.demand.shape))
    if not steps or any(w < 0 for _, w in steps):
        raise PlanError("demand.shape: give [time, weight] steps with weights >= 0")
    minute = np.asarray(index.hour * 60 + index.minute)
    weight = np.zeros(len(index))
    for at, w in steps:
        weight[minute >= at] = w
    per_day = weight[: 1440 // plan.interval_minutes].sum()
    if per_day <= 0:
        raise PlanError("demand.shape: every weight is 0; give some traffic")
    names = np.array(WEEKDAYS)[index.day_of_week]
    factor = np.array([plan.demand.weekdays.get(n, 1.0) for n in names])
    return pd.Series(plan.demand.calls_per_day * weight / per_day * factor, index=index,
                     name="calls")


def requirement(plan: Plan, calls: pd.Series) -> pd.Series:
    """Required agents per interval for the staffing targets, after shrinkage (WF-04)."""
    s = plan.staffing
    aht = np.full(len(calls), s.aht)
    if plan.demand.forecast is not None:  # the forecast's handle times where it has them
        aht = _forecast(plan, _grid(plan))["aht"].fillna(s.aht).to_numpy()
    result = required_agents(calls=calls.to_numpy(), aht=aht,
                             interval_minutes=plan.interval_minutes,
                             service_level=s.service_level, answer_within=s.answer_within,
                             max_occupancy=s.max_occupancy, patience=s.patience,
                             shrinkage=s.shrinkage)
    return pd.Series(result.agents_with_shrinkage, index=calls.index, name="required")


def templates(plan: Plan) -> list[ShiftTemplate]:
    """The plan's shift templates, ``per_start`` ones expanded to one per start time."""
    out: list[ShiftTemplate] = []
    for i, spec in enumerate(plan.templates):
        try:
            breaks = tuple(BreakRule(**msgspec.structs.asdict(b)) for b in spec.breaks)
            fields = {k: v for k, v in msgspec.structs.asdict(spec).items()
                      if k not in ("per_start", "breaks")}
            fields["breaks"] = breaks
            fields["days"] = None if spec.days is None else tuple(spec.days)
            base = ShiftTemplate(**fields)
            if not spec.per_start:
                out.append(base)
                continue
            for minute in base.start_minutes:
                at = f"{minute // 60:02d}:{minute % 60:02d}"
                out.append(ShiftTemplate(**{**fields, "name": f"{spec.name} {at}",
                                            "earliest_start": at, "latest_start": at}))
        except ValueError as exc:
            raise PlanError(f"templates[{i}] ({spec.name}): {exc}") from None
    return out


def agents(plan: Plan) -> list[Agent]:
    """The plan's named agents, groups expanded (``agent_id`` + 3-digit number)."""
    out: list[Agent] = []
    for i, spec in enumerate(plan.agents):
        ids = ([spec.agent_id] if spec.count is None
               else [f"{spec.agent_id}{k:03d}" for k in range(1, spec.count + 1)])
        try:
            availability = None if spec.availability is None else tuple(
                Availability(day=_weekday_number(a.day), start=a.start, end=a.end)
                for a in spec.availability)
            bids = tuple(ShiftBid(
                points=b.points, avoid=b.avoid, start_from=b.start_from,
                start_until=b.start_until,
                days=None if b.days is None else tuple(_weekday_number(d) for d in b.days),
                templates=None if b.templates is None else frozenset(b.templates))
                for b in spec.preferences)
            out.extend(Agent(
                agent_id=agent_id, skills=frozenset(spec.skills), availability=availability,
                leave=frozenset(spec.leave), preferences=bids,
                min_weekly_minutes=spec.min_weekly_minutes,
                max_weekly_minutes=spec.max_weekly_minutes,
                max_consecutive_days=spec.max_consecutive_days,
                min_rest_minutes=spec.min_rest_minutes) for agent_id in ids)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"agents[{i}] ({spec.agent_id}): {exc}") from None
    return out


def _weekday_number(day: str | date) -> int | date:
    if isinstance(day, date):
        return day
    if day in WEEKDAYS:
        return WEEKDAYS.index(day)
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"day {day!r} is neither a weekday (Mon..Sun) nor a date "
                         "(YYYY-MM-DD)") from None


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The requirement, the chosen shifts and the roster of one plan run."""

    plan: Plan
    calls: pd.Series
    requirement: pd.Series
    shifts: ShiftPlan
    roster: Roster
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures of both stages."""
        return {"plan": self.plan.name, "queue": self.plan.queue,
                "start": self.plan.start.isoformat(), "days": self.plan.days,
                "offered_calls": float(self.calls.sum()),
                "required_agent_hours": float(self.requirement.sum())
                * self.plan.interval_minutes / 60,
                "shifts": self.shifts.to_dict(), "roster": self.roster.to_dict(),
                "seconds": self.seconds}


def run_plan(plan: Plan, *, time_limit_s: float = 60.0, gap: float = 0.01,
             solver: Literal["auto", "cbc", "highs"] = "auto",
             on_stage: Callable[[str], None] | None = None) -> PlanResult:
    """Requirement, shift MIP and rostering for ``plan``, each stage in its own time limit.

    The shift MIP gets up to two thirds of ``time_limit_s``, rostering whatever is left.
    ``solver="auto"`` solves the shift MIP with CBC (its day-by-day start reaches a 1 % gap
    on a week in seconds, where HiGHS needs most of a minute) and rostering with HiGHS.
    """
    say = on_stage or (lambda _stage: None)
    seconds: dict[str, float] = {}
    began = clock.perf_counter()
    say("staffing the requirement")
    calls = offered_calls(plan)
    need = requirement(plan, calls)
    shift_templates = templates(plan)
    people = agents(plan)
    seconds["requirement"] = clock.perf_counter() - began
    say(f"choosing shifts from {len(shift_templates)} templates")
    began = clock.perf_counter()
    w = plan.weights
    days_off = None if plan.days_off is None else DaysOffPattern(
        off_days=plan.days_off.off_days, consecutive=plan.days_off.consecutive,
        patterns=tuple(tuple(p) for p in plan.days_off.patterns))
    try:
        chosen = ShiftProblem(shift_templates, need, under_weight=w.under_staffing,
                              over_weight=w.over_staffing, hard_coverage=w.hard_coverage,
                              days_off=days_off).solve(
            solver="cbc" if solver == "auto" else solver, time_limit_s=time_limit_s * 2 / 3,
            gap=gap)
    except (ValueError, ShiftSolveError) as exc:
        raise PlanError(f"shift scheduling: {exc}") from None
    seconds["shifts"] = clock.perf_counter() - began
    say(f"rostering {len(people)} agents on {int(chosen.shifts['count'].sum())} shifts")
    began = clock.perf_counter()
    r = plan.rules
    try:
        roster = RosterProblem(
            chosen.shifts, people,
            rules=RosterRules(min_weekly_minutes=r.min_weekly_minutes,
                              max_weekly_minutes=r.max_weekly_minutes,
                              max_consecutive_days=r.max_consecutive_days,
                              min_rest_minutes=r.min_rest_minutes),
            fairness_weight=w.fairness, preference_weight=w.preferences,
            week_start=plan.start,
        ).solve(solver=solver, time_limit_s=max(time_limit_s - sum(seconds.values()),
                                                 time_limit_s / 3), gap=gap)
    except (ValueError, RosterSolveError) as exc:
        raise PlanError(f"rostering: {exc}") from None
    seconds["roster"] = clock.perf_counter() - began
    return PlanResult(plan, calls, need, chosen, roster, seconds)

