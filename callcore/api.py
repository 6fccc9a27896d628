"""CTI API: agent desktops and supervisors drive the engine over HTTP and WebSocket.

``EngineService`` owns one ``Engine`` (on the system clock when serving, on a virtual
clock in tests) behind an asyncio lock. Every command runs under the lock; the events it
emits are appended to the event log, handed to the telephony bridge and fanned out to
WebSocket subscribers, in order, before the command's HTTP response is sent. A
background task fires the engine's timers (ring timeout, after-call work, maximum
wait, announcements, surveys) when they fall due.

``create_app`` builds the FastAPI application: bearer-token sessions (AG-01), agent
commands that only ever act for the token's own agent (AG-02..AG-05, TK-01, ACD-07),
supervisor commands checked against the role hierarchy (SV-01..SV-03), and per-agent
event streams with a screen pop when a call rings (CC-09, ACD-05) and a message-waiting
notice when voicemail arrives. ``CallerHistory`` also backs the agent's own call and
missed-call lists (AG-05), voicemail boxes (CC-06) and the recording search (CC-07),
each visible only within the role hierarchy. ``docs/cti.md`` describes the protocol;
``docs/cti-openapi.json`` is the exported OpenAPI document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog
import uvicorn
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from callcore import ivr
from callcore.center import (
    ROLE_RANK,
    AgentConfig,
    CenterConfig,
    Role,
    hash_password,
    verify_password,
)
from callcore.clock import Clock, SystemClock, from_ms
from callcore.engine import BlockedCheck, CommandRejectedError, Engine, HookRunner, RegionLookup
from callcore.state import AgentRecord
from callcore.telephony import SimulatedTelephony, TelephonyAdapter, TelephonyBridge
from ingest.contract import (
    AgentLoggedOut,
    AgentPayload,
    AgentState,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallerRegion,
    CallOffered,
    CallPayload,
    CallQueued,
    CallTransferred,
    Event,
    Payload,
    RecordingStored,
    RingingAgent,
    RingNoAnswer,
    SupervisorJoined,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketPayload,
    TicketStatusChanged,
    VoicemailLeft,
    encode_event,
)
from ingest.log import EventLog, LogError

__all__ = [
    "CLOSE_FORBIDDEN",
    "CLOSE_SESSION_ENDED",
    "CLOSE_TOO_SLOW",
    "CTI_API_VERSION",
    "AgentCall",
    "AgentView",
    "AuthenticationError",
    "CallerHistory",
    "EngineService",
    "ErrorBody",
    "MissedCall",
    "RecentCall",
    "RecordingView",
    "ScreenPop",
    "Session",
    "SessionStore",
    "TicketSummary",
    "VoicemailBox",
    "VoicemailMessage",
    "build_server",
    "create_app",
    "openapi_document",
    "serve",
    "write_openapi",
]

log = structlog.get_logger("queuecast.cti")

CTI_API_VERSION = "1.0.0"
CLOSE_SESSION_ENDED = 4401
"""WebSocket close code: no valid session (bad token, logged out, forced out)."""
CLOSE_FORBIDDEN = 4403
"""WebSocket close code: the session's role may not open this stream."""
CLOSE_TOO_SLOW = 4408
"""WebSocket close code: the client fell too far behind the event stream."""

T = TypeVar("T")

# -- wire models (HTTP) ---------------------------------------------------------------

