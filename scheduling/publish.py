"""Publishing schedules as versioned events with an audit trail (WF-06, WF-09, WF-10).

``ScheduleBook`` is an immutable aggregate in the eventsourcing manner, one book per site
(one IANA time zone) holding every schedule by ``schedule_id``. A command (``publish``,
``edit``) validates against the current book and either raises a ``ScheduleCommandError``
(nothing changes) or returns a ``Decision``: the contract events
(``wfm.schedule_published`` / ``wfm.schedule_changed``) and the book after them, built by
the pure mutator ``apply(book, event)``. ``replay(events, timezone=...)`` rebuilds a book
from events alone, without re-running the checks.

Shifts come in as a roster frame (``agent_id`` plus the shift-frame columns of
``scheduling.model``, naive local wall-clock times) and are published in UTC; naive local
times that do not exist or are ambiguous on a DST change are refused, naming the shift
(give such a time as a tz-aware timestamp instead). See ``docs/adherence.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ingest.contract import (
    Event,
    InvalidEventError,
    ScheduleChanged,
    ScheduledActivity,
    ScheduledShift,
    SchedulePublished,
    decode_event,
    encode_event,
    make_event,
)
from scheduling.model import Activity, ShiftFrameError, check_shift_frame, time_zone

__all__ = [
    "CURRENT_COLUMNS",
    "HISTORY_COLUMNS",
    "SCHEDULE_ROW_COLUMNS",
    "SEGMENT_COLUMNS",
    "WORK",
    "Decision",
    "LocalTimeError",
    "Revision",
    "Schedule",
    "ScheduleBook",
    "ScheduleCommandError",
    "ScheduleEvent",
    "UnknownScheduleError",
    "VersionConflictError",
    "apply",
    "events_to_frame",
    "replay",
    "revision_rows",
    "schedule_rows",
    "schedule_segments",
    "shifts_to_events",
]

WORK = "work"
"""The scheduled activity of shift time that no activity (break, lunch, ...) covers."""

CURRENT_COLUMNS: tuple[str, ...] = (
    "agent_id", "template", "day", "start", "end", "start_utc", "end_utc", "paid_minutes",
    "activities",
)
"""Columns of ``ScheduleBook.current``: one row per agent shift. ``start`` / ``end`` and the
``activities`` (``model.Activity``) are naive local times, as in a roster frame, so the rows
can be edited and passed back to ``ScheduleBook.edit``; ``start_utc`` / ``end_utc`` are
tz-aware UTC; ``day`` is the local date the shift starts on; ``paid_minutes`` is elapsed
time (a night shift over a DST change is an hour shorter or longer) minus unpaid
activities."""

SEGMENT_COLUMNS: tuple[str, ...] = ("agent_id", "activity", "start", "end", "paid", "template")
"""Columns of ``schedule_segments``: the schedule cut into activity segments, one row per
agent and segment, ``activity`` = ``"work"`` or the activity kind, UTC tz-aware times;
``scheduling.adherence`` reads this frame."""

SCHEDULE_ROW_COLUMNS: tuple[str, ...] = (
    "schedule_id", "queue", "version", "agent_id", "kind", "start_utc", "end_utc", "paid",
    "template", "published_at", "published_by",
)
"""Columns of ``schedule_rows``, the warehouse fact "published schedules, shift per agent":
one row per agent shift (``kind`` = ``"shift"``) and per activity in it (``kind`` = the
activity kind) for every version."""

HISTORY_COLUMNS: tuple[str, ...] = (
    "version", "action", "at", "by", "reason", "event_id", "agent_id", "added", "removed",
)
"""Columns of ``ScheduleBook.history``: one row per version and agent it touched."""

ScheduleEvent = Event[SchedulePublished] | Event[ScheduleChanged]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SOURCE = "scheduling"


# -- errors ----------------------------------------------------------------------------


class ScheduleCommandError(ValueError):
    """A publish or edit was refused; the book is unchanged. The message says the fix."""


class UnknownScheduleError(ScheduleCommandError):
    """No schedule with this ``schedule_id`` has been published."""


class VersionConflictError(ScheduleCommandError):
    """The schedule moved on since the caller read it (optimistic concurrency)."""

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class LocalTimeError(ScheduleCommandError):
    """A naive local time does not exist, or exists twice, on a DST change."""


# -- state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Revision:
    """One version of a schedule: who made it, when, why, and what changed.

    ``shifts`` is the whole schedule after this version; ``added`` / ``removed`` the shifts
    that entered or left it (a shift whose breaks moved is removed and added again);
    ``agent_ids`` the agents an edit listed, or for a full publish those whose shifts changed;
    ``start`` / ``end`` the edit window or the published horizon (UTC).
    """

    version: int
    action: Literal["published", "changed"]
    at: datetime
    by: str
    reason: str | None
    event_id: str
    agent_ids: tuple[str, ...]
    start: datetime
    end: datetime
    added: tuple[ScheduledShift, ...]
    removed: tuple[ScheduledShift, ...]
    shifts: tuple[ScheduledShift, ...]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A published schedule and its versions, latest last."""

    schedule_id: str
    queue: str
    start: datetime
    end: datetime
    revisions: tuple[Revision, ...]

    @property
    def version(self) -> int:
        """The current version."""
        return self.revisions[-1].version

    @property
    def shifts(self) -> tuple[ScheduledShift, ...]:
        """The current shifts, ordered by agent and start."""
        return self.revisions[-1].shifts


