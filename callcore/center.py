"""The configuration of a contact center: numbers, queues, agents, teams and rules.

Loaded from YAML (or a mapping) into frozen structs; a type error names its path,
and cross-references (a number entering an unknown queue, an agent in an unknown
team) are checked at load with a message that says what to fix.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from callcore.yamlfiles import read_document

__all__ = [
    "ROLE_RANK",
    "AgentConfig",
    "CenterConfig",
    "CenterConfigError",
    "NumberConfig",
    "QueueConfig",
    "Role",
    "Strategy",
    "Target",
    "TeamConfig",
    "hash_password",
    "load_center",
    "verify_password",
]

Strategy = Literal[
    "ring_all", "round_robin", "linear", "random", "fewest_calls", "longest_idle",
    "least_recent",
]
"""ACD-02 distribution strategies; skill level always comes first."""

Role = Literal["agent", "team_lead", "manager", "director"]
ROLE_RANK: dict[str, int] = {"agent": 0, "team_lead": 1, "manager": 2, "director": 3}

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Level = Annotated[int, msgspec.Meta(ge=1, le=20)]


class CenterConfigError(ValueError):
    """The center configuration is invalid; the message lists every problem."""


class _Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Target(_Config, frozen=True, kw_only=True):
    """Where a call goes: an IVR flow, a queue, an agent, a voicemail box, an external
    number, or a callback task (CC-01, ACD-06)."""

    kind: Literal["ivr", "queue", "agent", "voicemail", "external", "callback"]
    target: str = ""


class NumberConfig(_Config, frozen=True, kw_only=True):
    """An inbound number and its entry point (CC-01), with the per-number priority."""

    number: str
    entry: Target
    priority: int = 0
    schedule: str | None = None
    """Business-calendar schedule (CC-05); outside it the call goes to ``closed``."""
    closed: Target | None = None


class QueueConfig(_Config, frozen=True, kw_only=True):
    """A queue (skill group) and how it distributes calls (ACD-01..ACD-06)."""

    name: str
    strategy: Strategy = "longest_idle"
    priority: int = 0
    """Between queues: an agent in several queues takes the higher priority first."""
    ring_timeout_s: PositiveSeconds = 15.0
    rona_not_ready: bool = True
    """Set an agent who lets a call ring out to not-ready (reason ``rona``)."""
    max_wait_s: PositiveSeconds | None = None
    overflow: Target | None = None
    """Where calls go after ``max_wait_s`` (ACD-06)."""
    no_agents: Target | None = None
    """Where calls go when nobody is logged in to the queue."""
    after_call_work_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    announce_every_s: PositiveSeconds | None = None
    """Repeat position and estimated wait to waiting callers this often (ACD-04)."""
    announce_agent_id: bool = False
    """Tell the caller the agent's id on connect (CC-11)."""
    sticky_agent: bool = False
    """Offer a caller's last agent first when ready (ACD-02, CC-02)."""
    callback_on_abandon: bool = False
    """Turn abandoned calls into callback tasks (CC-08)."""
    record: bool = True
    """Record calls and store recording metadata (CC-07)."""
    survey: str | None = None
    """Survey offered after the agent hangs up (CC-10)."""
    service_level_s: PositiveSeconds = 20.0


class AgentConfig(_Config, frozen=True, kw_only=True):
    """A user: agent, team lead, manager or director (AG-01, SV-03)."""

    id: str
    name: str = ""
    password_hash: str = ""
    """``scrypt$<salt hex>$<hash hex>``, see ``hash_password``."""
    team: str | None = None
    role: Role = "agent"
    skills: dict[str, Level] = msgspec.field(default_factory=dict)
    """Queues the agent may sign in to, with the skill level in each (ACD-01)."""
    external_transfer: bool = False
    """May transfer calls to external numbers (off by default, AG-04)."""


class TeamConfig(_Config, frozen=True, kw_only=True):
    """A team and the group it belongs to; managers see their groups' teams (SV-03)."""

    name: str
    group: str = "default"


class CenterConfig(_Config, frozen=True, kw_only=True):
    """Everything the engine needs to know about one site."""

    site: str = "main"
    numbers: list[NumberConfig] = msgspec.field(default_factory=list)
    queues: list[QueueConfig] = msgspec.field(default_factory=list)
    agents: list[AgentConfig] = msgspec.field(default_factory=list)
    teams: list[TeamConfig] = msgspec.field(default_factory=list)
    managers: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Manager id -> the groups they manage."""
    owners: dict[str, str] = msgspec.field(default_factory=dict)
    """Caller number -> the agent who owns that customer (CC-02)."""
    region_routes: dict[str, str] = msgspec.field(default_factory=dict)
    """Province -> queue, for callers whose number resolves to it (CC-02, CC-03)."""

    def queue(self, name: str) -> QueueConfig:
        """The queue called ``name``; ``KeyError`` naming the known ones otherwise."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(f"unknown queue {name!r}; known: {', '.join(q.name for q in self.queues)}")

    def problems(self) -> list[str]:
        """Cross-reference problems, empty when the configuration is consistent."""
        queues = {q.name for q in self.queues}
        agents = {a.id for a in self.agents}
        teams = {t.name for t in self.teams}
        found: list[str] = []
        for name, count in _counts([q.name for q in self.queues]).items():
            if count > 1:
                found.append(f"queue {name!r} is defined {count} times")
        for name, count in _counts([a.id for a in self.agents]).items():
            if count > 1:
                found.append(f"agent {name!r} is defined {count} times")
        targets: list[tuple[str, Target | None]] = []
        for number in self.numbers:
            targets += [(f"number {number.number} entry", number.entry),
                        (f"number {number.number} closed", number.closed)]
        for q in self.queues:
            targets += [(f"queue {q.name} overflow", q.overflow),
                        (f"queue {q.name} no_agents", q.no_agents)]
        for where, target in targets:
            if target is None:
                continue
            if target.kind == "queue" and target.target not in queues:
                found.append(f"{where}: unknown queue {target.target!r}")
            if target.kind == "agent" and target.target not in agents:
                found.append(f"{where}: unknown agent {target.target!r}")
            if target.kind in ("external", "ivr") and not target.target:
                found.append(f"{where}: a {target.kind} target needs a 'target'")
        for agent in self.agents:
            if agent.team is not None and agent.team not in teams:
                found.append(f"agent {agent.id}: unknown team {agent.team!r}; add it to teams")
            for queue in agent.skills:
                if queue not in queues:
                    found.append(f"agent {agent.id}: skill for unknown queue {queue!r}")
        for province, queue in self.region_routes.items():
            if queue not in queues:
                found.append(f"region route {province}: unknown queue {queue!r}")
        for number, agent_id in self.owners.items():
            if agent_id not in agents:
                found.append(f"owner of {number}: unknown agent {agent_id!r}")
        return found


def _counts(names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def load_center(source: Path | str | Mapping[str, Any]) -> CenterConfig:
    """Load and check a center configuration from a YAML file or a mapping."""
    raw, where = read_document(source, what="center configuration", error=CenterConfigError)
    try:
        center = msgspec.convert(raw, CenterConfig)
    except msgspec.ValidationError as exc:
        raise CenterConfigError(f"{where}: {exc}") from None
    if problems := center.problems():
        raise CenterConfigError(f"{where}: " + "; ".join(problems))
    return center


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A scrypt hash of ``password`` as stored in ``AgentConfig.password_hash``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` result (constant-time compare)."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate.hex(), digest)
