"""The Faust host: the same keyed folds as the in-process runner, on Kafka partitions.

Topology (``NS`` is the event log's namespace, ``APP`` the consumer group):

- ``NS.calls`` (by call) -> :func:`~streams.facts.fold_call` and the queue signals of
  :func:`~streams.views.call_signals`, both states of a call in table ``calls``;
- ``NS.agents`` (by agent) -> :func:`~streams.facts.fold_agent`, queue membership and the
  agent board, in table ``agents``; ACW reports go to ``APP-acw`` (one message per batch
  and calls partition) and back into ``calls``;
- ``NS.tickets``, ``NS.wfm`` -> their keyed folds;
- every queue signal is repartitioned by queue through ``APP-queue-signals`` into the
  queue boards (table ``queue-boards``);
- fact rows go to ``APP-rows``; the sink agent takes them in batches (``stream.take``),
  writes them idempotently and only then moves on, so their offsets are committed after
  the rows are durable;
- a timer writes calls whose agents never reported (the grace period), and the web views
  ``/boards/queues`` and ``/boards/agents`` serve the boards as JSON, ``/streams/status``
  the rows written per table.

Source agents fold ``stream.take_events`` batches: each key's table value is written once
per batch and queue signals go one message per queue per batch, which is what keeps the
worker from the few hundred events a second of a per-event Faust agent. Tables are
changelog-backed: a restarted worker recovers them from Kafka. Records that
are not valid events go to ``NS.deadletter`` with the reason, as on the embedded log.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import structlog
from faust.serializers import codecs

from ingest.contract import InvalidEventError, Topic, decode_event
from ingest.log.eventlog import dead_letter_headers
from ingest.log.partitioner import partition_for
from streams.facts import (
    FACT_TABLES,
    AcwReported,
    FactRows,
    expire_call,
    fold_agent,
    fold_call,
    fold_schedules,
    fold_ticket,
)
from streams.runner import Backoff
from streams.sink import WarehouseSink
from streams.views import (
    AgentSignal,
    AgentState,
    QueueSignal,
    QueueState,
    ViewSettings,
    agent_signals,
    agent_snapshot,
    apply_agent,
    apply_queue,
    call_signals,
    handled_signal,
    queue_snapshot,
)

__all__ = ["FaustSettings", "make_app"]

log = structlog.get_logger("queuecast.streams.faust")


@dataclass(frozen=True, slots=True)
class FaustSettings:
    """Where the worker reads and writes and how it batches."""

    broker: str
    """``host:port[,host:port]``."""
    namespace: str = "queuecast"
    app_id: str = "queuecast-streams"
    partitions: dict[str, int] | None = None
    """Partitions per logical topic (they must match the topics'; default 6/3/3/1)."""
    web_port: int = 6066
    batch_rows: int = 10_000
    batch_seconds: float = 1.0
    grace: timedelta = timedelta(minutes=30)
    views: ViewSettings = field(default_factory=ViewSettings)
    session_timeout_s: float = 10.0
    idle_partition_s: float = 10.0
    rows_per_message: int = 500
    """Fact rows per message of the rows topic (well under Kafka's 1 MB message limit)."""
    changelog_buffer: int = 20_000
    """Table changelog messages that may wait to be produced before agents pause."""
    source_batch: int = 5_000
    """Events folded per batch of a source agent (``stream.take_events``)."""
    source_within_s: float = 0.5
    """How long a source batch may wait to fill: at 50 ms batches held ~250 events and the
    per-batch table writes cost a sixth of the worker's throughput."""


_DEFAULT_PARTITIONS = {"calls": 6, "agents": 3, "tickets": 3, "wfm": 1}


class _InternalPickle(codecs.Codec):
    """Pickle without Faust's base64 layer and per-message warning, for the internal
    topics only: their sole producer is this app (events arrive as validated JSON)."""

    def _loads(self, s: bytes) -> Any:
        return pickle.loads(s)

    def _dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


codecs.register("queuecast-internal", _InternalPickle())


def make_app(settings: FaustSettings, sink: Callable[[], WarehouseSink]) -> faust.App:
    """The Faust app; ``sink`` opens the warehouse sink when the worker starts (the
    warehouse is opened in the worker's process, as chdb requires)."""
    parts = {**_DEFAULT_PARTITIONS, **(settings.partitions or {})}
    ns, app_id = settings.namespace, settings.app_id
    app = faust.App(
        app_id, broker=[f"kafka://{b}" for b in settings.broker.split(",")],
        store="memory://", web_port=settings.web_port, web_host="127.0.0.1",
        topic_partitions=parts["calls"], topic_replication_factor=1,
        consumer_auto_offset_reset="earliest", broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0, producer_acks=-1, stream_wait_empty=False,
        key_serializer="raw", value_serializer="raw", broker_max_poll_records=5_000,
        stream_buffer_maxsize=20_000, producer_linger=0.05,
        table_cleanup_interval=3600.0)

    def source(topic: Topic) -> faust.TopicT:
        return app.topic(f"{ns}.{topic.value}", key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    def internal(name: str, partitions: int) -> faust.TopicT:
        return app.topic(f"{app_id}-{name}", partitions=partitions, internal=True,
                         key_type=bytes, value_serializer="queuecast-internal",
                         key_serializer="raw")

    def table(name: str, partitions: int) -> _Pickled:
        # use_partitioner: the changelog partition follows the key (murmur2, as the source
        # topics), so a batch or a timer may write any key, not only the current event's
        return _Pickled(app.Table(name, partitions=partitions, key_type=bytes,
                                  value_type=bytes, use_partitioner=True))

    calls_in, agents_in = source(Topic.CALLS), source(Topic.AGENTS)
    tickets_in, wfm_in = source(Topic.TICKETS), source(Topic.WFM)
    deadletter = app.topic(f"{ns}.{Topic.DEADLETTER.value}", key_type=bytes,
                           value_type=bytes, key_serializer="raw", value_serializer="raw")
    acw_topic = internal("acw", parts["calls"])
    signals_topic = internal("queue-signals", parts["agents"])
    rows_topic = internal("rows", parts["calls"])

    # one table per key kind: every state of a call (facts, queue position) or of an agent
    # (facts, queues and state, board) goes in one value, so one changelog message per key
    calls = table("calls", parts["calls"])
    agents = table("agents", parts["agents"])
    tickets = table("tickets", parts["tickets"])
    schedules = table("schedules", parts["wfm"])
    queue_boards = table("queue-boards", parts["agents"])
    watermark = _Watermark(idle_s=settings.idle_partition_s)

    async def batches(stream: faust.StreamT, origin: Topic) -> AsyncIterator[list[Any]]:
        """The valid events of ``stream`` a batch at a time; invalid records are
        dead-lettered. Batches are what make the worker fast: one table write per key and
        one message per queue per batch, not per event."""
        async for records in stream.take_events(settings.source_batch,
                                                within=settings.source_within_s):
            events = []
            for record in records:
                try:
                    event = decode_event(record.value)
                except InvalidEventError as exc:
                    message = record.message
                    await deadletter.send(key=record.key, value=record.value, headers=list(
                        dead_letter_headers(exc.reason, "consume", f"{ns}.{origin.value}",
                                            message.partition, message.offset)))
                    continue
                watermark.saw(origin.value, record.message.partition, event.occurred_at)
                events.append(event)
            yield events

    async def emit(rows: FactRows, signals: list[QueueSignal | AgentSignal]) -> None:
        for chunk in _chunks(rows, settings.rows_per_message):
            await rows_topic.send(key=b"rows", value=chunk)
        signals = signals + [s for row in rows.calls if (s := handled_signal(row))]
        by_queue: dict[str, list[QueueSignal | AgentSignal]] = {}
        for signal in signals:
            by_queue.setdefault(signal.queue, []).append(signal)
        for queue, group in by_queue.items():
            await signals_topic.send(key=queue.encode(), value=group)

    @app.agent(calls_in)
    async def on_calls(stream: faust.StreamT) -> None:
        async for events in batches(stream, Topic.CALLS):
            cache = _Cache(calls)
            rows, signals = FactRows(), []
            for event in events:
                call_id = event.payload.call_id
                key = call_id.encode()
                facts, where = cache.get(key) or (None, None)
                facts, done = fold_call(facts, event)
                rows.extend(done)
                position = {call_id: where} if where is not None else {}
                signals.extend(call_signals(position, event))
                cache.set(key, _pair(facts, position.get(call_id)))
            cache.flush()
            await emit(rows, signals)

    @app.agent(acw_topic)
    async def on_acw(stream: faust.StreamT) -> None:
        async for groups in stream.take(settings.source_batch, within=0.05):
            cache, rows = _Cache(calls), FactRows()
            for report in (r for group in groups for r in group):
                key = report.call_id.encode()
                facts, where = cache.get(key) or (None, None)
                facts, done = fold_call(facts, report)
                cache.set(key, _pair(facts, where))
                rows.extend(done)
            cache.flush()
            await emit(rows, [])

    @app.agent(agents_in)
    async def on_agents(stream: faust.StreamT) -> None:
        async for events in batches(stream, Topic.AGENTS):
            cache = _Cache(agents)
            rows, signals, reports = FactRows(), [], []
            for event in events:
                agent_id = event.payload.agent_id
                key = agent_id.encode()
                facts, kept_skills, kept_state, board = cache.get(key) or (None, None, None,
                                                                           None)
                if event.type in ("agent.state_changed", "agent.logged_out"):
                    facts, done, moved_on = fold_agent(facts, event)
                    rows.extend(done)
                    reports.extend(moved_on)
                skills: dict[str, frozenset[str]] = {}
                states: dict[str, str] = {}
                if kept_skills is not None:
                    skills[agent_id] = kept_skills
                if kept_state is not None:
                    states[agent_id] = kept_state
                signals.extend(agent_signals(skills, states, event))
                board = apply_agent(board or AgentState(agent_id), event, settings.views)
                cache.set(key, (facts, skills.get(agent_id), states.get(agent_id), board))
            cache.flush()
            # one message per calls partition: every report in it keys that partition
            by_partition: dict[int, list[AcwReported]] = {}
            for report in reports:
                part = partition_for(report.call_id, parts["calls"])
                by_partition.setdefault(part, []).append(report)
            for part, group in by_partition.items():
                await acw_topic.send(key=group[0].call_id.encode(), partition=part, value=group)
            await emit(rows, signals)

    async def fold_keyed(stream: faust.StreamT, origin: Topic, tbl: _Pickled,
                         key_field: str, fold: Callable[[Any, Any], tuple[Any, FactRows]],
                         wanted: Callable[[Any], bool] = lambda _: True) -> None:
        """A topic whose fold keeps one state per key and only writes rows."""
        async for events in batches(stream, origin):
            cache, rows = _Cache(tbl), FactRows()
            for event in filter(wanted, events):
                key = getattr(event.payload, key_field).encode()
                value, done = fold(cache.get(key), event)
                cache.set(key, value)
                rows.extend(done)
            cache.flush()
            await emit(rows, [])

    @app.agent(tickets_in)
    async def on_tickets(stream: faust.StreamT) -> None:
        await fold_keyed(stream, Topic.TICKETS, tickets, "ticket_id", fold_ticket)

    @app.agent(wfm_in)
    async def on_wfm(stream: faust.StreamT) -> None:
        await fold_keyed(stream, Topic.WFM, schedules, "queue", fold_schedules,
                         lambda e: e.type.startswith(("wfm.schedule_", "wfm.forecast_")))

    @app.agent(signals_topic)
    async def on_signals(stream: faust.StreamT) -> None:
        async for groups in stream.take(settings.source_batch, within=0.05):
            cache = _Cache(queue_boards)
            for group in groups:
                key = group[0].queue.encode()
                board = cache.get(key) or QueueState(group[0].queue)
                for signal in group:
                    apply_queue(board, signal, settings.views)
                cache.set(key, board)
            cache.flush()

    writers: list[WarehouseSink] = []

    @app.task
    async def quiet_clients() -> None:
        """Faust's worker sets up logging after the command did: keep the Kafka client's
        per-message debug records off (they cost a tenth of the worker's time); and let the
        changelog buffer hold a batch's table writes."""
        level = max(logging.WARNING, logging.getLogger().level)
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(level)
        # Table changelog writes queue in a buffer of 100 by default; every batch writes
        # hundreds of keys, and each overflow stalls the agents until it drained.
        app.producer.buffer.max_messages = settings.changelog_buffer

    @app.agent(rows_topic)
    async def on_rows(stream: faust.StreamT) -> None:
        writer = sink()
        writers.append(writer)
        async for batch in stream.take(settings.batch_rows, within=settings.batch_seconds):
            for rows in batch:
                writer.add(rows)
            await _write(writer)

    @app.timer(interval=5.0)
    async def expire() -> None:
        """Write calls whose agents never reported, a grace period after they ended."""
        mark = watermark.value()
        if mark is None:
            return
        cache, rows = _Cache(calls), FactRows()
        for key, (call, where) in calls.items():
            if call is None:
                continue
            kept, done = expire_call(call, mark - settings.grace)
            if kept is None:
                cache.set(key, _pair(None, where))
                rows.extend(done)
        cache.flush()
        await emit(rows, [])

    async def _write(writer: WarehouseSink) -> None:
        delays = Backoff().delays()
        while True:
            try:
                await asyncio.to_thread(writer.write)
                return
            except Exception as exc:  # ClickHouse down: keep the batch, do not ack
                delay = delays()
                log.warning("warehouse write failed; retrying", error=str(exc),
                            retry_in_s=delay)
                await asyncio.sleep(delay)

    @app.page("/boards/queues")
    async def queues_view(web: Any, request: Any) -> Any:
        now = watermark.latest()
        return web.json({"at": now.isoformat(), "queues": [
            _plain(queue_snapshot(board, now, settings.views))
            for _, board in sorted(queue_boards.items())]})

    @app.page("/streams/status")
    async def status_view(web: Any, request: Any) -> Any:
        written: dict[str, int] = {}
        for writer in writers:
            for table_name, rows in writer.written.items():
                written[table_name] = written.get(table_name, 0) + rows
        mark = watermark.value()
        return web.json({"written": written,
                         "watermark": mark.isoformat() if mark is not None else None})

    @app.page("/boards/agents")
    async def agents_view(web: Any, request: Any) -> Any:
        now = watermark.latest()
        return web.json({"at": now.isoformat(), "agents": [
            _plain(agent_snapshot(value[3], now, settings.views))
            for _, value in sorted(agents.items(), key=lambda item: item[0])]})

    return app


class _Pickled:
    """A Faust table of pickled values (its changelog carries bytes; Faust would write
    JSON, which our state types are not)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> Any:
        raw = self.table.get(key)
        return None if raw is None else pickle.loads(raw)

    def __setitem__(self, key: bytes, value: object) -> None:
        self.table[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def pop(self, key: bytes) -> None:
        if key in self.table:
            del self.table[key]

    def items(self) -> Iterator[tuple[bytes, Any]]:
        for key, raw in list(self.table.items()):
            yield key, pickle.loads(raw)


def _chunks(rows: FactRows, size: int) -> Iterator[FactRows]:
    """``rows`` in pieces of at most ``size`` rows (a Kafka message has a size limit)."""
    for table in FACT_TABLES:
        part = getattr(rows, table)
        for start in range(0, len(part), size):
            chunk = FactRows()
            getattr(chunk, table).extend(part[start:start + size])
            yield chunk


def _pair(facts: object | None, where: object | None) -> tuple[Any, Any] | None:
    """A call key's value, or None (forget the key) once both parts are done."""
    return None if facts is None and where is None else (facts, where)


class _Cache:
    """One batch's view of a table: each key read once, each changed key written once."""

    def __init__(self, table: _Pickled) -> None:
        self.table = table
        self.values: dict[bytes, Any] = {}
        self.changed: set[bytes] = set()

    def get(self, key: bytes) -> Any:
        if key not in self.values:
            self.values[key] = self.table.get(key)
        return self.values[key]

    def set(self, key: bytes, value: object | None) -> None:
        self.values[key] = value
        self.changed.add(key)

    def flush(self) -> None:
        for key in self.changed:
            value = self.values[key]
            if value is None:
                self.table.pop(key)
            else:
                self.table[key] = value
        self.changed.clear()


class _Watermark:
    """Event time the worker is sure of, for writing calls whose agents never reported:
    the slowest call or agent partition's latest event while events flow, the latest of
    all once nothing arrived for ``idle_s`` (caught up); nothing until calls and agents have
    both been read, or ``idle_s`` after the first event (PBX history has no agent events).
    A partition that is merely slow (back pressure) never moves it forward."""

    def __init__(self, *, idle_s: float) -> None:
        self.idle_s = idle_s
        self.started: float | None = None
        self.last_wall = 0.0
        self.seen: dict[tuple[str, int], datetime] = {}

    def saw(self, topic: str, partition: int, at: datetime) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        self.last_wall = now
        if topic not in ("calls", "agents"):
            return
        before = self.seen.get((topic, partition))
        if before is None or at > before:
            self.seen[(topic, partition)] = at

    def value(self) -> datetime | None:
        now = time.monotonic()
        if self.started is None or not self.seen:
            return None
        idle = now - self.last_wall >= self.idle_s
        if not {topic for topic, _ in self.seen} >= {"calls", "agents"} and not (
                idle or now - self.started >= self.idle_s):
            return None
        return max(self.seen.values()) if idle else min(self.seen.values())

    def latest(self) -> datetime:
        return max(self.seen.values(), default=None) or datetime.now(UTC)


def _plain(snapshot: object) -> dict[str, Any]:
    out = asdict(snapshot)  # type: ignore[call-overload]
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, tuple | frozenset):
            out[name] = sorted(value)
    return out

