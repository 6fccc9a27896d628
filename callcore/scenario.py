"""Simulation scenarios: a center configuration plus the traffic and people that drive it.

A scenario embeds (``center``) or references (``center_file``) a ``CenterConfig`` and
adds what the engine does not know: when calls arrive at each number (interval
profiles or a published forecast), how long agents talk and wrap up, how patient
callers are, whether they call again, when agents work (shifts, breaks, lunch) and
what callers press in IVR menus. Scenarios are YAML files validated on load; every
error names the path of the bad value and what to do about it. The JSON Schema of the
format is ``scenario_schema()`` (checked in as ``docs/scenario.schema.json``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import numpy as np
import yaml

from callcore import ivr
from callcore.calendar import (
    BusinessCalendar,
    CalendarConfig,
    CalendarConfigError,
    DayOverride,
    load_calendar,
)
from callcore.center import AgentConfig, CenterConfig, CenterConfigError, load_center
from ingest.contract import (
    Event,
    ForecastPublished,
    InvalidEventError,
    Payload,
    SchedulePublished,
    decode_event,
)

__all__ = [
    "BUNDLED",
    "WEEKDAYS",
    "Activity",
    "AgentGroup",
    "ArrivalProfile",
    "Callers",
    "DayNoise",
    "Demand",
    "Deterministic",
    "Distribution",
    "Empirical",
    "Exponential",
    "HolidayDemand",
    "HookModel",
    "IvrMenu",
    "Lognormal",
    "QueueModel",
    "Retrial",
    "Scenario",
    "ScenarioError",
    "Shift",
    "ShiftInstance",
    "Voicemail",
    "bundled_scenarios",
    "clock_minutes",
    "export_schema",
    "load_ivr",
    "load_scenario",
    "prompt_nodes",
    "read_forecast",
    "read_schedule",
    "resolve_source",
    "scenario_schema",
]

BUNDLED = Path(__file__).resolve().parent / "scenarios"
"""Scenarios shipped with the package, loadable by name (``demo``, ``large``)."""

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "scenario.schema.json"

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Level = Annotated[int, msgspec.Meta(ge=1, le=20)]
Clock = Annotated[str, msgspec.Meta(
    pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
    description="Local wall-clock time HH:MM (24:00 is the end of the day).")]


class ScenarioError(ValueError):
    """The scenario is invalid; the message names each bad path and the fix."""


class _Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# -- distributions ------------------------------------------------------------------------


class _Distribution(_Model, frozen=True, kw_only=True, tag_field="dist"):
    """A distribution of durations in seconds."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws in seconds."""
        raise TypeError(f"{type(self).__name__} does not define sample()")

    @property
    def mean_s(self) -> float:
        """The mean in seconds."""
        raise TypeError(f"{type(self).__name__} does not define mean_s")


class Exponential(_Distribution, frozen=True, kw_only=True, tag="exponential"):
    """Exponential with the given mean (memoryless: Erlang C and Erlang A assume it)."""

    mean: Positive

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws in seconds."""
        return rng.exponential(self.mean, size)

    @property
    def mean_s(self) -> float:
        """The mean in seconds."""
        return self.mean


class Lognormal(_Distribution, frozen=True, kw_only=True, tag="lognormal"):
    """Lognormal given by its mean and coefficient of variation (std / mean)."""

    mean: Positive
    cv: Positive

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` draws in seconds."""
        sigma2 = float(np.log1p(self.cv * self.cv))
        return rng.lognormal(float(np.log(self.mean)) - sigma2 / 2, sigma2 ** 0.5, size)

    @property
    def mean_s(self) -> float:
        """The mean in seconds."""
        return self.mean


class Deterministic(_Distribution, frozen=True, kw_only=True, tag="deterministic"):
    """Always the same value."""

    value: NonNegative

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` copies of the value."""
        return np.full(size, self.value)

    @property
    def mean_s(self) -> float:
        """The value."""
        return self.value


class Empirical(_Distribution, frozen=True, kw_only=True, tag="empirical"):
    """Observed values, each drawn with equal probability (a bootstrap)."""

    values: Annotated[list[NonNegative], msgspec.Meta(min_length=1)]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` values drawn with replacement."""
        return rng.choice(np.asarray(self.values, dtype=float), size)

    @property
    def mean_s(self) -> float:
        """The mean of the values."""
        return float(np.mean(self.values))


Distribution = Exponential | Lognormal | Deterministic | Empirical
_DIST_TAGS = "exponential, lognormal, deterministic, empirical"


# -- queues, arrivals, people -----------------------------------------------------------


class Retrial(_Model, frozen=True, kw_only=True):
    """Callers who abandon call the same number again, from the same caller number."""

    probability: Probability
    delay: Distribution = Exponential(mean=600.0)
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    """Retrials per original call, at most."""


class QueueModel(_Model, frozen=True, kw_only=True):
    """How callers and agents behave on calls of one queue."""

    handle_time: Distribution = Exponential(mean=180.0)
    """Talk time from answer to the agent's hang-up."""
    after_call_work: Distribution | None = None
    """Wrap-up time; capped by the queue's ``after_call_work_s`` (the engine's automatic
    timeout, AG-02). Without it agents wrap up for exactly ``after_call_work_s``."""
    patience: Distribution | None = None
    """How long a caller waits for an agent before hanging up; none: callers never do."""
    ring_delay: Distribution = Deterministic(value=0.0)
    """Time from the agent's phone ringing to the answer."""
    rona_probability: Probability = 0.0
    """Chance that a ringing agent does not answer (ring no answer, ACD-06)."""
    rona_recovery: Distribution = Deterministic(value=30.0)
    """Time an agent set not-ready by RONA takes to become ready again."""
    retrial: Retrial | None = None


