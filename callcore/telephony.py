"""The telephony seam: what the PBX is told to do, kept out of the engine.

The engine decides (who rings, who answered, when a call ends) and emits contract
events; it never touches media. ``TelephonyBridge`` turns those events into instructions
for a ``TelephonyAdapter`` (ring an extension, bridge the caller to it, play a prompt,
collect digits, record, hang up). ``SimulatedTelephony`` only writes the instructions
down; a real adapter (Asterisk ARI, FreeSWITCH ESL, a SIP B2BUA) implements the same
protocol, and reports what the network does (a call arrives, the caller hangs up, keys
are pressed) back through ``callcore.api.EngineService``'s passthroughs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from callcore.center import CenterConfig
from callcore.engine import SURVEY_FLOW, VOICEMAIL_FLOW
from ingest.contract import (
    AgentLoggedIn,
    AgentLoggedOut,
    AnnouncementPlayed,
    CallAnswered,
    CallConferenced,
    CallConsulted,
    CallEnded,
    CallHeld,
    CallOffered,
    CallPayload,
    CallQueued,
    CallResumed,
    CallTransferred,
    Event,
    IvrEntered,
    Payload,
    RingingAgent,
    RingNoAnswer,
    SupervisorJoined,
)

__all__ = [
    "MUSIC_ON_HOLD",
    "SURVEY_DIGIT_TIMEOUT_S",
    "BridgeMode",
    "Instruction",
    "SimulatedTelephony",
    "TelephonyAdapter",
    "TelephonyBridge",
]

BridgeMode = Literal["talk", "listen", "whisper"]
"""How an endpoint joins a call: both ways, listening only (monitor), or heard by the
agent but not the caller (whisper, SV-01)."""

MUSIC_ON_HOLD = "music_on_hold"
"""Prompt the caller hears while queued, on hold or while the agent consults."""

SURVEY_DIGIT_TIMEOUT_S = 15.0
"""How long the caller has to score a survey (the engine's survey timer, CC-10)."""


@runtime_checkable
class TelephonyAdapter(Protocol):
    """What the call-control layer asks of a PBX, one call leg at a time.

    ``call_id`` is the engine's call id (the adapter maps it to its own channel ids);
    an endpoint is an agent extension or an external number. Methods are called in
    event order from the service's event loop and must return promptly: an adapter
    that talks to a PBX over the network queues the instruction for its own worker.
    """

    def answer(self, call_id: str) -> None:
        """Answer the caller's leg of an inbound call (it reached the center)."""
        ...

    def ring(self, call_id: str, extension: str) -> None:
        """Alert ``extension`` for the call."""
        ...

    def bridge(self, call_id: str, endpoint: str, *, mode: BridgeMode = "talk") -> None:
        """Join ``endpoint`` to the call's audio (stops any prompt or hold music)."""
        ...

    def play_prompt(self, call_id: str, prompt: str, *,
                    variables: Mapping[str, str] | None = None) -> None:
        """Play a named prompt to the caller; ``variables`` fill its slots."""
        ...

    def collect_digits(self, call_id: str, *, max_digits: int, timeout_s: float) -> None:
        """Collect up to ``max_digits`` keys from the caller within ``timeout_s``."""
        ...

    def record(self, call_id: str, uri: str) -> None:
        """Record the call's audio to ``uri`` until the call ends."""
        ...

    def hang_up(self, call_id: str, endpoint: str | None = None) -> None:
        """Release one endpoint's leg (stop ringing it, drop it), or the whole call."""
        ...


@dataclass(frozen=True, slots=True)
class Instruction:
    """One adapter call as ``SimulatedTelephony`` recorded it."""

    action: Literal["answer", "ring", "bridge", "play_prompt", "collect_digits", "record",
                    "hang_up"]
    call_id: str
    arguments: dict[str, object] = field(default_factory=dict)


class SimulatedTelephony:
    """A stand-in for a PBX we cannot run here: it records every instruction in order.

    No audio, no SIP, no network. Tests and local runs read ``instructions`` to see what
    a real PBX would have been told; ``for_call`` filters one call's instructions.
    """

    def __init__(self) -> None:
        self.instructions: list[Instruction] = []

    def for_call(self, call_id: str) -> list[Instruction]:
        """The instructions about ``call_id``, in order."""
        return [i for i in self.instructions if i.call_id == call_id]

    def answer(self, call_id: str) -> None:
        """Record an ``answer``."""
        self.instructions.append(Instruction("answer", call_id))

    def ring(self, call_id: str, extension: str) -> None:
        """Record a ``ring``."""
        self.instructions.append(Instruction("ring", call_id, {"extension": extension}))

    def bridge(self, call_id: str, endpoint: str, *, mode: BridgeMode = "talk") -> None:
        """Record a ``bridge``."""
        self.instructions.append(Instruction("bridge", call_id,
                                             {"endpoint": endpoint, "mode": mode}))

    def play_prompt(self, call_id: str, prompt: str, *,
                    variables: Mapping[str, str] | None = None) -> None:
        """Record a ``play_prompt``."""
        arguments = {"prompt": prompt, "variables": dict(variables or {})}
        self.instructions.append(Instruction("play_prompt", call_id, arguments))

    def collect_digits(self, call_id: str, *, max_digits: int, timeout_s: float) -> None:
        """Record a ``collect_digits``."""
        self.instructions.append(Instruction("collect_digits", call_id,
                                             {"max_digits": max_digits, "timeout_s": timeout_s}))

    def record(self, call_id: str, uri: str) -> None:
        """Record a ``record``."""
        self.instructions.append(Instruction("record", call_id, {"uri": uri}))

    def hang_up(self, call_id: str, endpoint: str | None = None) -> None:
        """Record a ``hang_up`` of one endpoint or of the whole call."""
        self.instructions.append(Instruction("hang_up", call_id,
                                             {} if endpoint is None else {"endpoint": endpoint}))


@dataclass(slots=True)
class _Leg:
    direction: str
    queue: str | None = None
    agent_id: str | None = None
    ringing: dict[str, str] = field(default_factory=dict)
    """Agent id -> extension, of the extensions ringing now."""


class TelephonyBridge:
    """Turns engine events into adapter instructions, so the engine stays media-free.

    ========================== ==========================================================
    event                      instructions
    ========================== ==========================================================
    call.offered (inbound)     answer
    call.offered (outbound)    bridge to the dialled number
    call.queued, call.held,    play_prompt ``music_on_hold``
    call.consulted
    call.announcement_played   play_prompt (the prompt, or the announcement kind)
    call.ringing               ring the agent's extension
    call.rona                  hang_up that extension's leg
    call.answered              hang_up the other ringing legs; bridge the agent (inbound);
                               record when the call's queue records (CC-07)
    call.resumed               bridge the agent again
    call.conferenced           bridge the consulted party
    call.transferred           hang_up the transferring agent; bridge an external target
    call.supervisor_joined     bridge the supervisor (monitor: listen, whisper: whisper);
                               intercept also hangs up the agent's leg (SV-01)
    call.ivr_entered survey    play_prompt + collect_digits (one key, CC-10)
    call.ivr_entered voicemail play_prompt + record (CC-06)
    call.ended                 hang_up the call, unless it left to an external number
    ========================== ==========================================================

    Extensions come from ``agent.logged_in`` events, and from ``bind_extension`` for
    supervisors who watch calls without being logged in as agents.
    """

    def __init__(self, adapter: TelephonyAdapter, center: CenterConfig) -> None:
        self.adapter = adapter
        self._site = center.site
        self._records = {q.name: q.record for q in center.queues}
        self._extensions: dict[str, str] = {}
        self._legs: dict[str, _Leg] = {}
        self._handlers: dict[type[Payload], Callable[[str, _Leg | None, Any], None]] = {
            CallOffered: self._offered,
            CallQueued: self._queued,
            AnnouncementPlayed: self._announced,
            RingingAgent: self._ringing,
            RingNoAnswer: self._rona,
            CallAnswered: self._answered,
            CallHeld: self._on_hold,
            CallConsulted: self._on_hold,
            CallResumed: self._resumed,
            CallConferenced: self._conferenced,
            CallTransferred: self._transferred,
            SupervisorJoined: self._supervisor,
            IvrEntered: self._ivr,
            CallEnded: self._ended,
        }

    def bind_extension(self, user_id: str, extension: str) -> None:
        """Tell the bridge where ``user_id`` sits (a supervisor not logged in as an agent)."""
        self._extensions[user_id] = extension

    def handle(self, event: Event[Payload]) -> None:
        """Issue the adapter instructions that ``event`` calls for (none for most events)."""
        payload = event.payload
        if isinstance(payload, AgentLoggedIn):
            self._extensions[payload.agent_id] = payload.extension
            return
        if isinstance(payload, AgentLoggedOut):
            self._extensions.pop(payload.agent_id, None)
            return
        handler = self._handlers.get(type(payload))
        if handler is not None and isinstance(payload, CallPayload):
            handler(payload.call_id, self._legs.get(payload.call_id), payload)

    # -- one handler per event type ---------------------------------------------------

    def _offered(self, call_id: str, leg: _Leg | None, p: CallOffered) -> None:
        self._legs[call_id] = _Leg(direction=p.direction, agent_id=p.agent_id)
        if p.direction == "inbound":
            self.adapter.answer(call_id)
        else:
            self.adapter.bridge(call_id, p.dialed)

    def _queued(self, call_id: str, leg: _Leg | None, p: CallQueued) -> None:
        if leg is not None:
            leg.queue = p.queue
        self.adapter.play_prompt(call_id, MUSIC_ON_HOLD, variables={"queue": p.queue})

    def _announced(self, call_id: str, leg: _Leg | None, p: AnnouncementPlayed) -> None:
        variables = {name: str(value) for name, value in (
            ("queue", p.queue), ("position", p.position),
            ("estimated_wait_s", p.estimated_wait_s), ("agent_id", p.agent_id),
        ) if value is not None}
        self.adapter.play_prompt(call_id, p.prompt or p.kind, variables=variables)

    def _ringing(self, call_id: str, leg: _Leg | None, p: RingingAgent) -> None:
        extension = p.extension or self._extensions.get(p.agent_id)
        if extension is None:
            return
        if leg is not None:
            leg.ringing[p.agent_id] = extension
        self.adapter.ring(call_id, extension)

    def _rona(self, call_id: str, leg: _Leg | None, p: RingNoAnswer) -> None:
        extension = leg.ringing.pop(p.agent_id, None) if leg is not None else None
        if extension is not None:
            self.adapter.hang_up(call_id, extension)

    def _answered(self, call_id: str, leg: _Leg | None, p: CallAnswered) -> None:
        leg = leg or self._legs.setdefault(call_id, _Leg(direction="inbound"))
        for agent_id, extension in leg.ringing.items():
            if agent_id != p.agent_id:
                self.adapter.hang_up(call_id, extension)
        leg.ringing.clear()
        leg.agent_id = p.agent_id
        leg.queue = p.queue or leg.queue
        if leg.direction == "inbound":
            extension = self._extensions.get(p.agent_id)
            if extension is not None:
                self.adapter.bridge(call_id, extension)
        if leg.queue is None or self._records.get(leg.queue, True):
            # The engine stores this URI in call.recording_stored when the talk ends.
            self.adapter.record(call_id, f"recording://{self._site}/{call_id}")

    def _on_hold(self, call_id: str, leg: _Leg | None, p: CallHeld | CallConsulted) -> None:
        self.adapter.play_prompt(call_id, MUSIC_ON_HOLD)

    def _resumed(self, call_id: str, leg: _Leg | None, p: CallResumed) -> None:
        extension = self._extensions.get(p.agent_id)
        if extension is not None:
            self.adapter.bridge(call_id, extension)

    def _conferenced(self, call_id: str, leg: _Leg | None, p: CallConferenced) -> None:
        for party in p.participants[2:]:
            self.adapter.bridge(call_id, self._extensions.get(party, party))

    def _transferred(self, call_id: str, leg: _Leg | None, p: CallTransferred) -> None:
        if p.agent_id is not None and p.agent_id in self._extensions:
            self.adapter.hang_up(call_id, self._extensions[p.agent_id])
        if leg is not None:
            leg.agent_id = None
        if p.target_kind == "external":
            self.adapter.bridge(call_id, p.target)

    def _supervisor(self, call_id: str, leg: _Leg | None, p: SupervisorJoined) -> None:
        extension = self._extensions.get(p.supervisor_id)
        if extension is None:
            return
        mode: BridgeMode = (
            "listen" if p.mode == "monitor" else "whisper" if p.mode == "whisper" else "talk"
        )
        self.adapter.bridge(call_id, extension, mode=mode)
        if p.mode == "intercept" and p.agent_id in self._extensions:
            self.adapter.hang_up(call_id, self._extensions[p.agent_id])
            if leg is not None:
                leg.agent_id = p.supervisor_id

    def _ivr(self, call_id: str, leg: _Leg | None, p: IvrEntered) -> None:
        if p.flow.startswith(SURVEY_FLOW):
            if leg is not None and leg.agent_id in self._extensions:
                self.adapter.hang_up(call_id, self._extensions[leg.agent_id])
            self.adapter.play_prompt(call_id, p.flow)
            self.adapter.collect_digits(call_id, max_digits=1,
                                        timeout_s=SURVEY_DIGIT_TIMEOUT_S)
        elif p.flow.startswith(VOICEMAIL_FLOW):
            self.adapter.play_prompt(call_id, p.flow)
            self.adapter.record(call_id, f"voicemail://{self._site}/{call_id}")

    def _ended(self, call_id: str, leg: _Leg | None, p: CallEnded) -> None:
        self._legs.pop(call_id, None)
        if p.disposition != "transferred_external":
            self.adapter.hang_up(call_id)