Label = Annotated[str, StringConstraints(min_length=1, max_length=128)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z*#._-]{1,32}$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Dialable = Annotated[str, StringConstraints(min_length=1, max_length=40)]
CommentBody = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
TargetKind = Literal["agent", "queue", "external"]
ErrorCode = Literal["unauthorized", "forbidden", "unknown", "conflict", "invalid", "internal"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(_Body):
    """Every 4xx and 5xx response: a stable code and a sentence saying what to fix."""

    error: ErrorCode
    message: str


class LoginRequest(_Body):
    """AG-01: log in with agent id, the workstation's extension and the password."""

    agent_id: UserId
    extension: Extension
    password: Password


class AgentView(_Body):
    """A user as the engine sees them now; ``logged_in`` is false for supervisors who
    only supervise and for agents who are logged out."""

    agent_id: str
    name: str
    role: Role
    team: str | None
    logged_in: bool
    extension: str | None = None
    state: AgentState | None = None
    reason: str | None = None
    since: datetime | None = None
    call_id: str | None = None
    queues: dict[str, int] = Field(default_factory=dict)
    """Skill groups signed in to, with the level in each."""
    muted: bool = False
    answered: int = 0
    """Calls answered since logging in."""


class SessionView(_Body):
    """A new session: send ``Authorization: Bearer <token>`` with every other request."""

    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    agent: AgentView


class NotReadyRequest(_Body):
    """AG-02: the not-ready reason code (break, lunch, training, meeting, ...)."""

    reason: Label


class TransferRequest(_Body):
    """AG-04: where to transfer or whom to consult; external needs a permission."""

    target_kind: TargetKind
    target: Label


class PickUpRequest(_Body):
    """ACD-07: the id of a call ringing at another agent."""

    call_id: Label


class DialRequest(_Body):
    """AG-04: an external number or a colleague's extension."""

    number: Dialable


class HelpRequest(_Body):
    """AG-04: an optional note for the supervisor."""

    message: Label | None = None


class TicketCreateRequest(_Body):
    """TK-01: a ticket, by default linked to the agent's current call and its customer."""

    subject: Label
    category: Label | None = None
    call_id: Label | None = None
    customer_id: Label | None = None


class TicketAssignRequest(_Body):
    """TK-01: the agent to assign the ticket to."""

    assignee: UserId


class TicketStatusRequest(_Body):
    """TK-01: the new status (closing has its own endpoint)."""

    status: Literal["open", "in_progress", "pending", "resolved"]


class TicketCommentRequest(_Body):
    """TK-01: a comment."""

    body: CommentBody


class TicketCloseRequest(_Body):
    """TK-01: an optional resolution code."""

    resolution: Label | None = None


class TicketView(_Body):
    """A ticket as the engine sees it now."""

    ticket_id: str
    status: str
    assignee: str | None
    created_by: str
    call_id: str | None


class RegionView(_Body):
    """Where the caller's number belongs (CC-03)."""

    country: str | None = None
    province: str | None = None
    city: str | None = None
    carrier: str | None = None


class WaitingCall(_Body):
    """A call waiting in a queue, first to be served first (ACD-07)."""

    call_id: str
    position: int
    caller: str
    region: RegionView | None
    customer_id: str | None
    priority: int
    waited_s: float


class WaitingView(_Body):
    """The calls waiting in one queue."""

    queue: str
    calls: list[WaitingCall]


class AgentCall(_Body):
    """One finished call the agent answered or placed (AG-05), newest first."""

    call_id: str
    offered_at: datetime
    answered_at: datetime | None
    """When this agent answered (or the far end of its outbound call did)."""
    direction: str
    caller: str
    dialed: str
    region: RegionView | None
    queue: str | None
    talk_s: float | None
    """This agent's own talk time; ``None`` if it never talked on the call."""
    disposition: str
    recording_uri: str | None
    """The recording of this agent's leg, if one was stored."""


class MissedCall(_Body):
    """A call that rang at the agent and was not answered by it (AG-05), newest first."""

    call_id: str
    rang_at: datetime
    missed_at: datetime
    reason: Literal["rona", "caller_hung_up"]
    caller: str
    region: RegionView | None
    queue: str | None
    ring_s: float


class VoicemailMessage(_Body):
    """One message left in a mailbox (CC-06)."""

    call_id: str
    caller: str | None
    region: RegionView | None
    left_at: datetime
    duration_s: float
    recording_uri: str | None


class VoicemailBox(_Body):
    """The messages of one mailbox, newest first (CC-06)."""

    mailbox: str
    count: int
    messages: list[VoicemailMessage]


class RecordingView(_Body):
    """Recording metadata joined with its call (CC-07); ``uri`` is set only where the
    requester may play the recording (``playable``)."""

    call_id: str
    stored_at: datetime
    agent_id: str | None
    """The agent whose leg was recorded."""
    agents: list[str]
    """Every agent who answered or placed the call."""
    direction: str | None
    caller: str | None
    dialed: str | None
    region: RegionView | None
    queue: str | None
    duration_s: float
    size_bytes: int | None
    reason: str
    playable: bool
    uri: str | None


class ForceRequest(_Body):
    """SV-02: the action to force; sign-in and sign-out need a queue."""

    action: Literal["ready", "not_ready", "log_out", "sign_in", "sign_out", "hang_up"]
    queue: Label | None = None
    reason: Label | None = None


class JoinRequest(_Body):
    """SV-01: how to join the agent's call."""

    mode: Literal["monitor", "whisper", "barge", "intercept"]


class HealthView(_Body):
    """Liveness, and how many events still wait for the event log."""

    status: Literal["ok", "degraded"]
    unlogged_events: int


# -- screen pop (CC-09, ACD-05) -------------------------------------------------------


class RecentCall(msgspec.Struct, frozen=True, kw_only=True):
    """One finished call of the caller's number, newest first in a screen pop."""

    call_id: str
    offered_at: datetime
    direction: str
    queue: str | None
    agent_id: str | None
    disposition: str | None
    talk_s: float | None
    recording_uri: str | None


class TicketSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket linked to the caller's calls or customer, newest first in a screen pop."""

    ticket_id: str
    subject: str
    status: str
    category: str | None
    customer_id: str | None
    call_id: str | None
    created_by: str
    created_at: datetime
    assignee: str | None


class ScreenPop(msgspec.Struct, frozen=True, kw_only=True, tag="screen_pop", tag_field="kind"):
    """What the agent's desktop shows when a call rings (CC-09): who calls, from where,
    from which queue after how long a wait (ACD-05), and the caller's history."""

    call_id: str
    agent_id: str
    rang_at: datetime
    caller: str
    dialed: str
    direction: str
    region: CallerRegion | None
    customer_id: str | None
    queue: str | None
    waited_s: float
    attempt: int
    priority: int
    recent_calls: list[RecentCall]
    tickets: list[TicketSummary]


@dataclass(slots=True)
class _Leg:
    """One agent's part in a call: talk from each answer until it left (transfer, another
    agent's answer, or the end)."""

    answered_at: datetime | None = None
    """The agent's first answer."""
    talking_since: datetime | None = None
    talked_s: float = 0.0

    def talk_s(self) -> float | None:
        return None if self.answered_at is None else round(self.talked_s, 3)


@dataclass(slots=True)
class _CallNote:
    call_id: str
    number: str
    """The customer's side: the caller of an inbound call, the dialled number otherwise."""
    caller: str
    dialed: str
    direction: str
    offered_at: datetime
    region: CallerRegion | None
    customer_id: str | None
    priority: int
    queue: str | None = None
    queued_at: datetime | None = None
    agent_id: str | None = None
    answered_at: datetime | None = None
    recording_uri: str | None = None
    disposition: str | None = None
    ended_at: datetime | None = None
    legs: dict[str, _Leg] = field(default_factory=dict)
    """The agents who answered or placed the call, in the order they first did."""
    ringing: dict[str, datetime] = field(default_factory=dict)
    """The agents the call rings at now, with when it started ringing there."""
    recordings: dict[str, str] = field(default_factory=dict)
    """Recording URI by the agent whose leg it recorded."""

    def recent(self) -> RecentCall:
        talk = (self.ended_at - self.answered_at).total_seconds() if (
            self.ended_at and self.answered_at) else None
        return RecentCall(call_id=self.call_id, offered_at=self.offered_at,
                          direction=self.direction, queue=self.queue, agent_id=self.agent_id,
                          disposition=self.disposition, talk_s=talk,
                          recording_uri=self.recording_uri)

    def leave(self, agent_id: str, at: datetime) -> None:
        leg = self.legs.get(agent_id)
        if leg is not None and leg.talking_since is not None:
            leg.talked_s += (at - leg.talking_since).total_seconds()
            leg.talking_since = None

    def answer(self, agent_id: str, at: datetime) -> None:
        for other in list(self.legs):
            self.leave(other, at)
        leg = self.legs.setdefault(agent_id, _Leg())
        leg.answered_at = leg.answered_at or at
        leg.talking_since = at
        self.ringing.clear()


@dataclass(frozen=True, slots=True)
class _Recording:
    """A ``call.recording_stored`` event and the call it belongs to (CC-07)."""

    uri: str
    call_id: str
    stored_at: datetime
    agent_id: str | None
    duration_s: float
    size_bytes: int | None
    reason: str
    note: _CallNote | None

    @property
    def agents(self) -> list[str]:
        """Every agent who answered or placed the call (the recorded one included)."""
        agents = list(self.note.legs) if self.note is not None else []
        if self.agent_id is not None and self.agent_id not in agents:
            agents.append(self.agent_id)
        return agents

    @property
    def numbers(self) -> set[str]:
        """The call's numbers: the caller's and the dialled one."""
        return set() if self.note is None else {self.note.caller, self.note.dialed}

    def view(self, *, playable: bool) -> RecordingView:
        note = self.note
        return RecordingView(
            call_id=self.call_id, stored_at=self.stored_at, agent_id=self.agent_id,
            agents=self.agents, direction=note.direction if note else None,
            caller=note.caller if note else None, dialed=note.dialed if note else None,
            region=_region_view(note.region if note else None),
            queue=note.queue if note else None, duration_s=self.duration_s,
            size_bytes=self.size_bytes, reason=self.reason, playable=playable,
            uri=self.uri if playable else None)


def _region_view(region: CallerRegion | None) -> RegionView | None:
    return None if region is None else RegionView(**msgspec.structs.asdict(region))


class _Bounded(OrderedDict[str, T]):
    """A dict that forgets its least recently written keys beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: T) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class CallerHistory:
    """What the service remembers of calls, tickets, voicemail and recordings, from the
    events it has seen.

    Bounded: the last ``recent_calls`` finished calls of each number, ``max_numbers``
    numbers and ``max_tickets`` tickets; the last ``agent_calls`` finished and missed
    calls of each of ``max_agents`` agents (AG-05); the last ``mailbox_messages``
    messages of each of ``max_mailboxes`` mailboxes (CC-06); the last ``max_recordings``
    recordings (CC-07). The least recently touched entries are forgotten first. A number
    learns its customer id from a call offer that carries one or from a ticket created
    on one of its calls.
    """

    def __init__(self, *, recent_calls: int = 5, max_tickets_shown: int = 10,
                 max_numbers: int = 100_000, max_tickets: int = 100_000,
                 agent_calls: int = 100, max_agents: int = 10_000,
                 mailbox_messages: int = 100, max_mailboxes: int = 10_000,
                 max_recordings: int = 100_000) -> None:
        for name, value in (("recent_calls", recent_calls), ("agent_calls", agent_calls),
                            ("mailbox_messages", mailbox_messages)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self._recent_limit = recent_calls
        self._tickets_shown = max_tickets_shown
        self._agent_limit = agent_calls
        self._mailbox_limit = mailbox_messages
        self._live: dict[str, _CallNote] = {}
        self._finished: _Bounded[_CallNote] = _Bounded(max_numbers * recent_calls)
        self._by_number: _Bounded[deque[str]] = _Bounded(max_numbers)
        self._customers: _Bounded[str] = _Bounded(max_numbers)
        self._tickets: _Bounded[TicketSummary] = _Bounded(max_tickets)
        self._tickets_by_number: _Bounded[deque[str]] = _Bounded(max_numbers)
        self._tickets_by_customer: _Bounded[deque[str]] = _Bounded(max_numbers)
        self._agent_calls: _Bounded[deque[AgentCall]] = _Bounded(max_agents)
        self._missed: _Bounded[deque[MissedCall]] = _Bounded(max_agents)
        self._mailboxes: _Bounded[deque[VoicemailMessage]] = _Bounded(max_mailboxes)
        self._recordings: _Bounded[_Recording] = _Bounded(max_recordings)

    def call(self, call_id: str) -> _CallNote | None:
        """What is known of a live or recently finished call."""
        return self._live.get(call_id) or self._finished.get(call_id)

    def customer_of(self, call_id: str) -> str | None:
        """The customer id of a call, if the call or its number is known to have one."""
        note = self.call(call_id)
        if note is None:
            return None
        return note.customer_id or self._customers.get(note.number)

    def agent_calls(self, agent_id: str, limit: int) -> list[AgentCall]:
        """The agent's last finished calls, newest first (AG-05)."""
        return list(self._agent_calls.get(agent_id, ()))[:limit]

    def missed_calls(self, agent_id: str, limit: int) -> list[MissedCall]:
        """The calls that rang at the agent and it did not answer, newest first (AG-05)."""
        return list(self._missed.get(agent_id, ()))[:limit]

    def voicemail(self, mailbox: str) -> list[VoicemailMessage]:
        """The messages of a mailbox, newest first (CC-06)."""
        return list(self._mailboxes.get(mailbox, ()))

    def recordings(self) -> Iterable[_Recording]:
        """Every remembered recording, most recently stored first (CC-07)."""
        return reversed(list(self._recordings.values()))

    def observe(self, event: Event[Payload]) -> None:
        """Take one engine event into account."""
        p = event.payload
        at = event.occurred_at
        if isinstance(p, CallOffered):
            number = p.caller if p.direction == "inbound" else p.dialed
            customer = p.customer_id or self._customers.get(number)
            if p.customer_id:
                self._customers[number] = p.customer_id
            note = _CallNote(
                call_id=p.call_id, number=number, caller=p.caller, dialed=p.dialed,
                direction=p.direction, offered_at=at, region=p.caller_region,
                customer_id=customer, priority=p.priority)
            if p.agent_id is not None:
                note.legs[p.agent_id] = _Leg()
            self._live[p.call_id] = note
        elif isinstance(p, RecordingStored):
            self._store_recording(p, at)
        elif isinstance(p, VoicemailLeft):
            self._store_voicemail(p, at)
        elif isinstance(p, CallPayload) and (note := self._live.get(p.call_id)) is not None:
            self._observe_call(note, p, at)
        elif isinstance(p, TicketPayload):
            self._observe_ticket(p, at)

    def _observe_call(self, note: _CallNote, p: CallPayload, at: datetime) -> None:
        if isinstance(p, CallQueued):
            note.queue, note.queued_at, note.priority = p.queue, at, p.priority
        elif isinstance(p, RingingAgent):
            note.ringing[p.agent_id] = at
        elif isinstance(p, RingNoAnswer):
            self._miss(note, p.agent_id, at, "rona")
        elif isinstance(p, CallAbandoned) and p.stage == "ringing":
            for agent_id in list(note.ringing):
                self._miss(note, agent_id, at, "caller_hung_up")
        elif isinstance(p, CallAnswered):
            note.agent_id, note.answered_at = p.agent_id, at
            note.queue = p.queue or note.queue
            note.answer(p.agent_id, at)
        elif isinstance(p, CallTransferred) and p.agent_id is not None:
            note.leave(p.agent_id, at)
        elif isinstance(p, SupervisorJoined) and p.mode == "intercept":
            note.answer(p.supervisor_id, at)
        elif isinstance(p, CallEnded):
            note.disposition, note.ended_at = p.disposition, at
            note.agent_id = p.agent_id or note.agent_id
            for agent_id in list(note.legs):
                note.leave(agent_id, at)
            self._finish(self._live.pop(p.call_id))

    def mailbox_count(self, mailbox: str) -> int:
        """How many messages the mailbox holds (CC-06)."""
        return len(self._mailboxes.get(mailbox, ()))

    def screen_pop(self, event: Event[Payload]) -> ScreenPop | None:
        """The screen pop for a ``call.ringing`` event (``None`` for any other event or
        an unknown call)."""
        p = event.payload
        note = self._live.get(p.call_id) if isinstance(p, RingingAgent) else None
        if note is None or not isinstance(p, RingingAgent):
            return None
        since = note.queued_at or note.offered_at
        customer = note.customer_id or self._customers.get(note.number)
        recent = [self._finished[c].recent() for c in self._by_number.get(note.number, ())
                  if c in self._finished]
        ticket_ids: dict[str, None] = {}
        for index in (self._tickets_by_number.get(note.number, ()),
                      self._tickets_by_customer.get(customer or "", ())):
            ticket_ids.update(dict.fromkeys(index))
        tickets = sorted((self._tickets[t] for t in ticket_ids if t in self._tickets),
                         key=lambda t: t.created_at, reverse=True)[: self._tickets_shown]
        return ScreenPop(
            call_id=p.call_id, agent_id=p.agent_id, rang_at=event.occurred_at,
            caller=note.caller, dialed=note.dialed, direction=note.direction,
            region=note.region, customer_id=customer, queue=p.queue or note.queue,
            waited_s=round(max(0.0, (event.occurred_at - since).total_seconds()), 3),
            attempt=p.attempt, priority=note.priority, recent_calls=recent, tickets=tickets)

    def _finish(self, note: _CallNote) -> None:
        self._finished[note.call_id] = note
        numbers = self._by_number.get(note.number) or deque(maxlen=self._recent_limit)
        numbers.appendleft(note.call_id)
        self._by_number[note.number] = numbers
        for agent_id, leg in note.legs.items():
            self._push(self._agent_calls, agent_id, AgentCall(
                call_id=note.call_id, offered_at=note.offered_at, answered_at=leg.answered_at,
                direction=note.direction, caller=note.caller, dialed=note.dialed,
                region=_region_view(note.region), queue=note.queue, talk_s=leg.talk_s(),
                disposition=note.disposition or "failed",
                recording_uri=note.recordings.get(agent_id)), self._agent_limit)

    def _miss(self, note: _CallNote, agent_id: str, at: datetime,
              reason: Literal["rona", "caller_hung_up"]) -> None:
        rang_at = note.ringing.pop(agent_id, None)
        if rang_at is None:
            return
        self._push(self._missed, agent_id, MissedCall(
            call_id=note.call_id, rang_at=rang_at, missed_at=at, reason=reason,
            caller=note.caller, region=_region_view(note.region), queue=note.queue,
            ring_s=round((at - rang_at).total_seconds(), 3)), self._agent_limit)

    def _store_recording(self, p: RecordingStored, at: datetime) -> None:
        note = self.call(p.call_id)
        if note is not None:
            note.recording_uri = p.uri
            if p.agent_id is not None:
                note.recordings[p.agent_id] = p.uri
        self._recordings[p.uri] = _Recording(
            uri=p.uri, call_id=p.call_id, stored_at=at, agent_id=p.agent_id,
            duration_s=p.duration_s, size_bytes=p.size_bytes, reason=p.reason, note=note)

    def _store_voicemail(self, p: VoicemailLeft, at: datetime) -> None:
        note = self.call(p.call_id)
        self._push(self._mailboxes, p.mailbox, VoicemailMessage(
            call_id=p.call_id, caller=note.caller if note else None,
            region=_region_view(note.region if note else None), left_at=at,
            duration_s=p.duration_s, recording_uri=p.recording_uri), self._mailbox_limit)

    @staticmethod
    def _push(index: _Bounded[deque[T]], key: str, item: T, limit: int) -> None:
        items = index.get(key) or deque(maxlen=limit)
        items.appendleft(item)
        index[key] = items

    def _observe_ticket(self, p: TicketPayload, at: datetime) -> None:
        if isinstance(p, TicketCreated):
            note = self.call(p.call_id) if p.call_id else None
            customer = p.customer_id or (note.customer_id if note else None)
            if note is not None and customer:
                self._customers[note.number] = customer
            self._tickets[p.ticket_id] = TicketSummary(
                ticket_id=p.ticket_id, subject=p.subject, status="open", category=p.category,
                customer_id=customer, call_id=p.call_id, created_by=p.created_by,
                created_at=at, assignee=None)
            if note is not None:
                self._index(self._tickets_by_number, note.number, p.ticket_id)
            if customer:
                self._index(self._tickets_by_customer, customer, p.ticket_id)
            return
        ticket = self._tickets.get(p.ticket_id)
        if ticket is None:
            return
        if isinstance(p, TicketAssigned):
            self._tickets[p.ticket_id] = msgspec.structs.replace(ticket, assignee=p.assignee)
        elif isinstance(p, TicketStatusChanged):
            self._tickets[p.ticket_id] = msgspec.structs.replace(ticket, status=p.status)
        elif isinstance(p, TicketClosed):
            self._tickets[p.ticket_id] = msgspec.structs.replace(ticket, status="closed")

    def _index(self, index: _Bounded[deque[str]], key: str, ticket_id: str) -> None:
        ids = index.get(key) or deque(maxlen=4 * self._tickets_shown)
        ids.appendleft(ticket_id)
        index[key] = ids


# -- sessions (AG-01) -----------------------------------------------------------------


class AuthenticationError(Exception):
    """No valid session: missing, unknown, revoked or expired token, or a failed login."""


@dataclass(frozen=True, slots=True)
class Session:
    """Who a bearer token speaks for, until when."""

    user_id: str
    role: Role
    extension: str
    takes_calls: bool
    """Logged in to the engine as an agent (agents, and supervisors with skills)."""
    expires_at: datetime
    deadline: float
    """``expires_at`` on the session store's monotonic clock."""
    key: bytes = field(repr=False)
    """The token's digest, which names the session in the store."""


class SessionStore:
    """Bearer tokens kept in memory, by their SHA-256 digest, with an expiry.

    Only digests are stored, so neither a memory dump nor a lookup's timing reveals a
    token. A restart ends every session.
    """

    def __init__(self, *, ttl_s: float, now: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError(f"session ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        self._now = now
        self._sessions: dict[bytes, Session] = {}

    def issue(self, user: AgentConfig, *, extension: str, takes_calls: bool
              ) -> tuple[str, Session]:
        """A new random token and its session."""
        token = secrets.token_urlsafe(32)
        key = _digest(token)
        session = Session(user_id=user.id, role=user.role, extension=extension,
                          takes_calls=takes_calls,
                          expires_at=datetime.now(UTC) + timedelta(seconds=self.ttl_s),
                          deadline=self._now() + self.ttl_s, key=key)
        self._sessions[key] = session
        return token, session

    def lookup(self, token: str) -> Session:
        """The live session of ``token``; ``AuthenticationError`` otherwise."""
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            raise AuthenticationError("the bearer token is unknown or was revoked; "
                                      "log in again with POST /v1/sessions")
        if session.deadline <= self._now():
            del self._sessions[key]
            raise AuthenticationError("the session expired; log in again with "
                                      "POST /v1/sessions")
        return session

    def alive(self, key: bytes) -> bool:
        """Whether the session named by a token digest is still valid."""
        session = self._sessions.get(key)
        return session is not None and session.deadline > self._now()

    def revoke(self, token: str) -> None:
        """End one session."""
        self._sessions.pop(_digest(token), None)

    def revoke_user(self, user_id: str) -> int:
        """End every session of ``user_id``; returns how many there were."""
        keys = [k for k, s in self._sessions.items() if s.user_id == user_id]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def purge(self) -> None:
        """Forget expired sessions."""
        now = self._now()
        for key in [k for k, s in self._sessions.items() if s.deadline <= now]:
            del self._sessions[key]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


# -- event streams --------------------------------------------------------------------


_SUBSCRIBER_BACKLOG = 1000


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False, slots=True)
class _Subscriber:
    user_id: str
    session_key: bytes
    scope: frozenset[str] | None
    """Agents a supervision stream covers; ``None`` for an agent's own stream."""
    queue: asyncio.Queue[str | _Close] = field(
        default_factory=lambda: asyncio.Queue(maxsize=_SUBSCRIBER_BACKLOG))
    closing: bool = False

    def offer(self, message: str | _Close) -> None:
        if self.closing:
            return
        self.closing = isinstance(message, _Close)
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A desktop that stopped reading must not hold the engine back: drop its
            # backlog and close it; it reconnects and re-reads its state.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_Close(CLOSE_TOO_SLOW, "too far behind; reconnect"))
            self.closing = True


# -- the service ----------------------------------------------------------------------


class EngineService:
    """One engine behind an asyncio lock, with its timers, sessions, event log,
    telephony bridge and event streams.

    ``clock`` defaults to the system clock; tests inject a ``VirtualClock`` and call
    ``tick`` after moving it. ``seed`` defaults to a random one, so call and event ids
    do not repeat across restarts. ``region_lookup``, ``flows``, ``calendar``, ``hooks``
    and ``blocked`` go to the ``Engine`` as they are. ``start`` and ``stop`` are run by
    the app's lifespan.
    """

    def __init__(
        self,
        center: CenterConfig,
        *,
        clock: Clock | None = None,
        event_log: EventLog | None = None,
        telephony: TelephonyAdapter | None = None,
        region_lookup: RegionLookup | None = None,
        flows: Mapping[str, ivr.Flow] | None = None,
        calendar: ivr.CalendarLookup | None = None,
        hooks: HookRunner | None = None,
        blocked: BlockedCheck | None = None,
        seed: int | None = None,
        source: str = "callcore",
        session_ttl_s: float = 12 * 3600.0,
        recent_calls: int = 5,
        max_tick_s: float = 1.0,
    ) -> None:
        if max_tick_s <= 0:
            raise ValueError(f"max_tick_s must be positive, got {max_tick_s}")
        self.center = center
        self.clock: Clock = clock or SystemClock()
        self.engine = Engine(center, clock=self.clock, source=source,
                             seed=secrets.randbits(64) if seed is None else seed,
                             region_lookup=region_lookup, flows=flows, calendar=calendar,
                             hooks=hooks, blocked=blocked)
        self.event_log = event_log
        self.telephony: TelephonyAdapter = telephony or SimulatedTelephony()
        self.bridge = TelephonyBridge(self.telephony, center)
        self.history = CallerHistory(recent_calls=recent_calls)
        self.sessions = SessionStore(ttl_s=session_ttl_s)
        self.users: dict[str, AgentConfig] = {a.id: a for a in center.agents}
        self._max_tick_s = max_tick_s
        # Unknown users are checked against this, so a failed login takes as long
        # whether or not the user exists.
        self._decoy_hash = hash_password(secrets.token_hex(16))
        self._unlogged: list[Event[Payload]] = []
        self._subscribers: set[_Subscriber] = set()
        self._call_parties: dict[str, set[str]] = {}
        self._ticket_parties: _Bounded[set[str]] = _Bounded(100_000)
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._timers: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the timer task (on the running event loop)."""
        if self._timers is not None:
            raise RuntimeError("the service is already started; one app per service")
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._timers = asyncio.create_task(self._run_timers(), name="callcore-timers")

    async def stop(self) -> None:
        """Stop the timers, close every stream and try once more to log what is pending."""
        if self._timers is None:
            return
        self._timers.cancel()
        with suppress(asyncio.CancelledError):
            await self._timers
        self._timers = None
        for subscriber in list(self._subscribers):
            subscriber.offer(_Close(1001, "the server is shutting down"))
        if self._unlogged:
            await self._append([])

    @property
    def unlogged_events(self) -> int:
        """Events the engine emitted that the event log has not accepted yet."""
        return len(self._unlogged)

    # -- commands ------------------------------------------------------------------

    async def command(self, action: Callable[[Engine], T]) -> T:
        """Run ``action`` on the engine under the lock and publish what it emitted.

        A ``CommandRejectedError`` propagates after anything emitted before it was
        published, so the log always matches the engine's state.
        """
        lock = self._require_started()
        async with lock:
            try:
                return action(self.engine)
            finally:
                # The engine has changed: its events must reach the log even if this
                # request (or the timer task, at shutdown) is cancelled meanwhile.
                publishing = asyncio.ensure_future(self._publish(self.engine.drain()))
                try:
                    await asyncio.shield(publishing)
                except asyncio.CancelledError:
                    await publishing
                    raise
                finally:
                    assert self._wake is not None
                    self._wake.set()

    async def tick(self) -> None:
        """Fire the engine's timers that are due on its clock, and publish."""
        await self.command(lambda engine: engine.advance())

    async def offer_call(self, *, caller: str, dialed: str, call_id: str | None = None,
                         priority: int | None = None) -> str:
        """The network: a call arrives at ``dialed`` (what a PBX adapter reports)."""
        return await self.command(lambda e: e.offer_call(caller=caller, dialed=dialed,
                                                         call_id=call_id, priority=priority))

    async def caller_hangs_up(self, call_id: str) -> None:
        """The network: the caller hung up."""
        await self.command(lambda e: e.caller_hangs_up(call_id))

    async def press_digits(self, call_id: str, digits: str) -> None:
        """The network: the caller pressed keys."""
        await self.command(lambda e: e.press_digits(call_id, digits))

    async def remote_answered(self, call_id: str) -> None:
        """The network: the far end of an outbound call answered."""
        await self.command(lambda e: e.remote_answered(call_id))

    async def hook_result(self, call_id: str, *, values: Mapping[str, Any] | None = None,
                          error: str | None = None) -> None:
        """The network: an IVR data hook answered (when no hook runner is configured)."""
        await self.command(lambda e: e.hook_result(call_id, values=values, error=error))

    async def voicemail_recorded(self, call_id: str, *, duration_s: float, mailbox: str) -> None:
        """The network: the caller finished a voicemail message."""
        await self.command(lambda e: e.voicemail_recorded(call_id, duration_s=duration_s,
                                                          mailbox=mailbox))

    # -- sessions ------------------------------------------------------------------

    async def log_in(self, agent_id: str, *, extension: str, password: str
                     ) -> tuple[str, Session]:
        """Check the password, log an agent in to the engine, and open a session.

        Agents (and supervisors with skills) are logged in to the engine at
        ``extension``; logging in again at the same extension opens another session
        (a reloaded desktop), at another extension it is a conflict.
        """
        user = self.users.get(agent_id)
        stored = user.password_hash if user is not None and user.password_hash else (
            self._decoy_hash)
        matches = await asyncio.to_thread(verify_password, password, stored)
        if user is None or not user.password_hash or not matches:
            log.warning("login failed", reason="bad credentials")
            raise AuthenticationError("agent id or password is wrong")
        takes_calls = user.role == "agent" or bool(user.skills)
        if takes_calls:
            def attach(engine: Engine) -> None:
                current = engine.agents.get(agent_id)
                if current is None:
                    engine.log_in(agent_id, extension=extension)
                elif current.extension != extension:
                    raise CommandRejectedError(
                        "conflict", f"agent {agent_id} is logged in at extension "
                        f"{current.extension}; log out there first or ask a supervisor to "
                        "force a log-out")
            await self.command(attach)
        else:
            self.bridge.bind_extension(agent_id, extension)
        return self.sessions.issue(user, extension=extension, takes_calls=takes_calls)

    async def log_out(self, token: str, session: Session) -> None:
        """End the session; an agent is also logged out of the engine (not during a call)."""
        if session.takes_calls:
            def detach(engine: Engine) -> None:
                if session.user_id in engine.agents:
                    engine.log_out(session.user_id, reason="logout")
            await self.command(detach)
        self.sessions.revoke(token)
        self._close_orphans()

    def authenticate(self, token: str) -> Session:
        """The session of a bearer token; ``AuthenticationError`` if there is none."""
        return self.sessions.lookup(token)

    # -- views ---------------------------------------------------------------------

    def agent_view(self, user_id: str) -> AgentView:
        """A configured user and, if logged in, their engine state."""
        config = self.users.get(user_id)
        if config is None:
            raise CommandRejectedError("unknown", f"unknown agent {user_id!r}")
        record: AgentRecord | None = self.engine.agents.get(user_id)
        if record is None:
            return AgentView(agent_id=config.id, name=config.name, role=config.role,
                             team=config.team, logged_in=False)
        return AgentView(
            agent_id=config.id, name=config.name, role=config.role, team=config.team,
            logged_in=True, extension=record.extension, state=record.state,
            reason=record.reason, since=from_ms(record.since_ms), call_id=record.call_id,
            queues=dict(record.queues), muted=record.muted, answered=record.answered)

    def ticket_view(self, ticket_id: str) -> TicketView:
        """A ticket as the engine sees it now."""
        ticket = self.engine.tickets.get(ticket_id)
        if ticket is None:
            raise CommandRejectedError("unknown", f"no ticket {ticket_id!r}")
        return TicketView(ticket_id=ticket.ticket_id, status=ticket.status,
                          assignee=ticket.assignee, created_by=ticket.created_by,
                          call_id=ticket.call_id)

    def waiting_view(self, queue: str) -> WaitingView:
        """The calls waiting in ``queue`` (ACD-07)."""
        if queue not in {q.name for q in self.center.queues}:
            raise CommandRejectedError("unknown", f"unknown queue {queue!r}; known: "
                                       + ", ".join(q.name for q in self.center.queues))
        now = self.clock.now_ms()
        calls: list[WaitingCall] = []
        for position, call_id in enumerate(self.engine.waiting(queue), start=1):
            call = self.engine.calls[call_id]
            region = None if call.region is None else RegionView(
                **msgspec.structs.asdict(call.region))
            calls.append(WaitingCall(
                call_id=call_id, position=position, caller=call.caller, region=region,
                customer_id=self.history.customer_of(call_id), priority=call.priority,
                waited_s=max(0, now - (call.queued_ms or call.offered_ms)) / 1000))
        return WaitingView(queue=queue, calls=calls)

    def in_scope(self, supervisor_id: str, agent_id: str) -> bool:
        """Whether the role hierarchy lets ``supervisor_id`` act on ``agent_id`` (SV-03)."""
        try:
            self.engine.check_scope(supervisor_id, agent_id)
        except CommandRejectedError:
            return False
        return True

    def scope_of(self, supervisor_id: str) -> list[str]:
        """The configured users ``supervisor_id`` may supervise, in configuration order."""
        return [a.id for a in self.center.agents if self.in_scope(supervisor_id, a.id)]

    def voicemail_box(self, session: Session, mailbox: str) -> VoicemailBox:
        """A mailbox's messages, if ``session`` may read it (CC-06): its own mailbox; a
        supervisor also those of the agents in scope and the queues' mailboxes."""
        me = session.user_id
        if mailbox != me:
            if ROLE_RANK[session.role] < ROLE_RANK["team_lead"]:
                raise CommandRejectedError("forbidden", f"agent {me} may read only its own "
                                           f"mailbox {me}")
            if mailbox in self.users:
                try:
                    self.engine.check_scope(me, mailbox)
                except CommandRejectedError as exc:
                    raise CommandRejectedError("forbidden", f"{me} may not read mailbox "
                                               f"{mailbox}: {exc.message}") from exc
            elif mailbox not in {q.name for q in self.center.queues}:
                raise CommandRejectedError("unknown", f"unknown mailbox {mailbox!r}; a mailbox "
                                           "is named after an agent or a queue")
        messages = self.history.voicemail(mailbox)
        return VoicemailBox(mailbox=mailbox, count=len(messages), messages=messages)

    def search_recordings(self, session: Session, *, agent_id: str | None = None,
                          number: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, limit: int = 100
                          ) -> list[RecordingView]:
        """Recordings stored in ``[since, until)``, most recent first, of calls the
        session may see (CC-07): an agent its own calls, a supervisor those of the agents
        in scope (and its own), a director all. ``uri`` is given only for recordings of
        a leg the session covers (a director's: every one)."""
        me = session.user_id
        director = session.role == "director"
        if since is not None and until is not None and since >= until:
            raise CommandRejectedError("invalid", "since must be before until")
        if agent_id is not None and agent_id != me:
            if ROLE_RANK[session.role] < ROLE_RANK["team_lead"]:
                raise CommandRejectedError("forbidden", f"agent {me} may search only its own "
                                           "recordings")
            if agent_id not in self.users:
                raise CommandRejectedError("unknown", f"unknown agent {agent_id!r}")
            if not director and not self.in_scope(me, agent_id):
                raise CommandRejectedError("forbidden", f"agent {agent_id} is outside the "
                                           f"scope of {session.role} {me}")
        covered = None if director else {me, *self.scope_of(me)}
        found: list[RecordingView] = []
        for recording in self.history.recordings():
            if len(found) >= limit:
                break
            agents = recording.agents
            if ((since is not None and recording.stored_at < since)
                    or (until is not None and recording.stored_at >= until)
                    or (agent_id is not None and agent_id not in agents)
                    or (number is not None and number not in recording.numbers)
                    or (covered is not None and covered.isdisjoint(agents))):
                continue
            playable = covered is None or recording.agent_id in covered
            found.append(recording.view(playable=playable))
        return found

    # -- streams -------------------------------------------------------------------

    def subscribe(self, session: Session, *, scope: Iterable[str] | None = None
                  ) -> _Subscriber:
        """A stream of the session user's own events, or of the agents in ``scope``; it
        closes when the session ends."""
        subscriber = _Subscriber(session.user_id, session.key,
                                 None if scope is None else frozenset(scope))
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        """Stop feeding a stream."""
        self._subscribers.discard(subscriber)

    # -- publishing ----------------------------------------------------------------

    def _require_started(self) -> asyncio.Lock:
        if self._lock is None:
            raise RuntimeError("the service is not started; serve it through create_app() "
                               "(its lifespan starts it) or await start() first")
        return self._lock

    async def _publish(self, events: list[Event[Payload]]) -> None:
        if events or self._unlogged:
            await self._append(events)
        for event in events:
            self.history.observe(event)
            try:
                self.bridge.handle(event)
            except Exception:
                # Media trouble must not stop call control; the PBX adapter logs detail.
                log.exception("telephony adapter failed", event_type=event.type,
                              event_id=event.id)
            self._fan_out(event)

    async def _append(self, events: list[Event[Payload]]) -> None:
        if self.event_log is None:
            return
        pending = [*self._unlogged, *events]
        try:
            report = await asyncio.to_thread(self.event_log.produce, pending)
        except (LogError, OSError) as exc:
            self._unlogged = pending
            log.error("event log append failed; will retry", pending=len(pending),
                      error=str(exc))
            return
        self._unlogged = []
        if report.rejected:
            log.error("engine events dead-lettered", count=report.dead_lettered,
                      first_reason=report.rejected[0].reason)

    def _fan_out(self, event: Event[Payload]) -> None:
        parties = self._parties(event)
        p = event.payload
        message: str | None = None
        notice: str | None = None
        if isinstance(p, VoicemailLeft) and p.mailbox in self.users:
            notice = json.dumps({"kind": "message_waiting", "mailbox": p.mailbox,
                                 "count": self.history.mailbox_count(p.mailbox)})
        for subscriber in list(self._subscribers):
            own = subscriber.scope is None
            wanted = (subscriber.user_id in parties if subscriber.scope is None
                      else not subscriber.scope.isdisjoint(parties))
            if wanted:
                message = message or _event_message(event)
                subscriber.offer(message)
                if own and isinstance(p, RingingAgent) and p.agent_id == subscriber.user_id:
                    pop = self.history.screen_pop(event)
                    if pop is not None:
                        subscriber.offer(msgspec.json.encode(pop).decode())
            if notice is not None and own and isinstance(p, VoicemailLeft) and (
                p.mailbox == subscriber.user_id
            ):
                subscriber.offer(notice)
        if isinstance(event.payload, AgentLoggedOut):
            self._end_sessions(event.payload.agent_id)

    def _parties(self, event: Event[Payload]) -> set[str]:
        """The users an event concerns: its agent, and everyone who took part in its
        call or ticket so far."""
        p = event.payload
        if isinstance(p, AgentPayload):
            return {p.agent_id}
        if isinstance(p, CallPayload):
            parties = self._call_parties.setdefault(p.call_id, set())
            for name in ("agent_id", "supervisor_id"):
                if (user := getattr(p, name, None)) is not None:
                    parties.add(user)
            if isinstance(p, CallEnded):
                del self._call_parties[p.call_id]
            return set(parties)
        if isinstance(p, TicketPayload):
            parties = self._ticket_parties.get(p.ticket_id) or set()
            for name in ("created_by", "assignee", "assigned_by", "changed_by", "author",
                         "closed_by"):
                if (user := getattr(p, name, None)) is not None:
                    parties.add(user)
            self._ticket_parties[p.ticket_id] = parties
            return set(parties)
        return set()

    def _end_sessions(self, user_id: str) -> None:
        self.sessions.revoke_user(user_id)
        self._close_orphans()

    def _close_orphans(self) -> None:
        """Close the streams whose session ended (logged out, forced out, expired)."""
        for subscriber in list(self._subscribers):
            if not self.sessions.alive(subscriber.session_key):
                self._subscribers.discard(subscriber)
                subscriber.offer(_Close(CLOSE_SESSION_ENDED, "the session ended"))

    async def _run_timers(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            due = self.engine.next_timer_ms()
            delay = self._max_tick_s if due is None else min(
                self._max_tick_s, max(0.0, (due - self.clock.now_ms()) / 1000))
            if delay > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            try:
                await self.tick()
                self.sessions.purge()
                self._close_orphans()
            except Exception:
                log.exception("engine timer tick failed")
                await asyncio.sleep(self._max_tick_s)


def _event_message(event: Event[Payload]) -> str:
    return '{"kind":"event","event":' + encode_event(event).decode() + "}"


# -- HTTP plumbing --------------------------------------------------------------------

_STATUS: dict[str, int] = {"unknown": 404, "forbidden": 403, "conflict": 409, "invalid": 422}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description} for status, description in (
        (401, "No valid session: log in with POST /v1/sessions"),
        (403, "Outside the caller's role or scope, or a missing permission"),
        (404, "No such agent, call, ticket, queue or mailbox"),
        (409, "The current state does not allow it"),
        (422, "Malformed request or invalid arguments"),
    )
}
_HTTP_CODES: dict[int, ErrorCode] = {401: "unauthorized", 403: "forbidden", 404: "unknown",
                                     409: "conflict", 500: "internal"}
_bearer = HTTPBearer(auto_error=False, description="The token from POST /v1/sessions")


def _error(status: int, code: ErrorCode, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers=headers or None)


def _service(request: Request) -> EngineService:
    service: EngineService = request.app.state.service
    return service


def _session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    if credentials is None:
        raise AuthenticationError("missing bearer token; log in with POST /v1/sessions and "
                                  "send Authorization: Bearer <token>")
    return _service(request).authenticate(credentials.credentials)


def _supervisor(session: Annotated[Session, Depends(_session)]) -> Session:
    if ROLE_RANK[session.role] < ROLE_RANK["team_lead"]:
        raise CommandRejectedError(
            "forbidden", f"{session.user_id} is an agent; supervision needs the team_lead, "
            "manager or director role")
    return session


Service = Annotated[EngineService, Depends(_service)]
Me = Annotated[Session, Depends(_session)]
Supervisor = Annotated[Session, Depends(_supervisor)]


def _validation_message(exc: RequestValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            problems.append("body: not valid JSON; send a JSON object")
            continue
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is malformed"


def _install_error_handlers(app: FastAPI) -> None:
    async def rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommandRejectedError)
        return _error(_STATUS[exc.code], exc.code, exc.message)

    async def unauthenticated(request: Request, exc: Exception) -> Response:
        return _error(401, "unauthorized", str(exc), **{"WWW-Authenticate": "Bearer"})

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _error(422, "invalid", _validation_message(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "invalid")
        message = (f"no endpoint {request.method} {request.url.path}" if exc.status_code == 404
                   else str(exc.detail))
        return _error(exc.status_code, code, message)

    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("request failed", path=request.url.path, exc_info=exc)
        return _error(500, "internal", "internal error; the server log has the details")

    app.add_exception_handler(CommandRejectedError, rejected)
    app.add_exception_handler(AuthenticationError, unauthenticated)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crashed)


# -- routes: sessions -----------------------------------------------------------------

sessions = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=_ERRORS)


@sessions.post("", status_code=201, response_model=SessionView)
async def create_session(body: LoginRequest, service: Service) -> SessionView:
    """AG-01: log in; the same 401 whether the agent id or the password is wrong."""
    token, session = await service.log_in(body.agent_id, extension=body.extension,
                                          password=body.password)
    return SessionView(token=token, expires_at=session.expires_at,
                       agent=service.agent_view(session.user_id))


@sessions.delete("/current", status_code=204, response_class=Response)
async def delete_session(
    service: Service, me: Me,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """AG-01: log out (an agent on a call gets 409) and revoke the token."""
    assert credentials is not None
    await service.log_out(credentials.credentials, me)
    return Response(status_code=204)


# -- routes: the agent's own desktop ----------------------------------------------------

agents = APIRouter(prefix="/v1/agents/me", tags=["agent"], responses=_ERRORS)


async def _act(service: EngineService, me: Session, action: Callable[[Engine], object]
               ) -> AgentView:
    await service.command(action)
    return service.agent_view(me.user_id)


@agents.get("", response_model=AgentView)
async def get_me(service: Service, me: Me) -> AgentView:
    """AG-02: the caller's own state."""
    return service.agent_view(me.user_id)


@agents.post("/ready", response_model=AgentView)
async def ready(service: Service, me: Me) -> AgentView:
    """AG-02: become ready for calls (also ends after-call work early)."""
    return await _act(service, me, lambda e: e.set_ready(me.user_id))


@agents.post("/not-ready", response_model=AgentView)
async def not_ready(body: NotReadyRequest, service: Service, me: Me) -> AgentView:
    """AG-02: become not ready with a reason code."""
    return await _act(service, me, lambda e: e.set_not_ready(me.user_id, reason=body.reason))


@agents.post("/answer", response_model=AgentView)
async def answer(service: Service, me: Me) -> AgentView:
    """AG-04: answer the call ringing here."""
    return await _act(service, me, lambda e: e.answer(me.user_id))


@agents.post("/hang-up", response_model=AgentView)
async def hang_up(service: Service, me: Me) -> AgentView:
    """AG-04: end the current call."""
    return await _act(service, me, lambda e: e.hang_up(me.user_id))


@agents.post("/hold", response_model=AgentView)
async def hold(service: Service, me: Me) -> AgentView:
    """AG-04: put the caller on hold."""
    return await _act(service, me, lambda e: e.hold(me.user_id))


@agents.post("/resume", response_model=AgentView)
async def resume(service: Service, me: Me) -> AgentView:
    """AG-04: take the caller off hold, or return from a consultation."""
    return await _act(service, me, lambda e: e.resume(me.user_id))


@agents.post("/mute", response_model=AgentView)
async def mute(service: Service, me: Me) -> AgentView:
    """AG-02: mute the microphone."""
    return await _act(service, me, lambda e: e.mute(me.user_id))


@agents.post("/unmute", response_model=AgentView)
async def unmute(service: Service, me: Me) -> AgentView:
    """AG-02: unmute the microphone."""
    return await _act(service, me, lambda e: e.unmute(me.user_id))


@agents.post("/transfer", response_model=AgentView)
async def transfer(body: TransferRequest, service: Service, me: Me) -> AgentView:
    """AG-04: blind transfer (to a consulted party: consult transfer)."""
    return await _act(service, me, lambda e: e.transfer(
        me.user_id, target_kind=body.target_kind, target=body.target))


@agents.post("/consult", response_model=AgentView)
async def consult(body: TransferRequest, service: Service, me: Me) -> AgentView:
    """AG-04: hold the caller and consult a colleague, a queue or an external number."""
    return await _act(service, me, lambda e: e.consult(
        me.user_id, target_kind=body.target_kind, target=body.target))


@agents.post("/conference", response_model=AgentView)
async def conference(service: Service, me: Me) -> AgentView:
    """AG-04: join the held caller and the consulted party."""
    return await _act(service, me, lambda e: e.conference(me.user_id))


@agents.post("/pick-up", response_model=AgentView)
async def pick_up(body: PickUpRequest, service: Service, me: Me) -> AgentView:
    """ACD-07: take a call that is ringing at another agent."""
    return await _act(service, me, lambda e: e.pick_up(me.user_id, body.call_id))


@agents.post("/dial", response_model=AgentView)
async def dial(body: DialRequest, service: Service, me: Me) -> AgentView:
    """AG-04: an outbound or internal call; its id is the view's ``call_id``."""
    return await _act(service, me, lambda e: e.dial(me.user_id, body.number))


@agents.post("/help", response_model=AgentView)
async def request_help(body: HelpRequest, service: Service, me: Me) -> AgentView:
    """AG-04: ask a supervisor for help; it reaches supervision streams."""
    return await _act(service, me, lambda e: e.request_help(me.user_id, message=body.message))


@agents.post("/queues/{queue}/sign-in", response_model=AgentView)
async def sign_in(queue: str, service: Service, me: Me) -> AgentView:
    """AG-03: sign in to a skill group."""
    return await _act(service, me, lambda e: e.sign_in(me.user_id, queue))


@agents.post("/queues/{queue}/sign-out", response_model=AgentView)
async def sign_out(queue: str, service: Service, me: Me) -> AgentView:
    """AG-03: sign out of a skill group."""
    return await _act(service, me, lambda e: e.sign_out(me.user_id, queue))


@agents.get("/calls", response_model=list[AgentCall])
async def my_calls(service: Service, me: Me,
                   limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[AgentCall]:
    """AG-05: the caller's own finished calls (answered or placed), newest first."""
    return service.history.agent_calls(me.user_id, limit)


@agents.get("/missed", response_model=list[MissedCall])
async def my_missed(service: Service, me: Me,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[MissedCall]:
    """AG-05: calls that rang here and were not answered here (RONA, or the caller hung
    up while ringing), newest first."""
    return service.history.missed_calls(me.user_id, limit)


# -- routes: tickets (TK-01) ------------------------------------------------------------


@agents.post("/tickets", status_code=201, response_model=TicketView, tags=["tickets"])
async def create_ticket(body: TicketCreateRequest, service: Service, me: Me) -> TicketView:
    """TK-01: open a ticket; without ``call_id`` it is linked to the current call, and
    without ``customer_id`` to the customer known for that call."""
    def create(engine: Engine) -> str:
        record = engine.agents.get(me.user_id)
        call_id = body.call_id or (record.call_id if record is not None else None)
        if call_id is not None and call_id not in engine.calls and (
            service.history.call(call_id) is None
        ):
            raise CommandRejectedError("unknown", f"no call {call_id!r} is known; link the "
                                       "ticket to a current or recent call, or leave call_id out")
        customer = body.customer_id or (
            service.history.customer_of(call_id) if call_id is not None else None)
        return engine.create_ticket(me.user_id, subject=body.subject, call_id=call_id,
                                    customer_id=customer, category=body.category)
    return service.ticket_view(await service.command(create))


@agents.post("/tickets/{ticket_id}/assign", response_model=TicketView, tags=["tickets"])
async def assign_ticket(ticket_id: str, body: TicketAssignRequest, service: Service, me: Me
                        ) -> TicketView:
    """TK-01: assign a ticket to an agent."""
    await service.command(lambda e: e.assign_ticket(me.user_id, ticket_id,
                                                    assignee=body.assignee))
    return service.ticket_view(ticket_id)


@agents.post("/tickets/{ticket_id}/status", response_model=TicketView, tags=["tickets"])
async def ticket_status(ticket_id: str, body: TicketStatusRequest, service: Service, me: Me
                        ) -> TicketView:
    """TK-01: move a ticket to another status."""
    await service.command(lambda e: e.change_ticket_status(me.user_id, ticket_id,
                                                           status=body.status))
    return service.ticket_view(ticket_id)


@agents.post("/tickets/{ticket_id}/comments", response_model=TicketView, tags=["tickets"])
async def comment_ticket(ticket_id: str, body: TicketCommentRequest, service: Service, me: Me
                         ) -> TicketView:
    """TK-01: add a comment."""
    await service.command(lambda e: e.comment_ticket(me.user_id, ticket_id, body=body.body))
    return service.ticket_view(ticket_id)


@agents.post("/tickets/{ticket_id}/close", response_model=TicketView, tags=["tickets"])
async def close_ticket(ticket_id: str, body: TicketCloseRequest, service: Service, me: Me
                       ) -> TicketView:
    """TK-01: close a ticket."""
    await service.command(lambda e: e.close_ticket(me.user_id, ticket_id,
                                                   resolution=body.resolution))
    return service.ticket_view(ticket_id)


# -- routes: queues (ACD-07) ------------------------------------------------------------

queues = APIRouter(prefix="/v1/queues", tags=["queues"], responses=_ERRORS)


@queues.get("/{queue}/waiting", response_model=WaitingView)
async def waiting(queue: str, service: Service, me: Me) -> WaitingView:
    """ACD-07: calls waiting in a queue; agents see the queues they have a skill for,
    supervisors every queue."""
    view = service.waiting_view(queue)
    user = service.users[me.user_id]
    if ROLE_RANK[me.role] < ROLE_RANK["team_lead"] and queue not in user.skills:
        raise CommandRejectedError("forbidden", f"agent {me.user_id} has no skill for {queue}")
    return view


# -- routes: voicemail (CC-06) and recordings (CC-07) -------------------------------------

voicemail = APIRouter(prefix="/v1/voicemail", tags=["voicemail"], responses=_ERRORS)


@voicemail.get("/{mailbox}", response_model=VoicemailBox)
async def read_voicemail(mailbox: str, service: Service, me: Me) -> VoicemailBox:
    """CC-06: a mailbox's messages, newest first; an agent reads its own mailbox only, a
    supervisor also those of the agents in scope and the queues' mailboxes."""
    return service.voicemail_box(me, mailbox)


recordings = APIRouter(prefix="/v1/recordings", tags=["recordings"], responses=_ERRORS)


@recordings.get("", response_model=list[RecordingView])
async def search_recordings(
    service: Service, me: Me,
    agent_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    number: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RecordingView]:
    """CC-07: recordings stored in [since, until) of calls with an agent (answered or
    placed) or a number (caller or dialled), most recent first; ``uri`` only where the
    caller may play the recording."""
    return service.search_recordings(me, agent_id=agent_id, number=number, since=since,
                                     until=until, limit=limit)


# -- routes: supervision (SV-01..SV-03) -------------------------------------------------

supervision = APIRouter(prefix="/v1/supervision", tags=["supervision"], responses=_ERRORS)


@supervision.get("/agents", response_model=list[AgentView])
async def list_agents(service: Service, me: Supervisor) -> list[AgentView]:
    """SV-03: the users in the caller's scope, logged in or not."""
    return [service.agent_view(agent_id) for agent_id in service.scope_of(me.user_id)]


@supervision.post("/agents/{agent_id}/force", response_model=AgentView)
async def force(agent_id: str, body: ForceRequest, service: Service, me: Supervisor
                ) -> AgentView:
    """SV-02: force ready, not-ready, log-out, sign-in/out or hang-up, within scope."""
    await service.command(lambda e: e.force(me.user_id, agent_id, body.action,
                                            queue=body.queue, reason=body.reason))
    return service.agent_view(agent_id)


@supervision.post("/agents/{agent_id}/join", response_model=AgentView)
async def join(agent_id: str, body: JoinRequest, service: Service, me: Supervisor
               ) -> AgentView:
    """SV-01: monitor, whisper, barge into or intercept the agent's call, within scope."""
    await service.command(lambda e: e.supervise(me.user_id, agent_id, body.mode))
    return service.agent_view(agent_id)


# -- routes: health ---------------------------------------------------------------------

health = APIRouter(tags=["health"])


@health.get("/v1/health", response_model=HealthView)
async def get_health(service: Service) -> HealthView:
    """Liveness for load balancers; ``degraded`` while events wait for the event log."""
    pending = service.unlogged_events
    return HealthView(status="degraded" if pending else "ok", unlogged_events=pending)


# -- WebSocket streams ------------------------------------------------------------------


def _ws_token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return websocket.query_params.get("token")


async def _refuse(websocket: WebSocket, code: int, error: ErrorCode, message: str) -> None:
    # Accept first so that a browser sees why; a refused handshake carries no reason.
    await websocket.accept()
    await websocket.send_text(json.dumps({"kind": "error", "error": error, "message": message}))
    await websocket.close(code=code, reason=message[:120])


async def _stream(websocket: WebSocket, service: EngineService, subscriber: _Subscriber,
                  hello: dict[str, Any]) -> None:
    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    receiver = asyncio.create_task(until_disconnect())
    try:
        await websocket.send_text(json.dumps({"kind": "hello", **hello}))
        while True:
            getter = asyncio.ensure_future(subscriber.queue.get())
            done, _ = await asyncio.wait({getter, receiver},
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return
            message = getter.result()
            if isinstance(message, _Close):
                await websocket.close(code=message.code, reason=message.reason)
                return
            await websocket.send_text(message)
    except WebSocketDisconnect:
        return
    finally:
        service.unsubscribe(subscriber)
        receiver.cancel()


def _install_streams(app: FastAPI, service: EngineService) -> None:
    @app.websocket("/v1/agents/me/events")
    async def agent_events(websocket: WebSocket) -> None:
        """CC-09: the agent's own events, and a screen pop when a call rings for them."""
        try:
            session = service.authenticate(_ws_token(websocket) or "")
        except AuthenticationError as exc:
            await _refuse(websocket, CLOSE_SESSION_ENDED, "unauthorized", str(exc))
            return
        subscriber = service.subscribe(session)
        await websocket.accept()
        hello = {"agent": service.agent_view(session.user_id).model_dump(mode="json")}
        await _stream(websocket, service, subscriber, hello)

    @app.websocket("/v1/supervision/events")
    async def supervision_events(websocket: WebSocket) -> None:
        """SV-03: events of the agents in the supervisor's scope."""
        try:
            session = service.authenticate(_ws_token(websocket) or "")
        except AuthenticationError as exc:
            await _refuse(websocket, CLOSE_SESSION_ENDED, "unauthorized", str(exc))
            return
        if ROLE_RANK[session.role] < ROLE_RANK["team_lead"]:
            await _refuse(websocket, CLOSE_FORBIDDEN, "forbidden",
                          f"{session.user_id} is an agent; supervision needs the team_lead, "
                          "manager or director role")
            return
        scope = service.scope_of(session.user_id)
        subscriber = service.subscribe(session, scope=scope)
        await websocket.accept()
        await _stream(websocket, service, subscriber,
                      {"supervisor_id": session.user_id, "agents": scope})


# -- the application ---------------------------------------------------------------------

_DESCRIPTION = """\
Computer-telephony integration for queuecast's call-control engine: agent desktops log
in, change state, handle calls and tickets; supervisors force actions and join calls
within their scope. Every error is `{"error": code, "message": ...}`. WebSocket streams
(`/v1/agents/me/events`, `/v1/supervision/events`) are described in docs/cti.md.
"""


def create_app(service: EngineService) -> FastAPI:
    """The CTI application over ``service``; its lifespan starts and stops the service."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="queuecast CTI API", version=CTI_API_VERSION,
                  description=_DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    _install_error_handlers(app)
    for router in (sessions, agents, queues, voicemail, recordings, supervision, health):
        app.include_router(router)
    _install_streams(app, service)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the CTI API (independent of any center's contents)."""
    empty = CenterConfig()
    return create_app(EngineService(empty, seed=0)).openapi()


# -- serving ----------------------------------------------------------------------------

_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"']+")


class _RedactTokens(logging.Filter):
    """Keeps WebSocket tokens (``?token=...``) out of the server's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_URL.sub(r"\1<redacted>", arg)
                                if isinstance(arg, str) else arg for arg in record.args)
        return True


def build_server(service: EngineService, *, host: str = "127.0.0.1", port: int = 8080
                 ) -> uvicorn.Server:
    """A uvicorn server for the CTI API; it keeps WebSocket tokens out of its logs and
    leaves log formatting to queuecast's logging settings."""
    redact = _RedactTokens()
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in logger.filters):
            logger.addFilter(redact)
    config = uvicorn.Config(create_app(service), host=host, port=port, log_config=None,
                            proxy_headers=False, server_header=False)
    return uvicorn.Server(config)


def serve(service: EngineService, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the CTI API with uvicorn until interrupted (Ctrl-C or SIGTERM)."""
    build_server(service, host=host, port=port).run()


def write_openapi(path: Path) -> None:
    """Write the OpenAPI document to ``path`` as it is checked in (``docs/cti-openapi.json``)."""
    path.write_text(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
