"""The call-center simulator: the real engine driven by synthetic callers and agents.

A discrete-event simulation on a ``VirtualClock``. The simulator keeps a heap of its
own future actions (a caller hanging up when patience runs out, an agent answering
after the ring, hanging up after the handle time, ending wrap-up, shift and break
changes, retrials) and merges it with the arrival stream and the engine's timers:
it always moves the clock to the earliest due instant, acts, lets the engine fire
its due timers, and reacts to the events the engine emitted (a ``call.ringing`` gets
an answer scheduled, a ``call.answered`` a hang-up, ...). Stale actions are dropped
by checking the engine's state when they fire.

Every random draw comes from numpy ``Generator`` s (PCG64), one per purpose and queue,
seeded from the scenario seed and the stream's name, so the same scenario and seed give
the same event stream byte for byte (the engine's event ids derive from the seed too).
Features driven: CC-01..CC-03, CC-05, CC-06, CC-10, IVR-01..IVR-03, ACD-01..ACD-06,
AG-01..AG-03, WF-02 (published forecasts as arrivals) and WF-06 (published schedules as
shifts).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
from rich import box
from rich.table import Table

from callcore import ivr
from callcore.clock import VirtualClock, from_ms
from callcore.engine import CommandRejectedError, Engine, RegionLookup
from callcore.scenario import (
    WEEKDAYS,
    ArrivalProfile,
    Demand,
    Deterministic,
    Distribution,
    IvrMenu,
    QueueModel,
    Scenario,
    ScenarioError,
    ShiftInstance,
    clock_minutes,
    load_ivr,
    load_scenario,
    prompt_nodes,
    read_forecast,
    read_schedule,
)
from ingest.contract import Event, Payload
from ingest.log import EventLog

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METRICS",
    "QueueResult",
    "ReplicationResult",
    "Simulation",
    "SimulationResult",
    "arrival_history",
]

METRICS = ("offered", "answered", "abandoned", "service_level", "asa", "aht", "p_wait",
           "p_abandon")
"""Per-queue figures of a result, by name (for ``ReplicationResult``)."""

_INF = 1 << 62
_CHUNK = 2048
_END_OF_SHIFT = "end_of_shift"
_END_OF_RUN = "end_of_simulation"

# Action kinds on the simulator's heap: (due_ms, seq, kind, subject, token).
_ANSWER, _HANGUP, _ACW_END, _PATIENCE, _RONA_READY = 0, 1, 2, 3, 4
_LOGIN, _LOGOUT, _BREAK, _BREAK_END, _RETRY, _IVR_INPUT, _VOICEMAIL = 5, 6, 7, 8, 9, 10, 11
_LEAVE = "leave"
_NOISE_EPOCH = date(2000, 1, 1)
"""Day noise runs from this date, so overlapping runs agree on each date's factor."""


# -- random streams ---------------------------------------------------------------------


def _generator(seed: int, name: str) -> np.random.Generator:
    """An independent PCG64 stream for ``name``: adding a queue leaves the others alone."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))))


def _ms_stream(dist: Distribution, rng: np.random.Generator) -> Iterator[int]:
    """Endless draws of ``dist`` in whole milliseconds, generated in chunks."""
    if isinstance(dist, Deterministic):
        return itertools.repeat(round(dist.value * 1000))
    return _chunks(lambda: np.rint(dist.sample(rng, _CHUNK) * 1000).astype(np.int64))


def _uniform_stream(rng: np.random.Generator) -> Iterator[float]:
    return _chunks(lambda: rng.random(_CHUNK))


def _chunks(draw: Callable[[], np.ndarray]) -> Iterator[Any]:
    while True:
        yield from draw().tolist()


# -- per-run bookkeeping ---------------------------------------------------------------


class _Tally:
    """Counts of one queue (or of calls that never reached a queue)."""

    __slots__ = ("acw_ms", "answered", "ended", "handled", "immediate", "offered", "talk_ms",
                 "wait_s", "within")

    def __init__(self) -> None:
        self.offered = 0
        self.immediate = 0
        self.answered = 0
        self.within = 0
        self.wait_s = 0.0
        self.handled = 0
        self.talk_ms = 0
        self.acw_ms = 0
        self.ended: dict[str, int] = {}


class _Queue:
    """A queue's behaviour streams for one run, and its tally."""

    __slots__ = ("acw", "acw_cap_ms", "handle", "name", "patience", "retrial_delay",
                 "retrial_max", "retrial_p", "retrial_u", "ring", "rona_p", "rona_recovery",
                 "rona_u", "sl_s", "tally")

    def __init__(self, name: str, model: QueueModel, *, seed: int, acw_s: float,
                 sl_s: float) -> None:
        def stream(purpose: str, dist: Distribution) -> Iterator[int]:
            return _ms_stream(dist, _generator(seed, f"{purpose}:{name}"))

        self.name = name
        self.handle = stream("handle", model.handle_time)
        self.acw = (None if model.after_call_work is None
                    else stream("acw", model.after_call_work))
        self.acw_cap_ms = int(acw_s * 1000)  # the engine's own after-call-work timer
        self.patience = None if model.patience is None else stream("patience", model.patience)
        self.ring = stream("ring", model.ring_delay)
        self.rona_p = model.rona_probability
        self.rona_u = _uniform_stream(_generator(seed, f"rona:{name}"))
        self.rona_recovery = stream("rona_recovery", model.rona_recovery)
        retrial = model.retrial
        self.retrial_p = 0.0 if retrial is None else retrial.probability
        self.retrial_max = 0 if retrial is None else retrial.max_attempts
        self.retrial_u = _uniform_stream(_generator(seed, f"retrial:{name}"))
        self.retrial_delay = stream("retrial_delay",
                                    retrial.delay if retrial else Deterministic(value=0))
        self.sl_s = sl_s
        self.tally = _Tally()


class _Call:
    """What the simulator knows of one of its calls while it is in progress."""

    __slots__ = ("answered_ms", "attempt", "caller", "counted", "ivr_flow", "ivr_gen",
                 "ivr_node", "queue", "queued_ms", "rung", "source")

    def __init__(self, source: int, caller: str, attempt: int, counted: bool) -> None:
        self.source = source
        self.caller = caller
        self.attempt = attempt
        self.counted = counted
        self.queue: _Queue | None = None
        self.queued_ms = 0
        self.rung = False
        self.answered_ms: int | None = None
        self.ivr_gen = 0
        self.ivr_flow = ""
        self.ivr_node: str | None = None


