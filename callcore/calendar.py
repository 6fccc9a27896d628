"""Business calendar (CC-05): regular hours, special days and public holidays per schedule.

A calendar has one timezone and several named schedules (``hotline``, ``clinic``). Each
schedule has weekly hours (several ranges a day, so a lunch break shows), hours for official
make-up workdays and for public holidays, and its own special working and non-working days.

Which dates are public holidays or official make-up workdays comes, in order of precedence,
from the admin ``overrides``, then from ``chinese_calendar`` (the official schedule, published
years only), then from the rule-based ``holidays`` package (lunar holidays computed for any
year, but make-up workdays only where the package knows them). When the State Council publishes
a new year's schedule, admins enter it in ``overrides`` and list the year in
``complete_years`` so that the rule-based guesses for that year are ignored.

Everything is pure: the instant is always a parameter and nothing reads the clock. Day plans
are cached per date, so ``state`` costs a timezone conversion and a bisection.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
import holidays
import msgspec

from callcore.yamlfiles import read_document

__all__ = [
    "BusinessCalendar",
    "CalendarConfig",
    "CalendarConfigError",
    "CalendarDay",
    "CalendarState",
    "DayKind",
    "DayOverride",
    "ScheduleConfig",
    "WeeklyHours",
    "load_calendar",
]

CalendarState = Literal["open", "closed", "holiday", "lunch"]
DayKind = Literal["regular", "holiday", "workday"]
"""``regular``: the weekly hours apply; ``holiday``: a public holiday; ``workday``: an
official make-up workday (调休上班), usually a Saturday or Sunday."""

_DAY_S = 86_400
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


class CalendarConfigError(ValueError):
    """The calendar configuration is invalid; the message names each problem's path."""


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class WeeklyHours(_Config, frozen=True, kw_only=True):
    """Opening ranges (``"08:00-12:00"``, local time, end exclusive, ``24:00`` allowed) per
    weekday. ``mon_fri`` applies to Monday-Friday unless that day has its own entry; an
    empty list means closed all day."""

    mon_fri: list[str] = msgspec.field(default_factory=list)
    mon: list[str] | None = None
    tue: list[str] | None = None
    wed: list[str] | None = None
    thu: list[str] | None = None
    fri: list[str] | None = None
    sat: list[str] | None = None
    sun: list[str] | None = None


class ScheduleConfig(_Config, frozen=True, kw_only=True):
    """One schedule's hours and special days."""

    weekly: WeeklyHours = msgspec.field(default_factory=WeeklyHours)
    makeup_hours: list[str] | None = None
    """Hours on official make-up workdays; ``None`` uses Monday's hours."""
    holiday_hours: list[str] = msgspec.field(default_factory=list)
    """Hours on public holidays (a hotline's reduced service); closed by default."""
    open_days: dict[date, list[str]] = msgspec.field(default_factory=dict)
    """Special working days of this schedule with their hours; they win over everything."""
    closed_days: dict[date, str] = msgspec.field(default_factory=dict)
    """Special non-working days of this schedule, with the reason; state ``holiday``."""
    lunch_window: str = "11:00-15:00"
    """A closed gap between two opening ranges of a day is ``lunch`` if it lies inside this."""


class DayOverride(_Config, frozen=True, kw_only=True):
    """An admin's ruling on one date; wins over the built-in holiday data."""

    kind: DayKind
    name: str | None = None


class CalendarConfig(_Config, frozen=True, kw_only=True):
    """The whole calendar, as loaded from YAML or a mapping."""

    timezone: str = "Asia/Shanghai"
    country: str | None = "CN"
    """ISO code for built-in public holidays; ``None`` uses the overrides only. ``CN`` uses
    ``chinese_calendar`` with ``holidays`` as fallback, any other country ``holidays``."""
    subdivision: str | None = None
    """A ``holidays`` subdivision (state, province) of ``country``."""
    overrides: dict[date, DayOverride] = msgspec.field(default_factory=dict)
    complete_years: list[int] = msgspec.field(default_factory=list)
    """Years whose whole official schedule is in ``overrides``: built-in data is ignored."""
    schedules: dict[str, ScheduleConfig] = msgspec.field(default_factory=dict)


