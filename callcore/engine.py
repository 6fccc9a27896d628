"""The call-control engine: commands and a clock in, contract events out.

Every public method is a command. It validates against the current state and raises
``CommandRejectedError`` (changing nothing) or decides which events happened and applies
each through a mutator. Mutators only change state; they never check or decide, so
``replay`` rebuilds the state from the events alone. Timers (ring timeout, after-call
work, maximum wait, announcements, survey) run on the injected clock: the driver asks
``next_timer_ms`` and calls ``advance`` to fire what is due. Nothing here reads the
wall clock, sleeps or does I/O; event ids derive from the seed, so the same commands
at the same instants give the same events byte for byte.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from callcore import ivr
from callcore.center import ROLE_RANK, AgentConfig, CenterConfig, QueueConfig, Target
from callcore.clock import Clock, from_ms
from callcore.state import AgentRecord, CallRecord, CallStage, TicketRecord
from ingest.contract import (
    AgentActionForced,
    AgentHelpRequested,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentState,
    AgentStateChanged,
    AnnouncementPlayed,
    CallAbandoned,
    CallAnswered,
    CallbackRequested,
    CallConferenced,
    CallConsulted,
    CallEnded,
    CallerRegion,
    CallHeld,
    CallMuted,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallResumed,
    CallTransferred,
    CallUnmuted,
    Event,
    IvrEntered,
    IvrLeft,
    IvrNodeVisited,
    Payload,
    RecordingStored,
    RingingAgent,
    RingNoAnswer,
    SkillGroupSignedIn,
    SkillGroupSignedOut,
    SkillLevel,
    SupervisorJoined,
    SurveyAnswered,
    TicketAssigned,
    TicketClosed,
    TicketCommented,
    TicketCreated,
    TicketStatusChanged,
    VoicemailLeft,
    make_event,
)
from ingest.contract.calls import Disposition

__all__ = ["CommandRejectedError", "Engine", "RegionLookup"]

RegionLookup = Callable[[str], CallerRegion | None]
HookRunner = Callable[[str, Mapping[str, str], str | None], ivr.HookResult]
"""Runs an IVR data hook (name, args, secret) and returns its result (IVR-03)."""
BlockedCheck = Callable[[str, Literal["inbound", "outbound"], datetime], str | None]
"""The rejection prompt if a number is blacklisted in that direction at that instant (CC-04)."""
TimerKind = Literal["ring", "max_wait", "announce", "acw", "survey", "ivr"]

SURVEY_TIMEOUT_MS = 15_000
SURVEY_FLOW = "survey:"
"""Built-in flow a call enters after the agent hangs up, when its queue has a survey."""
VOICEMAIL_FLOW = "voicemail:"
"""Built-in flow of a caller recording a voicemail message, followed by the mailbox."""


class CommandRejectedError(Exception):
    """A command that the current state does not allow; nothing changed.

    ``code`` is one of ``unknown`` (no such agent, call or ticket), ``forbidden``
    (outside the actor's role or scope, or a missing permission), ``conflict`` (the
    state does not allow it now) and ``invalid`` (bad arguments).
    """

    def __init__(self, code: Literal["unknown", "forbidden", "conflict", "invalid"],
                 message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Engine:
    """One site's calls, queues and agents, driven by commands on an injected clock."""

    def __init__(
        self,
        center: CenterConfig,
        *,
        clock: Clock,
        seed: int = 0,
        source: str = "callcore",
        region_lookup: RegionLookup | None = None,
        flows: Mapping[str, ivr.Flow] | None = None,
        calendar: ivr.CalendarLookup | None = None,
        hooks: HookRunner | None = None,
        blocked: BlockedCheck | None = None,
    ) -> None:
        self.center = center
        self.clock = clock
        self.source = source
        self._rng = random.Random(seed)
        self._id_prefix = f"{source}-{seed:x}-"
        self._counter = 0
        self._region_lookup = region_lookup
        self._flows = dict(flows or {})
        self._calendar = calendar
        self._hooks = hooks
        self._blocked = blocked
        self._ivr: dict[str, tuple[ivr.IvrSession, int]] = {}
        self._queues: dict[str, QueueConfig] = {q.name: q for q in center.queues}
        self._configs: dict[str, AgentConfig] = {a.id: a for a in center.agents}
        self._order = {a.id: i for i, a in enumerate(center.agents)}
        self._numbers = {n.number: n for n in center.numbers}
        self._team_group = {t.name: t.group for t in center.teams}
        unknown = [n.entry.target for n in center.numbers
                   if n.entry.kind == "ivr" and n.entry.target not in self._flows]
        if unknown:
            raise ValueError(f"numbers enter IVR flows {sorted(set(unknown))} that were not "
                             "loaded; pass flows=load_flows(...)")
        # Checked here so that no IVR transfer can fail half-way through a command.
        dangling = [
            f"{flow.name}.{name} -> {node.target_kind} {node.target}"
            for flow in self._flows.values() for name, node in flow.nodes.items()
            if isinstance(node, ivr.TransferNode) and "{" not in node.target and (
                (node.target_kind == "queue" and node.target not in self._queues)
                or (node.target_kind == "agent" and node.target not in self._configs))
        ]
        if dangling:
            raise ValueError(f"IVR transfers to unknown queues or agents: {dangling}; add them "
                             "to the center or fix the flows")
        self.agents: dict[str, AgentRecord] = {}
        self.calls: dict[str, CallRecord] = {}
        self.tickets: dict[str, TicketRecord] = {}
        self._waiting: dict[str, list[tuple[int, int, str]]] = {q: [] for q in self._queues}
        self._ready: dict[str, set[str]] = {q: set() for q in self._queues}
        self._signed_in: dict[str, set[str]] = {q: set() for q in self._queues}
        self._round_robin: dict[str, int] = {}
        self._last_agent: dict[str, str] = {}
        self._aht_ms: dict[str, tuple[int, int]] = {}
        self._seq = 0
        self._arrivals = 0
        self._timers: list[tuple[int, int, TimerKind, str, int]] = []
        self._outbox: list[Event[Payload]] = []
        self._instant = (-1, from_ms(0))  # the last instant stamped, as ms and datetime
        self._mutators: dict[type[Payload], Callable[[Any, int], None]] = {
            AgentLoggedIn: self._on_logged_in,
            AgentLoggedOut: self._on_logged_out,
            AgentStateChanged: self._on_state_changed,
            SkillGroupSignedIn: self._on_signed_in,
            SkillGroupSignedOut: self._on_signed_out,
            CallOffered: self._on_offered,
            IvrEntered: self._on_ivr_entered,
            CallQueued: self._on_queued,
            RingingAgent: self._on_ringing,
            RingNoAnswer: self._on_rona,
            CallAnswered: self._on_answered,
            CallHeld: self._on_held,
            CallResumed: self._on_resumed,
            CallMuted: self._on_muted,
            CallUnmuted: self._on_unmuted,
            CallConsulted: self._on_consulted,
            CallTransferred: self._on_transferred,
            SupervisorJoined: self._on_supervisor_joined,
            CallOverflowed: self._on_overflowed,
            CallAbandoned: self._on_abandoned,
            CallEnded: self._on_ended,
            TicketCreated: self._on_ticket_created,
            TicketAssigned: self._on_ticket_assigned,
            TicketStatusChanged: self._on_ticket_status,
            TicketClosed: self._on_ticket_closed,
        }

    # -- driving ------------------------------------------------------------------

    def drain(self) -> list[Event[Payload]]:
        """The events that happened since the last drain, in order."""
        events, self._outbox = self._outbox, []
        return events

    def next_timer_ms(self) -> int | None:
        """When the earliest pending timer is due, if any."""
        return self._timers[0][0] if self._timers else None

    def advance(self) -> None:
        """Fire every timer due at or before the clock's current instant, in due order."""
        now = self.clock.now_ms()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, subject, token = heapq.heappop(self._timers)
            self._fire(kind, subject, token)

    def replay(self, events: Iterable[Event[Payload]]) -> None:
        """Rebuild state from events (no checks, no timers, nothing emitted)."""
        for event in events:
            mutator = self._mutators.get(type(event.payload))
            if mutator is not None:
                mutator(event.payload, int(event.occurred_at.timestamp() * 1000))

    # -- agent commands (AG-01..AG-04) -----------------------------------------------

    def log_in(self, agent_id: str, *, extension: str, queues: Iterable[str] | None = None
               ) -> None:
        """Log an authenticated agent in at ``extension``; sign in to ``queues`` (default:
        every queue the agent has a skill for) and start not-ready (reason ``login``)."""
        config = self._config(agent_id)
        if agent_id in self.agents:
            raise CommandRejectedError("conflict", f"agent {agent_id} is already logged in")
        chosen = list(config.skills) if queues is None else list(queues)
        for queue in chosen:
            self._check_skill(config, queue)
        self._emit(AgentLoggedIn(agent_id=agent_id, extension=extension, team=config.team,
                                 skills=[SkillLevel(queue=q, level=config.skills[q])
                                         for q in chosen]))
        self._emit(AgentStateChanged(agent_id=agent_id, state="not_ready", reason="login"))

    def log_out(self, agent_id: str, *, reason: str | None = None) -> None:
        """Log out; only when not on a call."""
        agent = self._agent(agent_id)
        if agent.call_id is not None:
            raise CommandRejectedError("conflict", f"agent {agent_id} is on call {agent.call_id}; "
                                  "finish it first")
        self._emit(AgentLoggedOut(agent_id=agent_id, reason=reason))

    def set_ready(self, agent_id: str) -> None:
        """Become ready for calls (also ends after-call work early)."""
        agent = self._agent(agent_id)
        if agent.state not in ("not_ready", "after_call_work", "ready"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}")
        if agent.state != "ready":
            self._change_state(agent, "ready")
            self._offer_to_agent(agent_id)

    def set_not_ready(self, agent_id: str, *, reason: str) -> None:
        """Become not ready with a reason code (break, lunch, training, ...)."""
        agent = self._agent(agent_id)
        if agent.state not in ("ready", "not_ready", "after_call_work"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}; a call "
                                  "state cannot change to not-ready")
        if not reason:
            raise CommandRejectedError("invalid", "a not-ready state needs a reason code")
        self._change_state(agent, "not_ready", reason=reason)

    def sign_in(self, agent_id: str, queue: str) -> None:
        """Sign in to a skill group the agent has a skill for (AG-03)."""
        agent = self._agent(agent_id)
        config = self._configs[agent_id]
        self._check_skill(config, queue)
        if queue in agent.queues:
            raise CommandRejectedError("conflict", f"agent {agent_id} is already in {queue}")
        self._emit(SkillGroupSignedIn(agent_id=agent_id, queue=queue,
                                      level=config.skills[queue]))
        if agent.state == "ready":
            self._offer_to_agent(agent_id)

    def sign_out(self, agent_id: str, queue: str) -> None:
        """Sign out of a skill group."""
        agent = self._agent(agent_id)
        if queue not in agent.queues:
            raise CommandRejectedError("conflict", f"agent {agent_id} is not in {queue}")
        self._emit(SkillGroupSignedOut(agent_id=agent_id, queue=queue))

    def answer(self, agent_id: str) -> str:
        """Answer the call ringing at the agent; returns its id."""
        agent = self._agent(agent_id)
        if agent.state != "ringing" or agent.call_id is None:
            raise CommandRejectedError("conflict", f"nothing is ringing at agent {agent_id}")
        call = self.calls[agent.call_id]
        for other in call.ringing:
            if other != agent_id:
                self._change_state(self.agents[other], "ready")
        queue = self._queues.get(call.queue or "")
        now = self.clock.now_ms()
        wait = (now - (call.queued_ms or call.offered_ms)) / 1000
        self._emit(CallAnswered(call_id=call.call_id, agent_id=agent_id, queue=call.queue,
                                wait_s=wait, ring_s=(now - call.rang_ms) / 1000))
        self._change_state(self.agents[agent_id], "talking", call_id=call.call_id,
                           queue=call.queue)
        if queue is not None and queue.announce_agent_id:
            self._emit(AnnouncementPlayed(call_id=call.call_id, kind="agent_id",
                                          queue=call.queue, agent_id=agent_id))
        for other in call.ringing:
            if other != agent_id:
                self._offer_to_agent(other)
        return call.call_id

    def hang_up(self, agent_id: str) -> None:
        """The agent ends the call; after-call work follows (CC-10 survey if configured)."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if call.stage not in ("talking", "held", "outbound"):
            raise CommandRejectedError("conflict", f"call {call.call_id} is {call.stage}")
        self._finish_talk(call, ended_by="agent")

    def hold(self, agent_id: str) -> None:
        """Put the caller on hold."""
        call = self._current_call(self._agent(agent_id))
        if call.stage != "talking":
            raise CommandRejectedError("conflict", f"call {call.call_id} is {call.stage}")
        self._emit(CallHeld(call_id=call.call_id, agent_id=agent_id))
        self._change_state(self.agents[agent_id], "hold", call_id=call.call_id)

    def resume(self, agent_id: str) -> None:
        """Take the caller off hold (also returns from a consultation)."""
        call = self._current_call(self._agent(agent_id))
        if call.stage not in ("held", "consulting"):
            raise CommandRejectedError("conflict", f"call {call.call_id} is not on hold")
        self._emit(CallResumed(call_id=call.call_id, agent_id=agent_id))
        self._change_state(self.agents[agent_id], "talking", call_id=call.call_id)

    def mute(self, agent_id: str) -> None:
        """Mute the agent's microphone."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if agent.muted:
            raise CommandRejectedError("conflict", f"agent {agent_id} is already muted")
        self._emit(CallMuted(call_id=call.call_id, agent_id=agent_id))

    def unmute(self, agent_id: str) -> None:
        """Unmute the agent's microphone."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if not agent.muted:
            raise CommandRejectedError("conflict", f"agent {agent_id} is not muted")
        self._emit(CallUnmuted(call_id=call.call_id, agent_id=agent_id))

    def transfer(self, agent_id: str, *, target_kind: Literal["agent", "queue", "external"],
                 target: str) -> None:
        """Blind transfer to an agent, a queue or (with permission) an external number."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if call.stage not in ("talking", "held", "consulting"):
            raise CommandRejectedError("conflict", f"call {call.call_id} is {call.stage}")
        self._check_transfer_target(agent_id, target_kind, target)
        kind: Literal["blind", "consult"] = (
            "consult" if call.stage == "consulting" and call.consult_target == target else "blind"
        )
        self._emit(CallTransferred(call_id=call.call_id, kind=kind, target_kind=target_kind,
                                   target=target, agent_id=agent_id))
        self._start_after_call_work(agent_id, call)
        if target_kind == "external":
            self._end(call.call_id, "transferred_external", ended_by="agent")
        elif target_kind == "queue":
            self._enqueue(call.call_id, target, priority=call.priority)
        else:
            self._ring_direct(call.call_id, target)

    def consult(self, agent_id: str, *, target_kind: Literal["agent", "queue", "external"],
                target: str) -> None:
        """Put the caller on hold and consult a colleague, a queue or an external party."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if call.stage != "talking":
            raise CommandRejectedError("conflict", f"call {call.call_id} is {call.stage}")
        self._check_transfer_target(agent_id, target_kind, target)
        self._emit(CallConsulted(call_id=call.call_id, agent_id=agent_id,
                                 target_kind=target_kind, target=target))
        self._change_state(self.agents[agent_id], "hold", call_id=call.call_id)

    def conference(self, agent_id: str) -> None:
        """Join the held caller and the consulted party in a three-way call."""
        agent = self._agent(agent_id)
        call = self._current_call(agent)
        if call.stage != "consulting" or call.consult_target is None:
            raise CommandRejectedError("conflict", "a conference needs a consultation in progress")
        self._emit(CallConferenced(call_id=call.call_id, agent_id=agent_id,
                                   participants=[call.caller, agent_id, call.consult_target]))
        self._emit(CallResumed(call_id=call.call_id, agent_id=agent_id))
        self._change_state(self.agents[agent_id], "talking", call_id=call.call_id)

    def pick_up(self, agent_id: str, call_id: str) -> None:
        """Take a call that is ringing at another agent (ACD-07)."""
        agent = self._agent(agent_id)
        call = self._call(call_id)
        if call.stage != "ringing":
            raise CommandRejectedError("conflict", f"call {call_id} is not ringing")
        if agent.call_id is not None or agent.state not in ("ready", "not_ready"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}")
        for other in call.ringing:
            self._change_state(self.agents[other], "ready")
        now = self.clock.now_ms()
        self._emit(CallAnswered(call_id=call_id, agent_id=agent_id, queue=call.queue,
                                wait_s=(now - (call.queued_ms or call.offered_ms)) / 1000,
                                ring_s=(now - call.rang_ms) / 1000))
        self._change_state(self.agents[agent_id], "talking", call_id=call_id, queue=call.queue)
        for other in call.ringing:
            self._offer_to_agent(other)

    def dial(self, agent_id: str, number: str) -> str:
        """Manual outbound or internal call from an idle agent (AG-04); returns the call id.

        The far end answering is reported by ``remote_answered``.
        """
        agent = self._agent(agent_id)
        if agent.call_id is not None or agent.state not in ("ready", "not_ready"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}")
        if not number or not number.lstrip("+").isdigit():
            raise CommandRejectedError("invalid", f"{number!r} is not a dialable number")
        rejection = (self._blocked(number, "outbound", from_ms(self.clock.now_ms()))
                     if self._blocked else None)
        if rejection is not None:
            raise CommandRejectedError("forbidden", f"{number} is blacklisted for outbound "
                                       f"calls (CC-04): {rejection}")
        internal = any(a.extension == number for a in self.agents.values())
        call_id = self._next_id("call")
        self._emit(CallOffered(call_id=call_id, direction="internal" if internal else "outbound",
                               caller=agent.extension, dialed=number, agent_id=agent_id))
        self._change_state(agent, "talking", call_id=call_id)
        return call_id

    def remote_answered(self, call_id: str) -> None:
        """The far end of an outbound call answered."""
        call = self._call(call_id)
        if call.stage != "outbound" or call.answered_ms is not None or call.agent_id is None:
            raise CommandRejectedError("conflict", f"call {call_id} is not an unanswered "
                                       "outbound call")
        self._emit(CallAnswered(call_id=call_id, agent_id=call.agent_id))

    def request_help(self, agent_id: str, *, message: str | None = None) -> None:
        """Ask a supervisor for help (AG-04); the request reaches supervisors' desktops."""
        agent = self._agent(agent_id)
        self._emit(AgentHelpRequested(agent_id=agent_id, call_id=agent.call_id,
                                      message=message))

    # -- caller and network (driven by telephony or the simulator) ----------------------

    def offer_call(self, *, caller: str, dialed: str, call_id: str | None = None,
                   priority: int | None = None, customer_id: str | None = None) -> str:
        """An inbound call arrives at ``dialed``; route it by the number's entry (CC-01,
        CC-02). Returns the call id."""
        number = self._numbers.get(dialed)
        if number is None:
            raise CommandRejectedError("unknown", f"no entry is configured for number {dialed}")
        call_id = call_id or self._next_id("call")
        if call_id in self.calls:
            raise CommandRejectedError("conflict", f"call {call_id} exists")
        region = self._region_lookup(caller) if self._region_lookup else None
        self._emit(CallOffered(call_id=call_id, direction="inbound", caller=caller,
                               dialed=dialed, entry=number.entry.target or number.entry.kind,
                               caller_region=region, customer_id=customer_id,
                               priority=number.priority if priority is None else priority))
        at = from_ms(self.clock.now_ms())
        rejection = self._blocked(caller, "inbound", at) if self._blocked else None
        if rejection is not None:
            self._emit(AnnouncementPlayed(call_id=call_id, kind="rejection", prompt=rejection))
            self._end(call_id, "blacklisted", ended_by="system")
            return call_id
        if number.schedule is not None and self._calendar is not None:
            state = self._calendar(number.schedule, at)
            if state != "open":
                self._emit(AnnouncementPlayed(call_id=call_id, kind="closed", prompt=state))
                if number.closed is None:
                    self._end(call_id, "closed", ended_by="system")
                else:
                    self._route(call_id, number.closed, reason=None, from_queue=None)
                return call_id
        owner = self.center.owners.get(caller)
        if owner is not None and self._is_ready(owner):
            self._ring_direct(call_id, owner)
            return call_id
        if region is not None and region.province in self.center.region_routes:
            self._enqueue(call_id, self.center.region_routes[region.province],
                          priority=number.priority if priority is None else priority)
            return call_id
        self._route(call_id, number.entry, reason=None, from_queue=None)
        return call_id

    def caller_hangs_up(self, call_id: str) -> None:
        """The caller hangs up, wherever the call is."""
        call = self._call(call_id)
        now = self.clock.now_ms()
        if call_id in self._ivr:
            session, _ = self._ivr.pop(call_id)
            self._apply_ivr_facts(call_id, ivr.caller_hung_up(self._flow(session.flow),
                                                             session).directives)
        if call.answered_ms is not None and call.stage in ("ivr", "survey"):
            self._end(call_id, "answered", ended_by="caller")
        elif call.stage in ("queued", "ringing", "ivr"):
            stage: Literal["ivr", "queue", "ringing"] = (
                "ivr" if call.stage == "ivr" else "queue" if call.stage == "queued"
                else "ringing"
            )
            wait = (now - (call.queued_ms or call.offered_ms)) / 1000
            self._emit(CallAbandoned(call_id=call_id, stage=stage, queue=call.queue,
                                     wait_s=wait))
            for agent_id in call.ringing:
                self._change_state(self.agents[agent_id], "ready")
            queue = self._queues.get(call.queue or "")
            if queue is not None and queue.callback_on_abandon:
                self._emit(CallbackRequested(call_id=call_id, number=call.caller,
                                             reason="abandoned", queue=call.queue))
            self._end(call_id, "abandoned", ended_by="caller")
            for agent_id in call.ringing:
                self._offer_to_agent(agent_id)
        elif call.stage in ("talking", "held", "consulting", "outbound"):
            self._finish_talk(call, ended_by="caller")
        elif call.stage in ("survey", "voicemail"):
            self._end(call_id, "answered" if call.stage == "survey" else "abandoned",
                      ended_by="caller")
        else:
            raise CommandRejectedError("conflict", f"call {call_id} is {call.stage}")

    def press_digits(self, call_id: str, digits: str) -> None:
        """The caller presses keys: input to the IVR node waiting for it (IVR-01), or in the
        built-in survey the first key is the score (CC-10)."""
        call = self._call(call_id)
        if call_id in self._ivr:
            self._ivr_stimulus(call_id, ivr.Digits(digits))
            return
        if call.stage != "survey":
            raise CommandRejectedError("conflict", f"call {call_id} is not collecting digits")
        queue = self._queues.get(call.queue or "")
        survey = queue.survey if queue is not None and queue.survey else "default"
        if not digits[:1].isdigit() or not 1 <= int(digits[0]) <= 5:
            raise CommandRejectedError("invalid", f"survey answer {digits!r} is not 1..5")
        self._emit(SurveyAnswered(call_id=call_id, survey=survey, score=int(digits[0]),
                                  scale_max=5, agent_id=call.agent_id))
        self._end(call_id, "answered", ended_by="caller")

    def hook_result(self, call_id: str, *, values: Mapping[str, Any] | None = None,
                    error: str | None = None) -> None:
        """The answer of an IVR data hook the engine asked for (when no hook runner is set)."""
        self._call(call_id)
        if call_id not in self._ivr:
            raise CommandRejectedError("conflict", f"call {call_id} is not in an IVR")
        self._ivr_stimulus(call_id, ivr.HookResult(values=dict(values) if values else None,
                                                  error=error))

    def voicemail_recorded(self, call_id: str, *, duration_s: float, mailbox: str) -> None:
        """The caller finished a voicemail message (CC-06)."""
        call = self._call(call_id)
        if call.stage != "voicemail":
            raise CommandRejectedError("conflict", f"call {call_id} is not in voicemail")
        self._emit(VoicemailLeft(call_id=call_id, mailbox=mailbox, duration_s=duration_s,
                                 recording_uri=f"voicemail://{self.center.site}/{call_id}"))
        self._end(call_id, "voicemail", ended_by="caller")

    # -- supervisor commands (SV-01..SV-03) --------------------------------------------

    def supervise(self, supervisor_id: str, agent_id: str,
                  mode: Literal["monitor", "whisper", "barge", "intercept"]) -> None:
        """Join an agent's call; ``intercept`` takes it over and drops the agent."""
        self.check_scope(supervisor_id, agent_id)
        call = self._current_call(self._agent(agent_id))
        if call.stage not in ("talking", "held"):
            raise CommandRejectedError("conflict", f"call {call.call_id} is {call.stage}")
        self._emit(SupervisorJoined(call_id=call.call_id, supervisor_id=supervisor_id,
                                    agent_id=agent_id, mode=mode))
        if mode == "intercept":
            self._start_after_call_work(agent_id, call)

    def force(self, supervisor_id: str, agent_id: str,
              action: Literal["ready", "not_ready", "log_out", "sign_in", "sign_out",
                              "hang_up"], *, queue: str | None = None,
              reason: str | None = None) -> None:
        """Force an action on an agent inside the supervisor's scope (SV-02)."""
        self.check_scope(supervisor_id, agent_id)
        agent = self._agent(agent_id)
        if action in ("sign_in", "sign_out") and not queue:
            raise CommandRejectedError("invalid", f"force {action} needs a queue")
        if action == "hang_up":
            call = self._current_call(agent)
            self._emit(AgentActionForced(agent_id=agent_id, supervisor_id=supervisor_id,
                                         action=action, reason=reason))
            self._finish_talk(call, ended_by="supervisor")
            return
        if action == "log_out" and agent.call_id is not None:
            raise CommandRejectedError("conflict", f"agent {agent_id} is on a call; force a "
                                  "hang-up first")
        if action == "ready" and agent.state not in ("not_ready", "after_call_work"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}")
        if action == "not_ready" and agent.state not in ("ready", "after_call_work"):
            raise CommandRejectedError("conflict", f"agent {agent_id} is {agent.state}")
        if action == "sign_in":
            self._check_skill(self._configs[agent_id], queue or "")
            if queue in agent.queues:
                raise CommandRejectedError("conflict", f"agent {agent_id} is already in {queue}")
        if action == "sign_out" and queue not in agent.queues:
            raise CommandRejectedError("conflict", f"agent {agent_id} is not in {queue}")
        self._emit(AgentActionForced(agent_id=agent_id, supervisor_id=supervisor_id,
                                     action=action, queue=queue, reason=reason))
        if action == "ready":
            self.set_ready(agent_id)
        elif action == "not_ready":
            self._change_state(agent, "not_ready", reason=reason or "supervisor")
        elif action == "log_out":
            self._emit(AgentLoggedOut(agent_id=agent_id, reason=reason,
                                      forced_by=supervisor_id))
        elif action == "sign_in":
            self.sign_in(agent_id, queue or "")
        else:
            self.sign_out(agent_id, queue or "")

    # -- tickets (TK-01) ---------------------------------------------------------------

    def create_ticket(self, agent_id: str, *, subject: str, call_id: str | None = None,
                      customer_id: str | None = None, category: str | None = None) -> str:
        """Open a ticket, usually from the call in hand; returns its id."""
        self._config(agent_id)
        if not subject.strip():
            raise CommandRejectedError("invalid", "a ticket needs a subject")
        ticket_id = self._next_id("ticket")
        self._emit(TicketCreated(ticket_id=ticket_id, subject=subject, created_by=agent_id,
                                 call_id=call_id, customer_id=customer_id, category=category))
        return ticket_id

    def assign_ticket(self, actor_id: str, ticket_id: str, *, assignee: str) -> None:
        """Assign a ticket to an agent."""
        ticket = self._open_ticket(ticket_id, actor_id)
        self._config(assignee)
        if ticket.assignee == assignee:
            raise CommandRejectedError("conflict", f"ticket {ticket_id} is already {assignee}'s")
        self._emit(TicketAssigned(ticket_id=ticket_id, assignee=assignee, assigned_by=actor_id))

    def change_ticket_status(self, actor_id: str, ticket_id: str, *,
                             status: Literal["open", "in_progress", "pending", "resolved"]
                             ) -> None:
        """Move a ticket to another status (closing has its own command)."""
        ticket = self._open_ticket(ticket_id, actor_id)
        if ticket.status == status:
            raise CommandRejectedError("conflict", f"ticket {ticket_id} is already {status}")
        self._emit(TicketStatusChanged(ticket_id=ticket_id, status=status,
                                       previous=ticket.status,  # type: ignore[arg-type]
                                       changed_by=actor_id))

    def comment_ticket(self, actor_id: str, ticket_id: str, *, body: str) -> None:
        """Add a comment."""
        self._open_ticket(ticket_id, actor_id)
        if not body.strip():
            raise CommandRejectedError("invalid", "a comment needs a body")
        self._emit(TicketCommented(ticket_id=ticket_id, author=actor_id, body=body))

    def close_ticket(self, actor_id: str, ticket_id: str, *, resolution: str | None = None
                     ) -> None:
        """Close a ticket."""
        self._open_ticket(ticket_id, actor_id)
        self._emit(TicketClosed(ticket_id=ticket_id, closed_by=actor_id, resolution=resolution))

    # -- queries -------------------------------------------------------------------------

    def waiting(self, queue: str) -> list[str]:
        """Ids of the calls waiting in ``queue``, first to be served first (ACD-07)."""
        return [call_id for _, _, call_id in self._waiting[queue]]

    def ivr_waiting(self, call_id: str) -> tuple[str, str] | None:
        """The (flow, node) where a call waits for the caller's keys, if it does."""
        entry = self._ivr.get(call_id)
        if entry is None or entry[0].waiting != "digits":
            return None
        return entry[0].flow, entry[0].node

    def role_of(self, user_id: str) -> str:
        """The configured role of a user."""
        return self._config(user_id).role

    # -- routing internals ----------------------------------------------------------------

    def _route(self, call_id: str, target: Target, *,
               reason: Literal["max_wait", "no_agents"] | None, from_queue: str | None) -> None:
        if from_queue is not None and reason is not None:
            self._emit(CallOverflowed(call_id=call_id, queue=from_queue, reason=reason,
                                      target_kind=target.kind if target.kind != "ivr"
                                      else "ivr", target=target.target or target.kind))
        call = self.calls[call_id]
        if target.kind == "queue":
            self._enqueue(call_id, target.target, priority=call.priority)
        elif target.kind == "agent":
            if self._is_ready(target.target):
                self._ring(call_id, [target.target])
            else:
                self._emit(IvrEntered(call_id=call_id, flow=f"{VOICEMAIL_FLOW}{target.target}"))
        elif target.kind == "voicemail":
            self._emit(IvrEntered(call_id=call_id, flow=f"{VOICEMAIL_FLOW}{target.target}"))
        elif target.kind == "callback":
            self._emit(CallbackRequested(call_id=call_id, number=call.caller,
                                         reason="overflow" if reason else "requested",
                                         queue=from_queue))
            self._end(call_id, "callback", ended_by="system")
        elif target.kind == "external":
            self._emit(CallTransferred(call_id=call_id, kind="blind", target_kind="external",
                                       target=target.target))
            self._end(call_id, "transferred_external", ended_by="system")
        else:
            flow = self._flow(target.target)
            self._run_ivr(call_id, ivr.start(flow, dialed=call.dialed, caller=call.caller,
                                             at=from_ms(self.clock.now_ms()),
                                             calendar=self._calendar))

    def _enqueue(self, call_id: str, queue_name: str, *, priority: int) -> None:
        queue = self._queues.get(queue_name)
        if queue is None:
            raise CommandRejectedError("unknown", f"unknown queue {queue_name!r}")
        if not self._signed_in[queue_name] and queue.no_agents is not None:
            self._route(call_id, queue.no_agents, reason="no_agents", from_queue=queue_name)
            return
        position = 1 + sum(1 for p, _, _ in self._waiting[queue_name] if p <= -priority)
        self._emit(CallQueued(call_id=call_id, queue=queue_name, priority=priority,
                              position=position, estimated_wait_s=self._estimated_wait(
                                  queue_name, position)))
        call = self.calls[call_id]
        now = self.clock.now_ms()
        if queue.max_wait_s is not None and queue.overflow is not None:
            self._schedule(now + int(queue.max_wait_s * 1000), "max_wait", call_id, call.timer)
        if queue.announce_every_s is not None:
            self._schedule(now + int(queue.announce_every_s * 1000), "announce", call_id,
                           call.timer)
        self._dispatch(queue_name)

    def _estimated_wait(self, queue: str, position: int) -> float:
        total, count = self._aht_ms.get(queue, (0, 0))
        aht_ms = total / count if count else 180_000
        staffed = max(1, len(self._signed_in[queue]))
        return round(position * aht_ms / staffed / 1000, 1)

    def _dispatch(self, queue_name: str) -> None:
        """Offer waiting calls of ``queue_name`` to its ready agents while both exist."""
        waiting = self._waiting[queue_name]
        while waiting and self._ready[queue_name]:
            call_id = waiting[0][2]
            chosen = self._choose_agents(queue_name, self.calls[call_id])
            if not chosen:
                return
            self._ring(call_id, chosen)

    def _choose_agents(self, queue_name: str, call: CallRecord) -> list[str]:
        queue = self._queues[queue_name]
        ready = self._ready[queue_name]
        if queue.sticky_agent:
            last = self._last_agent.get(call.caller)
            if last in ready:
                return [last]  # type: ignore[list-item]
        top = max(self.agents[a].queues[queue_name] for a in ready)
        candidates = sorted((a for a in ready if self.agents[a].queues[queue_name] == top),
                            key=self._order.__getitem__)
        strategy = queue.strategy
        if strategy == "ring_all":
            return candidates
        if strategy == "linear":
            return candidates[:1]
        if strategy == "random":
            return [self._rng.choice(candidates)]
        if strategy == "round_robin":
            last_index = self._round_robin.get(queue_name, -1)
            after = [a for a in candidates if self._order[a] > last_index]
            return [(after or candidates)[0]]
        if strategy == "fewest_calls":
            return [min(candidates, key=lambda a: (self.agents[a].answered, self._order[a]))]
        if strategy == "least_recent":
            return [min(candidates, key=lambda a: (self.agents[a].last_rung_ms,
                                                   self._order[a]))]
        return [min(candidates, key=lambda a: (self.agents[a].idle_since_ms, self._order[a]))]

    def _offer_to_agent(self, agent_id: str) -> None:
        """A ready agent takes the most urgent waiting call of its queues (ACD-03)."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.state != "ready":
            return
        best: tuple[int, int, int, str] | None = None
        for queue_name in agent.queues:
            waiting = self._waiting[queue_name]
            if waiting:
                key = (-self._queues[queue_name].priority, waiting[0][0], waiting[0][1],
                       queue_name)
                if best is None or key < best:
                    best = key
        if best is not None:
            self._dispatch(best[3])

    def _ring(self, call_id: str, agent_ids: list[str]) -> None:
        call = self.calls[call_id]
        for agent_id in agent_ids:
            self._emit(RingingAgent(call_id=call_id, agent_id=agent_id, queue=call.queue,
                                    extension=self.agents[agent_id].extension,
                                    attempt=call.attempt + 1))
            self._change_state(self.agents[agent_id], "ringing", call_id=call_id,
                               queue=call.queue)
        queue = self._queues.get(call.queue or "")
        timeout_ms = int((queue.ring_timeout_s if queue else 20.0) * 1000)
        call = self.calls[call_id]
        self._schedule(self.clock.now_ms() + timeout_ms, "ring", call_id, call.timer)

    def _ring_direct(self, call_id: str, agent_id: str) -> None:
        if not self._is_ready(agent_id):
            raise CommandRejectedError("conflict", f"agent {agent_id} is not ready")
        self._ring(call_id, [agent_id])

    def _finish_talk(self, call: CallRecord, *, ended_by: Literal["caller", "agent",
                                                                   "supervisor"]) -> None:
        now = self.clock.now_ms()
        agent_id = call.agent_id
        queue = self._queues.get(call.queue or "")
        if agent_id is not None and call.answered_ms is not None and (
            queue is None or queue.record
        ):
            self._emit(RecordingStored(
                call_id=call.call_id, agent_id=agent_id,
                uri=f"recording://{self.center.site}/{call.call_id}",
                duration_s=(now - call.answered_ms) / 1000))
        if queue is not None and queue.survey in self._flows and ended_by == "agent":
            flow = self._flows[queue.survey or ""]
            self._run_ivr(call.call_id, ivr.start(flow, dialed=call.dialed, caller=call.caller,
                                                  at=from_ms(now), calendar=self._calendar))
        elif queue is not None and queue.survey and ended_by == "agent":
            self._emit(IvrEntered(call_id=call.call_id, flow=f"{SURVEY_FLOW}{queue.survey}"))
            self._schedule(now + SURVEY_TIMEOUT_MS, "survey", call.call_id,
                           self.calls[call.call_id].timer)
        else:
            self._end(call.call_id, "answered", ended_by=ended_by, agent_id=agent_id)
        if agent_id is not None:
            self._start_after_call_work(agent_id, call)

    def _start_after_call_work(self, agent_id: str, call: CallRecord) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.call_id != call.call_id:
            return
        queue = self._queues.get(call.queue or "")
        acw_ms = int((queue.after_call_work_s if queue else 0.0) * 1000)
        if acw_ms:
            self._change_state(agent, "after_call_work", call_id=call.call_id,
                               queue=call.queue)
            agent = self.agents[agent_id]
            self._schedule(self.clock.now_ms() + acw_ms, "acw", agent_id, agent.timer)
        else:
            self._change_state(agent, "ready")
            self._offer_to_agent(agent_id)

    def _end(self, call_id: str, disposition: Disposition, *,
             ended_by: Literal["caller", "agent", "system", "supervisor"],
             agent_id: str | None = None) -> None:
        call = self.calls[call_id]
        self._emit(CallEnded(call_id=call_id, disposition=disposition, ended_by=ended_by,
                             agent_id=agent_id or call.agent_id, queue=call.queue))

    # -- timers ----------------------------------------------------------------------------

    def _schedule(self, due_ms: int, kind: TimerKind, subject: str, token: int) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due_ms, self._seq, kind, subject, token))

    def _fire(self, kind: TimerKind, subject: str, token: int) -> None:
        if kind == "acw":
            agent = self.agents.get(subject)
            if agent is not None and agent.timer == token and agent.state == "after_call_work":
                self._change_state(agent, "ready")
                self._offer_to_agent(subject)
            return
        call = self.calls.get(subject)
        if call is None or (kind != "ivr" and call.timer != token):
            return
        if kind == "ring" and call.stage == "ringing":
            self._ring_timed_out(call)
        elif kind == "max_wait" and call.stage == "queued":
            queue = self._queues[call.queue or ""]
            if queue.overflow is not None:
                self._route(subject, queue.overflow, reason="max_wait", from_queue=call.queue)
        elif kind == "announce" and call.stage == "queued":
            queue = self._queues[call.queue or ""]
            position = 1 + [c for _, _, c in self._waiting[queue.name]].index(subject)
            self._emit(AnnouncementPlayed(call_id=subject, kind="position", queue=queue.name,
                                          position=position,
                                          estimated_wait_s=self._estimated_wait(queue.name,
                                                                                position)))
            if queue.announce_every_s is not None:
                self._schedule(self.clock.now_ms() + int(queue.announce_every_s * 1000),
                               "announce", subject, token)
        elif kind == "survey" and call.stage == "survey":
            self._end(subject, "answered", ended_by="system")
        elif kind == "ivr" and subject in self._ivr and self._ivr[subject][1] == token:
            self._ivr_stimulus(subject, ivr.InputTimeout())

    def _ring_timed_out(self, call: CallRecord) -> None:
        queue = self._queues.get(call.queue or "")
        ring_s = queue.ring_timeout_s if queue else 20.0
        for agent_id in call.ringing:
            self._emit(RingNoAnswer(call_id=call.call_id, agent_id=agent_id, queue=call.queue,
                                    ring_s=ring_s))
            if queue is None or queue.rona_not_ready:
                self._change_state(self.agents[agent_id], "not_ready", reason="rona")
            else:
                self._change_state(self.agents[agent_id], "ready")
        if call.queue is not None:
            self._dispatch(call.queue)
        else:
            self._route(call.call_id, Target(kind="voicemail", target=call.ringing[0]),
                        reason=None, from_queue=None)

    # -- IVR (IVR-01..IVR-04) ---------------------------------------------------------------

    def _flow(self, name: str) -> ivr.Flow:
        flow = self._flows.get(name)
        if flow is None:
            raise CommandRejectedError("unknown", f"no IVR flow {name!r} is loaded")
        return flow

    def _ivr_stimulus(self, call_id: str, stimulus: ivr.Stimulus) -> None:
        session, _ = self._ivr[call_id]
        result = ivr.step(self._flow(session.flow), session, stimulus,
                          at=from_ms(self.clock.now_ms()), calendar=self._calendar)
        if not result.accepted:
            raise CommandRejectedError("conflict", f"call {call_id} is not waiting for that "
                                       "input now")
        self._run_ivr(call_id, result)

    def _run_ivr(self, call_id: str, result: ivr.Step) -> None:
        """Turn the interpreter's directives into events, timers and routing."""
        self._apply_ivr_facts(call_id, result.directives)
        final = result.directives[-1] if result.directives else None
        if result.session.done:
            self._ivr.pop(call_id, None)
        else:
            self._seq += 1
            self._ivr[call_id] = (result.session, self._seq)
        now = self.clock.now_ms()
        if isinstance(final, ivr.AwaitDigits):
            self._schedule(now + int(final.timeout_s * 1000), "ivr", call_id, self._seq)
        elif isinstance(final, ivr.CallHook):
            if self._hooks is None:
                return  # the driver answers with hook_result()
            try:
                answer = self._hooks(final.hook, final.args, final.secret)
            except Exception as exc:  # a failing hook is an IVR branch, not an engine crash
                answer = ivr.HookResult(error=f"{type(exc).__name__}: {exc}")
            self._ivr_stimulus(call_id, answer)
        elif isinstance(final, ivr.Transfer):
            call = self.calls[call_id]
            target = Target(kind=final.target_kind, target=final.target)
            if final.target_kind == "agent" and not self._is_ready(final.target):
                self._route(call_id, Target(kind="voicemail", target=final.target),
                            reason=None, from_queue=None)
            elif final.target_kind == "queue":
                self._enqueue(call_id, final.target, priority=final.priority or call.priority)
            else:
                self._route(call_id, target, reason=None, from_queue=None)
        elif isinstance(final, ivr.LeaveVoicemail):
            self._emit(IvrEntered(call_id=call_id, flow=f"{VOICEMAIL_FLOW}{final.mailbox}"))
        elif isinstance(final, ivr.HangUp):
            survey = final.reason.startswith("survey")
            self._end(call_id, "answered" if survey and self.calls[call_id].answered_ms
                      else "ivr_completed", ended_by="system")

    def _apply_ivr_facts(self, call_id: str, directives: Iterable[ivr.Directive]) -> None:
        agent_id = self.calls[call_id].agent_id
        for d in directives:
            if isinstance(d, ivr.FlowEntered):
                self._emit(IvrEntered(call_id=call_id, flow=d.flow, flow_version=d.flow_version))
            elif isinstance(d, ivr.NodeVisited):
                self._emit(IvrNodeVisited(call_id=call_id, flow=d.flow, node=d.node, kind=d.kind,
                                          digits=d.digits, outcome=d.outcome))
            elif isinstance(d, ivr.PlayPrompt):
                self._emit(AnnouncementPlayed(call_id=call_id, kind="prompt", prompt=d.prompt))
            elif isinstance(d, ivr.SurveyAnswer):
                self._emit(SurveyAnswered(call_id=call_id, survey=d.survey, score=d.score,
                                          scale_max=d.scale_max, agent_id=agent_id))
            elif isinstance(d, ivr.Left):
                self._emit(IvrLeft(call_id=call_id, flow=d.flow, node=d.node, exit=d.exit,
                                   target_kind=d.target_kind, target=d.target))

    # -- helpers ---------------------------------------------------------------------------

    def _next_id(self, kind: str) -> str:
        self._counter += 1
        return f"{self._id_prefix}{kind}-{self._counter:x}"

    def _emit(self, payload: Payload) -> None:
        self._counter += 1
        now = self.clock.now_ms()
        if now != self._instant[0]:
            self._instant = (now, from_ms(now))
        event = make_event(payload, occurred_at=self._instant[1], source=self.source,
                           site=self.center.site, event_id=f"{self._id_prefix}{self._counter:x}")
        self._mutators.get(type(payload), _ignore)(payload, now)
        self._outbox.append(event)

    def _change_state(self, agent: AgentRecord, state: AgentState, *, reason: str | None = None,
                      call_id: str | None = None, queue: str | None = None) -> None:
        self._emit(AgentStateChanged(agent_id=agent.agent_id, state=state,
                                     previous=agent.state, reason=reason, call_id=call_id,
                                     queue=queue))

    def _config(self, user_id: str) -> AgentConfig:
        config = self._configs.get(user_id)
        if config is None:
            raise CommandRejectedError("unknown", f"unknown agent {user_id!r}")
        return config

    def _agent(self, agent_id: str) -> AgentRecord:
        self._config(agent_id)
        agent = self.agents.get(agent_id)
        if agent is None:
            raise CommandRejectedError("conflict", f"agent {agent_id} is not logged in")
        return agent

    def _call(self, call_id: str) -> CallRecord:
        call = self.calls.get(call_id)
        if call is None:
            raise CommandRejectedError("unknown", f"no call {call_id!r} in progress")
        return call

    def _current_call(self, agent: AgentRecord) -> CallRecord:
        if agent.call_id is None or agent.call_id not in self.calls:
            raise CommandRejectedError("conflict", f"agent {agent.agent_id} has no call")
        call = self.calls[agent.call_id]
        if call.agent_id != agent.agent_id:
            raise CommandRejectedError("conflict", f"agent {agent.agent_id} has no call")
        return call

    def _open_ticket(self, ticket_id: str, actor_id: str | None = None) -> TicketRecord:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise CommandRejectedError("unknown", f"no ticket {ticket_id!r}")
        if actor_id is not None and actor_id not in (ticket.created_by, ticket.assignee):
            # Others need a supervisor's scope over the ticket's creator.
            self.check_scope(actor_id, ticket.created_by)
        if ticket.status == "closed":
            raise CommandRejectedError("conflict", f"ticket {ticket_id} is closed")
        return ticket

    def _is_ready(self, agent_id: str) -> bool:
        agent = self.agents.get(agent_id)
        return agent is not None and agent.state == "ready"

    def _check_skill(self, config: AgentConfig, queue: str) -> None:
        if queue not in self._queues:
            raise CommandRejectedError("unknown", f"unknown queue {queue!r}")
        if queue not in config.skills:
            raise CommandRejectedError("forbidden", f"agent {config.id} has no skill for {queue}")

    def _check_transfer_target(self, agent_id: str, kind: str, target: str) -> None:
        if kind == "external":
            if not self._configs[agent_id].external_transfer:
                raise CommandRejectedError("forbidden", f"agent {agent_id} may not transfer to "
                                      "external numbers (permission external_transfer)")
        elif kind == "queue":
            if target not in self._queues:
                raise CommandRejectedError("unknown", f"unknown queue {target!r}")
        elif kind == "agent":
            if target == agent_id:
                raise CommandRejectedError("invalid", "an agent cannot transfer to themselves")
            if not self._is_ready(target):
                raise CommandRejectedError("conflict", f"agent {target} is not ready")
        else:
            raise CommandRejectedError("invalid", f"target kind {kind!r} is not agent, queue or "
                                  "external")

    def check_scope(self, supervisor_id: str, agent_id: str) -> None:
        """SV-03: director > manager (own groups) > team lead (own team) > agent."""
        supervisor = self._config(supervisor_id)
        agent = self._config(agent_id)
        rank = ROLE_RANK[supervisor.role]
        if rank <= ROLE_RANK[agent.role] or rank == 0:
            raise CommandRejectedError("forbidden", f"{supervisor_id} ({supervisor.role}) may not "
                                  f"act on {agent_id} ({agent.role})")
        if supervisor.role == "director":
            return
        if supervisor.role == "manager":
            groups = self.center.managers.get(supervisor_id, [])
            if self._team_group.get(agent.team or "") in groups:
                return
        elif agent.team is not None and agent.team == supervisor.team:
            return
        raise CommandRejectedError("forbidden", f"agent {agent_id} is outside the scope of "
                              f"{supervisor.role} {supervisor_id}")

    # -- mutators: state changes only, from events ------------------------------------------

    def _on_logged_in(self, p: AgentLoggedIn, now: int) -> None:
        self.agents[p.agent_id] = AgentRecord(
            agent_id=p.agent_id, extension=p.extension, team=p.team, state="not_ready",
            reason="login", since_ms=now, queues={s.queue: s.level for s in p.skills},
            idle_since_ms=now)
        for skill in p.skills:
            self._signed_in[skill.queue].add(p.agent_id)

    def _on_logged_out(self, p: AgentLoggedOut, now: int) -> None:
        agent = self.agents.pop(p.agent_id)
        for queue in agent.queues:
            self._signed_in[queue].discard(p.agent_id)
            self._ready[queue].discard(p.agent_id)

    def _on_state_changed(self, p: AgentStateChanged, now: int) -> None:
        agent = self.agents[p.agent_id]
        keeps_call = p.state in ("ringing", "talking", "hold", "after_call_work")
        changes: dict[str, Any] = {
            "state": p.state, "reason": p.reason, "since_ms": now,
            "call_id": p.call_id if keeps_call else None, "timer": agent.timer + 1,
        }
        if p.state == "ready":
            changes["idle_since_ms"] = now
        elif p.state == "ringing":
            changes["last_rung_ms"] = now
        self.agents[p.agent_id] = msgspec.structs.replace(agent, **changes)
        for queue in agent.queues:
            if p.state == "ready":
                self._ready[queue].add(p.agent_id)
            else:
                self._ready[queue].discard(p.agent_id)

    def _on_signed_in(self, p: SkillGroupSignedIn, now: int) -> None:
        agent = self.agents[p.agent_id]
        self.agents[p.agent_id] = msgspec.structs.replace(
            agent, queues={**agent.queues, p.queue: p.level})
        self._signed_in[p.queue].add(p.agent_id)
        if agent.state == "ready":
            self._ready[p.queue].add(p.agent_id)

    def _on_signed_out(self, p: SkillGroupSignedOut, now: int) -> None:
        agent = self.agents[p.agent_id]
        self.agents[p.agent_id] = msgspec.structs.replace(
            agent, queues={q: v for q, v in agent.queues.items() if q != p.queue})
        self._signed_in[p.queue].discard(p.agent_id)
        self._ready[p.queue].discard(p.agent_id)

    def _on_offered(self, p: CallOffered, now: int) -> None:
        self.calls[p.call_id] = CallRecord(
            call_id=p.call_id, caller=p.caller, dialed=p.dialed, direction=p.direction,
            offered_ms=now, priority=p.priority, region=p.caller_region,
            stage="ivr" if p.direction == "inbound" else "outbound", agent_id=p.agent_id)

    def _on_ivr_entered(self, p: IvrEntered, now: int) -> None:
        stage: CallStage = "ivr"
        if p.flow.startswith(SURVEY_FLOW):
            stage = "survey"
        elif p.flow.startswith(VOICEMAIL_FLOW):
            stage = "voicemail"
        call = self.calls[p.call_id]
        self.calls[p.call_id] = msgspec.structs.replace(call, stage=stage, timer=call.timer + 1)

    def _unqueue(self, call: CallRecord) -> None:
        if call.stage == "queued" and call.queue is not None:
            waiting = self._waiting[call.queue]
            index = bisect.bisect_left(waiting, (-call.priority, call.seq, call.call_id))
            if index < len(waiting) and waiting[index][2] == call.call_id:
                del waiting[index]

    def _on_queued(self, p: CallQueued, now: int) -> None:
        call = self.calls[p.call_id]
        self._unqueue(call)
        self._arrivals += 1
        self.calls[p.call_id] = msgspec.structs.replace(
            call, stage="queued", queue=p.queue, queued_ms=now, seq=self._arrivals,
            priority=p.priority, ringing=(), agent_id=None, timer=call.timer + 1)
        bisect.insort(self._waiting[p.queue], (-p.priority, self._arrivals, p.call_id))

    def _on_ringing(self, p: RingingAgent, now: int) -> None:
        call = self.calls[p.call_id]
        self._unqueue(call)
        ringing = (*call.ringing, p.agent_id) if call.stage == "ringing" else (p.agent_id,)
        self.calls[p.call_id] = msgspec.structs.replace(
            call, stage="ringing", ringing=ringing, attempt=p.attempt, timer=call.timer + 1,
            rang_ms=now)
        if p.queue is not None:
            self._round_robin[p.queue] = self._order.get(p.agent_id, -1)

    def _on_rona(self, p: RingNoAnswer, now: int) -> None:
        call = self.calls[p.call_id]
        ringing = tuple(a for a in call.ringing if a != p.agent_id)
        if ringing:
            self.calls[p.call_id] = msgspec.structs.replace(call, ringing=ringing)
            return
        if call.queue is not None:
            # Back to its place in the queue: the original order, not the end.
            self.calls[p.call_id] = msgspec.structs.replace(call, stage="queued", ringing=())
            bisect.insort(self._waiting[call.queue], (-call.priority, call.seq, call.call_id))
        else:
            self.calls[p.call_id] = msgspec.structs.replace(call, stage="ivr", ringing=())

    def _on_answered(self, p: CallAnswered, now: int) -> None:
        call = self.calls[p.call_id]
        self.calls[p.call_id] = msgspec.structs.replace(
            call, stage="talking", agent_id=p.agent_id, answered_ms=now, ringing=(),
            timer=call.timer + 1)
        agent = self.agents[p.agent_id]
        self.agents[p.agent_id] = msgspec.structs.replace(agent, answered=agent.answered + 1)
        self._last_agent[call.caller] = p.agent_id

    def _on_held(self, p: CallHeld, now: int) -> None:
        self.calls[p.call_id] = msgspec.structs.replace(self.calls[p.call_id], stage="held",
                                                        held_since_ms=now)

    def _on_resumed(self, p: CallResumed, now: int) -> None:
        self.calls[p.call_id] = msgspec.structs.replace(
            self.calls[p.call_id], stage="talking", held_since_ms=None, consult_target=None)

    def _on_muted(self, p: CallMuted, now: int) -> None:
        self.agents[p.agent_id] = msgspec.structs.replace(self.agents[p.agent_id], muted=True)

    def _on_unmuted(self, p: CallUnmuted, now: int) -> None:
        self.agents[p.agent_id] = msgspec.structs.replace(self.agents[p.agent_id], muted=False)

    def _on_consulted(self, p: CallConsulted, now: int) -> None:
        self.calls[p.call_id] = msgspec.structs.replace(
            self.calls[p.call_id], stage="consulting", held_since_ms=now,
            consult_target=p.target)

    def _on_transferred(self, p: CallTransferred, now: int) -> None:
        call = self.calls[p.call_id]
        self.calls[p.call_id] = msgspec.structs.replace(
            call, agent_id=None, consult_target=None, attempt=0, timer=call.timer + 1)

    def _on_supervisor_joined(self, p: SupervisorJoined, now: int) -> None:
        call = self.calls[p.call_id]
        changes: dict[str, Any] = {"supervisors": (*call.supervisors, p.supervisor_id)}
        if p.mode == "intercept":
            changes["agent_id"] = p.supervisor_id
        self.calls[p.call_id] = msgspec.structs.replace(call, **changes)

    def _on_overflowed(self, p: CallOverflowed, now: int) -> None:
        call = self.calls[p.call_id]
        self._unqueue(call)
        self.calls[p.call_id] = msgspec.structs.replace(call, stage="ivr",
                                                        timer=call.timer + 1)

    def _on_abandoned(self, p: CallAbandoned, now: int) -> None:
        self._unqueue(self.calls[p.call_id])

    def _on_ended(self, p: CallEnded, now: int) -> None:
        call = self.calls.pop(p.call_id)
        self._unqueue(call)
        if call.answered_ms is not None and call.queue is not None:
            total, count = self._aht_ms.get(call.queue, (0, 0))
            self._aht_ms[call.queue] = (total + now - call.answered_ms, count + 1)

    def _on_ticket_created(self, p: TicketCreated, now: int) -> None:
        self.tickets[p.ticket_id] = TicketRecord(ticket_id=p.ticket_id, status="open",
                                                 assignee=None, created_by=p.created_by,
                                                 call_id=p.call_id)

    def _on_ticket_assigned(self, p: TicketAssigned, now: int) -> None:
        self.tickets[p.ticket_id] = msgspec.structs.replace(self.tickets[p.ticket_id],
                                                            assignee=p.assignee)

    def _on_ticket_status(self, p: TicketStatusChanged, now: int) -> None:
        self.tickets[p.ticket_id] = msgspec.structs.replace(self.tickets[p.ticket_id],
                                                            status=p.status)

    def _on_ticket_closed(self, p: TicketClosed, now: int) -> None:
        self.tickets[p.ticket_id] = msgspec.structs.replace(self.tickets[p.ticket_id],
                                                            status="closed")


def _ignore(payload: Payload, now: int) -> None:
    """Events that change no engine state (announcements, recordings, surveys...)."""