class ArrivalProfile(_Model, frozen=True, kw_only=True):
    """Inbound calls to one number: a non-homogeneous Poisson process.

    Either ``calls`` (expected calls per interval of a local day from ``start``) or
    ``forecast`` (a published ``wfm.forecast_published`` event as JSON or JSON lines);
    the rate is constant within each interval.
    """

    number: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    calls: list[NonNegative] | None = None
    interval_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] = 30
    start: Clock = "00:00"
    """Local time the first interval of ``calls`` starts."""
    weekdays: dict[Weekday, NonNegative] = msgspec.field(default_factory=dict)
    """Factor per weekday (missing days: 1.0), for ``calls`` profiles."""
    scale: NonNegative = 1.0
    forecast: str | None = None
    """Path of a published forecast, relative to the scenario file."""
    forecast_queue: str | None = None
    """Which forecast in the file (default: the queue the number enters)."""


class AgentGroup(_Model, frozen=True, kw_only=True):
    """``count`` agents with the same skills and team, ids ``<id_prefix><n>``."""

    name: Name
    count: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    skills: dict[str, Level]
    team: str | None = None
    id_prefix: str | None = None
    """Default: the group name and a dash, e.g. ``sales-001``."""

    def agent_ids(self) -> list[str]:
        """The generated agent ids, numbered from 1 and zero-padded."""
        prefix = f"{self.name}-" if self.id_prefix is None else self.id_prefix
        width = max(3, len(str(self.count)))
        return [f"{prefix}{n:0{width}d}" for n in range(1, self.count + 1)]


class Activity(_Model, frozen=True, kw_only=True):
    """A break, lunch or other time off the phones inside a shift, as a not-ready reason."""

    start: Clock
    minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "break"


class Shift(_Model, frozen=True, kw_only=True):
    """When the selected agents work: log in at ``start``, out at ``end`` (local time).

    An ``end`` at or before ``start`` ends the next day. With ``stagger_minutes`` the
    members' shifts (and breaks) start spread evenly over that many minutes.
    """

    agents: list[str] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=list)
    teams: list[str] = msgspec.field(default_factory=list)
    start: Clock
    end: Clock
    days: list[Weekday] = msgspec.field(default_factory=lambda: list(WEEKDAYS))
    breaks: list[Activity] = msgspec.field(default_factory=list)
    stagger_minutes: Annotated[int, msgspec.Meta(ge=0, le=1440)] = 0


class IvrMenu(_Model, frozen=True, kw_only=True):
    """What callers do when an IVR flow (or a ``survey:<name>`` flow) awaits input.

    ``press`` gives digits and their probabilities, ``hang_up`` the chance the caller
    hangs up; the rest of the probability is no input (the flow's timeout applies).
    ``node`` limits the menu to the node of the call's latest ``call.ivr_node`` event.
    """

    flow: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    node: str | None = None
    press: dict[Annotated[str, msgspec.Meta(pattern=r"^[0-9*#]{1,32}$")], Probability] = (
        msgspec.field(default_factory=dict))
    hang_up: Probability = 0.0
    think_time: Distribution = Exponential(mean=4.0)


class HookModel(_Model, frozen=True, kw_only=True):
    """How a simulated IVR data hook (PIN check, lookup; IVR-03) answers: found (with
    ``values``, which must hold every name the flow stores), an error, or else missing."""

    found: Probability = 1.0
    error: Probability = 0.0
    values: dict[str, str] = msgspec.field(default_factory=dict)


class Voicemail(_Model, frozen=True, kw_only=True):
    """Callers routed to voicemail leave a message of this length."""

    duration: Distribution = Exponential(mean=30.0)


