"""Call events (topic ``calls``, keyed by ``call_id``): the life of one call.

Feature ids in comments refer to ``shared/FEATURES.md``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from ingest.contract.envelope import CallPayload
from ingest.contract.types import (
    AgentId,
    CallId,
    Digits,
    Label,
    NonNegativeInt,
    PhoneNumber,
    Seconds,
    UtcTime,
)

__all__ = [
    "AnnouncementPlayed",
    "CallAbandoned",
    "CallAnswered",
    "CallConferenced",
    "CallConsulted",
    "CallEnded",
    "CallHeld",
    "CallMuted",
    "CallOffered",
    "CallOverflowed",
    "CallQueued",
    "CallResumed",
    "CallTransferred",
    "CallUnmuted",
    "CallbackRequested",
    "CallerRegion",
    "Disposition",
    "IvrEntered",
    "IvrLeft",
    "IvrNodeVisited",
    "RecordingStored",
    "RingNoAnswer",
    "RingingAgent",
    "SupervisorJoined",
    "SurveyAnswered",
    "TargetKind",
    "VoicemailLeft",
]

TargetKind = Literal["queue", "agent", "external", "ivr", "voicemail", "callback", "site"]

Disposition = Literal[
    "answered",
    "abandoned",
    "voicemail",
    "callback",
    "transferred_external",
    "ivr_completed",
    "blacklisted",
    "closed",
    "no_agents",
    "failed",
]
"""How a call ended, exactly one per offered call."""

Position = Annotated[int, msgspec.Meta(ge=1)]


class CallerRegion(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Where the caller's number belongs (CC-03): from area code or mobile prefix."""

    country: Label | None = None
    province: Label | None = None
    city: Label | None = None
    carrier: Label | None = None


class CallOffered(CallPayload, frozen=True, kw_only=True):
    """A call reached the center (inbound) or was placed by it (outbound, internal)."""

    TYPE: ClassVar[str] = "call.offered"
    direction: Literal["inbound", "outbound", "internal"]
    caller: PhoneNumber
    dialed: PhoneNumber
    entry: Label | None = None
    """The entry point the dialled number maps to (CC-01)."""
    caller_region: CallerRegion | None = None
    customer_id: Label | None = None
    priority: int = 0
    agent_id: AgentId | None = None
    """The placing agent, for outbound and internal calls."""


class IvrEntered(CallPayload, frozen=True, kw_only=True):
    """The call entered an IVR flow (IVR-01, IVR-02)."""

    TYPE: ClassVar[str] = "call.ivr_entered"
    flow: Label
    flow_version: Label | None = None


class IvrNodeVisited(CallPayload, frozen=True, kw_only=True):
    """The call passed through one IVR node, with the caller's input if any (IVR-03)."""

    TYPE: ClassVar[str] = "call.ivr_node"
    flow: Label
    node: Label
    kind: Label
    digits: Digits | None = None
    """Keys pressed; secrets such as PINs are never carried, only ``outcome``."""
    outcome: Label | None = None


class IvrLeft(CallPayload, frozen=True, kw_only=True):
    """The call left the IVR towards a target, or hung up in it."""

    TYPE: ClassVar[str] = "call.ivr_left"
    flow: Label
    node: Label
    exit: Literal["transfer", "voicemail", "survey", "hangup", "caller_hangup", "error"]
    target_kind: TargetKind | None = None
    target: Label | None = None


class CallQueued(CallPayload, frozen=True, kw_only=True):
    """The call joined a queue (skill group) at a position (ACD-01, ACD-03)."""

    TYPE: ClassVar[str] = "call.queued"
    queue: Label
    priority: int = 0
    position: Position = 1
    estimated_wait_s: Seconds | None = None


class AnnouncementPlayed(CallPayload, frozen=True, kw_only=True):
    """A prompt was played to the caller (ACD-04, CC-11, CC-04)."""

    TYPE: ClassVar[str] = "call.announcement_played"
    kind: Literal[
        "entry", "position", "estimated_wait", "music_on_hold", "agent_id", "rejection",
        "closed", "prompt",
    ]
    queue: Label | None = None
    prompt: Label | None = None
    position: NonNegativeInt | None = None
    estimated_wait_s: Seconds | None = None
    agent_id: AgentId | None = None


class RingingAgent(CallPayload, frozen=True, kw_only=True):
    """An agent's phone started ringing for the call (ACD-02)."""

    TYPE: ClassVar[str] = "call.ringing"
    agent_id: AgentId
    queue: Label | None = None
    extension: Label | None = None
    attempt: int = 1


class RingNoAnswer(CallPayload, frozen=True, kw_only=True):
    """Ring no answer (RONA): the agent did not pick up in time (ACD-06)."""

    TYPE: ClassVar[str] = "call.rona"
    agent_id: AgentId
    queue: Label | None = None
    ring_s: Seconds


