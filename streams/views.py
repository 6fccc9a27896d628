"""Live views: the queue board (RT-01) and the agent board (RT-02) as pure folds.

The views are built in stages that each need only one key, so a partitioned host (Faust)
can run them as it runs the call, agent and queue topics, and the in-process host runs the
same functions one after the other:

- :func:`call_signals` (per call) turns call events into :class:`QueueSignal`\\ s of the
  queue the call is in: offered, answered, abandoned, overflowed, left;
- the fact fold's finished call rows become ``handled`` signals (AHT needs after-call work);
- :func:`agent_signals` (per agent) turns agent events into the agent's state in each
  queue it serves;
- :func:`apply_queue` (per queue) folds signals into a :class:`QueueState`;
- :func:`apply_agent` (per agent) folds agent events into an :class:`AgentState`.

"Today" and "the current interval" are on the center's clock (``ViewSettings.time_zone``)
and follow event time, so a replay gives the same boards. Snapshots take ``now`` to age
waits and states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from ingest.contract import Event, Topic
from ingest.contract.agents import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentStateChanged,
    SkillGroupSignedIn,
    SkillGroupSignedOut,
)
from ingest.contract.calls import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOverflowed,
    CallQueued,
    CallTransferred,
)
from streams.pickling import by_fields

__all__ = [
    "AgentSignal",
    "AgentSnapshot",
    "AgentState",
    "Boards",
    "CallPosition",
    "Counts",
    "QueueSignal",
    "QueueSnapshot",
    "QueueState",
    "ViewSettings",
    "agent_signals",
    "agent_snapshot",
    "apply_agent",
    "apply_boards",
    "apply_queue",
    "call_signals",
    "handled_signal",
    "queue_snapshot",
]

SignalKind = Literal["offered", "answered", "abandoned", "overflowed", "left", "handled"]
SlVariant = Literal["abandoned_in", "offered", "answered", "short_excluded"]
BUSY_STATES = frozenset({"ringing", "talking", "hold", "after_call_work"})
_MOVES = frozenset({CallQueued, CallOverflowed, CallAnswered, CallAbandoned, CallTransferred,
                    CallEnded})
"""The call events that move a call in or out of a queue."""


@dataclass(frozen=True, slots=True)
class ViewSettings:
    """How the boards count: the service-level threshold and variant (docs/metrics.md),
    short abandons, the interval length and the center's time zone."""

    sl_threshold_s: float = 20.0
    sl_variant: SlVariant = "abandoned_in"
    short_abandon_s: float = 5.0
    interval_minutes: int = 15
    time_zone: str = "UTC"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    """Per-queue service-level thresholds overriding ``sl_threshold_s``."""
    _last_minute: list[Any] = field(default_factory=lambda: [None, None, None],
                                    compare=False, repr=False)
    """The last minute looked up (start, end, its local day and interval): events come
    in time order, so most lookups are two datetime comparisons."""

    def threshold(self, queue: str) -> float:
        """The service-level threshold of ``queue``."""
        return self.thresholds.get(queue, self.sl_threshold_s)

    @property
    def zone(self) -> ZoneInfo:
        """The center's time zone."""
        return ZoneInfo(self.time_zone)  # ZoneInfo caches its instances

    def local_day(self, at: datetime) -> date:
        """The center's calendar day of ``at``."""
        return self._minute_of(at)[0]

    def interval_of(self, at: datetime) -> datetime:
        """The start (UTC) of the interval holding ``at``, on the center's clock."""
        return self._minute_of(at)[1]

    def _minute_of(self, at: datetime) -> tuple[date, datetime]:
        last = self._last_minute
        if last[0] is not None and last[0] <= at < last[1]:
            return last[2]
        minute = int(at.timestamp()) // 60
        found = _local_minute(self.time_zone, self.interval_minutes, minute)
        start = datetime.fromtimestamp(minute * 60, UTC)
        last[:] = (start, start + _MINUTE, found)
        return found


_MINUTE = timedelta(minutes=1)