class Callers(_Model, frozen=True, kw_only=True):
    """Caller numbers: ``prefix`` then ``digits`` random digits."""

    prefix: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{1,16}$")] = "+86138"
    digits: Annotated[int, msgspec.Meta(ge=4, le=12)] = 8


# -- demand over days (holidays, trend, day-to-day variation) -------------------------------


class HolidayDemand(_Model, frozen=True, kw_only=True):
    """Public holidays and official make-up workdays (CN 调休) in the offered calls.

    Which dates they are comes from ``callcore.calendar`` (``chinese_calendar``, then the
    ``holidays`` package, then ``overrides``). A holiday gets ``factor`` times a normal
    workday's calls (the mean of the profile's Monday-Friday factors), a make-up workday
    exactly a normal workday's calls, whatever weekday it falls on.
    """

    country: Annotated[str, msgspec.Meta(min_length=2, max_length=3)] = "CN"
    subdivision: str | None = None
    factor: NonNegative = 0.35
    """A public holiday's calls relative to a normal workday's."""
    names: dict[str, NonNegative] = msgspec.field(default_factory=dict)
    """Factors of particular holidays instead of ``factor``: a key applies to every holiday
    whose name contains it, ignoring case (``Spring Festival``, ``National Day``)."""
    before: NonNegative = 1.0
    """Factor of the last working day before a holiday (weekends in between skipped)."""
    after: NonNegative = 1.0
    """Factor of the first working day after a holiday (weekends in between skipped)."""
    overrides: dict[date, DayOverride] = msgspec.field(default_factory=dict)
    """Rulings on single dates, as in a business calendar (``kind``: regular, holiday or
    workday, and a ``name``); they win over the built-in holiday data."""

    def calendar(self, timezone: str) -> BusinessCalendar:
        """The business calendar (no schedules) that tells holidays and make-up workdays."""
        return BusinessCalendar(CalendarConfig(
            timezone=timezone, country=self.country, subdivision=self.subdivision,
            overrides=dict(self.overrides)))

    def holiday_factor(self, name: str | None) -> float:
        """The factor of the holiday called ``name``."""
        lowered = (name or "").lower()
        for key, value in self.names.items():
            if key.lower() in lowered:
                return value
        return self.factor


class DayNoise(_Model, frozen=True, kw_only=True):
    """Day-to-day variation of the level: a log-normal AR(1) factor with mean 1.

    log f(t) = persistence * log f(t - 1) + innovation, scaled so that f has the given
    coefficient of variation; one center-wide factor for all numbers, times one per
    number with ``source_cv``. Drawn from the run's seed, so runs are reproducible.
    """

    cv: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.06
    """Coefficient of variation of the center-wide day factor."""
    persistence: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.7
    """Lag-1 autocorrelation of the log day factor (0: independent days)."""
    source_cv: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.0
    """Coefficient of variation of each number's own day factor, on top."""


class Demand(_Model, frozen=True, kw_only=True):
    """How the expected calls of ``calls`` profiles change from day to day.

    Each day's expected calls per interval are the profile's, times ``scale``, times the
    weekday factor (a holiday's or make-up workday's instead, see ``holidays``), times the
    trend, the day noise and ``day_factors``. Published-forecast arrivals are left as they
    are.
    """

    holidays: HolidayDemand | None = None
    trend_per_week: Annotated[float, msgspec.Meta(gt=-1, le=1)] = 0.0
    """Multiplicative growth per week: 0.002 is +0.2 % a week (compounded daily)."""
    trend_origin: date | None = None
    """The date the trend factor is 1 (default: the first simulated day)."""
    day_noise: DayNoise | None = None
    day_factors: dict[date, NonNegative] = msgspec.field(default_factory=dict)
    """Extra factors of single dates (a campaign day 1.6, an outage 0.2)."""