@dataclass(frozen=True, slots=True)
class Decision:
    """What a command decided: its events and the book after applying them."""

    book: ScheduleBook
    events: tuple[ScheduleEvent, ...]


@dataclass(frozen=True, slots=True)
class ScheduleBook:
    """Every published schedule of one site, by ``schedule_id`` (immutable).

    ``timezone`` (IANA, e.g. ``"Europe/Berlin"``) is the site's: roster and edit frames are
    read in it and ``current``/``history`` show local times in it. The events carry UTC
    times only, so ``replay`` needs the same zone.
    """

    timezone: str
    schedules: Mapping[str, Schedule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _zone(self.timezone)
        object.__setattr__(self, "schedules", MappingProxyType(dict(self.schedules)))

    # -- commands ----------------------------------------------------------------------

    def publish(
        self,
        roster_assignments: pd.DataFrame,
        *,
        schedule_id: str,
        published_by: str,
        queue: str,
        now: datetime,
        start: datetime | None = None,
        end: datetime | None = None,
        expected_version: int = 0,
        source: str = _SOURCE,
        site: str = "main",
    ) -> Decision:
        """Publish the roster as a full version of ``schedule_id`` (``wfm.schedule_published``).

        ``roster_assignments``: one row per agent shift, ``agent_id`` plus the shift-frame
        columns (``start``, ``end``; optional ``template``, ``activities``; ``count`` must be
        1 if present) in naive local time. ``start``/``end`` bound the planning horizon
        (default: the first shift start and last shift end); every shift must start in it.
        ``expected_version`` is the version the caller read: 0 for a new schedule, the current
        version to replace a published schedule as a whole.
        """
        _required("schedule_id", schedule_id)
        _required("published_by", published_by)
        _required("queue", queue)
        existing = self.schedules.get(schedule_id)
        _check_version(schedule_id, expected_version, existing.version if existing else 0)
        shifts = shifts_to_events(roster_assignments, timezone=self.timezone,
                                  argument="roster_assignments")
        if not shifts:
            raise ScheduleCommandError("roster_assignments is empty; give at least one agent "
                                       "shift to publish")
        first = _local_to_utc([start], self.timezone, ["start"])[0] if start is not None \
            else min(s.start for s in shifts)
        last = _local_to_utc([end], self.timezone, ["end"])[0] if end is not None \
            else max(s.end for s in shifts)
        if not first < last:
            raise ScheduleCommandError(f"start {first} is not before end {last}; give a "
                                       "horizon with start < end")
        outside = [s for s in shifts if not first <= s.start < last]
        if outside:
            raise ScheduleCommandError(
                f"roster_assignments: {_describe(outside[0], self.timezone)} of agent "
                f"{outside[0].agent_id} starts outside the horizon {first}..{last}; widen "
                "start/end or drop the shift")
        payload = SchedulePublished(
            queue=queue, schedule_id=schedule_id,
            version=(existing.version if existing else 0) + 1,
            start=first, end=last, published_by=published_by, shifts=shifts)
        return self._decide(payload, now=now, source=source, site=site)

    def edit(
        self,
        agent_ids: Sequence[str],
        shifts: pd.DataFrame | None,
        *,
        schedule_id: str,
        start: datetime,
        end: datetime,
        changed_by: str,
        now: datetime,
        reason: str | None = None,
        expected_version: int | None = None,
        source: str = _SOURCE,
        site: str = "main",
    ) -> Decision:
        """Replace the listed agents' shifts that start in ``[start, end)`` (``schedule_changed``).

        ``shifts``: the agents' new shifts (roster frame, naive local time), each starting in
        the window; ``None`` or an empty frame removes them. ``start``/``end`` are naive local
        (or tz-aware). ``expected_version`` is the version the editor read; a stale one raises
        ``VersionConflictError`` (``None`` skips the check: last writer wins).
        """
        schedule = self._schedule(schedule_id)
        _required("changed_by", changed_by)
        if expected_version is not None:
            _check_version(schedule_id, expected_version, schedule.version)
        agents = tuple(dict.fromkeys(agent_ids))
        if not agents or not all(isinstance(a, str) and a for a in agents):
            raise ScheduleCommandError(f"agent_ids must name at least one agent, got "
                                       f"{list(agent_ids)!r}")
        ws, we = _local_to_utc([start, end], self.timezone, ["start", "end"])
        if not ws < we:
            raise ScheduleCommandError(f"window start {start} is not before end {end}; give "
                                       "start < end")
        new = [] if shifts is None or shifts.empty else shifts_to_events(
            shifts, timezone=self.timezone, argument="shifts")
        listed = set(agents)
        for shift in new:
            what = f"shifts: {_describe(shift, self.timezone)} of agent {shift.agent_id}"
            if shift.agent_id not in listed:
                raise ScheduleCommandError(f"{what} is for an agent not in agent_ids; add "
                                           f"{shift.agent_id!r} to agent_ids")
            if not ws <= shift.start < we:
                raise ScheduleCommandError(f"{what} starts outside the window {start}..{end}; "
                                           "widen the window")
        kept, removed = _split(schedule.shifts, listed, ws, we)
        if {_shift_key(s) for s in removed} == {_shift_key(s) for s in new}:
            raise ScheduleCommandError(f"the edit of {schedule_id} changes nothing for "
                                       f"{list(agents)} in {start}..{end}; nothing to publish")
        _check_overlaps(sorted((*kept, *new), key=_order), "shifts", self.timezone)
        payload = ScheduleChanged(
            queue=schedule.queue, schedule_id=schedule_id, version=schedule.version + 1,
            previous_version=schedule.version, changed_by=changed_by, reason=reason,
            agent_ids=list(agents), start=ws, end=we, shifts=new)
        return self._decide(payload, now=now, source=source, site=site)

    # -- queries -----------------------------------------------------------------------

    def current(self, schedule_id: str) -> pd.DataFrame:
        """The current shifts of ``schedule_id`` (``CURRENT_COLUMNS``, local and UTC)."""
        return events_to_frame(self._schedule(schedule_id).shifts, timezone=self.timezone)

    def segments(self, schedule_id: str) -> pd.DataFrame:
        """The current schedule cut into activity segments (``SEGMENT_COLUMNS``, UTC)."""
        return schedule_segments(self._schedule(schedule_id).shifts)

    def version(self, schedule_id: str) -> int:
        """The current version of ``schedule_id``."""
        return self._schedule(schedule_id).version

    def history(self, schedule_id: str) -> pd.DataFrame:
        """The audit trail: per version and agent touched, who, when, why, added/removed.

        ``added`` / ``removed`` are tuples of shift descriptions in local time, e.g.
        ``"2024-06-03 09:00-17:00 E8 [break 11:00-11:15]"``.
        """
        rows: list[tuple[Any, ...]] = []
        for rev in self._schedule(schedule_id).revisions:
            added = _by_agent(rev.added)
            removed = _by_agent(rev.removed)
            for agent in rev.agent_ids:
                rows.append((
                    rev.version, rev.action, pd.Timestamp(rev.at), rev.by, rev.reason,
                    rev.event_id, agent,
                    tuple(_describe(s, self.timezone) for s in added.get(agent, ())),
                    tuple(_describe(s, self.timezone) for s in removed.get(agent, ())),
                ))
        return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))

    # -- helpers -----------------------------------------------------------------------

    def _schedule(self, schedule_id: str) -> Schedule:
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            known = sorted(self.schedules)[:5]
            raise UnknownScheduleError(f"schedule_id {schedule_id!r} was never published "
                                       f"(known: {known}); publish it first")
        return schedule

    def _decide(self, payload: SchedulePublished | ScheduleChanged, *, now: datetime,
                source: str, site: str) -> Decision:
        try:
            event = make_event(payload, occurred_at=now, source=source, site=site)
        except ValueError as exc:
            raise ScheduleCommandError(f"now: {exc}") from None
        try:  # a command never emits what a consumer would dead-letter
            decode_event(encode_event(event), expected_type=payload.TYPE)
        except InvalidEventError as exc:
            raise ScheduleCommandError(f"the {payload.TYPE} event would break the event "
                                       f"contract: {exc.reason}") from None
        return Decision(book=apply(self, event), events=(event,))


