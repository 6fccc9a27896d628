"""The main job on embedded defaults: traffic into the event log, live counts out of it.

A producer thread writes synthetic traffic paced on a virtual clock (``speed`` times
real time); the main thread consumes the log as a consumer group and folds the events
into per-queue counts shown live. Both ends go through the real event log.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ingest.contract import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallOffered,
    CallQueued,
    Event,
    Payload,
)
from ingest.log import EventLog
from ingest.sample import sample_traffic

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
    """Apply one event to the tally (pure: returns a new tally)."""
    p = event.payload
    queues = tally.queues
    agents = tally.agent_states
    if isinstance(p, CallOffered):
        queues = _bump(tally, p.entry, offered=1)
    elif isinstance(p, CallQueued):
        queues = {**queues, p.queue: queues.get(p.queue, QueueCounts())}
    elif isinstance(p, CallAnswered):
        fast = 1 if p.wait_s <= SERVICE_LEVEL_THRESHOLD_S else 0
        queues = _bump(tally, p.queue, answered=1, answered_within_threshold=fast,
                       wait_answered_s=p.wait_s)
    elif isinstance(p, CallAbandoned):
        queues = _bump(tally, p.queue, abandoned=1)
    elif isinstance(p, AgentStateChanged):
        agents = {**agents, p.agent_id: p.state}
    return Tally(queues, agents, tally.events + 1, event.occurred_at)


def fold_all(tally: Tally, events: Iterable[Event[Payload]]) -> Tally:
    """Apply events in order."""
    for event in events:
        tally = fold(tally, event)
    return tally


def _paced_producer(
    log: EventLog, events: Iterable[Event[Payload]], speed: float, stop: threading.Event,
    failure: list[BaseException],
) -> None:
    started = time.monotonic()
    origin: datetime | None = None
    batch: list[Event[Payload]] = []
    try:
        for event in events:
            origin = origin or event.occurred_at
            due = started + (event.occurred_at - origin).total_seconds() / speed
            if batch and due > time.monotonic():
                log.produce(batch)
                batch = []
                time.sleep(max(0.0, due - time.monotonic()))
            if stop.is_set():
                return
            batch.append(event)
        if batch:
            log.produce(batch)
    except BaseException as exc:  # reported by the consuming thread
        failure.append(exc)


def run_demo(
    log: EventLog,
    *,
    hours: float,
    speed: float,
    seed: int,
    on_update: Callable[[Tally], None],
) -> Tally:
    """Produce ``hours`` of traffic paced at ``speed``x and fold it live; return the final tally."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    run = uuid.uuid4().hex[:8]
    source = f"demo-{run}"
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    events = sample_traffic(start=start, hours=hours, seed=seed, source=source)
    stop = threading.Event()
    failure: list[BaseException] = []
    producer = threading.Thread(
        target=_paced_producer, args=(log, events, speed, stop, failure), daemon=True
    )
    tally = Tally()
    with log.consumer(group=source) as consumer:
        producer.start()
        try:
            while producer.is_alive() or tally.events == 0:
                batch = consumer.poll(timeout=0.2)
                tally = fold_all(tally, (d.event for d in batch if d.event.source == source))
                consumer.commit()
                on_update(tally)
                if failure:
                    raise failure[0]
            for batch in consumer.drain(idle=1.0):
                tally = fold_all(tally, (d.event for d in batch if d.event.source == source))
                consumer.commit()
            on_update(tally)
        finally:
            stop.set()
            producer.join(timeout=5)
    return tally