class Scenario(_Model, frozen=True, kw_only=True):
    """A simulation scenario: a center, its traffic, its people, and the horizon."""

    name: Name = "scenario"
    description: str = ""
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    start: date
    """First simulated local day."""
    timezone: str = "UTC"
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 1
    warmup_minutes: NonNegative = 0.0
    """Calls offered before this are simulated but left out of the statistics."""
    drain_minutes: NonNegative = 120.0
    """After the last day, calls in progress may finish for this long; the rest are
    hung up by their callers."""
    center: CenterConfig | None = None
    center_file: str | None = None
    """Path of a center YAML file, relative to the scenario file (instead of ``center``)."""
    agent_groups: list[AgentGroup] = msgspec.field(default_factory=list)
    queue_defaults: QueueModel = QueueModel()
    queues: dict[str, QueueModel] = msgspec.field(default_factory=dict)
    """Per-queue models; a queue not listed uses ``queue_defaults``."""
    arrivals: Annotated[list[ArrivalProfile], msgspec.Meta(min_length=1)]
    demand: Demand | None = None
    """Holidays, trend and day-to-day variation of the ``calls`` profiles; none: every
    day repeats the profile times its weekday factor."""
    schedules: list[Shift] = msgspec.field(default_factory=list)
    schedule_file: str | None = None
    """Path of a published schedule (``wfm.schedule_published`` events)."""
    unscheduled_agents: Literal["logged_in", "absent"] = "logged_in"
    """Agents no shift covers: logged in and ready throughout, or never logged in."""
    flows: list[str] = msgspec.field(default_factory=list)
    """IVR flow files or folders (``callcore.ivr``), relative to the scenario file."""
    calendar: str | None = None
    """Business calendar file (``callcore.calendar``) for numbers' schedules and the flows'
    time branches, relative to the scenario file."""
    hooks: dict[str, HookModel] = msgspec.field(default_factory=dict)
    """Simulated answers of the IVR data hooks the flows call, by hook name."""
    ivr: list[IvrMenu] = msgspec.field(default_factory=list)
    voicemail: Voicemail = Voicemail()
    callers: Callers = Callers()
    caller_regions: bool = False
    """Look up each caller's province and city (CC-03; about 65 us a call)."""

    # -- derived views ----------------------------------------------------------------

    def center_config(self) -> CenterConfig:
        """The center with the generated ``agent_groups`` agents appended."""
        center = self.center or CenterConfig()
        generated = [
            AgentConfig(id=agent_id, team=group.team, skills=dict(group.skills))
            for group in self.agent_groups for agent_id in group.agent_ids()
        ]
        if not generated:
            return center
        return msgspec.structs.replace(center, agents=[*center.agents, *generated])

    def zone(self) -> ZoneInfo:
        """The scenario's time zone."""
        return ZoneInfo(self.timezone)

    def queue_model(self, queue: str) -> QueueModel:
        """The behaviour model of ``queue``."""
        return self.queues.get(queue, self.queue_defaults)

    def members(self, shift: Shift, center: CenterConfig) -> list[tuple[str, int]]:
        """The agents a shift selects, each with its start offset in minutes.

        Agents of one selected group are spread evenly over ``stagger_minutes``, and so
        are the other selected agents together, so every group starts covering its
        queues at the shift's start.
        """
        buckets: list[list[str]] = []
        grouped: set[str] = set()
        for group in self.agent_groups:
            if group.name in shift.groups:
                buckets.append(group.agent_ids())
                grouped.update(buckets[-1])
        chosen = set(shift.agents)
        teams = set(shift.teams)
        buckets.append([a.id for a in center.agents if a.id not in grouped
                        and (a.id in chosen or a.team in teams)])
        order = {a.id: i for i, a in enumerate(center.agents)}
        return sorted(((agent_id, i * shift.stagger_minutes // len(bucket))
                       for bucket in buckets for i, agent_id in enumerate(bucket)),
                      key=lambda pair: order[pair[0]])

    def problems(self) -> list[str]:
        """Cross-reference problems, each naming its path and the fix; empty when valid."""
        found: list[str] = []
        try:
            self.zone()
        except (ZoneInfoNotFoundError, ValueError):
            found.append(f"timezone: {self.timezone!r} is unknown; use an IANA name such as "
                         "'Asia/Shanghai' or 'UTC'")
        if (self.center is None) == (self.center_file is None):
            found.append("center: give exactly one of 'center' (inline) or 'center_file'")
        if self.warmup_minutes >= self.days * 1440:
            found.append(f"warmup_minutes: {self.warmup_minutes:g} leaves nothing of the "
                         f"{self.days} simulated day(s); make it shorter")
        center = self.center_config()
        found += [f"center: {p}" for p in center.problems()]
        queues = {q.name for q in center.queues}
        numbers = {n.number for n in center.numbers}
        agents = {a.id for a in center.agents}
        teams = {t.name for t in center.teams}
        groups = [g.name for g in self.agent_groups]
        for name in {g for g in groups if groups.count(g) > 1}:
            found.append(f"agent_groups: group {name!r} is defined more than once; rename one")
        for i, group in enumerate(self.agent_groups):
            for queue in group.skills:
                if queue not in queues:
                    found.append(f"agent_groups[{i}].skills: unknown queue {queue!r}; known: "
                                 f"{_known(queues)}")
        for name in self.queues:
            if name not in queues:
                found.append(f"queues.{name}: no such queue in the center; known: "
                             f"{_known(queues)}")
        for name, model in self.queues.items():
            if (model.after_call_work is not None and name in queues
                    and center.queue(name).after_call_work_s == 0):
                found.append(f"queues.{name}.after_call_work: the center's queue has "
                             "after_call_work_s: 0, so agents never wrap up; raise "
                             "after_call_work_s or drop after_call_work")
        for i, arrival in enumerate(self.arrivals):
            found += _arrival_problems(f"arrivals[{i}]", arrival, numbers)
        if self.demand is not None and self.demand.holidays is not None:
            try:
                self.demand.holidays.calendar(self.timezone)
            except CalendarConfigError as exc:
                found.append(f"demand.holidays: {exc}")
        for i, shift in enumerate(self.schedules):
            where = f"schedules[{i}]"
            if not (shift.agents or shift.groups or shift.teams):
                found.append(f"{where}: select agents with 'agents', 'groups' or 'teams'")
            found += [f"{where}.agents: unknown agent {a!r}" for a in shift.agents
                      if a not in agents]
            found += [f"{where}.groups: unknown agent group {g!r}; known: {_known(groups)}"
                      for g in shift.groups if g not in groups]
            found += [f"{where}.teams: unknown team {t!r}; known: {_known(teams)}"
                      for t in shift.teams if t not in teams]
            found += _shift_problems(where, shift)
        for i, menu in enumerate(self.ivr):
            total = sum(menu.press.values()) + menu.hang_up
            if total > 1 + 1e-9:
                found.append(f"ivr[{i}]: press and hang_up probabilities add up to {total:g}; "
                             "make them add up to at most 1")
        for name, hook in self.hooks.items():
            if hook.found + hook.error > 1 + 1e-9:
                found.append(f"hooks.{name}: found and error add up to "
                             f"{hook.found + hook.error:g}; make them add up to at most 1")
        return found


# -- validation helpers ------------------------------------------------------------------


def clock_minutes(clock: str) -> int:
    """``HH:MM`` as minutes after midnight."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _known(names: set[str] | list[str]) -> str:
    return ", ".join(sorted(set(names))) or "(none)"


def _arrival_problems(where: str, arrival: ArrivalProfile, numbers: set[str]) -> list[str]:
    found: list[str] = []
    if arrival.number not in numbers:
        found.append(f"{where}.number: {arrival.number!r} is not a number of the center; add "
                     f"it to center.numbers or use one of {_known(numbers)}")
    if (arrival.calls is None) == (arrival.forecast is None):
        found.append(f"{where}: give exactly one of 'calls' (a profile) or 'forecast' (a file)")
    if 1440 % arrival.interval_minutes:
        found.append(f"{where}.interval_minutes: {arrival.interval_minutes} does not divide a "
                     "day; use 15, 30, 60 or another divisor of 1440")
    if arrival.calls is not None:
        end = clock_minutes(arrival.start) + len(arrival.calls) * arrival.interval_minutes
        if end > 1440:
            found.append(f"{where}.calls: {len(arrival.calls)} intervals of "
                         f"{arrival.interval_minutes} min from {arrival.start} run past "
                         "midnight; drop intervals or start earlier")
    return found


def _shift_problems(where: str, shift: Shift) -> list[str]:
    found: list[str] = []
    start = clock_minutes(shift.start)
    length = (clock_minutes(shift.end) - start) % 1440 or 1440
    for j, activity in enumerate(shift.breaks):
        offset = (clock_minutes(activity.start) - start) % 1440
        if offset + activity.minutes > length:
            found.append(f"{where}.breaks[{j}]: {activity.start} for {activity.minutes} min "
                         f"is not inside the shift {shift.start}-{shift.end}; move it")
    if len(set(shift.days)) != len(shift.days):
        found.append(f"{where}.days: a weekday is listed twice")
    return found


_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
"""msgspec writes struct fields as ``.name``, list items as ``[0]`` and dict values as ``[...]``."""


def _hint(message: str, raw: Any) -> str:
    """msgspec's message plus what to do about it."""
    match = re.search(r"unknown field `([^`]*)`(?: - at `([^`]*)`)?", message)
    if match:
        path = match.group(2) or "$"
        if "[...]" in path:
            places = _places(raw, _SEGMENT.findall(path), match.group(1), "")
            if places:
                message += f" (in {', '.join(places)})"
        allowed = _fields_at(path)
        return f"{message}; remove or rename it" + (f" (allowed here: {allowed})" if allowed
                                                    else "")
    if re.search(r"at `[^`]*\.dist`", message):
        return f"{message}; use one of {_DIST_TAGS}"
    if "Expected `str`, got `int`" in message or "Expected `str`, got `float`" in message:
        return f"{message}; quote the value in YAML (e.g. '4008001001')"
    if "Object missing required field" in message:
        return f"{message}; add it"
    return f"{message}; fix the value at that path"


def _places(raw: Any, segments: list[tuple[str, str]], field: str, at: str) -> list[str]:
    """The concrete paths (``queues.sales``) of the mappings holding an unknown ``field``
    along a path whose dict keys msgspec left out."""
    if not segments:
        return [at.lstrip(".")] if isinstance(raw, Mapping) and field in raw else []
    (name, index), rest = segments[0], segments[1:]
    if name and isinstance(raw, Mapping) and name in raw:
        return _places(raw[name], rest, field, f"{at}.{name}")
    if index == "..." and isinstance(raw, Mapping):
        return [p for key, value in raw.items() for p in _places(value, rest, field,
                                                                  f"{at}.{key}")]
    if index.isdigit() and isinstance(raw, list) and int(index) < len(raw):
        return _places(raw[int(index)], rest, field, f"{at}[{index}]")
    return []


def _fields_at(path: str) -> str:
    """The field names allowed at a ``$.a.b[0]`` path of a scenario, as text."""
    info: Any = msgspec.inspect.type_info(Scenario)
    for name, index in _SEGMENT.findall(path):
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.StructType) and name:
            fields = {f.encode_name: f.type for f in info.fields}
            if name not in fields:
                return ""
            info = fields[name]
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        elif isinstance(info, msgspec.inspect.ListType) and index.isdigit():
            info = info.item_type
        else:
            return ""
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.StructType):
        return ", ".join(f.encode_name for f in info.fields)
    if isinstance(info, msgspec.inspect.UnionType):
        return "dist, and by dist " + "; ".join(
            f"{t.cls.__struct_config__.tag}: " + ", ".join(f.encode_name for f in t.fields)
            for t in info.types if isinstance(t, msgspec.inspect.StructType))
    return ""