# -- the mutator -----------------------------------------------------------------------


def apply(book: ScheduleBook, event: Event[Any]) -> ScheduleBook:
    """The book after ``event`` (pure, no checks).

    Events of other types, a change to a schedule never published, and redelivered events
    (a version not above the schedule's current one) leave the book as it is.
    """
    payload = event.payload
    if not isinstance(payload, SchedulePublished | ScheduleChanged):
        return book
    schedule = book.schedules.get(payload.schedule_id)
    if schedule is not None and payload.version <= schedule.version:
        return book
    before: tuple[ScheduledShift, ...] = schedule.shifts if schedule else ()
    if isinstance(payload, SchedulePublished):
        after = tuple(sorted(payload.shifts, key=_order))
        revision = _revision(payload.version, "published", event, payload.published_by, None,
                             None, payload.start, payload.end, before, after)
        revisions = (*schedule.revisions, revision) if schedule else (revision,)
        updated = Schedule(schedule_id=payload.schedule_id, queue=payload.queue,
                           start=payload.start, end=payload.end, revisions=revisions)
    else:
        if schedule is None:
            return book
        kept, _ = _split(before, set(payload.agent_ids), payload.start, payload.end)
        after = tuple(sorted((*kept, *payload.shifts), key=_order))
        revision = _revision(payload.version, "changed", event, payload.changed_by,
                             payload.reason, tuple(payload.agent_ids), payload.start,
                             payload.end, before, after)
        updated = Schedule(schedule_id=schedule.schedule_id, queue=schedule.queue,
                           start=schedule.start, end=schedule.end,
                           revisions=(*schedule.revisions, revision))
    return ScheduleBook(timezone=book.timezone,
                        schedules={**book.schedules, payload.schedule_id: updated})