@lru_cache(maxsize=4096)
def _local_minute(zone: str, interval_minutes: int, minute: int) -> tuple[date, datetime]:
    """The local day and the interval start (UTC) of one UTC minute: every event of a minute
    shares them, so the time-zone arithmetic runs once a minute, not once an event."""
    local = datetime.fromtimestamp(minute * 60, ZoneInfo(zone))
    start = local.minute - local.minute % interval_minutes
    return local.date(), local.replace(minute=start, second=0).astimezone(UTC)


# -- stage 1: calls -> queue signals ---------------------------------------------------


class QueueSignal(NamedTuple):
    """Something that happened to a call in a queue (the queue stage's input)."""

    queue: str
    call_id: str
    kind: SignalKind
    at: datetime
    wait_s: float = 0.0
    handle_s: float = 0.0


class CallPosition(NamedTuple):
    """Where a call stands for the boards: its current queue and since when it waits."""

    queue: str | None = None
    waiting_since: datetime | None = None


def call_signals(positions: dict[str, CallPosition], event: Event) -> list[QueueSignal]:
    """Stage 1 (keyed by call): the queue signals of one call event; updates ``positions``
    in place (a call leaves it when it ends)."""
    payload = event.payload
    if type(payload) not in _MOVES:
        return []
    call_id = payload.call_id
    at = event.occurred_at
    where = positions.get(call_id, CallPosition())
    signals: list[QueueSignal] = []
    if isinstance(payload, CallQueued):
        if where.queue is not None and where.waiting_since is not None:
            signals.append(QueueSignal(where.queue, call_id, "left", at))
        signals.append(QueueSignal(payload.queue, call_id, "offered", at))
        positions[call_id] = CallPosition(payload.queue, at)
    elif isinstance(payload, CallOverflowed):
        if where.queue != payload.queue or where.waiting_since is None:
            signals.append(QueueSignal(payload.queue, call_id, "offered", at))
        signals.append(QueueSignal(payload.queue, call_id, "overflowed", at))
        positions[call_id] = CallPosition(payload.queue, None)
    elif isinstance(payload, CallAnswered) and where.queue is not None:
        if where.waiting_since is not None:
            signals.append(QueueSignal(where.queue, call_id, "answered", at,
                                       wait_s=payload.wait_s))
        positions[call_id] = where._replace(waiting_since=None)
    elif isinstance(payload, CallAbandoned) and where.queue is not None:
        if where.waiting_since is not None and payload.stage != "ivr":
            signals.append(QueueSignal(where.queue, call_id, "abandoned", at,
                                       wait_s=payload.wait_s))
        positions[call_id] = where._replace(waiting_since=None)
    elif isinstance(payload, CallTransferred | CallEnded):
        if where.queue is not None and where.waiting_since is not None:
            signals.append(QueueSignal(where.queue, call_id, "left", at))
        if isinstance(payload, CallEnded):
            positions.pop(call_id, None)
        else:
            positions[call_id] = where._replace(waiting_since=None)
    return signals


def handled_signal(call_row: Mapping[str, object]) -> QueueSignal | None:
    """The ``handled`` signal of a finished call row of ``streams.facts`` (answered only):
    it carries the handle time (talk + hold + after-call work) for AHT."""
    if call_row.get("outcome") != "answered" or not call_row.get("queue"):
        return None
    handle = float(call_row["talk_s"]) + float(call_row["hold_s"]) + float(call_row["acw_s"])
    return QueueSignal(str(call_row["queue"]), str(call_row["call_id"]), "handled",
                       call_row["ended_at"], handle_s=handle)  # type: ignore[arg-type]


# -- stage 2: agents -> their state in each queue --------------------------------------


class AgentSignal(NamedTuple):
    """An agent's state as seen by one queue it serves (``None``: no longer serves it)."""

    queue: str
    agent_id: str
    state: str | None
    at: datetime