def _unwrap(info: Any) -> Any:
    """Drop ``None`` from optional types; a single remaining member stands for itself."""
    if isinstance(info, msgspec.inspect.UnionType):
        members = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(members) == 1:
            return members[0]
        return msgspec.inspect.UnionType(types=tuple(members))
    return info


# -- loading ------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 without base-60 numbers, so ``12:30`` stays a time, not 750."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(_INT, re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_YamlLoader.add_implicit_resolver(_FLOAT, re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def _string_keys(value: Any) -> Any:
    """Mapping keys as strings: YAML reads ``1: 0.5`` or a bare phone number as an int."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int | float) and not isinstance(k, bool) else k:
                _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _read_yaml(path: Path) -> Any:
    try:
        return _string_keys(yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``callcore/scenarios`` (``*-flows.yaml`` are the
    IVR flows they use)."""
    return sorted(p.stem for p in BUNDLED.glob("*.yaml") if not p.stem.endswith("-flows"))


def resolve_source(source: Path | str) -> Path:
    """A scenario path, or the name of a bundled scenario (``demo``, ``large``)."""
    path = Path(source)
    if path.exists():
        return path
    if isinstance(source, str) and source in bundled_scenarios():
        return BUNDLED / f"{source}.yaml"
    raise ScenarioError(f"{source}: no such scenario file; give a path or one of the bundled "
                        f"scenarios: {', '.join(bundled_scenarios())}")