def replay(events: Iterable[Event[Any]], *, timezone: str) -> ScheduleBook:
    """Rebuild a book from events alone (no checks); ``timezone`` is the site's."""
    book = ScheduleBook(timezone=timezone)
    for event in events:
        book = apply(book, event)
    return book


def _revision(version: int, action: Literal["published", "changed"], event: Event[Any],
              by: str, reason: str | None, agent_ids: tuple[str, ...] | None, start: datetime,
              end: datetime, before: tuple[ScheduledShift, ...],
              after: tuple[ScheduledShift, ...]) -> Revision:
    """``agent_ids`` None (a full publish): the agents whose shifts changed."""
    old = {_shift_key(s) for s in before}
    new = {_shift_key(s) for s in after}
    added = tuple(s for s in after if _shift_key(s) not in old)
    removed = tuple(s for s in before if _shift_key(s) not in new)
    if agent_ids is None:
        agent_ids = tuple(sorted({s.agent_id for s in (*added, *removed)}))
    return Revision(
        version=version, action=action, at=event.occurred_at, by=by, reason=reason,
        event_id=event.id, agent_ids=agent_ids, start=start, end=end, added=added,
        removed=removed, shifts=after)


def _split(shifts: Iterable[ScheduledShift], agents: set[str], start: datetime,
           end: datetime) -> tuple[list[ScheduledShift], list[ScheduledShift]]:
    """(kept, replaced): a shift is replaced when its agent is listed and it starts in the
    window; the same rule in commands and in ``apply``."""
    kept: list[ScheduledShift] = []
    replaced: list[ScheduledShift] = []
    for shift in shifts:
        hit = shift.agent_id in agents and start <= shift.start < end
        (replaced if hit else kept).append(shift)
    return kept, replaced


# -- conversions -----------------------------------------------------------------------


