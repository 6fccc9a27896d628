"""Adherence and conformance (WF-10), staffed vs required (WF-09), from agent-state facts.

Inputs are two interval frames with tz-aware UTC times:

* ``states`` (``STATE_COLUMNS``): what each agent actually did, one row per state spell,
  as the stream processor folds ``agent.*`` events: ``state`` is an ``AgentState`` or
  ``"logged_out"``; ``reason`` the not-ready reason code. Time not covered is logged out.
* ``schedule`` (``publish.SEGMENT_COLUMNS``, from ``ScheduleBook.segments``): what each
  agent was scheduled to do, ``activity`` = ``"work"``, ``"break"``, ``"lunch"``, ...

Everything is measured in continuous time (milliseconds) by one sweep over the change
points of both frames, vectorized with numpy over all agents at once, and reported in
minutes per agent and interval (aligned to the local wall clock of ``timezone``) and per
agent and local day. The definitions are in ``docs/metrics.md``; ``docs/adherence.md`` has
worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from scheduling.model import time_zone
from scheduling.publish import WORK

__all__ = [
    "DAY_COLUMNS",
    "EXCEPTION_COLUMNS",
    "INTERVAL_COLUMNS",
    "LOGGED_OUT",
    "PRODUCTIVE_STATES",
    "STAFFING_COLUMNS",
    "STATES",
    "STATE_COLUMNS",
    "AdherenceInputError",
    "AdherenceResult",
    "AdherenceRules",
    "measure_adherence",
    "staffed_vs_required",
]

STATE_COLUMNS: tuple[str, ...] = ("agent_id", "state", "reason", "start", "end")
"""The agent-state fact: ``agent_id``, ``state`` (one of ``STATES``), ``reason`` (not-ready
reason code or null; optional column), ``start`` / ``end`` (tz-aware, end exclusive). Spells
of one agent must not overlap; gaps between them count as ``"logged_out"``."""

LOGGED_OUT = "logged_out"
STATES: tuple[str, ...] = (
    "ready", "not_ready", "after_call_work", "ringing", "talking", "hold", LOGGED_OUT,
)
"""The ``AgentState`` values of the event contract, plus ``"logged_out"``."""

PRODUCTIVE_STATES: frozenset[str] = frozenset(
    {"ready", "ringing", "talking", "hold", "after_call_work"})
"""Logged-in states in which an agent is working the queue: adherent to ``"work"``, counted
as worked (conformance) and as staffed (staffed vs required)."""

_METRICS: tuple[str, ...] = (
    "scheduled", "scheduled_work", "in_adherence", "out_of_adherence", "adherence", "worked",
    "conformance",
)
INTERVAL_COLUMNS: tuple[str, ...] = ("agent_id", "interval_start", "interval_local", *_METRICS)
"""Per agent and interval: ``interval_start`` (UTC) and ``interval_local`` (naive local);
minutes ``scheduled`` (any activity), ``scheduled_work``, ``in_adherence``,
``out_of_adherence``, ``worked``; fractions ``adherence`` = in_adherence / scheduled and
``conformance`` = worked / scheduled_work (NaN when the denominator is 0; conformance can
exceed 1)."""

DAY_COLUMNS: tuple[str, ...] = ("agent_id", "day", *_METRICS)
"""Per agent and local day (``datetime.date``): the ``INTERVAL_COLUMNS`` metrics."""

EXCEPTION_COLUMNS: tuple[str, ...] = (
    "agent_id", "start", "end", "minutes", "out_of_adherence", "scheduled", "actual",
)
"""One row per span in which the actual state does not match the scheduled activity
(before the tolerance) that lasts longer than the tolerance: UTC ``start`` / ``end``, its
length in ``minutes``, the ``out_of_adherence`` minutes it costs after the tolerance, the
``scheduled`` activities and the ``actual`` states (``"not_ready:personal"``) in it."""

STAFFING_COLUMNS: tuple[str, ...] = (
    "required", "staffed", "scheduled", "variance", "scheduled_variance", "under", "over",
)
"""Per interval: ``required`` agents, ``staffed`` = productive agent-seconds / interval
seconds, ``scheduled`` = agents scheduled to work (average over the interval, NaN without a
schedule), ``variance`` = staffed - required, ``scheduled_variance`` = scheduled - required,
``under`` / ``over`` staffing flags."""

_MINUTE_MS = 60_000


class AdherenceInputError(ValueError):
    """A states or schedule frame, or an option, that the measures cannot use."""


@dataclass(frozen=True, slots=True)
class AdherenceRules:
    """Which actual states adhere to which scheduled activity, and the tolerance.

    ``activity_states`` maps an activity to the states that adhere to it. A state is a
    ``STATES`` name, which for ``"not_ready"`` accepts any reason, or ``"not_ready:REASON"``
    for one reason. Unlisted activities default to: ``"work"`` -> ``productive_states``;
    any other activity ``k`` -> ``{"not_ready:k", "logged_out"}`` (a break is kept by going
    not ready with reason ``break``, or logging out).

    ``tolerance_minutes``: around every change of scheduled activity (shift start and end
    included) an agent may be up to this many minutes early or late: at an instant ``t`` the
    actual state adheres if it adheres to any activity scheduled within ``t ± tolerance``,
    and within the tolerance of a shift's start or end anything adheres.
    """

    tolerance_minutes: float = 5.0
    productive_states: frozenset[str] = PRODUCTIVE_STATES
    activity_states: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance_minutes) and self.tolerance_minutes >= 0):
            raise AdherenceInputError(f"tolerance_minutes must be >= 0 minutes, e.g. 5; got "
                                      f"{self.tolerance_minutes!r}")
        for where, tokens in [("productive_states", self.productive_states),
                              *((f"activity_states[{k!r}]", v)
                                for k, v in self.activity_states.items())]:
            bad = [t for t in tokens if t not in STATES and not t.startswith("not_ready:")]
            if bad:
                raise AdherenceInputError(
                    f"{where} has unknown states {sorted(bad)}; use {list(STATES)} or "
                    "'not_ready:REASON'")

    def accepts(self, activity: str) -> frozenset[str]:
        """The states that adhere to ``activity``."""
        if activity in self.activity_states:
            return frozenset(self.activity_states[activity])
        if activity == WORK:
            return self.productive_states
        return frozenset({f"not_ready:{activity}", LOGGED_OUT})


@dataclass(frozen=True, slots=True)
class AdherenceResult:
    """Adherence and conformance per agent and interval, per agent and day, and exceptions."""

    intervals: pd.DataFrame
    days: pd.DataFrame
    exceptions: pd.DataFrame
    rules: AdherenceRules
    interval_minutes: int
    timezone: str

    def agents(self) -> pd.DataFrame:
        """Per agent over the whole period: the ``DAY_COLUMNS`` metrics summed."""
        minutes = [c for c in _METRICS if c not in ("adherence", "conformance")]
        totals = self.days.groupby("agent_id", sort=True)[minutes].sum().reset_index()
        return _with_ratios(totals)[["agent_id", *_METRICS]]


# -- input checks ----------------------------------------------------------------------


def _zone(timezone: str) -> ZoneInfo:
    return time_zone(timezone, error=AdherenceInputError)


def _interval(interval_minutes: int) -> int:
    if not (isinstance(interval_minutes, int | np.integer) and 0 < interval_minutes <= 1440
            and 1440 % interval_minutes == 0):
        raise AdherenceInputError(f"interval_minutes must divide a day (e.g. 15, 30, 60); got "
                                  f"{interval_minutes!r}")
    return int(interval_minutes)


def _utc_ms(frame: pd.DataFrame, column: str, argument: str) -> NDArray[np.int64]:
    values = frame[column]
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        aware = values.dtype == object and all(
            getattr(v, "tzinfo", None) is not None for v in values)
        if not aware:
            raise AdherenceInputError(
                f"{argument}.{column} must hold tz-aware timestamps (UTC); got {values.dtype}; "
                f"localize naive UTC times with .dt.tz_localize('UTC')")
        values = pd.to_datetime(values, utc=True)
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ms").asi8.copy()


def _columns(frame: pd.DataFrame, needed: Iterable[str], argument: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise AdherenceInputError(f"{argument}: missing columns {missing}; see "
                                  f"scheduling.adherence for the columns it reads")


@dataclass(frozen=True, slots=True)
class _Spells:
    """Validated intervals of one frame: agent codes, UTC ms, a label code; sorted."""

    agent: NDArray[np.int64]
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    label: NDArray[np.int64]


def _spells(frame: pd.DataFrame, agents: pd.Index, labels: NDArray[np.int64],
            argument: str) -> _Spells:
    start = _utc_ms(frame, "start", argument)
    end = _utc_ms(frame, "end", argument)
    agent = agents.get_indexer(frame["agent_id"]).astype(np.int64)
    backwards = np.flatnonzero(end < start)
    if backwards.size:
        row = frame.iloc[int(backwards[0])]
        raise AdherenceInputError(f"{argument}: agent {row['agent_id']} has a row ending at "
                                  f"{row['end']}, before its start {row['start']}; fix it")
    keep = end > start
    agent, start, end, labels = agent[keep], start[keep], end[keep], labels[keep]
    order = np.lexsort((start, agent))
    agent, start, end, labels = agent[order], start[order], end[order], labels[order]
    clash = np.flatnonzero((agent[1:] == agent[:-1]) & (start[1:] < end[:-1]))
    if clash.size:
        i = int(clash[0])
        when = pd.to_datetime([start[i + 1], end[i]], unit="ms", utc=True)
        raise AdherenceInputError(
            f"{argument}: agent {agents[agent[i]]} has overlapping rows from {when[0]} to "
            f"{when[1]}; rows of one agent must not overlap")
    return _Spells(agent, start, end, labels)


def _state_tokens(states: pd.DataFrame) -> tuple[NDArray[np.int64], list[str]]:
    """Per row a code into ``tokens``: the state, or ``not_ready:REASON`` for not ready."""
    state = states["state"].astype(object)
    unknown = sorted(set(pd.unique(state[~state.isin(STATES)])), key=str)
    if unknown:
        raise AdherenceInputError(f"states.state has unknown values {unknown[:5]}; use "
                                  f"{list(STATES)}")
    reason = (states["reason"].astype(object) if "reason" in states.columns
              else pd.Series(None, index=states.index, dtype=object))
    reason = reason.where(state == "not_ready")
    s_codes, s_names = pd.factorize(state)
    r_codes, r_names = pd.factorize(reason)
    width = len(r_names) + 1
    pair_codes, pairs = pd.factorize(s_codes.astype(np.int64) * width + r_codes + 1)
    tokens = [str(s_names[p // width]) + (f":{r_names[p % width - 1]}" if p % width else "")
              for p in pairs]
    if LOGGED_OUT not in tokens:
        tokens.append(LOGGED_OUT)
    return pair_codes.astype(np.int64), tokens


def _segments(schedule: pd.DataFrame) -> pd.DataFrame:
    if "activities" in schedule.columns and "activity" not in schedule.columns:
        raise AdherenceInputError("schedule: this is a shift frame; pass the activity segments "
                                  "instead: ScheduleBook.segments(schedule_id) or "
                                  "publish.schedule_segments(shifts)")
    _columns(schedule, ("agent_id", "activity", "start", "end"), "schedule")
    return schedule


# -- the sweep -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pieces:
    """Elementary intervals: constant schedule, state and grid cell inside each."""

    agent: NDArray[np.int64]
    left: NDArray[np.int64]  # UTC ms
    length: NDArray[np.int64]  # ms
    cell: NDArray[np.int64]  # index into the grid
    activity: NDArray[np.int64]  # code into kinds, -1 = not scheduled
    token: NDArray[np.int64]
    matches: NDArray[np.bool_]  # state adheres to the scheduled activity (no tolerance)
    adheres: NDArray[np.bool_]  # ... within the tolerance
    worked: NDArray[np.bool_]


def _grid(lo: int, hi: int, interval: int, zone: ZoneInfo) -> NDArray[np.int64]:
    """UTC ms of every local wall-clock interval start from before ``lo`` to after ``hi``."""
    step = math.gcd(interval, 15) * _MINUTE_MS  # UTC offsets are whole quarter hours
    day = 1440 * _MINUTE_MS
    first = (lo - day) // step * step
    candidates = np.arange(first, hi + day + step, step, dtype=np.int64)
    local = pd.DatetimeIndex(pd.to_datetime(candidates, unit="ms", utc=True)).tz_convert(zone)
    minute = np.asarray(local.hour * 60 + local.minute)
    return candidates[(minute % interval == 0) & (np.asarray(local.second) == 0)]


def _sweep(state_spells: _Spells, segs: _Spells, tokens: list[str], kinds: list[str],
           n_agents: int, grid: NDArray[np.int64], rules: AdherenceRules) -> _Pieces:
    tol = round(rules.tolerance_minutes * _MINUTE_MS)
    times = [grid[[0, -1]], state_spells.start, state_spells.end, segs.start - tol,
             segs.end + tol]
    origin = int(min(t.min() for t in times if t.size)) - 1
    span = int(max(t.max() for t in times if t.size)) - origin + 2
    if n_agents * span >= 2**62:
        raise AdherenceInputError("states/schedule: the period is too long for this many agents; "
                                  "measure it in parts (e.g. a month at a time)")

    def key(agent: NDArray[np.int64], t: NDArray[np.int64]) -> NDArray[np.int64]:
        # one number line, agent after agent, so one sort and searchsorted serve them all
        return agent * span + (t - origin)

    s_start, s_end = key(segs.agent, segs.start), key(segs.agent, segs.end)
    st_start = key(state_spells.agent, state_spells.start)
    st_end = key(state_spells.agent, state_spells.end)
    # shifts = runs of touching segments; within ``tol`` of their edges anything adheres
    run = np.ones(s_start.size, dtype=bool)
    run[1:] = s_start[1:] != s_end[:-1]
    run_start = s_start[run]
    run_end = s_end[np.r_[np.flatnonzero(run)[1:] - 1, s_end.size - 1]] if run.any() \
        else s_end[:0]
    inner = run_start + tol < run_end - tol
    inner_start, inner_end = run_start[inner] + tol, run_end[inner] - tol
    # grid cut points, for each agent only over its own span
    agent_lo = np.full(n_agents, np.iinfo(np.int64).max)
    agent_hi = np.full(n_agents, np.iinfo(np.int64).min)
    for agents_of, lo, hi in ((segs.agent, segs.start - tol, segs.end + tol),
                              (state_spells.agent, state_spells.start, state_spells.end)):
        np.minimum.at(agent_lo, agents_of, lo)
        np.maximum.at(agent_hi, agents_of, hi)
    has = agent_lo <= agent_hi
    first = np.searchsorted(grid, agent_lo[has])
    count = np.searchsorted(grid, agent_hi[has], side="right") - first
    owner = np.repeat(np.flatnonzero(has), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    cuts = key(owner, grid[np.repeat(first, count) + offset])

    points = _distinct(np.concatenate([
        s_start, s_end, s_start - tol, s_end + tol, inner_start, inner_end, st_start, st_end,
        cuts]))
    left, right = points[:-1], points[1:]
    same = left // span == right // span
    left, right = left[same], right[same]
    agent = left // span

    def locate(starts: NDArray[np.int64], ends: NDArray[np.int64]
               ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        i = np.searchsorted(starts, left, side="right") - 1
        i_ok = np.clip(i, 0, None)
        inside = (i >= 0) & (left < ends[i_ok]) if starts.size else np.zeros(left.size, bool)
        return i_ok, inside

    i, scheduled = locate(s_start, s_end)
    activity = np.where(scheduled, segs.label[i] if segs.label.size else -1, -1)
    j, logged = locate(st_start, st_end)
    token = np.where(logged, state_spells.label[j] if state_spells.label.size else 0,
                     tokens.index(LOGGED_OUT))
    match = np.array([[_adheres(t, rules.accepts(k)) for t in tokens] for k in kinds],
                     dtype=bool).reshape(len(kinds), len(tokens))
    matches = scheduled & match[np.clip(activity, 0, None), token] if kinds else scheduled
    _, deep = locate(inner_start, inner_end)
    graced = ~deep
    for k in range(len(kinds)):
        mine = segs.label == k
        near = (np.searchsorted(np.sort(s_start[mine] - tol), left, side="right")
                - np.searchsorted(np.sort(s_end[mine] + tol), left, side="right")) > 0
        graced |= near & match[k, token]
    productive = np.array([_adheres(t, rules.productive_states) for t in tokens], dtype=bool)
    t_left = left - agent * span + origin
    return _Pieces(
        agent=agent, left=t_left, length=right - left,
        cell=np.searchsorted(grid, t_left, side="right") - 1, activity=activity, token=token,
        matches=matches, adheres=scheduled & (matches | graced), worked=productive[token])


def _distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values (sorting beats numpy's hash-based ``unique`` here)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _adheres(token: str, accepted: frozenset[str]) -> bool:
    return token in accepted or (token.startswith("not_ready:") and "not_ready" in accepted)


# -- aggregation -----------------------------------------------------------------------


def _with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["adherence"] = np.where(frame["scheduled"] > 0,
                                      frame["in_adherence"] / frame["scheduled"], np.nan)
        frame["conformance"] = np.where(frame["scheduled_work"] > 0,
                                        frame["worked"] / frame["scheduled_work"], np.nan)
    return frame


def _totals(pieces: _Pieces, group: NDArray[np.int64], work_code: int
            ) -> tuple[NDArray[np.int64], dict[str, NDArray[np.float64]]]:
    keep = (pieces.activity >= 0) | pieces.worked
    groups, inverse = np.unique(group[keep], return_inverse=True)
    length = pieces.length[keep]

    def minutes(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        return np.bincount(inverse, weights=length * mask[keep], minlength=groups.size
                           ) / _MINUTE_MS

    scheduled = pieces.activity >= 0
    return groups, {
        "scheduled": minutes(scheduled),
        "scheduled_work": minutes(pieces.activity == work_code),
        "in_adherence": minutes(pieces.adheres),
        "out_of_adherence": minutes(scheduled & ~pieces.adheres),
        "worked": minutes(pieces.worked),
    }


def _exceptions(pieces: _Pieces, tol_ms: int, agents: pd.Index, kinds: list[str],
                tokens: list[str]) -> pd.DataFrame:
    off = np.flatnonzero((pieces.activity >= 0) & ~pieces.matches)
    ends = pieces.left[off] + pieces.length[off]
    fresh = np.ones(off.size, dtype=bool)
    fresh[1:] = (pieces.agent[off[1:]] != pieces.agent[off[:-1]]) | (
        pieces.left[off[1:]] != ends[:-1])
    run = np.cumsum(fresh) - 1
    starts = pieces.left[off][fresh]
    finish = np.r_[ends[np.flatnonzero(fresh)[1:] - 1], ends[-1:]] if off.size else ends
    lost = np.bincount(run, weights=pieces.length[off] * ~pieces.adheres[off],
                       minlength=starts.size)
    long = np.flatnonzero(finish - starts > tol_ms)
    first = np.flatnonzero(fresh)
    return pd.DataFrame({
        "agent_id": agents[pieces.agent[off][fresh][long]].to_numpy(dtype=object),
        "start": pd.to_datetime(starts[long], unit="ms", utc=True),
        "end": pd.to_datetime(finish[long], unit="ms", utc=True),
        "minutes": (finish[long] - starts[long]) / _MINUTE_MS,
        "out_of_adherence": lost[long] / _MINUTE_MS,
        "scheduled": _run_labels(pieces.activity[off], first, long, kinds),
        "actual": _run_labels(pieces.token[off], first, long, tokens),
    }, columns=list(EXCEPTION_COLUMNS))


def _run_labels(codes: NDArray[np.int64], first: NDArray[np.int64], runs: NDArray[np.int64],
                names: list[str]) -> NDArray[np.object_]:
    """Per run in ``runs``: its distinct ``names`` in order of appearance, comma-joined."""
    if not runs.size:
        return np.array([], dtype=object)
    lo, hi = np.minimum.reduceat(codes, first), np.maximum.reduceat(codes, first)
    labels = np.asarray(names, dtype=object)[lo[runs]]
    bounds = np.r_[first, codes.size]
    for i in np.flatnonzero(lo[runs] != hi[runs]):  # mixed runs are few: join them one by one
        run = runs[i]
        seen = dict.fromkeys(codes[bounds[run]:bounds[run + 1]].tolist())
        labels[i] = ", ".join(names[c] for c in seen)
    return labels


def measure_adherence(
    states: pd.DataFrame,
    schedule: pd.DataFrame,
    *,
    rules: AdherenceRules | None = None,
    interval_minutes: int = 15,
    timezone: str = "UTC",
) -> AdherenceResult:
    """Adherence and conformance per agent and interval and per agent and day (WF-10).

    ``states``: ``STATE_COLUMNS``; ``schedule``: activity segments (``ScheduleBook.segments``).
    Intervals of ``interval_minutes`` start on the local wall clock of ``timezone``, and days
    are local days (a DST day has 23 or 25 hours). Rows appear where an agent was scheduled
    or worked.
    """
    rules = rules or AdherenceRules()
    interval = _interval(interval_minutes)
    zone = _zone(timezone)
    _columns(states, ("agent_id", "state", "start", "end"), "states")
    schedule = _segments(schedule)
    agents = pd.Index(pd.unique(pd.concat([states["agent_id"], schedule["agent_id"]],
                                          ignore_index=True).astype(object)))
    kind_codes, kind_names = pd.factorize(schedule["activity"].astype(object))
    kinds = [str(k) for k in kind_names]
    segs = _spells(schedule, agents, kind_codes.astype(np.int64), "schedules")
    token_codes, tokens = _state_tokens(states)
    spells = _spells(states, agents, token_codes, "states")
    times = np.concatenate([segs.start, segs.end, spells.start, spells.end])
    if not times.size:
        empty = pd.DataFrame(columns=list(INTERVAL_COLUMNS))
        return AdherenceResult(empty, pd.DataFrame(columns=list(DAY_COLUMNS)),
                               pd.DataFrame(columns=list(EXCEPTION_COLUMNS)), rules, interval,
                               zone.key)
    grid = _grid(int(times.min()), int(times.max()), interval, zone)
    pieces = _sweep(spells, segs, tokens, kinds, len(agents), grid, rules)
    work = kinds.index(WORK) if WORK in kinds else -2

    groups, sums = _totals(pieces, pieces.agent * grid.size + pieces.cell, work)
    starts = pd.to_datetime(grid[groups % grid.size], unit="ms", utc=True)
    intervals = _with_ratios(pd.DataFrame({
        "agent_id": agents[groups // grid.size].to_numpy(dtype=object),
        "interval_start": starts,
        "interval_local": starts.tz_convert(zone).tz_localize(None),
        **sums,
    }))[list(INTERVAL_COLUMNS)]

    local_days = pd.DatetimeIndex(pd.to_datetime(grid, unit="ms", utc=True)).tz_convert(
        zone).tz_localize(None).normalize()
    day_codes, day_values = pd.factorize(local_days)
    groups, sums = _totals(pieces, pieces.agent * len(day_values) + day_codes[pieces.cell],
                           work)
    days = _with_ratios(pd.DataFrame({
        "agent_id": agents[groups // len(day_values)].to_numpy(dtype=object),
        "day": [d.date() for d in day_values[groups % len(day_values)]],
        **sums,
    }))[list(DAY_COLUMNS)]

    exceptions = _exceptions(pieces, round(rules.tolerance_minutes * _MINUTE_MS), agents,
                             kinds, tokens)
    return AdherenceResult(intervals, days, exceptions, rules, interval, zone.key)


# -- staffed vs required (WF-09) -------------------------------------------------------


def _covered_ms(starts: NDArray[np.int64], ends: NDArray[np.int64], at: NDArray[np.int64]
                ) -> NDArray[np.int64]:
    """For each ``at``: total length of the intervals' parts before it (agent-ms).

    ``F(x) = sum(x - s for s < x) - sum(x - e for e < x)``, from prefix sums of the sorted
    starts and ends; exact in int64.
    """
    s, e = np.sort(starts), np.sort(ends)
    s_sum = np.r_[0, np.cumsum(s)]
    e_sum = np.r_[0, np.cumsum(e)]
    ns = np.searchsorted(s, at, side="left")
    ne = np.searchsorted(e, at, side="left")
    return (ns * at - s_sum[ns]) - (ne * at - e_sum[ne])


def _utc_index(index: pd.Index, timezone: str | None) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise AdherenceInputError("required: index must be the interval starts (a "
                                  "DatetimeIndex)")
    if index.tz is not None:
        return index.tz_convert("UTC")
    if timezone is None:
        raise AdherenceInputError("required: the index is naive local time; pass timezone= "
                                  "(IANA, e.g. 'Europe/Berlin') or give a tz-aware index")
    try:  # a local grid repeats the wall-clock hour on the fall-back day; order tells which
        return index.tz_localize(_zone(timezone).key, ambiguous="infer",
                                 nonexistent="raise").tz_convert("UTC")
    except (ValueError, TypeError) as exc:
        raise AdherenceInputError(f"required: the local interval starts do not map to "
                                  f"{timezone} unambiguously ({exc}); give a tz-aware "
                                  "index") from None


def staffed_vs_required(
    states: pd.DataFrame,
    required: pd.Series,
    *,
    interval_minutes: int = 15,
    productive_states: Iterable[str] = PRODUCTIVE_STATES,
    schedule: pd.DataFrame | None = None,
    timezone: str | None = None,
    margin: float = 0.0,
) -> pd.DataFrame:
    """Staffed vs required agents per interval (WF-09), columns ``STAFFING_COLUMNS``.

    ``required``: required agents indexed by interval start (tz-aware, or naive local with
    ``timezone``). ``staffed`` = agent-seconds in ``productive_states`` in the interval /
    interval seconds; ``scheduled`` likewise from the schedule's ``"work"`` segments.
    ``under`` when staffed < required - ``margin``, ``over`` when staffed > required +
    ``margin``. ``states`` should hold only the agents serving the queue of ``required``.
    """
    interval = _interval(interval_minutes)
    if not (math.isfinite(margin) and margin >= 0):
        raise AdherenceInputError(f"margin must be >= 0 agents; got {margin!r}")
    productive = frozenset(productive_states)
    unknown = sorted(t for t in productive if t not in STATES and not t.startswith("not_ready:"))
    if unknown:
        raise AdherenceInputError(f"productive_states has unknown states {unknown}; use "
                                  f"{list(STATES)} or 'not_ready:REASON'")
    _columns(states, ("agent_id", "state", "start", "end"), "states")
    starts = _utc_index(required.index, timezone).as_unit("ms").asi8
    length = interval * _MINUTE_MS
    agents = pd.Index(pd.unique(states["agent_id"].astype(object)))
    codes, tokens = _state_tokens(states)
    spells = _spells(states, agents, codes, "states")
    on = np.array([_adheres(t, productive) for t in tokens], dtype=bool)[spells.label]
    on_start, on_end = spells.start[on], spells.end[on]
    if required.isna().any() or (required < 0).any():
        raise AdherenceInputError("required: values must be >= 0 agents, without NaN")
    out = pd.DataFrame(index=required.index)
    out["required"] = required.astype(np.float64).to_numpy()

    def average(s: NDArray[np.int64], e: NDArray[np.int64]) -> NDArray[np.float64]:
        base = int(min(starts.min(), s.min() if s.size else starts.min()))
        if s.size * (int(max(starts.max() + length, e.max() if e.size else 0)) - base) >= 2**62:
            raise AdherenceInputError("states: too many rows over too long a period; "
                                      "split the period")
        s, e, at = s - base, e - base, starts - base
        return (_covered_ms(s, e, at + length) - _covered_ms(s, e, at)) / length

    out["staffed"] = average(on_start, on_end) if len(starts) else []
    if schedule is not None:
        schedule = _segments(schedule)
        work = (schedule["activity"].astype(object) == WORK).to_numpy()
        out["scheduled"] = average(_utc_ms(schedule, "start", "schedule")[work],
                                   _utc_ms(schedule, "end", "schedule")[work])
    else:
        out["scheduled"] = np.nan
    out["variance"] = out["staffed"] - out["required"]
    out["scheduled_variance"] = out["scheduled"] - out["required"]
    out["under"] = out["staffed"] < out["required"] - margin
    out["over"] = out["staffed"] > out["required"] + margin
    return out[list(STAFFING_COLUMNS)]
