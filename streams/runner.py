"""The in-process host: the event log through the projections into the warehouse and the
live boards.

One consumer group reads ``calls``, ``agents``, ``tickets`` and ``wfm``. Fold state lives in
memory: on start the runner replays the log from the beginning to rebuild it, and events
before the group's committed offsets only restore state (their rows are already durable). Rows
go to a :class:`~streams.sink.WarehouseSink`; offsets are committed only after the sink's
write returned, and a failed write is retried with backoff, so a crash or a ClickHouse
outage redelivers rather than loses. An event a projection fails on is dead-lettered with
the reason and the run goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from ingest.contract import Topic
from ingest.log import CommitFailedError, Delivery, EventConsumer, EventLog
from streams.alarms import ActiveAlarm, AlarmKey, AlarmRule, evaluate, restore_active
from streams.facts import FactRows, FactsState, advance, apply, flush
from streams.notify import Notifier, deliver
from streams.sink import WarehouseSink
from streams.views import Boards, ViewSettings, apply_boards

__all__ = ["Backoff", "RunReport", "StreamsRunner"]

log = structlog.get_logger("queuecast.streams")

INPUT_TOPICS: tuple[Topic, ...] = (Topic.CALLS, Topic.AGENTS, Topic.TICKETS, Topic.WFM)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between retries of a failed write: ``first`` doubling up to ``longest``."""

    first: float = 0.5
    longest: float = 30.0

    def delays(self) -> Callable[[], float]:
        """A function returning the next delay on each call."""
        current = [self.first / 2]

        def following() -> float:
            current[0] = min(current[0] * 2, self.longest)
            return current[0]
        return following


@dataclass(slots=True)
class RunReport:
    """What a run did."""

    events: int = 0
    restored: int = 0
    """Events before the committed offsets, replayed only to rebuild state."""
    dead_lettered: int = 0
    alarms: int = 0
    """Alarm raised / cleared events appended to the log."""
    written: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    seconds: float = 0.0