def load_scenario(source: Path | str | Mapping[str, Any], *,
                  base: Path | None = None) -> Scenario:
    """Load and check a scenario from a YAML file, a bundled name or a mapping.

    Relative paths inside it (``center_file``, ``forecast``, ``schedule_file``) are
    resolved against the file's folder (``base`` for a mapping, default the current
    folder) and made absolute; ``center_file`` is read into ``center``.
    """
    if isinstance(source, Mapping):
        raw: Any = _string_keys(dict(source))
        where = "scenario"
        folder = base or Path.cwd()
    else:
        path = resolve_source(source)
        raw = _read_yaml(path)
        where = str(path)
        folder = path.resolve().parent
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: a scenario is a mapping of settings, got "
                            f"{type(raw).__name__}")
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{where}: {_hint(str(exc), raw)}") from None
    scenario = _absolute_paths(scenario, folder)
    if scenario.center_file is not None and scenario.center is None:
        try:
            center = load_center(_read_yaml(Path(scenario.center_file)))
        except CenterConfigError as exc:
            raise ScenarioError(f"{where}: center_file {scenario.center_file}: {exc}") from None
        scenario = msgspec.structs.replace(scenario, center=center, center_file=None)
    problems = scenario.problems()
    if not problems:
        problems = _file_problems(scenario)
    if problems:
        raise ScenarioError(f"{where}: " + "; ".join(problems))
    return scenario


