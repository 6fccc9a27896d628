"""Agent events (topic ``agents``, keyed by ``agent_id``): log-in, states, skill groups."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from ingest.contract.envelope import AgentPayload
from ingest.contract.types import AgentId, CallId, Label

__all__ = [
    "AgentActionForced",
    "AgentHelpRequested",
    "AgentLoggedIn",
    "AgentLoggedOut",
    "AgentState",
    "AgentStateChanged",
    "SkillGroupSignedIn",
    "SkillGroupSignedOut",
    "SkillLevel",
]

AgentState = Literal["ready", "not_ready", "after_call_work", "ringing", "talking", "hold"]
"""The states a logged-in agent is in, exactly one at a time (AG-02)."""

Level = Annotated[int, msgspec.Meta(ge=1, le=20)]


class SkillLevel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Membership of a skill group (queue) at a level; higher levels are offered calls first."""

    queue: Label
    level: Level = 1


class AgentLoggedIn(AgentPayload, frozen=True, kw_only=True):
    """The agent logged in at an extension (AG-01)."""

    TYPE: ClassVar[str] = "agent.logged_in"
    extension: Label
    team: Label | None = None
    skills: list[SkillLevel] = msgspec.field(default_factory=list)


class AgentLoggedOut(AgentPayload, frozen=True, kw_only=True):
    """The agent logged out, by choice or forced by a supervisor."""

    TYPE: ClassVar[str] = "agent.logged_out"
    reason: Label | None = None
    forced_by: AgentId | None = None


class AgentStateChanged(AgentPayload, frozen=True, kw_only=True):
    """The agent's state changed; ``reason`` is the not-ready reason code."""

    TYPE: ClassVar[str] = "agent.state_changed"
    state: AgentState
    previous: AgentState | None = None
    reason: Label | None = None
    call_id: CallId | None = None
    queue: Label | None = None


class SkillGroupSignedIn(AgentPayload, frozen=True, kw_only=True):
    """The agent signed in to a skill group (AG-04)."""

    TYPE: ClassVar[str] = "agent.skill_group_signed_in"
    queue: Label
    level: Level = 1


class SkillGroupSignedOut(AgentPayload, frozen=True, kw_only=True):
    """The agent signed out of a skill group."""

    TYPE: ClassVar[str] = "agent.skill_group_signed_out"
    queue: Label


class AgentActionForced(AgentPayload, frozen=True, kw_only=True):
    """A supervisor forced an action on the agent (SV-02)."""

    TYPE: ClassVar[str] = "agent.action_forced"
    supervisor_id: AgentId
    action: Literal["ready", "not_ready", "log_out", "sign_in", "sign_out", "hang_up"]
    queue: Label | None = None
    reason: Label | None = None


class AgentHelpRequested(AgentPayload, frozen=True, kw_only=True):
    """The agent asked a supervisor for help, usually during a call (AG-04)."""

    TYPE: ClassVar[str] = "agent.help_requested"
    call_id: CallId | None = None
    message: Label | None = None
