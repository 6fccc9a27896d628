"""Fact rows for the warehouse: the fold of call, agent and ticket events into finished calls,
call legs, agent-state intervals, surveys and ticket events (RP-01..RP-07 read them).

``apply(state, event) -> (state, rows)`` is deterministic and does no I/O. It updates
``state`` in place for speed (the host owns it, as bytewax's stateful operators do) and
returns the rows the event completed (read-only: most events share :data:`NOTHING`). Each
row carries its own id (``call_id``, ``segment_id``, ``spell_id``, ``survey_id``,
``event_id``), so a sink that skips ids it already stored makes replays and redeliveries
harmless.

A call's row needs both sides of a join: call events (topic ``calls``) and the after-call
work of every agent who answered it (topic ``agents``), which arrive in either order. The
row is written when the call has ended and each of its agents has moved on from it. Agent
events may be missing (history imported from a PBX has none): :func:`advance` writes a
call whose agents have not reported ``grace`` after it ended, measured on the watermark the
host gives, and :func:`flush` writes every ended call at the end of a finite input.

Every piece of state belongs to one key, so a partitioned host keeps it in a table per key
and calls the keyed folds directly: :func:`fold_call` (call events and
:class:`AcwReported`, per call), :func:`fold_agent` (per agent; returns the reports to
route to the calls), :func:`fold_ticket` (per ticket), :func:`fold_schedules` (per queue).
:func:`apply` runs them all for a host with one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest.contract import Event, Topic
from ingest.contract.agents import AgentLoggedOut, AgentStateChanged
from ingest.contract.calls import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHeld,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallResumed,
    CallTransferred,
    IvrEntered,
    IvrLeft,
    RingNoAnswer,
    SurveyAnswered,
)
from ingest.contract.envelope import TicketPayload
from ingest.contract.tickets import TicketCreated, TicketStatusChanged
from ingest.contract.wfm import ForecastPublished, ScheduleChanged, SchedulePublished
from scheduling.publish import SCHEDULE_ROW_COLUMNS, ScheduleBook, revision_rows
from scheduling.publish import apply as apply_schedule
from streams.agent_states import OpenSpell, Spell, step
from streams.pickling import by_fields

__all__ = [
    "FACT_KEYS",
    "FACT_TABLES",
    "NOTHING",
    "AcwReported",
    "AgentFacts",
    "CallFacts",
    "FactRows",
    "FactsState",
    "advance",
    "apply",
    "expire_call",
    "flush",
    "fold_agent",
    "fold_call",
    "fold_events",
    "fold_schedules",
    "fold_ticket",
]

FACT_TABLES = ("calls", "call_segments", "agent_state_intervals", "surveys", "ticket_events",
               "schedules", "forecasts")
"""Warehouse tables this fold writes."""

FACT_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "calls": ("call_id", ()),
    "call_segments": ("segment_id", ("call_id",)),
    "agent_state_intervals": ("spell_id", ("agent_id", "start")),
    "surveys": ("survey_id", ()),
    "ticket_events": ("event_id", ("ticket_id",)),
    "schedules": ("row_id", ("schedule_id",)),
    "forecasts": ("row_id", ("queue",)),
}
"""Per table: the row's id and the columns that narrow the lookup of stored ids."""

_BOUND_STATES = frozenset({"talking", "hold", "after_call_work"})
_SHAPING = frozenset({CallOffered, IvrEntered, IvrLeft, CallQueued, RingNoAnswer, CallAnswered,
                      CallHeld, CallResumed, CallTransferred, CallOverflowed, CallAbandoned,
                      SurveyAnswered, CallEnded})
"""The call events that change a call's facts (the others are read by other views)."""
Row = dict[str, Any]


@by_fields
@dataclass(slots=True)
class FactRows:
    """Rows completed by one or more events, per warehouse table."""

    calls: list[Row] = field(default_factory=list)
    call_segments: list[Row] = field(default_factory=list)
    agent_state_intervals: list[Row] = field(default_factory=list)
    surveys: list[Row] = field(default_factory=list)
    ticket_events: list[Row] = field(default_factory=list)
    schedules: list[Row] = field(default_factory=list)
    forecasts: list[Row] = field(default_factory=list)

    def extend(self, other: FactRows) -> None:
        """Append ``other``'s rows to these."""
        # unrolled: this runs once per event, and most events complete no row
        if other is NOTHING:
            return
        if other.calls:
            self.calls.extend(other.calls)
        if other.call_segments:
            self.call_segments.extend(other.call_segments)
        if other.agent_state_intervals:
            self.agent_state_intervals.extend(other.agent_state_intervals)
        if other.surveys:
            self.surveys.extend(other.surveys)
        if other.ticket_events:
            self.ticket_events.extend(other.ticket_events)
        if other.schedules:
            self.schedules.extend(other.schedules)
        if other.forecasts:
            self.forecasts.extend(other.forecasts)

    def __len__(self) -> int:
        return sum(len(getattr(self, table)) for table in FACT_TABLES)

    def tables(self) -> dict[str, list[Row]]:
        """``{table: rows}`` of the non-empty tables."""
        return {t: rows for t in FACT_TABLES if (rows := getattr(self, t))}


