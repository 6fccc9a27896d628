"""The main job on embedded defaults: traffic into the event log, live boards out of it.

A producer thread runs the call-control simulator on the bundled demo scenario, paced
on its virtual clock (``speed`` times real time), into the event log; the main thread
consumes the log as a consumer group and folds this run's events through the stream
projections (``streams.facts`` and ``streams.views``, as ``queuecast streams run`` does)
into the live queue and agent boards. Both ends go through the real event log and the
real engine.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from callcore.scenario import load_scenario
from callcore.simulator import Simulation
from ingest.contract import Event, Payload
from ingest.log import Delivery, EventLog
from streams.facts import FactsState, apply
from streams.views import Boards, ViewSettings, apply_boards

__all__ = ["DemoRun", "run_demo"]


@dataclass(slots=True)
class DemoRun:
    """What the demo has read so far: the boards, and how many of its events."""

    boards: Boards
    facts: FactsState = field(default_factory=FactsState)
    events: int = 0

    def fold(self, events: Iterable[Event[Payload]]) -> None:
        """Fold events through the facts (for AHT) and the boards."""
        for event in events:
            self.facts, rows = apply(self.facts, event)
            apply_boards(self.boards, event, rows.calls)
            self.events += 1


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
    on_update: Callable[[DemoRun], None],
) -> DemoRun:
    """Simulate ``scenario`` paced at ``speed``x into ``log``, folding it live from the log."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    loaded = load_scenario(scenario)
    source = f"demo-{uuid.uuid4().hex[:8]}"
    simulation = Simulation(loaded, seed=seed, source=source)
    failure: list[BaseException] = []
    producer = threading.Thread(target=_simulate, args=(log, simulation, speed, failure),
                                daemon=True)
    thresholds = {q.name: q.service_level_s for q in simulation.center.queues}
    run = DemoRun(Boards(ViewSettings(time_zone=loaded.timezone, thresholds=thresholds)))

    def mine(batch: list[Delivery]) -> Iterable[Event[Payload]]:
        return (d.event for d in batch if d.event.source == source)

    with log.consumer(group=source) as consumer:
        producer.start()
        while producer.is_alive():
            run.fold(mine(consumer.poll(timeout=0.2)))
            consumer.commit()
            on_update(run)
        if failure:
            raise failure[0]
        for batch in consumer.drain(idle=1.0):
            run.fold(mine(batch))
            consumer.commit()
        on_update(run)
    return run
