"""Agent-state spells: the fold of agent events into closed state intervals (AG-02, WF-10).

``fold(open_spells, event)`` is pure: it returns the new open spells (one per logged-in
agent) and the spell the event closed, if any. ``state_spells`` runs it over a stream and
returns the fact table adherence and staffed-vs-required read (``scheduling.adherence``'s
``STATE_COLUMNS``). Time between log-out and the next state is not a spell: adherence
counts gaps as logged out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

import pandas as pd

from ingest.contract import Event
from ingest.contract.agents import AgentLoggedOut, AgentStateChanged

__all__ = ["OpenSpell", "Spell", "fold", "state_spells", "step"]


class OpenSpell(NamedTuple):
    """The state an agent is in since ``since``."""

    state: str
    reason: str | None
    since: datetime
    event_id: str = ""
    """The event that opened the spell: the spell's id in the warehouse."""
    call_id: str | None = None
    queue: str | None = None


class Spell(NamedTuple):
    """A closed state interval of one agent, ``end`` exclusive."""

    agent_id: str
    state: str
    reason: str | None
    start: datetime
    end: datetime
    event_id: str = ""
    call_id: str | None = None
    queue: str | None = None


def fold(open_spells: Mapping[str, OpenSpell], event: Event
         ) -> tuple[Mapping[str, OpenSpell], Spell | None]:
    """Apply one event: a state change or log-out closes the agent's open spell."""
    if not isinstance(event.payload, AgentStateChanged | AgentLoggedOut):
        return open_spells, None
    updated = dict(open_spells)
    return updated, step(updated, event)


def step(open_spells: dict[str, OpenSpell], event: Event) -> Spell | None:
    """:func:`fold` in place, for hosts that own their state: updates ``open_spells`` and
    returns the closed spell, if any."""
    payload = event.payload
    if not isinstance(payload, AgentStateChanged | AgentLoggedOut):
        return None
    agent = payload.agent_id
    current = open_spells.pop(agent, None)
    closed = None
    if current is not None and event.occurred_at > current.since:
        closed = _closed(agent, current, event.occurred_at)
    if isinstance(payload, AgentStateChanged):
        open_spells[agent] = OpenSpell(payload.state, payload.reason, event.occurred_at,
                                       event.id, payload.call_id, payload.queue)
    return closed


def state_spells(events: Iterable[Event], *, until: datetime | None = None) -> pd.DataFrame:
    """Closed spells of every agent (``agent_id, state, reason, start, end``, UTC), agents'
    events taken in time order; spells still open are closed at ``until`` (default: the last
    event's time)."""
    ordered = sorted((e for e in events
                      if isinstance(e.payload, AgentStateChanged | AgentLoggedOut)),
                     key=lambda e: (e.payload.agent_id, e.occurred_at))
    spells: list[Spell] = []
    end_at = until if until is not None or not ordered else max(e.occurred_at for e in ordered)
    open_spells: Mapping[str, OpenSpell] = {}
    agent = None
    for event in ordered:
        if event.payload.agent_id != agent:  # one agent at a time keeps the state small
            spells.extend(_close_all(open_spells, end_at))
            open_spells, agent = {}, event.payload.agent_id
        open_spells, closed = fold(open_spells, event)
        if closed is not None:
            spells.append(closed)
    spells.extend(_close_all(open_spells, end_at))
    frame = pd.DataFrame([(s.agent_id, s.state, s.reason, s.start, s.end) for s in spells],
                         columns=["agent_id", "state", "reason", "start", "end"])
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _close_all(open_spells: Mapping[str, OpenSpell], at: datetime | None) -> list[Spell]:
    if at is None:
        return []
    return [_closed(agent, s, at) for agent, s in open_spells.items() if at > s.since]


def _closed(agent: str, spell: OpenSpell, end: datetime) -> Spell:
    return Spell(agent, spell.state, spell.reason, spell.since, end, spell.event_id,
                 spell.call_id, spell.queue)