class _Menu:
    """An IVR menu's choices as cumulative thresholds over one uniform draw."""

    __slots__ = ("choices", "think", "uniform")

    def __init__(self, menu: IvrMenu, *, seed: int, index: int) -> None:
        name = f"{menu.flow}:{menu.node or '*'}:{index}"
        self.think = _ms_stream(menu.think_time, _generator(seed, f"ivr_think:{name}"))
        self.uniform = _uniform_stream(_generator(seed, f"ivr:{name}"))
        total = 0.0
        self.choices: list[tuple[float, str | None]] = []
        for digits, probability in menu.press.items():
            total += probability
            self.choices.append((total, digits))
        if menu.hang_up:
            self.choices.append((total + menu.hang_up, None))


@dataclass(frozen=True, slots=True)
class _Source:
    """An arrival stream: its number and its intervals per local day."""

    number: str
    profile: ArrivalProfile
    forecast: tuple[tuple[int, int, float], ...]


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueResult:
    """Figures of one queue. Calls count for the queue they first joined.

    ``service_level`` is calls answered within ``service_level_s`` over answered plus
    abandoned calls; ``asa`` the mean wait of answered calls (queue plus ring time);
    ``aht`` the mean talk plus after-call work; ``p_wait`` the share of offered calls
    not offered to an agent the instant they joined the queue.
    """

    name: str
    offered: int
    answered: int
    abandoned: int
    other: dict[str, int]
    """Other dispositions (voicemail, callback, transferred_external, ...)."""
    answered_within: int
    service_level_s: float
    service_level: float | None
    asa: float | None
    aht: float | None
    p_wait: float | None
    p_abandon: float | None

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready builtins."""
        return {"offered": self.offered, "answered": self.answered,
                "abandoned": self.abandoned, "service_level": self.service_level,
                "asa": self.asa, "aht": self.aht, "p_wait": self.p_wait,
                "p_abandon": self.p_abandon, "other": dict(self.other),
                "service_level_s": self.service_level_s}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationResult:
    """What one run produced: per-queue figures, event count and speed."""

    scenario: str
    seed: int
    start: datetime
    end: datetime
    queues: dict[str, QueueResult]
    calls: int
    """Calls offered, retrials and warm-up included."""
    retrials: int
    unqueued: dict[str, int]
    """Dispositions of counted calls that never joined a queue."""
    events: int
    wall_s: float
    rejected: dict[str, int] = field(default_factory=dict)
    """Engine commands the simulator issued that were rejected, by command."""

    @property
    def events_per_s(self) -> float:
        """Engine events per second of wall time."""
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"queues": {name: {...}}, "events": n, ...}``."""
        return {"scenario": self.scenario, "seed": self.seed,
                "start": self.start.isoformat(), "end": self.end.isoformat(),
                "queues": {name: q.to_dict() for name, q in self.queues.items()},
                "events": self.events, "calls": self.calls, "retrials": self.retrials,
                "unqueued": dict(self.unqueued), "rejected": dict(self.rejected),
                "wall_s": round(self.wall_s, 3), "events_per_s": round(self.events_per_s)}

    def table(self) -> Table:
        """The per-queue summary as a rich table."""
        table = Table(title=f"{self.scenario} (seed {self.seed}): {self.calls:,} calls, "
                      f"{self.events:,} events in {self.wall_s:.1f} s "
                      f"({self.events_per_s:,.0f} events/s)", box=box.SIMPLE_HEAD,
                      pad_edge=False, collapse_padding=True)
        for column in ("queue", "offered", "answered", "abandoned", "SL", "ASA s", "AHT s",
                       "P(wait)", "P(ab)"):
            table.add_column(column, justify="left" if column == "queue" else "right",
                             no_wrap=True)
        for q in self.queues.values():
            table.add_row(q.name, f"{q.offered:,}", f"{q.answered:,}", f"{q.abandoned:,}",
                          _fmt(q.service_level, "{:.1%}"), _fmt(q.asa, "{:.1f}"),
                          _fmt(q.aht, "{:.0f}"), _fmt(q.p_wait, "{:.3f}"),
                          _fmt(q.p_abandon, "{:.3f}"))
        return table

    def summary(self) -> str:
        """The per-queue summary as plain text."""
        lines = [f"{self.scenario} seed {self.seed}: {self.calls} calls, {self.events} events, "
                 f"{self.wall_s:.2f} s wall ({self.events_per_s:,.0f} events/s)",
                 f"{'queue':<16}{'offered':>9}{'answered':>9}{'abandon':>9}{'SL':>8}"
                 f"{'ASA':>8}{'AHT':>8}{'P(wait)':>9}"]
        for q in self.queues.values():
            lines.append(f"{q.name:<16}{q.offered:>9}{q.answered:>9}{q.abandoned:>9}"
                         f"{_fmt(q.service_level, '{:.3f}'):>8}{_fmt(q.asa, '{:.1f}'):>8}"
                         f"{_fmt(q.aht, '{:.0f}'):>8}{_fmt(q.p_wait, '{:.3f}'):>9}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ReplicationResult:
    """Independent replications (different seeds) of one scenario, with t intervals."""

    results: tuple[SimulationResult, ...]

    def values(self, queue: str, metric: str) -> np.ndarray:
        """``metric`` (one of ``METRICS``) of ``queue`` in each replication."""
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r} is unknown; use one of {', '.join(METRICS)}")
        values = [getattr(r.queues[queue], metric) for r in self.results]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    def mean(self, queue: str, metric: str) -> float:
        """The mean over replications."""
        return float(np.nanmean(self.values(queue, metric)))

    def conf_int(self, queue: str, metric: str, *, alpha: float = 0.05) -> tuple[float, float]:
        """A two-sided ``1 - alpha`` Student t interval of the mean over replications."""
        from scipy import stats

        values = self.values(queue, metric)
        values = values[~np.isnan(values)]
        if len(values) < 2:
            raise ValueError(f"{metric} of {queue} needs two or more replications with a "
                             "value for an interval; run more replications")
        half = (float(stats.t.ppf(1 - alpha / 2, len(values) - 1))
                * float(values.std(ddof=1)) / len(values) ** 0.5)
        centre = float(values.mean())
        return centre - half, centre + half


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


# -- the model -------------------------------------------------------------------------------