NOTHING = FactRows((), (), (), (), (), (), ())  # type: ignore[arg-type]
"""The rows of an event that completed none: shared, and read-only (its tables are tuples)."""


@by_fields
@dataclass(slots=True)
class _Leg:
    kind: str
    queue: str
    agent_id: str
    start: datetime
    opened_by: str


@by_fields
@dataclass(frozen=True, slots=True)
class AcwReported:
    """An agent has moved on from a call: its after-call work on it (the agents -> calls
    side of the join, routed by call id)."""

    call_id: str
    agent_id: str
    acw_s: float
    at: datetime


@by_fields
@dataclass(slots=True)
class CallFacts:
    """One call being built from its events (the state of a call key)."""

    call_id: str
    offered_at: datetime | None = None
    direction: str = ""
    caller: str = ""
    dialed: str = ""
    customer_id: str = ""
    site: str = ""
    region: str = ""
    city: str = ""
    carrier: str = ""
    queues: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ivr_s: float = 0.0
    wait_s: float = 0.0
    ring_s: float = 0.0
    connected_s: float = 0.0
    hold_s: float = 0.0
    hold_since: datetime | None = None
    holds: int = 0
    transfers: int = 0
    overflows: int = 0
    abandon_stage: str = ""
    survey_score: int | None = None
    survey_max: int | None = None
    leg: _Leg | None = None
    legs: list[Row] = field(default_factory=list)
    ended: Event | None = None
    acw: dict[str, float] = field(default_factory=dict)
    """Agents who have moved on from the call and their after-call work (s)."""
    reported_at: datetime | None = None


@by_fields
@dataclass(slots=True)
class _Binding:
    """The call an agent is working on (talking, on hold or in after-call work)."""

    call_id: str
    acw_s: float = 0.0
    acw_since: datetime | None = None


@by_fields
@dataclass(slots=True)
class AgentFacts:
    """The state of an agent key: its open state spell and the call it works on."""

    spell: OpenSpell | None = None
    binding: _Binding | None = None