def shifts_to_events(
    frame: pd.DataFrame, *, timezone: str, argument: str = "shifts"
) -> list[ScheduledShift]:
    """Roster rows (naive local times) -> the events' ``ScheduledShift`` parts in UTC.

    Checks each shift (end after start, activities inside it and not overlapping each
    other, no two shifts of one agent overlapping) and each local time against the DST
    rules of ``timezone``; errors name the argument and the shift.
    """
    zone = _zone(timezone)
    missing = [c for c in ("agent_id", "start", "end") if c not in frame.columns]
    if missing:
        raise ScheduleCommandError(f"{argument}: missing columns {missing}; a roster frame "
                                   "has agent_id plus the shift-frame columns")
    if frame.empty:
        return []
    if "count" in frame.columns and (frame["count"] != 1).any():
        raise ScheduleCommandError(f"{argument}: rows with count != 1; give one row per agent "
                                   "shift (assign agents to the shift frame's counts first)")
    agents = frame["agent_id"].tolist()
    bad = [a for a in agents if not isinstance(a, str) or not a]
    if bad:
        raise ScheduleCommandError(f"{argument}: agent_id must be non-empty strings, got "
                                   f"{bad[:3]!r}")
    starts = [pd.Timestamp(t) for t in frame["start"]]
    ends = [pd.Timestamp(t) for t in frame["end"]]
    templates = frame["template"].tolist() if "template" in frame.columns else [None] * len(
        frame)
    templates = [None if _missing(t) else str(t) for t in templates]
    activities = [tuple(a) if isinstance(a, Sequence) else ()
                  for a in (frame["activities"] if "activities" in frame.columns
                            else [()] * len(frame))]
    shaped = pd.DataFrame({
        "template": templates, "day": [t.date() for t in starts], "start": starts, "end": ends,
        "count": 1, "paid_minutes": 0, "skill": None, "activities": activities})
    try:
        check_shift_frame(shaped, argument=argument)
    except ShiftFrameError as exc:
        raise ScheduleCommandError(str(exc)) from None
    except TypeError:
        raise ScheduleCommandError(f"{argument}: a shift mixes naive and tz-aware times; give "
                                   "naive local times, or tz-aware ones throughout a row") from None
    # every time of every shift, converted in one vectorized pass
    values: list[pd.Timestamp] = []
    labels: list[str] = []
    for i, (agent, s, e, acts) in enumerate(zip(agents, starts, ends, activities, strict=True)):
        shift = f"{argument}: row {i}, agent {agent}, shift {s}-{e}"
        values += [s, e]
        labels += [f"{shift} starts", f"{shift} ends"]
        for act in acts:
            values += [act.start, act.end]
            labels += [f"{shift}: its {act.kind} starts", f"{shift}: its {act.kind} ends"]
    utc = iter(_local_to_utc(values, zone.key, labels))
    out: list[ScheduledShift] = []
    for i, (agent, template, acts) in enumerate(zip(agents, templates, activities,
                                                   strict=True)):
        start, end = next(utc), next(utc)
        scheduled = [ScheduledActivity(kind=a.kind, start=next(utc), end=next(utc),
                                       paid=bool(a.paid)) for a in acts]
        what = f"{argument}: row {i}, agent {agent}, shift {starts[i]}-{ends[i]}"
        if not start < end:
            raise ScheduleCommandError(f"{what} has no length in UTC across the DST change; "
                                       "lengthen it")
        scheduled.sort(key=lambda a: a.start)
        for a, b in pairwise(scheduled):
            if b.start < a.end:
                raise ScheduleCommandError(f"{what}: {a.kind} and {b.kind} overlap; move one")
        out.append(ScheduledShift(agent_id=agent, start=start, end=end, template=template,
                                  activities=scheduled))
    out.sort(key=_order)
    _check_overlaps(out, argument, zone.key)
    return out