class Simulation:
    """A scenario ready to run: ``Simulation(scenario, seed=7).run()`` (CC-01..AG-03).

    ``scenario`` is a ``Scenario``, a path of a scenario YAML file or a bundled
    scenario's name; ``seed`` and ``days`` override the scenario's.
    """

    def __init__(self, scenario: Scenario | Path | str, *, seed: int | None = None,
                 days: int | None = None, source: str = "simulator",
                 region_lookup: RegionLookup | None = None) -> None:
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        elif problems := scenario.problems():
            raise ScenarioError(f"scenario {scenario.name}: " + "; ".join(problems))
        if days is not None:
            if days < 1:
                raise ValueError(f"days must be at least 1, got {days}")
            scenario = msgspec.structs.replace(scenario, days=days)
        if seed is not None and not 0 <= seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {seed}")
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.source = source
        if region_lookup is None and scenario.caller_regions:
            from callcore.region import caller_region

            region_lookup = caller_region
        self.region_lookup = region_lookup
        self.center = scenario.center_config()
        self.flows, self.calendar = load_ivr(scenario)
        self.prompt_nodes = prompt_nodes(self.flows)
        self.zone = scenario.zone()
        self.start_ms = _local_ms(self.zone, scenario.start, 0)
        try:  # the engine's own checks of the center and flows, before any run
            Engine(self.center, clock=VirtualClock(self.start_ms), flows=self.flows or None)
        except ValueError as exc:
            raise ScenarioError(f"scenario {scenario.name}: {exc}") from None
        self.end_ms = _local_ms(self.zone, scenario.start, scenario.days * 1440)
        self.sources = tuple(
            _Source(a.number, a, tuple(read_forecast(a, self.center))) for a in scenario.arrivals)
        self._demand = (None if scenario.demand is None
                       else _DemandPlan(scenario, scenario.demand, self.sources))
        self.shifts = self._shift_instances()

    def run(self, *, log: EventLog | None = None,
            on_events: Callable[[list[Event[Payload]]], None] | None = None,
            speed: float | None = None, batch_size: int = 10_000,
            on_progress: Callable[[int, int], None] | None = None) -> SimulationResult:
        """Run once and return the figures.

        Events go to ``log`` and/or ``on_events`` in batches of ``batch_size`` (neither:
        they are only counted). ``speed`` paces the virtual clock at that many times
        real time (sleeping between batches); without it the run goes as fast as it
        can. ``on_progress(done_ms, total_ms)`` reports simulated time now and then.
        """
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}; omit it to run flat out")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return _Run(self, log=log, on_events=on_events, speed=speed, batch_size=batch_size,
                    on_progress=on_progress).run()

    def replicate(self, replications: int, *, seeds: Sequence[int] | None = None
                  ) -> ReplicationResult:
        """Independent runs with seeds ``seed, seed + 1, ...`` (or ``seeds``)."""
        if replications < 1:
            raise ValueError(f"replications must be at least 1, got {replications}")
        chosen = list(seeds) if seeds is not None else [
            self.seed + i for i in range(replications)]
        if len(chosen) != replications:
            raise ValueError(f"{len(chosen)} seeds for {replications} replications; give "
                             "one seed per replication")
        runs: list[SimulationResult] = []
        for seed in chosen:
            twin = copy.copy(self)  # the plan is immutable; only the seed differs
            twin.seed = seed
            runs.append(twin.run())
        return ReplicationResult(tuple(runs))

    # -- precomputed plan ------------------------------------------------------------

    def day_intervals(self, day: int) -> list[tuple[int, int, int, float]]:
        """(source, start_ms, end_ms, expected calls) of local day ``day`` (0-based).

        With a ``demand`` section the expected calls include that day's holiday, trend and
        day-noise factors (the noise drawn from this model's seed).
        """
        local = self.scenario.start + timedelta(days=day)
        levels = None if self._demand is None else self._demand.levels(self.seed, day)
        day_start = _local_ms(self.zone, local, 0)
        day_end = _local_ms(self.zone, local, 1440)
        found: list[tuple[int, int, int, float]] = []
        for index, source in enumerate(self.sources):
            profile = source.profile
            if profile.calls is None:
                found += [(index, a, b, calls) for a, b, calls in source.forecast
                          if day_start <= a < day_end and a >= self.start_ms]
                continue
            if levels is None:
                factor = profile.scale * profile.weekdays.get(WEEKDAYS[local.weekday()], 1.0)
            else:
                factor = profile.scale * float(levels[index])
            first = clock_minutes(profile.start)
            step = profile.interval_minutes
            for k, calls in enumerate(profile.calls):
                a = _local_ms(self.zone, local, first + k * step)
                b = _local_ms(self.zone, local, first + (k + 1) * step)
                if calls > 0 and b > a:
                    found.append((index, a, b, calls * factor))
        return found

    def _shift_instances(self) -> list[ShiftInstance]:
        scenario = self.scenario
        shifts: list[ShiftInstance] = []
        for day in range(-1, scenario.days):
            local = scenario.start + timedelta(days=day)
            for shift in scenario.schedules:
                if WEEKDAYS[local.weekday()] not in shift.days:
                    continue
                begin = clock_minutes(shift.start)
                length = (clock_minutes(shift.end) - begin) % 1440 or 1440
                for agent_id, stagger in scenario.members(shift, self.center):
                    offset = begin + stagger
                    activities: list[tuple[int, int, str]] = []
                    for activity in shift.breaks:
                        at = offset + (clock_minutes(activity.start) - begin) % 1440
                        activities.append((_local_ms(self.zone, local, at),
                                           _local_ms(self.zone, local, at + activity.minutes),
                                           activity.reason))
                    shifts.append(ShiftInstance(
                        agent_id, _local_ms(self.zone, local, offset),
                        _local_ms(self.zone, local, offset + length), tuple(activities)))
        if scenario.schedule_file is not None:
            shifts += read_schedule(scenario.schedule_file, self.center)
        return [s for s in shifts if s.end_ms > self.start_ms and s.start_ms < self.end_ms]


