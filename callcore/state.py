"""The engine's state: immutable records of agents, calls and tickets.

Records are replaced, never changed in place, and only by the engine's mutators, so
replaying the engine's events rebuilds the same state without re-running any check.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ingest.contract import AgentState, CallerRegion

__all__ = ["AgentRecord", "CallRecord", "CallStage", "TicketRecord"]

CallStage = Literal[
    "ivr", "queued", "ringing", "talking", "held", "consulting", "voicemail", "survey",
    "outbound", "ended",
]


class AgentRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A logged-in agent: state, skill groups signed in to, and today's counters."""

    agent_id: str
    extension: str
    team: str | None
    state: AgentState
    reason: str | None = None
    since_ms: int
    call_id: str | None = None
    queues: dict[str, int]
    """Skill groups signed in to, with the level in each."""
    muted: bool = False
    answered: int = 0
    idle_since_ms: int = 0
    """When the agent last became ready (longest idle)."""
    last_rung_ms: int = 0
    """When the agent's phone last rang (least recent)."""
    timer: int = 0
    """Token of the agent's pending after-call-work timer."""


class CallRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A call in progress."""

    call_id: str
    caller: str
    dialed: str
    direction: Literal["inbound", "outbound", "internal"]
    offered_ms: int
    priority: int = 0
    stage: CallStage
    queue: str | None = None
    queued_ms: int | None = None
    seq: int = 0
    """Order of arrival in the current queue."""
    agent_id: str | None = None
    ringing: tuple[str, ...] = ()
    attempt: int = 0
    rang_ms: int = 0
    answered_ms: int | None = None
    talk_ms: int = 0
    held_since_ms: int | None = None
    region: CallerRegion | None = None
    consult_target: str | None = None
    supervisors: tuple[str, ...] = ()
    timer: int = 0
    """Token of the call's pending ring, wait or survey timer."""


class TicketRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A ticket (TK-01)."""

    ticket_id: str
    status: str
    assignee: str | None
    created_by: str
    call_id: str | None