def _absolute_paths(scenario: Scenario, folder: Path) -> Scenario:
    def absolute(value: str | None) -> str | None:
        return None if value is None else str((folder / value).resolve())

    arrivals = [msgspec.structs.replace(a, forecast=absolute(a.forecast))
                for a in scenario.arrivals]
    return msgspec.structs.replace(
        scenario, arrivals=arrivals, center_file=absolute(scenario.center_file),
        schedule_file=absolute(scenario.schedule_file), calendar=absolute(scenario.calendar),
        flows=[str((folder / f).resolve()) for f in scenario.flows])


def _file_problems(scenario: Scenario) -> list[str]:
    """Problems of the referenced forecast and schedule files."""
    found: list[str] = []
    center = scenario.center_config()
    for i, arrival in enumerate(scenario.arrivals):
        if arrival.forecast is not None:
            try:
                read_forecast(arrival, center)
            except ScenarioError as exc:
                found.append(f"arrivals[{i}].forecast: {exc}")
    if scenario.schedule_file is not None:
        try:
            read_schedule(scenario.schedule_file, center)
        except ScenarioError as exc:
            found.append(f"schedule_file: {exc}")
    try:
        flows, calendar = load_ivr(scenario)
    except ScenarioError as exc:
        return [*found, str(exc)]
    return found + _ivr_problems(scenario, center, flows, calendar)


# -- IVR flows, calendar and hooks ----------------------------------------------------------


_INPUT_NODES = (ivr.MenuNode, ivr.CollectNode, ivr.PinCheckNode, ivr.SurveyNode)


def load_ivr(scenario: Scenario) -> tuple[dict[str, ivr.Flow], BusinessCalendar | None]:
    """The scenario's IVR flows and business calendar, validated (IVR-04, CC-05)."""
    calendar = None
    if scenario.calendar is not None:
        try:
            calendar = load_calendar(Path(scenario.calendar))
        except (CalendarConfigError, OSError) as exc:
            raise ScenarioError(f"calendar: {exc}") from None
    if not scenario.flows:
        return {}, calendar
    try:
        flows = ivr.load_flows(*scenario.flows, hooks=set(scenario.hooks),
                               schedules=None if calendar is None else set(calendar.schedules))
    except ivr.FlowError as exc:
        raise ScenarioError("flows: " + "; ".join(str(p) for p in exc.problems) +
                            " (hooks the flows call need an entry under 'hooks')") from None
    except OSError as exc:
        raise ScenarioError(f"flows: {exc}") from None
    return flows, calendar


def _ivr_problems(scenario: Scenario, center: CenterConfig, flows: dict[str, ivr.Flow],
                  calendar: BusinessCalendar | None) -> list[str]:
    found: list[str] = []
    schedules = set(calendar.schedules) if calendar is not None else set()
    for number in center.numbers:
        if number.entry.kind == "ivr" and number.entry.target not in flows:
            found.append(f"center.numbers: {number.number} enters IVR flow "
                         f"{number.entry.target!r}; add the file defining it to 'flows'")
        if number.schedule is not None and number.schedule not in schedules:
            found.append(f"center.numbers: {number.number} follows schedule "
                         f"{number.schedule!r}; give a 'calendar' file that defines it")
    for flow in flows.values():
        for name, node in flow.nodes.items():
            if isinstance(node, ivr.TimeBranchNode) and calendar is None:
                found.append(f"flows: flow {flow.name!r} node {name!r} is a time branch; give "
                             "a 'calendar' file")
            if (isinstance(node, ivr.TransferNode) and "{" not in node.target
                    and node.target_kind in ("queue", "agent")):
                known = ({q.name for q in center.queues} if node.target_kind == "queue"
                         else {a.id for a in center.agents})
                if node.target not in known:
                    found.append(f"flows: flow {flow.name!r} node {name!r} transfers to unknown "
                                 f"{node.target_kind} {node.target!r}; add it to the center "
                                 "or fix the flow")
            if isinstance(node, ivr.LookupNode | ivr.PinCheckNode):
                missing = set(node.store) - set(scenario.hooks[node.hook].values)
                if missing:
                    found.append(f"hooks.{node.hook}.values: flow {flow.name!r} node {name!r} "
                                 f"stores {', '.join(sorted(missing))}; add them")
    for i, menu in enumerate(scenario.ivr):
        flow = flows.get(menu.flow)
        if flow is None:
            if not menu.flow.startswith("survey:"):
                found.append(f"ivr[{i}].flow: no IVR flow {menu.flow!r} is loaded; known: "
                             f"{_known(list(flows))} (or survey:<name> for a built-in survey)")
        elif menu.node is not None and not isinstance(flow.nodes.get(menu.node), _INPUT_NODES):
            inputs = [n for n, node in flow.nodes.items() if isinstance(node, _INPUT_NODES)]
            found.append(f"ivr[{i}].node: {menu.node!r} is not a node of flow {menu.flow!r} "
                         f"that waits for keys; use one of {_known(inputs)}")
    return found