def events_to_frame(shifts: Iterable[ScheduledShift], *, timezone: str) -> pd.DataFrame:
    """The events' ``ScheduledShift`` parts -> a frame of ``CURRENT_COLUMNS`` (local + UTC)."""
    zone = _zone(timezone)
    shifts = list(shifts)
    acts = [(i, a) for i, s in enumerate(shifts) for a in s.activities]
    owner = np.array([i for i, _ in acts], dtype=np.int64)

    def utc(moments: list[datetime]) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(pd.Series(moments, dtype=object), utc=True))

    def local(index: pd.DatetimeIndex) -> list[pd.Timestamp]:
        return list(index.tz_convert(zone).tz_localize(None))

    start_utc, end_utc = utc([s.start for s in shifts]), utc([s.end for s in shifts])
    act_start, act_end = utc([a.start for _, a in acts]), utc([a.end for _, a in acts])
    unpaid = np.array([not a.paid for _, a in acts], dtype=bool)
    unpaid_ms = np.bincount(owner, weights=np.where(unpaid, _ms(act_end) - _ms(act_start), 0),
                            minlength=len(shifts)).astype(np.int64)
    paid = (_ms(end_utc) - _ms(start_utc) - unpaid_ms) // 60_000
    a_start, a_end = local(act_start), local(act_end)
    activities: list[tuple[Activity, ...]] = [() for _ in shifts]
    grouped: dict[int, list[Activity]] = {}
    for k, (i, a) in enumerate(acts):
        grouped.setdefault(i, []).append(Activity(a.kind, a_start[k], a_end[k], a.paid))
    for i, items in grouped.items():
        activities[i] = tuple(items)
    starts, ends = local(start_utc), local(end_utc)
    return pd.DataFrame({
        "agent_id": [s.agent_id for s in shifts], "template": [s.template for s in shifts],
        "day": [t.date() for t in starts], "start": pd.DatetimeIndex(starts),
        "end": pd.DatetimeIndex(ends), "start_utc": start_utc, "end_utc": end_utc,
        "paid_minutes": paid.astype(np.int64), "activities": activities,
    }, columns=list(CURRENT_COLUMNS))


def schedule_segments(shifts: Iterable[ScheduledShift]) -> pd.DataFrame:
    """Shifts cut into activity segments (``SEGMENT_COLUMNS``): ``"work"`` fills the shift
    time that no activity covers. This is the schedule ``scheduling.adherence`` reads."""
    agent: list[str] = []
    kind: list[str] = []
    start: list[datetime] = []
    end: list[datetime] = []
    paid: list[bool] = []
    template: list[str | None] = []

    def add(s: ScheduledShift, k: str, a: datetime, b: datetime, p: bool) -> None:
        agent.append(s.agent_id)
        kind.append(k)
        start.append(a)
        end.append(b)
        paid.append(p)
        template.append(s.template)

    for s in shifts:
        cursor = s.start
        for act in s.activities:
            if act.start > cursor:
                add(s, WORK, cursor, act.start, True)
            add(s, act.kind, act.start, act.end, act.paid)
            cursor = act.end
        if cursor < s.end:
            add(s, WORK, cursor, s.end, True)
    return pd.DataFrame({
        "agent_id": agent, "activity": kind,
        "start": pd.to_datetime(pd.Series(start, dtype=object), utc=True),
        "end": pd.to_datetime(pd.Series(end, dtype=object), utc=True),
        "paid": pd.Series(paid, dtype=bool), "template": template,
    }, columns=list(SEGMENT_COLUMNS))


def revision_rows(schedule: Schedule, revision: Revision) -> list[tuple[Any, ...]]:
    """The rows (``SCHEDULE_ROW_COLUMNS``) of one version: a ``"shift"`` row per agent
    shift, then one row per activity of it."""
    head = (schedule.schedule_id, schedule.queue, revision.version)
    rows: list[tuple[Any, ...]] = []
    for s in revision.shifts:
        rows.append((*head, s.agent_id, "shift", s.start, s.end, True, s.template,
                     revision.at, revision.by))
        rows.extend((*head, s.agent_id, a.kind, a.start, a.end, a.paid, s.template,
                     revision.at, revision.by) for a in s.activities)
    return rows