def _local_ms(zone: ZoneInfo, day: date, minutes: int) -> int:
    """Epoch ms of ``minutes`` after local midnight of ``day`` (may run into later days)."""
    day = day + timedelta(days=minutes // 1440)
    minutes %= 1440
    moment = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    return int(moment.timestamp() * 1000)


def _arrival_generators(model: Simulation) -> list[np.random.Generator]:
    """The arrival streams of a run, one per source (what ``_draw_day`` draws from)."""
    return [_generator(model.seed, f"arrivals:{i}:{s.number}")
            for i, s in enumerate(model.sources)]


def _draw_day(model: Simulation, day: int, rngs: Sequence[np.random.Generator]
              ) -> list[tuple[int, np.ndarray]]:
    """(source, arrival instants in epoch ms) of one local day, per source with arrivals.

    Piecewise-constant rates: a Poisson count per interval, uniform instants in it. Days
    must be drawn in order from day 0: each source's stream runs on across days.
    """
    intervals = model.day_intervals(day)
    drawn: list[tuple[int, np.ndarray]] = []
    for index in range(len(model.sources)):
        mine = [(a, b, c) for s, a, b, c in intervals if s == index]
        if not mine:
            continue
        rng = rngs[index]
        starts = np.array([a for a, _, _ in mine], dtype=np.int64)
        widths = np.array([b - a for a, b, _ in mine], dtype=np.int64)
        counts = rng.poisson(np.array([c for _, _, c in mine], dtype=float))
        offsets = rng.random(int(counts.sum()))
        drawn.append((index, np.repeat(starts, counts)
                      + np.floor(offsets * np.repeat(widths, counts)).astype(np.int64)))
    return drawn


class _DemandPlan:
    """A scenario's ``demand`` section resolved to factors per local day and source.

    The calendar part (weekday, holiday or make-up workday, trend, ``day_factors``) is
    fixed; the day noise depends on the seed and is drawn once per seed.
    """

    def __init__(self, scenario: Scenario, demand: Demand,
                 sources: Sequence[_Source]) -> None:
        self.scenario = scenario
        self.demand = demand
        self.sources = tuple(sources)
        self._fixed: np.ndarray = np.empty((0, len(sources)))
        self._noise: dict[int, np.ndarray] = {}

    def levels(self, seed: int, day: int) -> np.ndarray:
        """Per source: the factor replacing the weekday factor on local day ``day``."""
        days = max(self.scenario.days, day + 1)
        if len(self._fixed) < days:
            self._fixed = self._calendar_factors(days)
        noise = self._noise.get(seed)
        if noise is None or len(noise) < days:
            noise = self._noise[seed] = self._day_noise(seed, days)
        return self._fixed[day] * noise[day]

    def _calendar_factors(self, days: int) -> np.ndarray:
        demand = self.demand
        start = self.scenario.start
        dates = [start + timedelta(days=d) for d in range(days)]
        weekday = np.array([[s.profile.weekdays.get(WEEKDAYS[day.weekday()], 1.0)
                             for s in self.sources] for day in dates])
        workday = np.array([np.mean([s.profile.weekdays.get(w, 1.0) for w in WEEKDAYS[:5]])
                            for s in self.sources])
        per_day = np.ones(days)
        holidays = demand.holidays
        if holidays is not None:
            calendar = holidays.calendar(self.scenario.timezone)

            def working(day: date) -> bool:
                kind = calendar.day(day).kind
                return kind == "workday" or (kind == "regular" and day.weekday() < 5)

            def next_holiday(day: date, step: int) -> bool:
                """Whether the nearest day that way that is not a plain weekend day is a
                public holiday."""
                for _ in range(7):
                    day += timedelta(days=step)
                    found = calendar.day(day)
                    if found.kind != "regular" or day.weekday() < 5:
                        return found.kind == "holiday"
                return False

            for d, day in enumerate(dates):
                found = calendar.day(day)
                if found.kind == "holiday":
                    weekday[d] = workday * holidays.holiday_factor(found.name)
                elif found.kind == "workday":
                    weekday[d] = workday
                if working(day):
                    per_day[d] *= ((holidays.before if next_holiday(day, 1) else 1.0)
                                   * (holidays.after if next_holiday(day, -1) else 1.0))
        origin = demand.trend_origin or start
        weeks = np.array([(day - origin).days / 7 for day in dates])
        per_day *= (1.0 + demand.trend_per_week) ** weeks
        per_day *= np.array([demand.day_factors.get(day, 1.0) for day in dates])
        return weekday * per_day[:, None]

    def _day_noise(self, seed: int, days: int) -> np.ndarray:
        """The noise of each day and source. The series runs from ``_NOISE_EPOCH`` (or the
        first day, if earlier), so a date gets the same factor whatever day a run starts."""
        noise = self.demand.day_noise
        if noise is None:
            return np.ones((days, len(self.sources)))
        start = self.scenario.start
        skip = (start - min(_NOISE_EPOCH, start)).days

        def series(name: str, cv: float) -> np.ndarray:
            return _ar1_lognormal(_generator(seed, name), skip + days, cv,
                                  noise.persistence)[skip:]

        center = series("demand:day_noise", noise.cv)
        own = np.column_stack([series(f"demand:day_noise:{i}:{s.number}", noise.source_cv)
                               for i, s in enumerate(self.sources)])
        return center[:, None] * own


def _ar1_lognormal(rng: np.random.Generator, days: int, cv: float,
                   persistence: float) -> np.ndarray:
    """Mean-1 log-normal factors whose logs are a stationary AR(1) with that persistence."""
    if cv == 0:
        return np.ones(days)
    sigma = float(np.sqrt(np.log1p(cv * cv)))
    shocks = rng.standard_normal(days) * sigma
    shocks[1:] *= np.sqrt(1.0 - persistence * persistence)  # day 0: the stationary spread
    logs = np.empty(days)
    level = 0.0
    for day, shock in enumerate(shocks.tolist()):  # a plain loop: scipy costs 70 MB to load
        level = shock + persistence * level
        logs[day] = level
    return np.exp(logs - sigma * sigma / 2)


def arrival_history(scenario: Scenario | Path | str, *, seed: int | None = None,
                    start: date | None = None, days: int | None = None,
                    interval_minutes: int | None = None,
                    on_day: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Offered first-attempt calls per interval and queue, without simulating the calls.

    Draws the arrivals exactly as ``Simulation.run`` does (same model, seed and random
    streams), so a run of the same scenario offers the same calls at the same instants;
    retrials are left out. Returns columns ``timestamp`` (naive local start of the
    interval), ``queue`` (the queue the dialled number enters, else the number itself)
    and ``calls`` (int), every interval of every day for every queue, zeros included.
    ``interval_minutes`` (default: the smallest of the profiles') must divide a day;
    ``start`` and ``days`` override the scenario's. ``on_day(done, total)`` reports
    progress.
    """
    import pandas as pd

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if days is not None and days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if start is not None:
        scenario = msgspec.structs.replace(scenario, start=start)
    model = Simulation(scenario, seed=seed, days=days)
    step = interval_minutes or min(a.interval_minutes for a in model.scenario.arrivals)
    if step < 1 or 1440 % step:
        raise ValueError(f"interval_minutes must divide a day (5, 15, 30, 60, ...), "
                         f"got {step}")
    entries = {n.number: n.entry for n in model.center.numbers}
    source_queue = [entries[s.number].target if entries[s.number].kind == "queue"
                    else s.number for s in model.sources]
    queues = list(dict.fromkeys(source_queue))
    column = np.array([queues.index(q) for q in source_queue], dtype=np.int64)
    total = model.scenario.days
    per_day = 1440 // step
    counts = np.zeros((total * per_day, len(queues)), dtype=np.int64)
    rngs = _arrival_generators(model)
    for day in range(total):
        local = model.scenario.start + timedelta(days=day)
        edges = np.array([_local_ms(model.zone, local, k * step) for k in range(per_day + 1)],
                         dtype=np.int64)
        regular = bool(np.all(np.diff(edges) == step * 60_000))
        for index, instants in _draw_day(model, day, rngs):
            instants = instants[instants < model.end_ms]
            if regular:
                slot = np.searchsorted(edges, instants, side="right") - 1
            else:  # a daylight-saving change: count by wall-clock time, as the timestamps say
                wall = (pd.to_datetime(instants, unit="ms", utc=True).tz_convert(model.zone)
                        .tz_localize(None))
                slot = ((wall - pd.Timestamp(local)) // pd.Timedelta(minutes=step)).to_numpy()
            counts[day * per_day:(day + 1) * per_day, column[index]] += np.bincount(
                slot, minlength=per_day)
        if on_day is not None:
            on_day(day + 1, total)
    stamps = pd.date_range(pd.Timestamp(model.scenario.start), periods=total * per_day,
                           freq=f"{step}min")
    return pd.DataFrame({
        "timestamp": np.repeat(stamps.values, len(queues)),
        "queue": np.tile(np.array(queues, dtype=object), len(stamps)),
        "calls": counts.reshape(-1),
    })


# -- one run ---------------------------------------------------------------------------------


class _Run:
    """The mutable state of one run: engine, clock, heap, calls in progress, tallies."""

    def __init__(self, model: Simulation, *, log: EventLog | None,
                 on_events: Callable[[list[Event[Payload]]], None] | None,
                 speed: float | None, batch_size: int,
                 on_progress: Callable[[int, int], None] | None) -> None:
        scenario = model.scenario
        seed = model.seed
        self.model = model
        self.seed = seed
        self.clock = VirtualClock(model.start_ms)
        self.engine = Engine(
            model.center, clock=self.clock, seed=seed, source=model.source,
            region_lookup=model.region_lookup, flows=model.flows or None,
            calendar=model.calendar.state if model.calendar is not None else None,
            hooks=self._hook if scenario.hooks else None)
        self.agents = self.engine.agents
        self.now = model.start_ms
        self.end_ms = model.end_ms
        self.warmup_end_ms = model.start_ms + int(scenario.warmup_minutes * 60_000)
        self.drain_end_ms = model.end_ms + int(scenario.drain_minutes * 60_000)
        self.log = log
        self.on_events = on_events
        self.speed = speed
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.wall_start = time.perf_counter()
        self.buffer: list[Event[Payload]] | None = (
            [] if log is not None or on_events is not None else None)
        self.heap: list[tuple[int, int, int, Any, Any]] = []
        self.seq = 0
        self.events = 0
        self.offers = 0
        self.retrials = 0
        self.calls: dict[str, _Call] = {}
        self.agent_call: dict[str, _Call] = {}
        self.acw_start: dict[str, tuple[int, _Tally]] = {}
        self.pending: dict[str, tuple[str, str, int]] = {}
        self.on_break: dict[str, int] = {}
        self.signed_out: dict[str, list[str]] = {}
        self.ronas: dict[str, _Queue] = {}
        self.rejected: dict[str, int] = {}
        self.unqueued = _Tally()
        self.call_prefix = f"{model.source}-{seed:x}-sim-"
        self.queues = {
            q.name: _Queue(q.name, scenario.queue_model(q.name), seed=seed,
                           acw_s=q.after_call_work_s, sl_s=q.service_level_s)
            for q in model.center.queues
        }
        self.default_queue = _Queue("", scenario.queue_defaults, seed=seed, acw_s=0.0,
                                    sl_s=20.0)
        self.menus = {(m.flow, m.node): _Menu(m, seed=seed, index=i)
                      for i, m in enumerate(scenario.ivr)}
        self.voicemail = _ms_stream(scenario.voicemail.duration, _generator(seed, "voicemail"))
        self.hooks = {name: (hook, _uniform_stream(_generator(seed, f"hook:{name}")))
                      for name, hook in scenario.hooks.items()}
        self.ivr_touched: dict[str, _Call] = {}
        self.extensions = {a.id: str(10_000 + i) for i, a in enumerate(model.center.agents)}
        self.arrival_rng = _arrival_generators(model)
        self.caller_rng = [_generator(seed, f"callers:{i}:{s.number}")
                           for i, s in enumerate(model.sources)]
        callers = scenario.callers
        self.caller_format = f"{callers.prefix}{{:0{callers.digits}d}}"
        self.caller_space = 10 ** callers.digits
        self.handlers: dict[str, Callable[[Any], None]] = {
            "call.queued": self._on_queued,
            "call.overflowed": self._on_overflowed,
            "call.ringing": self._on_ringing,
            "call.answered": self._on_answered,
            "call.ended": self._on_ended,
            "agent.state_changed": self._on_state,
            "call.ivr_entered": self._on_ivr_entered,
            "call.ivr_node": self._on_ivr_node,
            "call.announcement_played": self._on_announcement,
        }
        self.actions: tuple[Callable[[Any, Any], None], ...] = (
            self._act_answer, self._act_hangup, self._act_acw_end, self._act_patience,
            self._act_rona_ready, self._act_login, self._act_logout, self._act_break,
            self._act_break_end, self._act_retry, self._act_ivr_input, self._act_voicemail,
        )

    # -- main loop -------------------------------------------------------------------

    def run(self) -> SimulationResult:
        started = self.wall_start = time.perf_counter()
        self._plan_agents()
        heap = self.heap
        engine = self.engine
        clock = self.clock
        actions = self.actions
        pump = self._pump
        end_ms, drain_end = self.end_ms, self.drain_end_ms
        total = end_ms - self.model.start_ms
        step = max(1, total // 400)
        if self.speed is not None:
            step = max(1, min(step, int(self.speed * 100)))  # ~10 pacing checks a real second
        next_check = self.now
        day, days = 0, self.model.scenario.days
        times: list[int] = []
        sources: list[int] = []
        callers: list[int] = []
        ai = 0
        while True:
            while ai >= len(times) and day < days:
                times, sources, callers = self._day_arrivals(day)
                day += 1
                ai = 0
            ta = times[ai] if ai < len(times) else _INF
            th = heap[0][0] if heap else _INF
            te = engine.next_timer_ms()
            t = min(ta, th, _INF if te is None else te)
            if t >= _INF or (t > end_ms and (not engine.calls or t > drain_end)):
                break
            if t != self.now:
                clock.advance_to(t)
                self.now = t
                if t >= next_check:
                    self._checkpoint(t, total)
                    next_check = t + step
            while ai < len(times) and times[ai] == t:
                self._offer(sources[ai], self.caller_format.format(callers[ai]), 0)
                ai += 1
                pump()
            while heap and heap[0][0] == t:
                _, _, kind, subject, token = heapq.heappop(heap)
                actions[kind](subject, token)
                pump()
            engine.advance()
            pump()
        if self.speed is not None:
            self._checkpoint(max(self.now, end_ms), total)  # idle to the end, in real time
        self._wrap_up()
        self._flush()
        if self.on_progress is not None:
            self.on_progress(total, total)
        return self._result(time.perf_counter() - started)

    def _checkpoint(self, t: int, total: int) -> None:
        """Pace against the wall clock, hand out buffered events, report progress."""
        if self.speed is not None:
            self._flush()
            due = self.wall_start + (t - self.model.start_ms) / 1000 / self.speed
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        if self.on_progress is not None:
            self.on_progress(min(t - self.model.start_ms, total), total)

    def _pump(self) -> None:
        """Route everything the engine emitted, including what the reactions emit."""
        drain = self.engine.drain
        events = drain()
        if not events:
            return
        handlers = self.handlers
        buffer = self.buffer
        while events:
            self.events += len(events)
            if buffer is not None:
                buffer.extend(events)
            for event in events:
                handler = handlers.get(event.type)
                if handler is not None:
                    handler(event.payload)
            events = drain()
        if self.ivr_touched:
            self._schedule_ivr()
        if buffer is not None and len(buffer) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        buffer = self.buffer
        if not buffer:
            return
        self.buffer = []
        if self.log is not None:
            self.log.produce(buffer)
        if self.on_events is not None:
            self.on_events(buffer)

    def _push(self, due: int, kind: int, subject: Any, token: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, kind, subject, token))

    def _reject(self, command: str) -> None:
        self.rejected[command] = self.rejected.get(command, 0) + 1

    # -- arrivals ----------------------------------------------------------------------

    def _day_arrivals(self, day: int) -> tuple[list[int], list[int], list[int]]:
        """Arrival instants, sources and caller numbers of one local day, in time order."""
        times: list[np.ndarray] = []
        sources: list[np.ndarray] = []
        callers: list[np.ndarray] = []
        for index, instants in _draw_day(self.model, day, self.arrival_rng):
            times.append(instants)
            sources.append(np.full(len(instants), index, dtype=np.int64))
            callers.append(self.caller_rng[index].integers(0, self.caller_space,
                                                           len(instants)))
        if not times:
            return [], [], []
        all_times = np.concatenate(times)
        all_sources = np.concatenate(sources)
        order = np.lexsort((all_sources, all_times))
        keep = order[all_times[order] < self.end_ms]
        return (all_times[keep].tolist(), all_sources[keep].tolist(),
                np.concatenate(callers)[keep].tolist())

    def _offer(self, source: int, caller: str, attempt: int) -> None:
        self.offers += 1
        call_id = f"{self.call_prefix}{self.offers:x}"
        call = _Call(source, caller, attempt, self.now >= self.warmup_end_ms)
        self.calls[call_id] = call
        try:
            self.engine.offer_call(caller=caller, dialed=self.model.sources[source].number,
                                   call_id=call_id)
        except CommandRejectedError:
            self._reject("offer_call")
            # A half-routed call would never end: its caller gives up.
            if call_id in self.engine.calls:
                self.engine.caller_hangs_up(call_id)
            else:
                del self.calls[call_id]

    # -- reactions to events ---------------------------------------------------------------

    def _on_queued(self, p: Any) -> None:
        call = self.calls.get(p.call_id)
        if call is None or call.queue is not None:
            return  # not ours, or an overflow: patience runs from the first queue
        queue = self.queues[p.queue]
        call.queue = queue
        call.queued_ms = self.now
        if call.counted:
            queue.tally.offered += 1
        if queue.patience is not None:
            self._push(self.now + next(queue.patience), _PATIENCE, p.call_id)

    def _on_overflowed(self, p: Any) -> None:
        call = self.calls.get(p.call_id)
        if call is not None and call.queue is None:
            # Sent on before it could wait (no agents logged in): it still counts as
            # offered to the queue, with its voicemail or callback disposition.
            call.queue = self.queues[p.queue]
            call.queued_ms = self.now
            if call.counted:
                call.queue.tally.offered += 1

    def _on_ringing(self, p: Any) -> None:
        call = self.calls.get(p.call_id)
        if call is not None and not call.rung:
            call.rung = True
            if call.counted and call.queue is not None and call.queued_ms == self.now:
                call.queue.tally.immediate += 1
        queue = self.queues.get(p.queue) or self.default_queue
        if queue.rona_p and next(queue.rona_u) < queue.rona_p:
            self.ronas[p.agent_id] = queue  # recovers by this queue's rona_recovery
            return  # the agent lets it ring out; the engine's ring timer does the rest
        delay = next(queue.ring)
        if delay:
            self._push(self.now + delay, _ANSWER, p.agent_id, p.call_id)
        else:
            self._act_answer(p.agent_id, p.call_id)

    def _on_answered(self, p: Any) -> None:
        call = self.calls.get(p.call_id)
        if call is None:
            return
        call.answered_ms = self.now
        self.agent_call[p.agent_id] = call
        home = call.queue
        if call.counted and home is not None:
            tally = home.tally
            tally.answered += 1
            tally.wait_s += p.wait_s
            if p.wait_s <= home.sl_s:
                tally.within += 1
        queue = self.queues.get(p.queue) or self.default_queue
        self._push(self.now + next(queue.handle), _HANGUP, p.agent_id, p.call_id)

    def _on_ended(self, p: Any) -> None:
        call = self.calls.pop(p.call_id, None)
        if call is None:
            return
        self.ivr_touched.pop(p.call_id, None)
        disposition = p.disposition
        if call.counted:
            ended = (call.queue.tally if call.queue is not None else self.unqueued).ended
            ended[disposition] = ended.get(disposition, 0) + 1
        if disposition == "abandoned":
            queue = call.queue or self.default_queue
            if (queue.retrial_p and call.attempt < queue.retrial_max
                    and next(queue.retrial_u) < queue.retrial_p):
                due = self.now + next(queue.retrial_delay)
                if due < self.end_ms:
                    self._push(due, _RETRY, call, None)

    def _on_state(self, p: Any) -> None:
        agent_id = p.agent_id
        previous = p.previous
        state = p.state
        now = self.now
        if previous == "talking" or previous == "hold":
            if state != "talking" and state != "hold":
                call = self.agent_call.get(agent_id)
                if (call is not None and call.counted and call.queue is not None
                        and call.answered_ms is not None):
                    call.queue.tally.talk_ms += now - call.answered_ms
                    call.queue.tally.handled += 1
        elif previous == "after_call_work":
            started = self.acw_start.pop(agent_id, None)
            if started is not None:
                started[1].acw_ms += now - started[0]
        if state == "after_call_work":
            call = self.agent_call.get(agent_id)
            if call is not None and call.counted and call.queue is not None:
                self.acw_start[agent_id] = (now, call.queue.tally)
            record = self.agents.get(agent_id)
            if record is None or record.state != "after_call_work":
                return
            queue = self.queues.get(p.queue) or self.default_queue
            if queue.acw is not None:
                self._push(now + min(next(queue.acw), queue.acw_cap_ms), _ACW_END, agent_id,
                           record.timer)
            elif agent_id in self.pending:
                self._push(now + queue.acw_cap_ms, _ACW_END, agent_id, record.timer)
        elif state == "ready":
            if agent_id in self.pending:
                record = self.agents.get(agent_id)
                if record is not None and record.state == "ready":
                    self._apply_pending(agent_id)
        elif state == "not_ready" and p.reason == "rona":
            record = self.agents.get(agent_id)
            if record is None or record.state != "not_ready" or record.reason != "rona":
                return
            if agent_id in self.pending:
                self._apply_pending(agent_id)
            else:
                queue = self.ronas.pop(agent_id, None) or self._rona_queue(agent_id)
                self._push(now + next(queue.rona_recovery), _RONA_READY, agent_id,
                           record.timer)

    def _rona_queue(self, agent_id: str) -> _Queue:
        """The queue of the agent's last call, for a RONA the simulator did not decide."""
        call = self.agent_call.get(agent_id)
        return call.queue if call is not None and call.queue is not None else (
            self.default_queue)

    def _on_ivr_entered(self, p: Any) -> None:
        flow = p.flow
        if flow.startswith("voicemail:"):
            self._push(self.now + next(self.voicemail), _VOICEMAIL, p.call_id,
                       flow.partition(":")[2] or "default")
            return
        self._touch_ivr(p.call_id, flow, None)

    def _on_ivr_node(self, p: Any) -> None:
        call = self.calls.get(p.call_id)
        if call is not None and self.menus:
            self._touch_ivr(p.call_id, call.ivr_flow, call.ivr_node)

    def _on_announcement(self, p: Any) -> None:
        """An input node's prompt tells which menu the caller now listens to."""
        if p.kind != "prompt" or not self.menus:
            return
        call = self.calls.get(p.call_id)
        if call is not None:
            node = self.model.prompt_nodes.get((call.ivr_flow, p.prompt))
            self._touch_ivr(p.call_id, call.ivr_flow, node or call.ivr_node)

    def _touch_ivr(self, call_id: str, flow: str, node: str | None) -> None:
        if not self.menus:
            return
        call = self.calls.get(call_id)
        if call is not None:
            call.ivr_gen += 1
            call.ivr_flow = flow
            call.ivr_node = node
            self.ivr_touched[call_id] = call

    def _hook(self, hook: str, args: Any, secret: str | None) -> ivr.HookResult:
        """A data hook's simulated answer: found, error or missing, by probability."""
        model, uniform = self.hooks[hook]
        draw = next(uniform)
        if draw < model.found:
            return ivr.HookResult(values=dict(model.values))
        if draw < model.found + model.error:
            return ivr.HookResult(error="simulated hook error")
        return ivr.HookResult()

    def _schedule_ivr(self) -> None:
        """Callers whose IVR now awaits input press keys after a think time."""
        touched, self.ivr_touched = self.ivr_touched, {}
        for call_id, call in touched.items():
            record = self.engine.calls.get(call_id)
            if record is None or record.stage not in ("ivr", "survey"):
                continue
            menu = self._menu(call)
            if menu is not None:
                self._push(self.now + next(menu.think), _IVR_INPUT, call_id, call.ivr_gen)

    def _menu(self, call: _Call) -> _Menu | None:
        return (self.menus.get((call.ivr_flow, call.ivr_node))
                or self.menus.get((call.ivr_flow, None)))

    # -- actions -----------------------------------------------------------------------------

    def _act_answer(self, agent_id: str, call_id: str) -> None:
        record = self.agents.get(agent_id)
        if record is not None and record.state == "ringing" and record.call_id == call_id:
            try:
                self.engine.answer(agent_id)
            except CommandRejectedError:
                self._reject("answer")

    def _act_hangup(self, agent_id: str, call_id: str) -> None:
        record = self.agents.get(agent_id)
        if record is not None and record.call_id == call_id and record.state in (
                "talking", "hold"):
            if agent_id in self.pending:
                self._sign_out_first(agent_id, call_id)
            try:
                self.engine.hang_up(agent_id)
            except CommandRejectedError:
                self._reject("hang_up")

    def _sign_out_first(self, agent_id: str, call_id: str) -> None:
        """Without wrap-up the engine offers the next call at the hang-up itself, so an
        agent due for a break or the end of the shift first signs out of the queues."""
        call = self.engine.calls.get(call_id)
        queue = self.queues.get(call.queue or "") if call is not None else None
        if queue is not None and queue.acw_cap_ms > 0:
            return
        names = list(self.agents[agent_id].queues)
        for name in names:
            self._command("sign_out", self.engine.sign_out, agent_id, name)
        self.signed_out[agent_id] = names

    def _act_acw_end(self, agent_id: str, token: int) -> None:
        record = self.agents.get(agent_id)
        if record is None or record.timer != token or record.state != "after_call_work":
            return
        if agent_id in self.pending:
            self._apply_pending(agent_id)
        else:
            self._command("set_ready", self.engine.set_ready, agent_id)

    def _act_patience(self, call_id: str, token: None) -> None:
        record = self.engine.calls.get(call_id)
        if record is not None and record.stage in ("queued", "ringing"):
            self._command("caller_hangs_up", self.engine.caller_hangs_up, call_id)

    def _act_rona_ready(self, agent_id: str, token: int) -> None:
        record = self.agents.get(agent_id)
        if record is not None and record.timer == token and record.state == "not_ready":
            self._command("set_ready", self.engine.set_ready, agent_id)

    def _act_login(self, agent_id: str, token: None) -> None:
        if agent_id in self.agents:
            # Back-to-back shifts: an agent still finishing a call stays logged in.
            if self.pending.get(agent_id, ("",))[0] == _LEAVE:
                del self.pending[agent_id]
            return
        self.pending.pop(agent_id, None)
        if self._command("log_in", self.engine.log_in, agent_id,
                         extension=self.extensions[agent_id]):
            self._command("set_ready", self.engine.set_ready, agent_id)

    def _act_logout(self, agent_id: str, token: None) -> None:
        record = self.agents.get(agent_id)
        if record is None:
            return
        if record.state in ("ready", "not_ready", "after_call_work"):
            self.pending[agent_id] = (_LEAVE, _END_OF_SHIFT, 0)
            self._apply_pending(agent_id)
        else:
            self.pending[agent_id] = (_LEAVE, _END_OF_SHIFT, 0)  # after this call

    def _act_break(self, agent_id: str, token: tuple[str, int]) -> None:
        record = self.agents.get(agent_id)
        if record is None or self.pending.get(agent_id, ("",))[0] == _LEAVE:
            return
        reason, length_ms = token
        self.pending[agent_id] = ("break", reason, length_ms)
        if record.state in ("ready", "not_ready", "after_call_work"):
            self._apply_pending(agent_id)

    def _act_break_end(self, agent_id: str, token: int) -> None:
        record = self.agents.get(agent_id)
        if (record is not None and self.on_break.get(agent_id) == token
                and record.state == "not_ready"):
            del self.on_break[agent_id]
            for name in self.signed_out.pop(agent_id, ()):
                self._command("sign_in", self.engine.sign_in, agent_id, name)
            self._command("set_ready", self.engine.set_ready, agent_id)

    def _act_retry(self, call: _Call, token: None) -> None:
        self.retrials += 1
        self._offer(call.source, call.caller, call.attempt + 1)

    def _act_ivr_input(self, call_id: str, token: int) -> None:
        call = self.calls.get(call_id)
        record = self.engine.calls.get(call_id)
        if (call is None or record is None or call.ivr_gen != token
                or record.stage not in ("ivr", "survey")):
            return
        menu = self._menu(call)
        if menu is None:
            return
        draw = next(menu.uniform)
        for threshold, digits in menu.choices:
            if draw < threshold:
                if digits is None:
                    self._command("caller_hangs_up", self.engine.caller_hangs_up, call_id)
                else:
                    self._command("press_digits", self.engine.press_digits, call_id, digits)
                return

    def _act_voicemail(self, call_id: str, mailbox: str) -> None:
        record = self.engine.calls.get(call_id)
        if record is not None and record.stage == "voicemail":
            duration = (self.now - record.offered_ms) / 1000
            self._command("voicemail_recorded", self.engine.voicemail_recorded, call_id,
                          duration_s=round(duration, 3), mailbox=mailbox)

    def _command(self, name: str, command: Callable[..., Any], *args: Any, **kwargs: Any
                 ) -> bool:
        try:
            command(*args, **kwargs)
        except CommandRejectedError:
            self._reject(name)
            return False
        return True

    def _apply_pending(self, agent_id: str) -> None:
        """Start the break or leave the agent has waited to take until off the phone."""
        kind, reason, length_ms = self.pending.pop(agent_id)
        record = self.agents[agent_id]
        if kind == _LEAVE:
            self.on_break.pop(agent_id, None)
            self.signed_out.pop(agent_id, None)
            if record.state != "not_ready" or record.reason != reason:
                self._command("set_not_ready", self.engine.set_not_ready, agent_id,
                              reason=reason)
            self._command("log_out", self.engine.log_out, agent_id, reason=reason)
            return
        if self._command("set_not_ready", self.engine.set_not_ready, agent_id, reason=reason):
            self.seq += 1
            self.on_break[agent_id] = self.seq
            self._push(self.now + length_ms, _BREAK_END, agent_id, self.seq)

    # -- schedules and the end -------------------------------------------------------------

    def _plan_agents(self) -> None:
        """Queue every log-in, break and log-out of the run (AG-01, AG-02)."""
        model = self.model
        start, end = model.start_ms, model.end_ms
        scheduled = {s.agent_id for s in model.shifts}
        if model.scenario.unscheduled_agents == "logged_in":
            for agent in model.center.agents:
                if agent.id not in scheduled and agent.skills:
                    self._push(start, _LOGIN, agent.id)
        for shift in model.shifts:
            self._push(max(shift.start_ms, start), _LOGIN, shift.agent_id)
            for begin, finish, reason in shift.activities:
                if start <= begin < end:
                    self._push(begin, _BREAK, shift.agent_id, (reason, finish - begin))
            if shift.end_ms <= end:
                self._push(shift.end_ms, _LOGOUT, shift.agent_id)

    def _wrap_up(self) -> None:
        """Callers still on the line hang up; everyone still logged in logs out."""
        if self.now < self.end_ms:
            self.clock.advance_to(self.end_ms)
            self.now = self.end_ms
        for call_id in list(self.engine.calls):
            if call_id in self.engine.calls:
                self._command("caller_hangs_up", self.engine.caller_hangs_up, call_id)
                self._pump()
        for agent_id in list(self.agents):
            if agent_id in self.agents:
                self.pending[agent_id] = (_LEAVE, _END_OF_RUN, 0)
                self._apply_pending(agent_id)
                self._pump()

    def _result(self, wall_s: float) -> SimulationResult:
        queues = {name: _queue_result(queue) for name, queue in self.queues.items()
                  if queue.tally.offered or queue.tally.ended}
        return SimulationResult(
            scenario=self.model.scenario.name, seed=self.seed,
            start=from_ms(self.model.start_ms), end=from_ms(self.end_ms), queues=queues,
            calls=self.offers, retrials=self.retrials, unqueued=dict(self.unqueued.ended),
            events=self.events, wall_s=wall_s, rejected=dict(self.rejected))


def _queue_result(queue: _Queue) -> QueueResult:
    t = queue.tally
    answered = t.ended.get("answered", 0)
    abandoned = t.ended.get("abandoned", 0)
    handled = answered + abandoned
    return QueueResult(
        name=queue.name, offered=t.offered, answered=answered, abandoned=abandoned,
        other={k: v for k, v in sorted(t.ended.items()) if k not in ("answered", "abandoned")},
        answered_within=t.within, service_level_s=queue.sl_s,
        service_level=t.within / handled if handled else None,
        asa=t.wait_s / t.answered if t.answered else None,
        aht=(t.talk_ms + t.acw_ms) / 1000 / t.handled if t.handled else None,
        p_wait=1 - t.immediate / t.offered if t.offered else None,
        p_abandon=abandoned / t.offered if t.offered else None)