class StreamsRunner:
    """Hosts the fact projection over ``log`` and writes its rows through ``sink``."""

    def __init__(self, log_: EventLog, sink: WarehouseSink, *, group: str = "queuecast-streams",
                 grace: timedelta = timedelta(minutes=30), backoff: Backoff | None = None,
                 from_scratch: bool = False, idle_partition_s: float = 10.0,
                 views: ViewSettings | None = None, alarms: Sequence[AlarmRule] = (),
                 notifiers: Sequence[Notifier] = (),
                 sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.monotonic) -> None:
        self.log, self.sink, self.group, self.grace = log_, sink, group, grace
        self.backoff = backoff or Backoff()
        self.from_scratch = from_scratch
        self.state = FactsState()
        self.boards = Boards(views or ViewSettings())
        """The live queue and agent boards (RT-01, RT-02), current as of the last event."""
        self.alarms, self.notifiers = tuple(alarms), tuple(notifiers)
        self.active: dict[AlarmKey, ActiveAlarm] = {}
        """Raised alarms (RT-03), restored from the alarms topic on start."""
        self.idle_partition_s = idle_partition_s
        self._sleep, self._wall = sleep, wall
        self._times: dict[tuple[str, int], tuple[datetime, float]] = {}
        """Per partition: the latest event time read and when (wall clock) it was read."""
        self._watermark: datetime | None = None

    def run(self, *, until_idle: bool = False, idle_s: float = 1.0,
            stop: threading.Event | None = None, max_events: int = 10_000,
            on_batch: Callable[[RunReport], None] | None = None) -> RunReport:
        """Consume until ``stop`` is set, or with ``until_idle`` until a poll waits ``idle_s``
        with nothing new (then calls still waiting for after-call work are written too)."""
        stop = stop or threading.Event()
        report = RunReport()
        started = time.perf_counter()
        if self.alarms:
            with self.log.consumer(group=None, topics=(Topic.ALARMS,)) as history:
                self.active = restore_active(
                    d.event for batch in history.drain(idle=0.2) for d in batch)
        notifying = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alarm-notify")
        try:
            return self._run(report, started, stop, notifying, until_idle=until_idle,
                             idle_s=idle_s, max_events=max_events, on_batch=on_batch)
        finally:
            notifying.shutdown(wait=True)  # notifications already queued go out

    def _run(self, report: RunReport, started: float, stop: threading.Event,
             notifying: ThreadPoolExecutor, *, until_idle: bool, idle_s: float,
             max_events: int, on_batch: Callable[[RunReport], None] | None) -> RunReport:
        with self.log.consumer(group=self.group, topics=INPUT_TOPICS) as consumer:
            everything = self._partitions()
            committed, owned = self._replay(consumer)
            while not stop.is_set():
                batch = consumer.poll(max_events=max_events, timeout=idle_s)
                if consumer.assignment() != owned or owned != everything:
                    # Calls join agents across partitions, so the fold needs all of them:
                    # wait while another member (a killed host, until its lease lapses)
                    # holds some, then replay with the whole log.
                    committed, owned = self._replay(consumer)
                    if owned != everything:
                        log.warning("waiting for partitions held by another group member",
                                    missing=len(everything - owned))
                        self._sleep(idle_s)
                    continue
                if self._fold(batch, committed, report) and self.alarms:
                    self._alarm(report, notifying)
                if not batch:
                    self._advance(caught_up=True)
                    if until_idle:
                        self.sink.add(flush(self.state)[1])
                if self.sink.due() or (not batch and self.sink.buffered):
                    self._write(report, stop)
                if not self.sink.buffered:
                    try:
                        consumer.commit()
                    except CommitFailedError as exc:  # the lease lapsed during a long outage
                        log.warning("offsets not committed; replaying from the committed "
                                    "offsets", error=str(exc))
                        consumer.poll(max_events=1, timeout=0)  # rejoins the group
                        committed, owned = self._replay(consumer)
                        continue
                if on_batch is not None:
                    report.written = dict(self.sink.written)
                    on_batch(report)
                if not batch and until_idle:
                    break
        report.written = dict(self.sink.written)
        report.seconds = time.perf_counter() - started
        return report

    def _replay(self, consumer: EventConsumer) -> tuple[dict[tuple[str, int], int],
                                                        frozenset[tuple[str, int]]]:
        """Start over on this member's share: empty fold state and boards, every partition
        from its first record; events before the committed offsets only restore state."""
        self.state, self.boards = FactsState(), Boards(self.boards.settings)
        self._times.clear()
        self._watermark = None
        committed = {} if self.from_scratch else consumer.committed()
        consumer.seek_to_beginning()
        return committed, consumer.assignment()

    def _partitions(self) -> frozenset[tuple[str, int]]:
        """Every partition of the input topics."""
        return frozenset((self.log.topic_name(topic), part) for topic in INPUT_TOPICS
                         for part in range(self.log.partition_count(topic)))

    def _alarm(self, report: RunReport, notifying: ThreadPoolExecutor) -> None:
        """Evaluate the rules on every queue board at the watermark; the events are appended
        to the log before anyone is notified (off this thread)."""
        now = self._watermark  # not the latest event: a partition behind would fake waits
        if now is None:
            return
        raised = []
        for queue in sorted(self.boards.queues):
            self.active, events = evaluate(self.active, self.boards.queues[queue], now,
                                           self.alarms, self.boards.settings)
            raised += events
        if raised:
            self.log.produce(raised)
            report.alarms += len(raised)
            if self.notifiers:
                notifying.submit(deliver, raised, self.notifiers)

    def _fold(self, batch: Sequence[Delivery], committed: dict[tuple[str, int], int],
              report: RunReport) -> bool:
        """Fold a batch; returns whether it held live (not restoring) events."""
        rows = FactRows()
        live = False
        for delivery in batch:
            name = self.log.topic_name(delivery.topic)
            restoring = delivery.offset < committed.get((name, delivery.partition), 0)
            try:
                _, produced = apply(self.state, delivery.event)
                apply_boards(self.boards, delivery.event, produced.calls)
            except Exception as exc:  # a projection bug must not stop the other events
                if not restoring:  # dead-lettered by the run that committed past it
                    report.dead_lettered += 1
                    self.log.dead_letter(delivery, f"projection failed: {exc!r}")
                continue
            self._times[(name, delivery.partition)] = (delivery.event.occurred_at,
                                                       self._wall())
            if restoring:
                report.restored += 1
            else:
                report.events += 1
                live = True
                rows.extend(produced)
        self.sink.add(rows)
        if batch:
            self._advance(caught_up=False)
        return live

    def _advance(self, *, caught_up: bool) -> None:
        """Move the watermark: the latest event time of the slowest partition that delivered
        in the last ``idle_partition_s``, or the latest of all once every partition is caught
        up, so a quiet partition does not hold it back."""
        if not self._times:
            return
        if caught_up:
            watermark = max(at for at, _ in self._times.values())
        else:
            recent = self._wall() - self.idle_partition_s
            watermark = min(at for at, wall in self._times.values() if wall >= recent)
        self._watermark = watermark
        self.sink.add(advance(self.state, watermark, grace=self.grace)[1])

    def _write(self, report: RunReport, stop: threading.Event) -> None:
        delays = self.backoff.delays()
        while True:
            try:
                self.sink.write()
                return
            except Exception as exc:  # ClickHouse down or refusing: keep the batch, retry
                report.retries += 1
                delay = delays()
                log.warning("warehouse write failed; retrying", error=str(exc),
                            buffered=self.sink.buffered, retry_in_s=delay)
                if stop.is_set():
                    raise
                self._sleep(delay)