def prompt_nodes(flows: dict[str, ivr.Flow]) -> dict[tuple[str, str], str]:
    """(flow, prompt label) -> the input node that plays it before waiting for keys.

    The engine reports the prompt (``call.announcement_played``, kind ``prompt``), not the
    node, so this tells the simulator which menu a caller is listening to.
    """
    found: dict[tuple[str, str], str] = {}
    for flow in flows.values():
        for name, node in flow.nodes.items():
            if isinstance(node, _INPUT_NODES):
                spec = node.prompt
                label = spec.file if isinstance(spec, ivr.Prompt) and spec.file else (
                    f"{name}.prompt")
                found.setdefault((flow.name, label), name)
    return found


# -- published forecasts and schedules (WF-02, WF-06) ------------------------------------


class ShiftInstance(NamedTuple):
    """One agent's shift at absolute instants (epoch ms), breaks as not-ready reasons."""

    agent_id: str
    start_ms: int
    end_ms: int
    activities: tuple[tuple[int, int, str], ...]
    """(start_ms, end_ms, reason) of each break, in time order."""


def _read_events(path: str) -> list[Event[Payload]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return [decode_event(text)]  # one event, possibly pretty-printed
    except InvalidEventError:
        lines = [line for line in text.splitlines() if line.strip()]
    events: list[Event[Payload]] = []
    for number, line in enumerate(lines, start=1):
        try:
            events.append(decode_event(line))
        except InvalidEventError as exc:
            raise ScenarioError(f"{path}:{number}: not a contract event: {exc.reason}") from None
    return events


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def read_forecast(arrival: ArrivalProfile, center: CenterConfig) -> list[tuple[int, int, float]]:
    """The (start_ms, end_ms, expected calls) intervals of an arrival's published forecast.

    The file holds ``wfm.forecast_published`` events (JSON or JSON lines); the latest
    version for ``forecast_queue`` (default: the queue the number enters) is used.
    """
    if arrival.forecast is None:
        return []
    queue = arrival.forecast_queue
    if queue is None:
        entries = [n.entry for n in center.numbers if n.number == arrival.number]
        if entries and entries[0].kind == "queue":
            queue = entries[0].target
    forecasts = [e.payload for e in _read_events(arrival.forecast)
                 if isinstance(e.payload, ForecastPublished)]
    if queue is not None:
        forecasts = [f for f in forecasts if f.queue == queue]
    if not forecasts:
        raise ScenarioError(f"{arrival.forecast}: no wfm.forecast_published event for queue "
                            f"{queue!r}; set forecast_queue or publish one")
    latest = max(forecasts, key=lambda f: f.version)
    step = latest.interval_minutes * 60_000
    return [(_ms(i.start), _ms(i.start) + step, i.calls * arrival.scale)
            for i in sorted(latest.intervals, key=lambda i: i.start)]


def read_schedule(path: str, center: CenterConfig) -> list[ShiftInstance]:
    """The shifts of the published schedules in ``path`` (``wfm.schedule_published``
    events; of several versions of one schedule, the latest)."""
    latest: dict[str, SchedulePublished] = {}
    for event in _read_events(path):
        payload = event.payload
        if isinstance(payload, SchedulePublished):
            known = latest.get(payload.schedule_id)
            if known is None or payload.version > known.version:
                latest[payload.schedule_id] = payload
    if not latest:
        raise ScenarioError(f"{path}: no wfm.schedule_published event in it")
    agents = {a.id for a in center.agents}
    shifts: list[ShiftInstance] = []
    for schedule in latest.values():
        for shift in schedule.shifts:
            if shift.agent_id not in agents:
                raise ScenarioError(f"{path}: schedule {schedule.schedule_id} has a shift for "
                                    f"unknown agent {shift.agent_id!r}; add the agent to "
                                    "the center")
            activities = tuple(sorted((_ms(a.start), _ms(a.end), a.kind)
                                      for a in shift.activities))
            shifts.append(ShiftInstance(shift.agent_id, _ms(shift.start), _ms(shift.end),
                                        activities))
    return sorted(shifts, key=lambda s: (s.start_ms, s.agent_id))


# -- schema ----------------------------------------------------------------------------------


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files."""
    schema = msgspec.json.schema(Scenario)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "queuecast simulation scenario", **schema}


def export_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write ``scenario_schema()`` to ``path`` (default ``docs/scenario.schema.json``)."""
    text = msgspec.json.format(msgspec.json.encode(scenario_schema()), indent=2).decode()
    path.write_text(text + "\n", encoding="utf-8")
    return path
