"""Synthetic inbound traffic as contract events, for demos, benchmarks and log tests.

A small M/M/c+M model per queue: Poisson arrivals, exponential handle times and
exponential caller patience, agents serving one queue each, first come first served.
It is deliberately simple; the call-control simulator in ``callcore`` is the full
model. Output is deterministic for a seed (event ids included).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.contract import (
    AgentLoggedIn,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    Event,
    Payload,
    RingingAgent,
    SkillLevel,
    make_event,
)

__all__ = ["SampleQueue", "sample_traffic"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleQueue:
    """One queue of the synthetic center."""

    name: str
    calls_per_hour: float
    agents: int
    aht_s: float = 180.0
    patience_s: float = 300.0
    after_call_work_s: float = 15.0
    dialed: str = "4008001000"


DEFAULT_QUEUES = (
    SampleQueue(name="sales", calls_per_hour=120, agents=9, dialed="4008001001"),
    SampleQueue(name="support", calls_per_hour=200, agents=16, aht_s=240, dialed="4008001002"),
    SampleQueue(name="billing", calls_per_hour=60, agents=4, aht_s=150, dialed="4008001003"),
)


@dataclass(slots=True)
class _Call:
    call_id: str
    queue: SampleQueue
    caller: str
    queued_at: float
    patience_at: float
    answered: bool = False


def sample_traffic(
    *,
    start: datetime | None = None,
    hours: float = 1.0,
    queues: Sequence[SampleQueue] = DEFAULT_QUEUES,
    seed: int = 7,
    source: str = "sample",
) -> Iterator[Event[Payload]]:
    """Yield the events of ``hours`` of traffic from ``start`` (UTC), in time order."""
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    rng = random.Random(seed)
    origin = start or datetime(2026, 1, 5, 8, tzinfo=UTC)
    horizon = hours * 3600.0
    counter = 0
    timers: list[tuple[float, int, str, object]] = []

    def at(t: float, kind: str, subject: object) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(timers, (t, counter, kind, subject))

    def event(t: float, payload: Payload) -> Event[Payload]:
        nonlocal counter
        counter += 1
        return make_event(
            payload, occurred_at=origin + timedelta(seconds=t), source=source,
            event_id=f"{seed:x}-{counter:08x}",
        )

    idle: dict[str, deque[str]] = {}
    waiting: dict[str, deque[_Call]] = {q.name: deque() for q in queues}
    for q in queues:
        idle[q.name] = deque(f"{q.name}-{i + 1:03d}" for i in range(q.agents))
        for agent in idle[q.name]:
            yield event(0.0, AgentLoggedIn(agent_id=agent, extension=agent,
                                           skills=[SkillLevel(queue=q.name)]))
            yield event(0.0, AgentStateChanged(agent_id=agent, state="ready"))
        at(rng.expovariate(q.calls_per_hour / 3600.0), "arrival", q)

    def connect(t: float, call: _Call, agent: str) -> Iterator[Event[Payload]]:
        call.answered = True
        q = call.queue
        wait = t - call.queued_at
        yield event(t, RingingAgent(call_id=call.call_id, agent_id=agent, queue=q.name))
        yield event(t, AgentStateChanged(agent_id=agent, state="talking", previous="ready",
                                         call_id=call.call_id, queue=q.name))
        yield event(t, CallAnswered(call_id=call.call_id, agent_id=agent, queue=q.name,
                                    wait_s=round(wait, 3)))
        at(t + rng.expovariate(1.0 / q.aht_s), "hangup", (call, agent))

    while timers:
        t, _, kind, subject = heapq.heappop(timers)
        if kind == "arrival":
            assert isinstance(subject, SampleQueue)
            q = subject
            if t < horizon:
                at(t + rng.expovariate(q.calls_per_hour / 3600.0), "arrival", q)
            else:
                continue
            call = _Call(
                call_id=f"{q.name}-{seed}-{counter:08d}", queue=q,
                caller=f"+86138{rng.randrange(10**8):08d}", queued_at=t,
                patience_at=t + rng.expovariate(1.0 / q.patience_s),
            )
            yield event(t, CallOffered(call_id=call.call_id, direction="inbound",
                                       caller=call.caller, dialed=q.dialed, entry=q.name))
            yield event(t, CallQueued(call_id=call.call_id, queue=q.name,
                                      position=len(waiting[q.name]) + 1))
            if idle[q.name]:
                yield from connect(t, call, idle[q.name].popleft())
            else:
                waiting[q.name].append(call)
                at(call.patience_at, "patience", call)
        elif kind == "patience":
            assert isinstance(subject, _Call)
            call = subject
            if not call.answered:
                waiting[call.queue.name].remove(call)
                yield event(t, CallAbandoned(call_id=call.call_id, stage="queue",
                                             queue=call.queue.name,
                                             wait_s=round(t - call.queued_at, 3)))
                yield event(t, CallEnded(call_id=call.call_id, disposition="abandoned",
                                         ended_by="caller", queue=call.queue.name))
        elif kind == "hangup":
            call, agent = subject  # type: ignore[misc]
            yield event(t, CallEnded(call_id=call.call_id, disposition="answered",
                                     ended_by="caller", agent_id=agent, queue=call.queue.name))
            yield event(t, AgentStateChanged(agent_id=agent, state="after_call_work",
                                             previous="talking", call_id=call.call_id))
            at(t + call.queue.after_call_work_s, "wrapped", (call.queue, agent))
        elif kind == "wrapped":
            q, agent = subject  # type: ignore[misc]
            yield event(t, AgentStateChanged(agent_id=agent, state="ready",
                                             previous="after_call_work"))
            if waiting[q.name]:
                yield from connect(t, waiting[q.name].popleft(), agent)
            else:
                idle[q.name].append(agent)
