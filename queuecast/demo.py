"""The main job on embedded defaults: traffic into the event log, live counts out of it.

A producer thread runs the call-control simulator on the bundled demo scenario, paced
on its virtual clock (``speed`` times real time), into the event log; the main thread
consumes the log as a consumer group and folds the events into per-queue counts shown
live. Both ends go through the real event log and the real engine.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from callcore.scenario import load_scenario
from callcore.simulator import Simulation
from ingest.contract import (
    AgentLoggedOut,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    Event,
    Payload,
)
from ingest.log import Delivery, EventLog

__all__ = ["QueueCounts", "Tally", "fold", "run_demo"]

SERVICE_LEVEL_THRESHOLD_S = 20.0


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Counts of one queue since the demo started."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_threshold: int = 0
    wait_answered_s: float = 0.0
    other: int = 0
    """Calls that ended otherwise: voicemail, callback, transferred out..."""

    @property
    def service_level(self) -> float | None:
        """Share of answered plus abandoned calls answered within the threshold."""
        handled = self.answered + self.abandoned
        return self.answered_within_threshold / handled if handled else None

    @property
    def asa_s(self) -> float | None:
        """Average speed of answer of answered calls."""
        return self.wait_answered_s / self.answered if self.answered else None


@dataclass(frozen=True, slots=True)
class Tally:
    """State of the demo fold: counts per queue, each agent's state, events seen."""

    queues: dict[str, QueueCounts] = field(default_factory=dict)
    first_queue: dict[str, str] = field(default_factory=dict)
    """Each call's first queue, or the queue its number routes to until it joins one."""
    agent_states: dict[str, str] = field(default_factory=dict)
    events: int = 0
    last_event_at: datetime | None = None


def _bump(tally: Tally, queue: str | None, **changes: float) -> dict[str, QueueCounts]:
    if queue is None:
        return tally.queues
    counts = tally.queues.get(queue, QueueCounts())
    updated = replace(counts, **{k: getattr(counts, k) + v for k, v in changes.items()})
    return {**tally.queues, queue: updated}


def fold(tally: Tally, event: Event[Payload]) -> Tally:
    """Apply one event to the tally (pure: returns a new tally).

    A call counts for the first queue it joined or was sent on from (no agents); one
    that never reached a queue (closed hours) counts for the queue its number routes
    to, if that is a queue of the tally. This is how the simulator's summary counts.
    """
    p = event.payload
    queues, first, agents = tally.queues, tally.first_queue, tally.agent_states
    if isinstance(p, CallOffered) and p.entry in queues:
        first = {**first, p.call_id: f"?{p.entry}"}
    elif isinstance(p, CallQueued | CallOverflowed) and first.get(p.call_id, "?").startswith("?"):
        first = {**first, p.call_id: p.queue}
        queues = _bump(tally, p.queue, offered=1)
    elif isinstance(p, CallAnswered) and p.call_id in first:
        fast = 1 if p.wait_s <= SERVICE_LEVEL_THRESHOLD_S else 0
        queues = _bump(tally, first[p.call_id].lstrip("?"), answered_within_threshold=fast,
                       wait_answered_s=p.wait_s)
    elif isinstance(p, CallEnded) and p.call_id in first:
        queue = first[p.call_id]
        first = {k: v for k, v in first.items() if k != p.call_id}
        outcome = p.disposition if p.disposition in ("answered", "abandoned") else "other"
        if queue.startswith("?"):
            queues = _bump(tally, queue[1:], offered=1, **{outcome: 1})
        else:
            queues = _bump(tally, queue, **{outcome: 1})
    elif isinstance(p, AgentStateChanged):
        agents = {**agents, p.agent_id: p.state}
    elif isinstance(p, AgentLoggedOut):
        agents = {k: v for k, v in agents.items() if k != p.agent_id}
    return Tally(queues, first, agents, tally.events + 1, event.occurred_at)


def fold_all(tally: Tally, events: Iterable[Event[Payload]]) -> Tally:
    """Apply events in order."""
    for event in events:
        tally = fold(tally, event)
    return tally


def _simulate(log: EventLog, simulation: Simulation, speed: float,
              failure: list[BaseException]) -> None:
    try:
        simulation.run(log=log, speed=speed, batch_size=200)
    except BaseException as exc:  # reported by the consuming thread
        failure.append(exc)


def run_demo(
    log: EventLog,
    *,
    scenario: str = "demo",
    speed: float,
    seed: int,
    on_update: Callable[[Tally], None],
) -> Tally:
    """Simulate ``scenario`` paced at ``speed``x into ``log``, folding it live from the log."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    source = f"demo-{uuid.uuid4().hex[:8]}"
    simulation = Simulation(load_scenario(scenario), seed=seed, source=source)
    failure: list[BaseException] = []
    producer = threading.Thread(target=_simulate, args=(log, simulation, speed, failure),
                                daemon=True)
    tally = Tally(queues={q.name: QueueCounts() for q in simulation.center.queues})

    def mine(batch: list[Delivery]) -> Iterable[Event[Payload]]:
        return (d.event for d in batch if d.event.source == source)

    with log.consumer(group=source) as consumer:
        producer.start()
        while producer.is_alive():
            tally = fold_all(tally, mine(consumer.poll(timeout=0.2)))
            consumer.commit()
            on_update(tally)
        if failure:
            raise failure[0]
        for batch in consumer.drain(idle=1.0):
            tally = fold_all(tally, mine(batch))
            consumer.commit()
        on_update(tally)
    return tally