class CalendarDay(msgspec.Struct, frozen=True, kw_only=True):
    """What the calendar says about one date, before any schedule's hours."""

    kind: DayKind
    name: str | None = None


_Ranges = tuple[tuple[int, int], ...]
_Plan = tuple[tuple[int, ...], tuple[CalendarState, ...]]


class _Schedule(msgspec.Struct, frozen=True, kw_only=True):
    weekly: tuple[_Ranges, ...]
    makeup: _Ranges
    holiday: _Ranges
    open_days: dict[date, _Ranges]
    closed_days: frozenset[date]
    lunch: tuple[int, int]


def _clock_seconds(hours: str, minutes: str) -> int | None:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 3600 + m * 60


def _parse_range(text: str, path: str, problems: list[str]) -> tuple[int, int] | None:
    match = _RANGE.fullmatch(text)
    start = end = None
    if match:
        start, end = _clock_seconds(*match.group(1, 2)), _clock_seconds(*match.group(3, 4))
    if start is None or end is None:
        problems.append(f"{path}: {text!r} is not a time range; write HH:MM-HH:MM, e.g. "
                        "08:00-12:00")
        return None
    if end <= start:
        problems.append(f"{path}: {text!r} ends before it starts; a range cannot cross "
                        "midnight, split it at 24:00 and give the rest to the next day")
        return None
    return start, end


def _parse_ranges(texts: list[str], path: str, problems: list[str]) -> _Ranges:
    parsed = [(r, i) for i, t in enumerate(texts)
              if (r := _parse_range(t, f"{path}[{i}]", problems)) is not None]
    parsed.sort()
    merged: list[tuple[int, int]] = []
    for (start, end), i in parsed:
        if merged and start < merged[-1][1]:
            problems.append(f"{path}[{i}]: {texts[i]!r} overlaps another range of the same "
                            "day; make the ranges disjoint")
        elif merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _compile(name: str, config: ScheduleConfig, problems: list[str]) -> _Schedule:
    path = f"schedules.{name}"
    mon_fri = _parse_ranges(config.weekly.mon_fri, f"{path}.weekly.mon_fri", problems)
    weekly: list[_Ranges] = []
    for i, day in enumerate(_WEEKDAYS):
        own: list[str] | None = getattr(config.weekly, day)
        if own is not None:
            weekly.append(_parse_ranges(own, f"{path}.weekly.{day}", problems))
        else:
            weekly.append(mon_fri if i < 5 else ())
    makeup = (weekly[0] if config.makeup_hours is None
              else _parse_ranges(config.makeup_hours, f"{path}.makeup_hours", problems))
    for day in sorted(set(config.open_days) & set(config.closed_days)):
        problems.append(f"{path}: {day} is in both open_days and closed_days; keep one")
    lunch = _parse_range(config.lunch_window, f"{path}.lunch_window", problems) or (0, 0)
    return _Schedule(
        weekly=tuple(weekly),
        makeup=makeup,
        holiday=_parse_ranges(config.holiday_hours, f"{path}.holiday_hours", problems),
        open_days={d: _parse_ranges(r, f"{path}.open_days.{d}", problems)
                   for d, r in config.open_days.items()},
        closed_days=frozenset(config.closed_days),
        lunch=lunch,
    )


def _plan_of(ranges: _Ranges, base: CalendarState, lunch: tuple[int, int]) -> _Plan:
    points: list[tuple[int, CalendarState]] = []
    cursor = 0
    for i, (start, end) in enumerate(ranges):
        if start > cursor:
            between = i > 0 and lunch[0] <= cursor and start <= lunch[1]
            points.append((cursor, "lunch" if between else base))
        points.append((start, "open"))
        cursor = end
    if cursor < _DAY_S:
        points.append((cursor, base))
    return tuple(p[0] for p in points), tuple(p[1] for p in points)


