"""Event-log throughput: produce and consume of ~200-byte events, batched, both backends.

Targets (issue 2): embedded >= 100,000 events/s produce and >= 200,000 events/s consume
on one core; Kafka backend against the local broker >= 30,000 events/s produce. Every
figure includes the contract validation both ends do.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import Progress

from bench.report import append_results
from ingest.contract import Event, Payload, encode_event
from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from ingest.log.kafka import KafkaTransport
from ingest.sample import sample_traffic
from ingest.tansu import TansuBroker

__all__ = ["run"]

BATCH = 10_000


def _events(count: int) -> list[Event[Payload]]:
    events: list[Event[Payload]] = []
    seed = 0
    while len(events) < count:
        events.extend(sample_traffic(start=datetime(2026, 1, 5, tzinfo=UTC), hours=24,
                                     seed=seed))
        seed += 1
    return events[:count]


def _timed(action: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    done = action()
    return done, time.perf_counter() - started


def _measure(log: EventLog, events: list[Event[Payload]], progress: Progress,
             label: str) -> tuple[float, float]:
    task = progress.add_task(f"{label}: produce", total=len(events))

    def produce() -> int:
        for start in range(0, len(events), BATCH):
            log.produce(events[start:start + BATCH])
            progress.advance(task, min(BATCH, len(events) - start))
        return len(events)

    produced, produce_s = _timed(produce)
    task = progress.add_task(f"{label}: consume", total=len(events))

    first: list[tuple[float, int]] = []

    def consume() -> int:
        seen = 0
        with log.consumer(group=f"bench-{uuid.uuid4().hex[:8]}") as consumer:
            deadline = time.monotonic() + 120
            while seen < len(events) and time.monotonic() < deadline:
                got = len(consumer.poll(max_events=BATCH, timeout=1.0))
                if got and not first:
                    first.append((time.perf_counter(), got))  # the group join is not throughput
                seen += got
                progress.advance(task, got)
            consumer.commit()
        return seen

    consumed, _ = _timed(consume)
    if consumed != produced:
        raise RuntimeError(f"{label}: consumed {consumed} of {produced} events")
    started, first_batch = first[0]
    return produced / produce_s, (consumed - first_batch) / (time.perf_counter() - started)


def run(*, count: int = 300_000, kafka_count: int = 100_000) -> str:
    """Run the event-log benchmarks and append the results; return the Markdown."""
    events = _events(max(count, kafka_count))
    size = sum(len(encode_event(e)) for e in events[:10_000]) / 10_000
    rows: list[list[str]] = []
    affinity = os.sched_getaffinity(0)
    with Progress(transient=True) as progress:
        os.sched_setaffinity(0, {min(affinity)})  # one core, as the targets say
        try:
            with tempfile.TemporaryDirectory() as folder:
                log = EventLog(EmbeddedTransport(Path(folder) / "events.sqlite3"))
                produce_rate, consume_rate = _measure(log, events[:count], progress,
                                                      "embedded")
                log.close()
            rows.append(["embedded (SQLite WAL)", f"{count:,}", f"{produce_rate:,.0f}",
                         "100,000", f"{consume_rate:,.0f}", "200,000"])
        finally:
            os.sched_setaffinity(0, affinity)
        with TansuBroker() as broker:
            log = EventLog(KafkaTransport(broker.bootstrap), namespace="bench")
            produce_rate, consume_rate = _measure(log, events[:kafka_count], progress, "kafka")
            log.close()
        rows.append(["kafka (Tansu broker, confluent-kafka)", f"{kafka_count:,}",
                     f"{produce_rate:,.0f}", "30,000", f"{consume_rate:,.0f}", "-"])
    notes = (
        f"Events: synthetic call and agent events, {size:.0f} bytes on average, produced in "
        f"batches of {BATCH:,}, validated on produce and on consume. Embedded figures with the "
        "process pinned to one core. Consume rates are timed from the first batch received "
        "(not counting it), so the consumer-group join (about 3 s on this broker) is left out."
    )
    return append_results(
        "Event log throughput",
        ["backend", "events", "produce events/s", "target", "consume events/s", "target"],
        rows, notes,
    )