@dataclass(slots=True)
class FactsState:
    """Everything the fold remembers between events."""

    calls: dict[str, CallFacts] = field(default_factory=dict)
    agents: dict[str, AgentFacts] = field(default_factory=dict)
    tickets: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Per ticket: (status, priority) as last seen."""
    schedules: dict[str, ScheduleBook] = field(default_factory=dict)
    """Per queue: its published schedules, every version (scheduling.publish's aggregate)."""


def apply(state: FactsState, event: Event) -> tuple[FactsState, FactRows]:
    """Fold one event into ``state``; returns the state and the rows it completed."""
    payload = event.payload
    kind = type(payload)
    if payload.TOPIC is Topic.CALLS:
        if kind not in _SHAPING:
            return state, NOTHING
        call, rows = fold_call(state.calls.get(payload.call_id), event)
        _keep(state.calls, payload.call_id, call)
        return state, rows
    if kind is AgentStateChanged or kind is AgentLoggedOut:
        agent, rows, reports = fold_agent(state.agents.get(payload.agent_id), event)
        _keep(state.agents, payload.agent_id, agent)
        for report in reports:
            call, done = fold_call(state.calls.get(report.call_id), report)
            _keep(state.calls, report.call_id, call)
            rows.extend(done)
        return state, rows
    if isinstance(payload, TicketPayload):
        ticket, rows = fold_ticket(state.tickets.get(payload.ticket_id), event)
        state.tickets[payload.ticket_id] = ticket
        return state, rows
    if isinstance(payload, SchedulePublished | ScheduleChanged | ForecastPublished):
        book, rows = fold_schedules(state.schedules.get(payload.queue), event)
        state.schedules[payload.queue] = book
        return state, rows
    return state, NOTHING


def _keep(table: dict[str, Any], key: str, value: object | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def advance(state: FactsState, watermark: datetime, *, grace: timedelta
            ) -> tuple[FactsState, FactRows]:
    """Write calls that ended at least ``grace`` before ``watermark`` whose agents never
    reported their after-call work (their ACW so far counts), and forget such reports."""
    rows = FactRows()
    for call_id, call in list(state.calls.items()):
        kept, done = expire_call(call, watermark - grace)
        _keep(state.calls, call_id, kept)
        rows.extend(done)
    return state, rows


def flush(state: FactsState) -> tuple[FactsState, FactRows]:
    """At the end of a finite input: write every ended call with the ACW seen so far."""
    rows = FactRows()
    for call_id, call in list(state.calls.items()):
        if call.ended is not None:
            del state.calls[call_id]
            rows.extend(_call_rows(call))
    return state, rows


def fold_events(events: Iterable[Event], *, finish: bool = True
                ) -> tuple[FactsState, FactRows]:
    """Fold a finite input from scratch; with ``finish``, :func:`flush` at its end."""
    state, out = FactsState(), FactRows()
    for event in events:
        state, rows = apply(state, event)
        out.extend(rows)
    if finish:
        state, rows = flush(state)
        out.extend(rows)
    return state, out


# -- calls -----------------------------------------------------------------------------


def _seconds(start: datetime | None, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) if start is not None else 0.0


def fold_call(call: CallFacts | None, item: Event | AcwReported
              ) -> tuple[CallFacts | None, FactRows]:
    """The keyed fold of one call (its events and its agents' ACW reports): the call's new
    state (``None`` once its row is written: forget the key) and the rows completed."""
    if not isinstance(item, AcwReported) and type(item.payload) not in _SHAPING:
        return call, NOTHING  # announcements, rings, recordings: no fact changes
    call = call or CallFacts(item.call_id if isinstance(item, AcwReported)
                             else item.payload.call_id)
    rows = FactRows()
    if isinstance(item, AcwReported):
        call.acw[item.agent_id] = call.acw.get(item.agent_id, 0.0) + item.acw_s
        call.reported_at = item.at
    else:
        _call_event(call, item, rows)
    if call.ended is not None and all(agent in call.acw for agent in call.agents):
        rows.extend(_call_rows(call))
        return None, rows
    return call, rows


def expire_call(call: CallFacts, limit: datetime) -> tuple[CallFacts | None, FactRows]:
    """A call that ended at or before ``limit`` is written with the ACW reported so far; a
    key holding only reports of a call never seen (by ``limit``) is forgotten."""
    if call.ended is not None:
        if call.ended.occurred_at <= limit:
            return None, _call_rows(call)
    elif call.offered_at is None and not call.legs and call.reported_at is not None \
            and call.reported_at <= limit:
        return None, FactRows()
    return call, FactRows()


def _call_event(call: CallFacts, event: Event, rows: FactRows) -> None:
    payload = event.payload
    at = event.occurred_at
    if isinstance(payload, CallOffered):
        region = payload.caller_region
        call.offered_at, call.direction = at, payload.direction
        call.caller, call.dialed = payload.caller, payload.dialed
        call.customer_id, call.site = payload.customer_id or "", event.site
        if region is not None:
            call.region = region.province or region.country or ""
            call.city, call.carrier = region.city or "", region.carrier or ""
    elif isinstance(payload, IvrEntered):
        _open_leg(call, "ivr", "", "", event)
    elif isinstance(payload, IvrLeft):
        _close_leg(call, at, payload.exit)
    elif isinstance(payload, CallQueued):
        _open_leg(call, "queue", payload.queue, "", event)
        if call.queued_at is None:
            call.queued_at = at
        if not call.queues or call.queues[-1] != payload.queue:
            call.queues.append(payload.queue)
    elif isinstance(payload, RingNoAnswer):
        call.ring_s += payload.ring_s
    elif isinstance(payload, CallAnswered):
        call.ring_s += payload.ring_s
        _open_leg(call, "agent", payload.queue or _leg_queue(call), payload.agent_id, event,
                  outcome="answered", wait_s=payload.wait_s)
        if call.answered_at is None:
            call.answered_at = at
        if payload.agent_id not in call.agents:
            call.agents.append(payload.agent_id)
    elif isinstance(payload, CallHeld):
        call.hold_since, call.holds = at, call.holds + 1
    elif isinstance(payload, CallResumed):
        _resume(call, at)
    elif isinstance(payload, CallTransferred):
        call.transfers += 1
        _close_leg(call, at, "transferred")
    elif isinstance(payload, CallOverflowed):
        call.overflows += 1
        if not call.queues or call.queues[-1] != payload.queue:
            call.queues.append(payload.queue)  # offered to the queue, which sent it on
        _close_leg(call, at, "overflowed")
    elif isinstance(payload, CallAbandoned):
        call.abandon_stage = payload.stage
        _close_leg(call, at, "abandoned", wait_s=payload.wait_s)
    elif isinstance(payload, SurveyAnswered):
        call.survey_score, call.survey_max = payload.score, payload.scale_max
        rows.surveys.append({
            "survey_id": event.id, "call_id": call.call_id, "ticket_id": "",
            "agent_id": payload.agent_id or (call.agents[-1] if call.agents else ""),
            "answered_at": at, "score": payload.score, "max_score": payload.scale_max,
            "survey": payload.survey, "comment": "", "event_id": event.id})
    elif isinstance(payload, CallEnded):
        _resume(call, at)
        _close_leg(call, at, "ended")
        call.ended = event


def _leg_queue(call: CallFacts) -> str:
    return call.queues[-1] if call.queues else ""


def _open_leg(call: CallFacts, kind: str, queue: str, agent_id: str, event: Event, *,
              outcome: str = "left", wait_s: float | None = None) -> None:
    _close_leg(call, event.occurred_at, outcome, wait_s=wait_s)
    call.leg = _Leg(kind, queue, agent_id, event.occurred_at, event.id)


def _close_leg(call: CallFacts, at: datetime, outcome: str, *, wait_s: float | None = None
               ) -> None:
    """Close the open leg; a queue leg ended by an answer or a hang-up counts the wait its
    producer measured (``wait_s``: the engine's clock, a PBX's own holdtime), others the
    time between the events."""
    leg = call.leg
    if leg is None:
        return
    seconds = _seconds(leg.start, at)
    if leg.kind == "queue":
        call.wait_s += seconds if wait_s is None else wait_s
    elif leg.kind == "agent":
        _resume(call, at)
        call.connected_s += seconds
    else:
        call.ivr_s += seconds
    call.legs.append({
        "segment_id": leg.opened_by, "call_id": call.call_id, "segment_no": len(call.legs) + 1,
        "kind": leg.kind, "queue": leg.queue, "agent_id": leg.agent_id, "start_at": leg.start,
        "end_at": at, "duration_s": seconds, "outcome": outcome})
    call.leg = None


def _resume(call: CallFacts, at: datetime) -> None:
    if call.hold_since is not None:
        call.hold_s += _seconds(call.hold_since, at)
        call.hold_since = None


def _call_rows(call: CallFacts) -> FactRows:
    """The call's row and its legs (the call has ended)."""
    ended = call.ended
    assert ended is not None
    payload: CallEnded = ended.payload
    rows = FactRows()
    if call.answered_at is not None:
        outcome = "answered"
    elif call.abandon_stage in ("queue", "ringing"):
        outcome = "abandoned"
    elif call.abandon_stage == "ivr":
        outcome = "ivr_abandoned"
    else:
        outcome = "unanswered"
    offered_at = call.offered_at or (call.legs[0]["start_at"] if call.legs else ended.occurred_at)
    rows.calls.append({
        "call_id": call.call_id, "event_id": ended.id, "direction": call.direction,
        "caller": call.caller, "dialed": call.dialed, "customer_id": call.customer_id,
        "site": call.site or ended.site, "region": call.region, "city": call.city,
        "carrier": call.carrier, "queue": _leg_queue(call),
        "first_queue": call.queues[0] if call.queues else "", "queues": list(call.queues),
        "agent_id": call.agents[0] if call.agents else "", "agents": list(call.agents),
        "offered_at": offered_at, "queued_at": call.queued_at,
        "answered_at": call.answered_at, "ended_at": ended.occurred_at,
        "ivr_s": call.ivr_s, "wait_s": call.wait_s, "ring_s": call.ring_s,
        "talk_s": max(call.connected_s - call.hold_s, 0.0), "hold_s": call.hold_s,
        "acw_s": float(sum(call.acw.values())), "outcome": outcome,
        "abandon_stage": call.abandon_stage, "disposition": payload.disposition,
        "ended_by": payload.ended_by, "transfers": min(call.transfers, 255),
        "overflows": min(call.overflows, 255), "holds": call.holds,
        "survey_score": call.survey_score, "survey_max": call.survey_max})
    rows.call_segments.extend(call.legs)
    return rows


# -- agents ----------------------------------------------------------------------------


def fold_agent(agent: AgentFacts | None, event: Event
               ) -> tuple[AgentFacts | None, FactRows, list[AcwReported]]:
    """The keyed fold of one agent: its new state (``None`` when logged out), the state
    spell the event closed, and the ACW report of a call the agent moved on from."""
    agent = agent or AgentFacts()
    payload = event.payload
    rows, reports = FactRows(), []
    spells = {payload.agent_id: agent.spell} if agent.spell is not None else {}
    closed = step(spells, event)
    agent.spell = spells.get(payload.agent_id)
    if closed is not None:
        rows.agent_state_intervals.append(_spell_row(closed))
    at, binding = event.occurred_at, agent.binding
    if binding is not None and binding.acw_since is not None:
        binding.acw_s += _seconds(binding.acw_since, at)
        binding.acw_since = None
    now_on = (payload.call_id if isinstance(payload, AgentStateChanged)
              and payload.state in _BOUND_STATES else None)
    if binding is not None and binding.call_id != now_on:
        reports.append(AcwReported(binding.call_id, payload.agent_id, binding.acw_s, at))
        binding = agent.binding = None
    if now_on is not None:
        if binding is None:
            binding = agent.binding = _Binding(now_on)
        if payload.state == "after_call_work":
            binding.acw_since = at
    if agent.spell is None and agent.binding is None:
        return None, rows, reports
    return agent, rows, reports


def _spell_row(spell: Spell) -> Row:
    return {"spell_id": spell.event_id, "agent_id": spell.agent_id, "state": spell.state,
            "reason": spell.reason, "call_id": spell.call_id or "", "queue": spell.queue or "",
            "start": spell.start, "end": spell.end,
            "duration_s": _seconds(spell.start, spell.end)}


# -- tickets ---------------------------------------------------------------------------


def fold_ticket(ticket: tuple[str, str] | None, event: Event
                ) -> tuple[tuple[str, str], FactRows]:
    """The keyed fold of one ticket: (status, priority) and the event's row."""
    payload = event.payload
    status, priority = ticket or ("open", "normal")
    if isinstance(payload, TicketCreated):
        priority = payload.priority
    elif isinstance(payload, TicketStatusChanged):
        status = payload.status
    elif event.type == "ticket.closed":
        status = "closed"
    agent = next((getattr(payload, name) for name in
                  ("assignee", "created_by", "changed_by", "closed_by", "author")
                  if getattr(payload, name, None)), "")
    rows = FactRows()
    rows.ticket_events.append({
        "event_id": event.id, "ticket_id": payload.ticket_id,
        "occurred_at": event.occurred_at, "kind": event.type.removeprefix("ticket."),
        "category": getattr(payload, "category", None) or "", "agent_id": agent,
        "status": status, "priority": priority})
    return (status, priority), rows


# -- schedules and forecasts (WF-06, WF-02) ----------------------------------------------


def fold_schedules(book: ScheduleBook | None, event: Event) -> tuple[ScheduleBook, FactRows]:
    """The keyed fold of one queue's WFM events: its schedules and the rows of a new
    version (a redelivered version makes none) or of a published forecast."""
    book = book or ScheduleBook(timezone="UTC")
    rows = FactRows()
    if isinstance(event.payload, ForecastPublished):
        rows.forecasts.extend(_forecast_rows(event))
        return book, rows
    schedule_id = event.payload.schedule_id
    before = book.schedules.get(schedule_id)
    book = apply_schedule(book, event)
    schedule = book.schedules.get(schedule_id)
    if schedule is not None and schedule is not before:
        rows.schedules.extend(
            {"row_id": f"{event.id}:{n}", **dict(zip(SCHEDULE_ROW_COLUMNS, row, strict=True))}
            for n, row in enumerate(revision_rows(schedule, schedule.revisions[-1])))
    return book, rows


def _forecast_rows(event: Event) -> list[Row]:
    payload: ForecastPublished = event.payload
    return [{"row_id": f"{event.id}:{n}", "queue": payload.queue,
             "forecast_id": payload.forecast_id, "version": payload.version,
             "interval_start": i.start, "calls": i.calls,
             "aht": i.aht_s,
             "calls_low": i.calls_low, "calls_high": i.calls_high, "model": payload.model,
             "published_at": event.occurred_at, "published_by": payload.published_by}
            for n, i in enumerate(payload.intervals)]