def agent_signals(skills: dict[str, frozenset[str]], states: dict[str, str],
                  event: Event) -> list[AgentSignal]:
    """Stage 2 (keyed by agent): the agent's state per queue it serves; updates ``skills``
    (queues per agent) and ``states`` (state per agent) in place."""
    payload = event.payload
    if payload.TOPIC is not Topic.AGENTS:
        return []
    agent, at = payload.agent_id, event.occurred_at
    if type(payload) is AgentStateChanged:  # the common case: same queues, a new state
        states[agent] = payload.state
        return [AgentSignal(q, agent, payload.state, at)
                for q in sorted(skills.get(agent, ()))]
    before = skills.get(agent, frozenset())
    if isinstance(payload, AgentLoggedIn):
        skills[agent] = frozenset(s.queue for s in payload.skills)
        states.setdefault(agent, "not_ready")
    elif isinstance(payload, SkillGroupSignedIn):
        skills[agent] = before | {payload.queue}
    elif isinstance(payload, SkillGroupSignedOut):
        skills[agent] = before - {payload.queue}
    elif isinstance(payload, AgentLoggedOut):
        skills.pop(agent, None)
        states.pop(agent, None)
    else:
        return []
    after = skills.get(agent, frozenset())
    state = states.get(agent)
    return ([AgentSignal(q, agent, None, at) for q in sorted(before - after)]
            + [AgentSignal(q, agent, state, at) for q in sorted(after)])


# -- stage 3: the queue board ----------------------------------------------------------


@by_fields
@dataclass(slots=True)
class Counts:
    """Counters over a period (today, or one interval)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    answered_within: int = 0
    answered_wait_s: float = 0.0
    handled: int = 0
    handle_s: float = 0.0

    def sl_denominator(self, variant: SlVariant) -> int:
        """The calls a service level of ``variant`` divides by (docs/metrics.md)."""
        return {
            "abandoned_in": self.answered + self.abandoned,
            "offered": self.offered,
            "answered": self.answered,
            "short_excluded": self.offered - self.short_abandoned,
        }[variant]

    def service_level(self, variant: SlVariant) -> float | None:
        """Answered within the threshold over the variant's denominator."""
        denominator = self.sl_denominator(variant)
        return self.answered_within / denominator if denominator > 0 else None

    @classmethod
    def total(cls, parts: Iterable[Counts]) -> Counts:
        """The sum of several periods' counts."""
        out = cls()
        for part in parts:
            for name in cls.__slots__:
                setattr(out, name, getattr(out, name) + getattr(part, name))
        return out

    @property
    def asa_s(self) -> float | None:
        """Average speed of answer."""
        return self.answered_wait_s / self.answered if self.answered else None

    @property
    def aht_s(self) -> float | None:
        """Average handle time of the calls finished (after-call work included)."""
        return self.handle_s / self.handled if self.handled else None

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned over offered."""
        return self.abandoned / self.offered if self.offered else None

    def count(self, signal: QueueSignal, settings: ViewSettings) -> None:
        """Add one signal."""
        kind = signal.kind
        if kind == "offered":
            self.offered += 1
        elif kind == "answered":
            self.answered += 1
            self.answered_within += signal.wait_s <= settings.threshold(signal.queue)
            self.answered_wait_s += signal.wait_s
        elif kind == "abandoned":
            self.abandoned += 1
            self.short_abandoned += signal.wait_s <= settings.short_abandon_s
        elif kind == "overflowed":
            self.overflowed += 1
        elif kind == "handled":
            self.handled += 1
            self.handle_s += signal.handle_s


@by_fields
@dataclass(slots=True)
class QueueState:
    """One queue's board: calls waiting now, counts today and per interval, agents.
    :func:`apply_queue` updates it in place (the host owns it)."""

    queue: str
    day: date | None = None
    today: Counts = field(default_factory=Counts)
    intervals: dict[datetime, Counts] = field(default_factory=dict)
    """Today's intervals by start (UTC)."""
    waiting: dict[str, datetime] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)
    last_at: datetime | None = None


_LEAVES = frozenset({"answered", "abandoned", "overflowed", "left"})