class CallAnswered(CallPayload, frozen=True, kw_only=True):
    """An agent answered; ``wait_s`` is the time from queueing to answer."""

    TYPE: ClassVar[str] = "call.answered"
    agent_id: AgentId
    queue: Label | None = None
    wait_s: Seconds = 0.0
    ring_s: Seconds = 0.0


class CallHeld(CallPayload, frozen=True, kw_only=True):
    """The agent put the caller on hold."""

    TYPE: ClassVar[str] = "call.held"
    agent_id: AgentId


class CallResumed(CallPayload, frozen=True, kw_only=True):
    """The agent took the caller off hold."""

    TYPE: ClassVar[str] = "call.resumed"
    agent_id: AgentId


class CallMuted(CallPayload, frozen=True, kw_only=True):
    """The agent muted their microphone."""

    TYPE: ClassVar[str] = "call.muted"
    agent_id: AgentId


class CallUnmuted(CallPayload, frozen=True, kw_only=True):
    """The agent unmuted their microphone."""

    TYPE: ClassVar[str] = "call.unmuted"
    agent_id: AgentId


class CallTransferred(CallPayload, frozen=True, kw_only=True):
    """The call was transferred, blind or after a consultation (AG-03)."""

    TYPE: ClassVar[str] = "call.transferred"
    kind: Literal["blind", "consult"]
    target_kind: TargetKind
    target: Label
    agent_id: AgentId | None = None
    """The transferring agent."""


class CallConsulted(CallPayload, frozen=True, kw_only=True):
    """The agent started a consultation call while the caller waits on hold."""

    TYPE: ClassVar[str] = "call.consulted"
    agent_id: AgentId
    target_kind: TargetKind
    target: Label
    consult_call_id: CallId | None = None


class CallConferenced(CallPayload, frozen=True, kw_only=True):
    """The agent joined the caller and other parties in a conference."""

    TYPE: ClassVar[str] = "call.conferenced"
    agent_id: AgentId
    participants: list[Label]


class SupervisorJoined(CallPayload, frozen=True, kw_only=True):
    """A supervisor joined an agent's call (SV-01)."""

    TYPE: ClassVar[str] = "call.supervisor_joined"
    supervisor_id: AgentId
    agent_id: AgentId
    mode: Literal["monitor", "whisper", "barge", "intercept"]


class CallOverflowed(CallPayload, frozen=True, kw_only=True):
    """The call left its queue for another target (ACD-06, CC-12)."""

    TYPE: ClassVar[str] = "call.overflowed"
    queue: Label
    reason: Literal["max_wait", "no_agents", "queue_full", "closed", "site_saturated"]
    target_kind: TargetKind
    target: Label


class CallAbandoned(CallPayload, frozen=True, kw_only=True):
    """The caller hung up before reaching an agent."""

    TYPE: ClassVar[str] = "call.abandoned"
    stage: Literal["ivr", "queue", "ringing"]
    queue: Label | None = None
    wait_s: Seconds = 0.0


class VoicemailLeft(CallPayload, frozen=True, kw_only=True):
    """The caller left a voicemail in a mailbox (CC-06)."""

    TYPE: ClassVar[str] = "call.voicemail_left"
    mailbox: Label
    duration_s: Seconds
    recording_uri: Label | None = None


class CallbackRequested(CallPayload, frozen=True, kw_only=True):
    """A callback task was created for the caller (CC-08)."""

    TYPE: ClassVar[str] = "call.callback_requested"
    number: PhoneNumber
    reason: Literal["requested", "missed", "abandoned", "overflow"]
    queue: Label | None = None
    due_at: UtcTime | None = None


class SurveyAnswered(CallPayload, frozen=True, kw_only=True):
    """The caller scored the call on the keypad (CC-10)."""

    TYPE: ClassVar[str] = "call.survey_answered"
    survey: Label
    score: int
    scale_max: int
    agent_id: AgentId | None = None


class RecordingStored(CallPayload, frozen=True, kw_only=True):
    """Recording metadata for a call leg (CC-07); the media lives elsewhere."""

    TYPE: ClassVar[str] = "call.recording_stored"
    uri: Label
    duration_s: Seconds
    agent_id: AgentId | None = None
    size_bytes: NonNegativeInt | None = None
    reason: Literal["forced", "on_demand"] = "forced"


class CallEnded(CallPayload, frozen=True, kw_only=True):
    """The call is over; ``disposition`` is its single terminal outcome."""

    TYPE: ClassVar[str] = "call.ended"
    disposition: Disposition
    ended_by: Literal["caller", "agent", "system", "supervisor"]
    agent_id: AgentId | None = None
    queue: Label | None = None
