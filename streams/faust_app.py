"""The Faust host: the same keyed folds as the in-process runner, on Kafka partitions.

Topology (``NS`` is the event log's namespace, ``APP`` the consumer group):

- ``NS.calls`` (by call) -> :func:`~streams.facts.fold_call` in table ``calls``, queue
  signals of :func:`~streams.views.call_signals` (table ``positions``);
- ``NS.agents`` (by agent) -> :func:`~streams.facts.fold_agent` in table ``agent-facts``;
  its ACW reports go to ``APP-acw`` (by call) and back into ``calls``; agent boards
  (table ``agent-boards``) and queue membership (table ``agent-queues``);
- ``NS.tickets``, ``NS.wfm`` -> their keyed folds;
- every queue signal is repartitioned by queue through ``APP-queue-signals`` into the
  queue boards (table ``queue-boards``);
- fact rows go to ``APP-rows``; the sink agent takes them in batches (``stream.take``),
  writes them idempotently and only then moves on, so their offsets are committed after
  the rows are durable;
- a timer writes calls whose agents never reported (the grace period), and the web views
  ``/boards/queues`` and ``/boards/agents`` serve the boards as JSON, ``/streams/status``
  the rows written per table.

Tables are changelog-backed: a restarted worker recovers them from Kafka. Records that
are not valid events go to ``NS.deadletter`` with the reason, as on the embedded log.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import structlog

from ingest.contract import InvalidEventError, Topic, decode_event
from ingest.log.eventlog import dead_letter_headers
from streams.facts import FactRows, expire_call, fold_agent, fold_call, fold_schedules, fold_ticket
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


_DEFAULT_PARTITIONS = {"calls": 6, "agents": 3, "tickets": 3, "wfm": 1}


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
        key_serializer="raw", value_serializer="pickle",
        table_cleanup_interval=3600.0)

    def source(topic: Topic) -> faust.TopicT:
        return app.topic(f"{ns}.{topic.value}", key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    def internal(name: str, partitions: int) -> faust.TopicT:
        return app.topic(f"{app_id}-{name}", partitions=partitions, internal=True,
                         key_type=bytes, value_serializer="pickle", key_serializer="raw")

    def table(name: str, partitions: int) -> _Pickled:
        return _Pickled(app.Table(name, partitions=partitions, key_type=bytes,
                                  value_type=bytes))

    calls_in, agents_in = source(Topic.CALLS), source(Topic.AGENTS)
    tickets_in, wfm_in = source(Topic.TICKETS), source(Topic.WFM)
    deadletter = app.topic(f"{ns}.{Topic.DEADLETTER.value}", key_type=bytes,
                           value_type=bytes, key_serializer="raw", value_serializer="raw")
    acw_topic = internal("acw", parts["calls"])
    signals_topic = internal("queue-signals", parts["agents"])
    rows_topic = internal("rows", parts["calls"])

    calls = table("calls", parts["calls"])
    positions = table("positions", parts["calls"])
    agent_facts = table("agent-facts", parts["agents"])
    agent_queues = table("agent-queues", parts["agents"])
    agent_boards = table("agent-boards", parts["agents"])
    tickets = table("tickets", parts["tickets"])
    schedules = table("schedules", parts["wfm"])
    queue_boards = table("queue-boards", parts["agents"])
    watermark = _Watermark(idle_s=settings.idle_partition_s)

    async def decoded(stream: faust.StreamT, origin: Topic) -> Any:
        """The valid events of ``stream``; invalid records are dead-lettered."""
        async for record in stream.events():
            try:
                event = decode_event(record.value)
            except InvalidEventError as exc:
                message = record.message
                await deadletter.send(key=record.key, value=record.value, headers=list(
                    dead_letter_headers(exc.reason, "consume", f"{ns}.{origin.value}",
                                        message.partition, message.offset)))
                continue
            watermark.saw(origin.value, record.message.partition, event.occurred_at)
            yield event

    async def emit(rows: FactRows, signals: list[QueueSignal | AgentSignal]) -> None:
        if len(rows):
            await rows_topic.send(key=b"rows", value=rows)
        signals = signals + [s for row in rows.calls if (s := handled_signal(row))]
        for signal in signals:
            await signals_topic.send(key=signal.queue.encode(), value=signal)

    def store(tbl: _Pickled, key: bytes, value: object | None) -> None:
        if value is None:
            tbl.pop(key, None)
        else:
            tbl[key] = value

    @app.agent(calls_in)
    async def on_calls(stream: faust.StreamT) -> None:
        async for event in decoded(stream, Topic.CALLS):
            key = event.payload.call_id.encode()
            call, rows = fold_call(calls.get(key), event)
            store(calls, key, call)
            call_id = event.payload.call_id
            where = {call_id: p} if (p := positions.get(key)) is not None else {}
            signals: list[QueueSignal | AgentSignal] = list(call_signals(where, event))
            store(positions, key, where.get(call_id))
            await emit(rows, signals)

    @app.agent(acw_topic)
    async def on_acw(stream: faust.StreamT) -> None:
        async for message in stream:
            key = message.call_id.encode()
            if isinstance(message, _Expire):
                if (current := calls.get(key)) is None:
                    continue
                call, rows = expire_call(current, message.limit)
            else:
                call, rows = fold_call(calls.get(key), message)
            store(calls, key, call)
            await emit(rows, [])

    @app.agent(agents_in)
    async def on_agents(stream: faust.StreamT) -> None:
        async for event in decoded(stream, Topic.AGENTS):
            agent_id = event.payload.agent_id
            key = agent_id.encode()
            rows = FactRows()
            if event.type in ("agent.state_changed", "agent.logged_out"):
                facts, rows, reports = fold_agent(agent_facts.get(key), event)
                store(agent_facts, key, facts)
                for report in reports:
                    await acw_topic.send(key=report.call_id.encode(), value=report)
            skills: dict[str, frozenset[str]] = {}
            states: dict[str, str] = {}
            kept_skills, kept_state = agent_queues.get(key) or (None, None)
            if kept_skills is not None:
                skills[agent_id] = kept_skills
            if kept_state is not None:
                states[agent_id] = kept_state
            signals = agent_signals(skills, states, event)
            pair = (skills.get(agent_id), states.get(agent_id))
            store(agent_queues, key, pair if pair != (None, None) else None)
            board = agent_boards.get(key) or AgentState(agent_id)
            agent_boards[key] = apply_agent(board, event, settings.views)
            await emit(rows, list(signals))

    @app.agent(tickets_in)
    async def on_tickets(stream: faust.StreamT) -> None:
        async for event in decoded(stream, Topic.TICKETS):
            key = event.payload.ticket_id.encode()
            ticket, rows = fold_ticket(tickets.get(key), event)
            tickets[key] = ticket
            await emit(rows, [])

    @app.agent(wfm_in)
    async def on_wfm(stream: faust.StreamT) -> None:
        async for event in decoded(stream, Topic.WFM):
            if not event.type.startswith(("wfm.schedule_", "wfm.forecast_")):
                continue
            key = event.payload.queue.encode()
            book, rows = fold_schedules(schedules.get(key), event)
            schedules[key] = book
            await emit(rows, [])

    @app.agent(signals_topic)
    async def on_signals(stream: faust.StreamT) -> None:
        async for signal in stream:
            key = signal.queue.encode()
            board = queue_boards.get(key) or QueueState(signal.queue)
            queue_boards[key] = apply_queue(board, signal, settings.views)

    writers: list[WarehouseSink] = []

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
        """Calls past the grace period go back through their key's partition: a table
        is written only while processing an event of that partition."""
        mark = watermark.value()
        if mark is None:
            return
        limit = mark - settings.grace
        for key, call in list(calls.items()):
            if expire_call(call, limit)[0] is None:
                await acw_topic.send(key=key, value=_Expire(key.decode(), limit))

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
            _plain(agent_snapshot(board, now, settings.views))
            for _, board in sorted(agent_boards.items())]})

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

    def pop(self, key: bytes, default: object = None) -> None:
        if key in self.table:
            del self.table[key]

    def items(self) -> Iterator[tuple[bytes, Any]]:
        for key, raw in list(self.table.items()):
            yield key, pickle.loads(raw)


@dataclass(frozen=True, slots=True)
class _Expire:
    call_id: str
    limit: datetime


class _Watermark:
    """Event time the worker is sure of: the slowest partition's latest event, counting only
    partitions that delivered in the last ``idle_s`` seconds (a quiet partition must not
    hold it back), and nothing until calls and agents have both been read or ``idle_s``
    has passed since the first event (PBX history has no agent events)."""

    def __init__(self, *, idle_s: float) -> None:
        self.idle_s = idle_s
        self.started: float | None = None
        self.seen: dict[tuple[str, int], tuple[datetime, float]] = {}

    def saw(self, topic: str, partition: int, at: datetime) -> None:
        if self.started is None:
            self.started = time.monotonic()
        before = self.seen.get((topic, partition))
        if before is None or at > before[0]:
            self.seen[(topic, partition)] = (at, time.monotonic())

    def value(self) -> datetime | None:
        now = time.monotonic()
        topics = {topic for topic, _ in self.seen}
        if self.started is None or (
                not {"calls", "agents"} <= topics and now - self.started < self.idle_s):
            return None
        recent = [at for at, wall in self.seen.values() if now - wall <= self.idle_s]
        return min(recent) if recent else self.latest_or_none()

    def latest_or_none(self) -> datetime | None:
        return max((at for at, _ in self.seen.values()), default=None)

    def latest(self) -> datetime:
        return self.latest_or_none() or datetime.now(UTC)


def _plain(snapshot: object) -> dict[str, Any]:
    out = asdict(snapshot)  # type: ignore[call-overload]
    for name, value in out.items():
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, tuple | frozenset):
            out[name] = sorted(value)
    return out