def apply_queue(state: QueueState, signal: QueueSignal | AgentSignal,
                settings: ViewSettings) -> QueueState:
    """Stage 3 (keyed by queue): fold one signal into the queue's board, in place."""
    at = signal.at
    if state.last_at is None or at > state.last_at:
        state.last_at = at
    if isinstance(signal, AgentSignal):
        if signal.state is None:
            state.agents.pop(signal.agent_id, None)
        else:
            state.agents[signal.agent_id] = signal.state
        return state
    if signal.kind == "offered":
        state.waiting[signal.call_id] = at
    elif signal.kind in _LEAVES:
        state.waiting.pop(signal.call_id, None)
    day = settings.local_day(at)
    if state.day is not None and day < state.day:
        return state  # a late signal of an earlier day: today's counts are not its
    if state.day is None or day > state.day:
        state.day, state.today, state.intervals = day, Counts(), {}
    state.today.count(signal, settings)
    interval = settings.interval_of(at)
    counts = state.intervals.get(interval)
    if counts is None:
        counts = state.intervals[interval] = Counts()
    counts.count(signal, settings)
    return state


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """RT-01: what a supervisor sees for one queue at ``at``."""

    queue: str
    at: datetime
    waiting: int
    longest_wait_s: float
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None
    interval_start: datetime
    interval_offered: int
    interval_answered: int
    interval_abandoned: int
    interval_service_level: float | None
    agents_by_state: Mapping[str, int]
    estimated_wait_s: float | None


def queue_snapshot(state: QueueState, now: datetime, settings: ViewSettings) -> QueueSnapshot:
    """The board of one queue at ``now`` (waits aged to ``now``)."""
    today = state.today if state.day == settings.local_day(now) else Counts()
    interval = settings.interval_of(now)
    current = state.intervals.get(interval, Counts()) if today is state.today else Counts()
    by_state: dict[str, int] = {}
    for agent_state in state.agents.values():
        by_state[agent_state] = by_state.get(agent_state, 0) + 1
    longest = max(((now - since).total_seconds() for since in state.waiting.values()),
                  default=0.0)
    return QueueSnapshot(
        queue=state.queue, at=now, waiting=len(state.waiting),
        longest_wait_s=max(longest, 0.0), offered=today.offered, answered=today.answered,
        abandoned=today.abandoned, overflowed=today.overflowed,
        service_level=today.service_level(settings.sl_variant), asa_s=today.asa_s,
        aht_s=today.aht_s, abandon_rate=today.abandon_rate, interval_start=interval,
        interval_offered=current.offered, interval_answered=current.answered,
        interval_abandoned=current.abandoned,
        interval_service_level=current.service_level(settings.sl_variant),
        agents_by_state=by_state,
        estimated_wait_s=_estimated_wait(len(state.waiting), today.aht_s, by_state))


def _estimated_wait(waiting: int, aht_s: float | None, by_state: Mapping[str, int]
                    ) -> float | None:
    """A newcomer's expected wait: the calls ahead of it, served by the agents working
    (ready or busy) at one call per AHT each; None without agents or AHT yet."""
    working = sum(n for s, n in by_state.items() if s == "ready" or s in BUSY_STATES)
    if aht_s is None or working == 0:
        return None
    return waiting * aht_s / working


# -- the agent board -------------------------------------------------------------------


@by_fields
@dataclass(slots=True)
class AgentState:
    """One agent's board: current state and today's totals (updated in place)."""

    agent_id: str
    logged_in: bool = False
    state: str | None = None
    reason: str | None = None
    since: datetime | None = None
    call_id: str | None = None
    queues: frozenset[str] = frozenset()
    day: date | None = None
    calls: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """Today's seconds per state, spells closed so far."""


def apply_agent(state: AgentState, event: Event, settings: ViewSettings) -> AgentState:
    """Fold one agent event into the agent's board, in place."""
    payload = event.payload
    at = event.occurred_at
    if state.since is not None and at < state.since:
        return state  # older than what the board shows: its time is already counted
    day = settings.local_day(at)
    if state.day != day:
        state.day, state.calls, state.seconds = day, 0, {}
    if state.state is not None and state.since is not None and isinstance(
            payload, AgentStateChanged | AgentLoggedOut):
        start = max(state.since, _day_start(day, settings))
        spent = max((at - start).total_seconds(), 0.0)
        state.seconds[state.state] = state.seconds.get(state.state, 0.0) + spent
    if isinstance(payload, AgentLoggedIn):
        state.logged_in, state.queues = True, frozenset(s.queue for s in payload.skills)
    elif isinstance(payload, SkillGroupSignedIn):
        state.queues = state.queues | {payload.queue}
    elif isinstance(payload, SkillGroupSignedOut):
        state.queues = state.queues - {payload.queue}
    elif isinstance(payload, AgentLoggedOut):
        state.logged_in, state.state, state.reason = False, None, None
        state.since, state.call_id = None, None
    elif isinstance(payload, AgentStateChanged):
        state.calls += payload.state == "talking" and payload.call_id is not None and not (
            state.state in ("talking", "hold") and payload.call_id == state.call_id)
        state.logged_in, state.state, state.reason = True, payload.state, payload.reason
        state.since, state.call_id = at, payload.call_id
    return state