def schedule_rows(
    source: ScheduleBook | Iterable[Event[Any]],
    *,
    versions: Literal["all", "current"] = "all",
) -> pd.DataFrame:
    """Warehouse rows (``SCHEDULE_ROW_COLUMNS``) of every schedule, per version.

    Each version is a full snapshot: one ``"shift"`` row per agent shift (``paid`` True:
    paid time is the shift minus its unpaid activity rows) and one row per activity.
    ``published_at`` / ``published_by`` are when and by whom that version was published or
    changed. ``versions="current"`` keeps only each schedule's current version.
    """
    book = source if isinstance(source, ScheduleBook) else replay(source, timezone="UTC")
    rows: list[tuple[Any, ...]] = []
    for schedule in book.schedules.values():
        revisions = schedule.revisions if versions == "all" else schedule.revisions[-1:]
        for rev in revisions:
            rows.extend(revision_rows(schedule, rev))
    frame = pd.DataFrame(rows, columns=list(SCHEDULE_ROW_COLUMNS))
    for column in ("start_utc", "end_utc", "published_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["version"] = frame["version"].astype(np.int64)
    frame["paid"] = frame["paid"].astype(bool)
    return frame


# -- helpers ---------------------------------------------------------------------------


def _zone(timezone: str) -> ZoneInfo:
    return time_zone(timezone, error=ScheduleCommandError)


def _required(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ScheduleCommandError(f"{name} must be given (a non-empty string), got {value!r}")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _check_version(schedule_id: str, expected: int, actual: int) -> None:
    if expected == actual:
        return
    if actual == 0:
        message = (f"schedule {schedule_id!r} does not exist, but expected_version is "
                   f"{expected}; publish it with expected_version=0")
    elif expected == 0:
        message = (f"schedule {schedule_id!r} is already published (version {actual}); edit "
                   f"it, or pass expected_version={actual} to publish a new full version")
    else:
        message = (f"schedule {schedule_id!r} is at version {actual}, not {expected}: someone "
                   "changed it since you read it; reload it and redo the edit")
    raise VersionConflictError(message, expected=expected, actual=actual)


def _local_to_utc(values: Sequence[Any], timezone: str, labels: Sequence[str]) -> list[datetime]:
    """Naive local (or tz-aware) times -> UTC datetimes truncated to milliseconds.

    Naive times that fall in a DST gap or overlap raise ``LocalTimeError`` with the label.
    """
    stamps = [pd.Timestamp(v) for v in values]
    naive = [i for i, t in enumerate(stamps) if t.tzinfo is None]
    ms = np.empty(len(stamps), dtype=np.int64)
    if naive:
        index = pd.DatetimeIndex([stamps[i] for i in naive])
        local = index.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        bad = np.flatnonzero(local.isna())
        if bad.size:
            i = int(bad[0])
            forced = index[i: i + 1].tz_localize(timezone, ambiguous=np.array([True]),
                                                 nonexistent="NaT")
            problem = ("does not exist (the clocks jump over it)" if forced.isna()[0]
                       else "is ambiguous (the clocks pass it twice)")
            raise LocalTimeError(
                f"{labels[naive[i]]} at {stamps[naive[i]]}, which {problem} in {timezone}; "
                "move it off the DST change or give it as a tz-aware timestamp")
        ms[naive] = local.as_unit("ms").asi8
    aware = [i for i, t in enumerate(stamps) if t.tzinfo is not None]
    if aware:
        ms[aware] = pd.DatetimeIndex([stamps[i].tz_convert("UTC") for i in aware]
                                     ).as_unit("ms").asi8
    return [_EPOCH + timedelta(milliseconds=int(m)) for m in ms]


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _ms(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ms").asi8


def _order(shift: ScheduledShift) -> tuple[str, datetime]:
    return shift.agent_id, shift.start


def _shift_key(shift: ScheduledShift) -> tuple[Any, ...]:
    return (shift.agent_id, shift.start, shift.end, shift.template,
            tuple((a.kind, a.start, a.end, a.paid) for a in shift.activities))


def _by_agent(shifts: Iterable[ScheduledShift]) -> dict[str, list[ScheduledShift]]:
    out: dict[str, list[ScheduledShift]] = {}
    for s in shifts:
        out.setdefault(s.agent_id, []).append(s)
    return out


def _describe(shift: ScheduledShift, timezone: str) -> str:
    """``"2024-06-03 09:00-17:00 E8 [break 11:00-11:15]"`` in local time."""
    zone = ZoneInfo(timezone)
    start, end = _local(shift.start, zone), _local(shift.end, zone)
    text = f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"
    if end.date() != start.date():
        text += f" (+{(end.date() - start.date()).days}d)"
    if shift.template:
        text += f" {shift.template}"
    if shift.activities:
        parts = ", ".join(f"{a.kind} {_local(a.start, zone):%H:%M}-{_local(a.end, zone):%H:%M}"
                          for a in shift.activities)
        text += f" [{parts}]"
    return text


def _check_overlaps(shifts: Sequence[ScheduledShift], argument: str, timezone: str) -> None:
    """Raise when two shifts of one agent overlap; ``shifts`` ordered by agent and start."""
    for a, b in pairwise(shifts):
        if a.agent_id == b.agent_id and b.start < a.end:
            raise ScheduleCommandError(
                f"{argument}: agent {a.agent_id} has overlapping shifts "
                f"{_describe(a, timezone)} and {_describe(b, timezone)}; move or drop one")