class BusinessCalendar:
    """Schedules' states at any instant (CC-05). Build with ``load_calendar`` or from a
    ``CalendarConfig``; raises ``CalendarConfigError`` naming every problem."""

    def __init__(self, config: CalendarConfig) -> None:
        problems: list[str] = []
        try:
            self._tz = ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"timezone: {config.timezone!r} is not an IANA timezone; use e.g. "
                            "Asia/Shanghai")
            self._tz = ZoneInfo("UTC")
        if config.country is not None:
            try:
                holidays.country_holidays(config.country, subdiv=config.subdivision, years=2000)
            except NotImplementedError as exc:
                problems.append(f"country/subdivision: {exc}; use an ISO 3166 code known to "
                                "the holidays package, e.g. CN, or null for overrides only")
        elif config.subdivision is not None:
            problems.append("subdivision: set without a country; set country or remove it")
        for day, override in config.overrides.items():
            if override.kind != "regular" and not override.name:
                problems.append(f"overrides.{day}: a {override.kind} needs a name, e.g. 春节")
        for year in config.complete_years:
            if not any(d.year == year for d in config.overrides):
                problems.append(f"complete_years: {year} has no overrides; enter its official "
                                "holidays and make-up workdays first")
        self._schedules = {name: _compile(name, s, problems)
                           for name, s in config.schedules.items()}
        if problems:
            raise CalendarConfigError("; ".join(problems))
        self.config = config
        self._complete = frozenset(config.complete_years)
        # Bound caches: a simulated year touches ~365 dates per schedule.
        self._day = lru_cache(maxsize=4096)(self._compute_day)
        self._plan = lru_cache(maxsize=16_384)(self._compute_plan)
        self._year_holidays = lru_cache(maxsize=64)(self._rule_based_year)

    @property
    def timezone(self) -> ZoneInfo:
        """The timezone all hours are in."""
        return self._tz

    @property
    def schedules(self) -> tuple[str, ...]:
        """Names of the schedules, in configuration order."""
        return tuple(self._schedules)

    def day(self, day: date | datetime) -> CalendarDay:
        """What the calendar says about a date (or an aware instant's local date)."""
        return self._day(self._local_date(day))

    def holiday_name(self, at: date | datetime) -> str | None:
        """The public holiday's name on that date (local date of an aware instant), else
        ``None``. Built-in names are the sources' English names; override names as given."""
        found = self.day(at)
        return found.name if found.kind == "holiday" else None

    def state(self, schedule: str, at: datetime) -> CalendarState:
        """The state of ``schedule`` at the aware instant ``at``.

        The local date's hours come from, first to last: the schedule's ``closed_days``
        (``holiday`` all day), its ``open_days``, then the day kind: ``holiday_hours`` on a
        public holiday, ``makeup_hours`` on a make-up workday, else the weekly hours. Inside
        a range the state is ``open``. Outside, it is ``lunch`` in a gap between two ranges
        of that day when the gap lies entirely inside ``lunch_window`` (default
        11:00-15:00), ``holiday`` on a public holiday or special non-working day, and
        ``closed`` otherwise (before the first range, after the last, other gaps).
        """
        local = self._local(at)
        starts, states = self._plan(schedule, local.date())
        return states[bisect_right(starts, _seconds(local)) - 1]

    def is_open(self, schedule: str, at: datetime) -> bool:
        """Whether ``schedule`` is open at ``at``."""
        return self.state(schedule, at) == "open"

    def next_change(
        self, schedule: str, at: datetime, *, horizon: timedelta = timedelta(days=366)
    ) -> datetime | None:
        """The first instant after ``at`` whose state differs from ``state(schedule, at)``,
        in the calendar's timezone; ``None`` if the state holds for all of ``horizon``.

        Hours are wall-clock times: in a zone with daylight saving (not Asia/Shanghai), a
        boundary inside a skipped or repeated hour may be reported up to that hour off.
        """
        local = self._local(at)
        today = local.date()
        starts, states = self._plan(schedule, today)
        i = bisect_right(starts, _seconds(local)) - 1
        current = states[i]
        limit = local + horizon
        change: datetime | None = None
        if i + 1 < len(starts):
            change = self._instant(today, starts[i + 1])
        else:
            for offset in range(1, horizon.days + 2):
                day = today + timedelta(days=offset)
                starts, states = self._plan(schedule, day)
                if states[0] != current:
                    change = self._instant(day, 0)
                elif len(starts) > 1:
                    change = self._instant(day, starts[1])
                if change is not None:
                    break
        return change if change is not None and change <= limit else None

    def _local(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"at={at.isoformat()} has no timezone; pass an aware datetime, "
                             "e.g. datetime(..., tzinfo=UTC)")
        return at.astimezone(self._tz)

    def _local_date(self, day: date | datetime) -> date:
        return self._local(day).date() if isinstance(day, datetime) else day

    def _instant(self, day: date, seconds: int) -> datetime:
        clock = time(seconds // 3600, seconds % 3600 // 60, seconds % 60)
        return datetime.combine(day, clock, tzinfo=self._tz)

    def _compute_plan(self, schedule: str, day: date) -> _Plan:
        try:
            s = self._schedules[schedule]
        except KeyError:
            known = ", ".join(self._schedules) or "(none)"
            raise KeyError(f"unknown schedule {schedule!r}; known: {known}") from None
        if day in s.closed_days:
            return (0,), ("holiday",)
        if day in s.open_days:
            return _plan_of(s.open_days[day], "closed", s.lunch)
        kind = self._day(day).kind
        if kind == "holiday":
            return _plan_of(s.holiday, "holiday", s.lunch)
        if kind == "workday":
            return _plan_of(s.makeup, "closed", s.lunch)
        return _plan_of(s.weekly[day.weekday()], "closed", s.lunch)

    def _compute_day(self, day: date) -> CalendarDay:
        override = self.config.overrides.get(day)
        if override is not None:
            return CalendarDay(kind=override.kind, name=override.name)
        country = self.config.country
        if country is None or day.year in self._complete:
            return CalendarDay(kind="regular")
        if country == "CN":
            try:
                is_holiday, name = chinese_calendar.get_holiday_detail(day)
            except NotImplementedError:
                pass  # a year chinese_calendar has no official data for: rule-based below
            else:
                if name is None:
                    return CalendarDay(kind="regular")
                return CalendarDay(kind="holiday" if is_holiday else "workday", name=name)
        rules = self._year_holidays(country, day.year)
        if day in rules:
            return CalendarDay(kind="holiday", name=rules[day])
        if day in getattr(rules, "weekend_workdays", ()):
            return CalendarDay(kind="workday", name="Make-up workday")
        return CalendarDay(kind="regular")

    def _rule_based_year(self, country: str, year: int) -> holidays.HolidayBase:
        return holidays.country_holidays(country, subdiv=self.config.subdivision, years=year)


def _seconds(local: datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def load_calendar(source: Path | str | Mapping[str, Any]) -> BusinessCalendar:
    """Load a business calendar from a YAML file or a mapping (CC-05).

    Raises ``CalendarConfigError`` naming the file and the path of each problem.
    """
    raw, where = read_document(source, what="calendar configuration", error=CalendarConfigError)
    try:
        config = msgspec.convert(raw, CalendarConfig)
    except msgspec.ValidationError as exc:
        raise CalendarConfigError(f"{where}: {_locate(raw, exc)}") from None
    try:
        return BusinessCalendar(config)
    except CalendarConfigError as exc:
        raise CalendarConfigError(f"{where}: {exc}") from None


def _locate(raw: Any, error: msgspec.ValidationError) -> str:
    """msgspec hides mapping keys (``$.schedules[...]``); name the schedule at fault."""
    schedules = raw.get("schedules") if isinstance(raw, Mapping) else None
    if isinstance(schedules, Mapping):
        for name, schedule in schedules.items():
            try:
                msgspec.convert(schedule, ScheduleConfig)
            except msgspec.ValidationError as inner:
                return f"schedule {name!r}: {inner}"
    return str(error)