def _day_start(day: date, settings: ViewSettings) -> datetime:
    return _midnight(day, settings.time_zone)


@lru_cache(maxsize=64)
def _midnight(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """RT-02: one agent's line on the board at ``at``."""

    agent_id: str
    at: datetime
    state: str | None
    reason: str | None
    time_in_state_s: float
    call_id: str | None
    queues: tuple[str, ...]
    calls_today: int
    talk_s: float
    ready_s: float
    not_ready_s: float


def agent_snapshot(state: AgentState, now: datetime, settings: ViewSettings) -> AgentSnapshot:
    """The agent's line at ``now``: today's totals include the open state up to ``now``."""
    seconds = dict(state.seconds) if state.day == settings.local_day(now) else {}
    in_state = 0.0
    if state.state is not None and state.since is not None:
        in_state = max((now - state.since).total_seconds(), 0.0)
        today_start = _day_start(settings.local_day(now), settings)
        open_today = max((now - max(state.since, today_start)).total_seconds(), 0.0)
        seconds[state.state] = seconds.get(state.state, 0.0) + open_today
    return AgentSnapshot(
        agent_id=state.agent_id, at=now, state=state.state, reason=state.reason,
        time_in_state_s=in_state, call_id=state.call_id, queues=tuple(sorted(state.queues)),
        calls_today=state.calls if state.day == settings.local_day(now) else 0,
        talk_s=seconds.get("talking", 0.0) + seconds.get("hold", 0.0),
        ready_s=seconds.get("ready", 0.0), not_ready_s=seconds.get("not_ready", 0.0))



# -- all stages in one process (the in-process host) -----------------------------------


@dataclass(slots=True)
class Boards:
    """Every stage's state, for a host that runs them all in one process."""

    settings: ViewSettings = ViewSettings()
    positions: dict[str, CallPosition] = field(default_factory=dict)
    skills: dict[str, frozenset[str]] = field(default_factory=dict)
    agent_states: dict[str, str] = field(default_factory=dict)
    queues: dict[str, QueueState] = field(default_factory=dict)
    agents: dict[str, AgentState] = field(default_factory=dict)
    last_at: datetime | None = None

    def snapshot(self, now: datetime | None = None) -> dict[str, list[object]]:
        """Both boards at ``now`` (default: the latest event time seen), sorted by name."""
        at = now or self.last_at
        if at is None:
            return {"queues": [], "agents": []}
        return {"queues": [queue_snapshot(self.queues[q], at, self.settings)
                           for q in sorted(self.queues)],
                "agents": [agent_snapshot(self.agents[a], at, self.settings)
                           for a in sorted(self.agents)]}


def apply_boards(boards: Boards, event: Event,
                 finished: Sequence[Mapping[str, object]] = ()) -> Boards:
    """Run every stage for one event (and the call rows it finished), in place."""
    settings, queues = boards.settings, boards.queues
    topic = event.payload.TOPIC
    signals: list[QueueSignal | AgentSignal]
    if topic is Topic.CALLS:
        signals = call_signals(boards.positions, event)  # type: ignore[assignment]
    elif topic is Topic.AGENTS:
        signals = agent_signals(boards.skills, boards.agent_states,  # type: ignore[assignment]
                                event)
        agent = event.payload.agent_id
        board = boards.agents.get(agent)
        if board is None:
            board = boards.agents[agent] = AgentState(agent)
        apply_agent(board, event, settings)
    else:
        signals = []
    for row in finished:
        if (handled := handled_signal(row)) is not None:
            signals.append(handled)
    for signal in signals:
        board_q = queues.get(signal.queue)
        if board_q is None:
            board_q = queues[signal.queue] = QueueState(signal.queue)
        apply_queue(board_q, signal, settings)
    if boards.last_at is None or event.occurred_at > boards.last_at:
        boards.last_at = event.occurred_at
    return boards
