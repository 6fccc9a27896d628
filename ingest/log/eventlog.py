"""The event log: validated, partitioned, dead-lettering produce and consume over a transport.

Validation happens on both sides. A record that fails it is never dropped: it is
appended to the dead-letter topic with its original bytes and the reason in headers,
and the consumer goes on. A consumer dead-letters before it can commit past a record,
so a crash between the two redelivers rather than loses.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

import msgspec
import structlog

from ingest.contract import (
    DATA_TOPICS,
    DEFAULT_PARTITIONS,
    Event,
    InvalidEventError,
    Payload,
    Topic,
    decode_event,
    encode_event,
    stamp,
    to_utc_ms,
)
from ingest.log.partitioner import partition_for
from ingest.log.transport import (
    Closing,
    Headers,
    OutgoingRecord,
    Reader,
    StartPosition,
    StoredRecord,
    TopicPartition,
    Transport,
)

__all__ = [
    "DeadLetter",
    "DeadLetterConsumer",
    "Delivery",
    "EventConsumer",
    "EventLog",
    "ProduceReport",
    "Rejection",
    "dead_letter_headers",
]

log = structlog.get_logger("queuecast.eventlog")

_REASON = "queuecast.dlq.reason"
_STAGE = "queuecast.dlq.stage"
_ORIGIN = "queuecast.dlq.origin"
_PARTITION = "queuecast.dlq.partition"
_OFFSET = "queuecast.dlq.offset"
_AT = "queuecast.dlq.at"

Stage = Literal["produce", "consume", "project"]
_STAGES: dict[str, Stage] = {"produce": "produce", "consume": "consume", "project": "project"}
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that was dead-lettered instead of appended: its index in the input and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class ProduceReport:
    """What one produce call did: how many events were appended and which were rejected."""

    accepted: int
    rejected: tuple[Rejection, ...] = ()

    @property
    def dead_lettered(self) -> int:
        """How many inputs went to the dead-letter topic."""
        return len(self.rejected)


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """A valid event as read from the log, with where it was stored."""

    event: Event[Payload]
    topic: Topic
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that failed validation: the original bytes and the reason."""

    original: bytes
    key: bytes | None
    reason: str
    stage: Stage
    origin: str
    """The topic it was read from (consume) or the producer's origin label (produce)."""
    origin_partition: int | None
    origin_offset: int | None
    dead_lettered_at: datetime
    partition: int
    offset: int


def dead_letter_headers(reason: str, stage: Stage, origin: str, partition: int | None,
                        offset: int | None, *, at: datetime | None = None) -> Headers:
    """The headers of a dead letter: why, at which stage, from where (topic, partition and
    offset when known), and when; every host writes the same (``DeadLetter`` reads them)."""
    headers: Headers = (
        (_REASON, reason.encode()),
        (_STAGE, stage.encode()),
        (_ORIGIN, origin.encode()),
        (_AT, (at or datetime.now(UTC)).isoformat().encode()),
    )
    if partition is not None and offset is not None:
        headers += ((_PARTITION, str(partition).encode()), (_OFFSET, str(offset).encode()))
    return headers


class EventLog(Closing):
    """Produce and consume contract events on a transport (embedded SQLite or Kafka).

    Topics are the contract's logical topics under ``namespace`` (``queuecast.calls``);
    each event goes to its payload's topic, to the partition Kafka's default
    partitioner picks for its key, so one call's (agent's, ticket's, queue's) events
    keep their order.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        namespace: str = "queuecast",
        partitions: Mapping[Topic, int] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = 10_000,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.transport = transport
        self.namespace = namespace
        self._clock = clock
        self._batch_size = batch_size
        self._names = {topic: f"{namespace}.{topic.value}" for topic in Topic}
        self._topics = {name: topic for topic, name in self._names.items()}
        wanted = {**DEFAULT_PARTITIONS, **(partitions or {})}
        transport.ensure_topics({self._names[t]: n for t, n in wanted.items()})
        self._partitions = {t: transport.partition_count(self._names[t]) for t in Topic}

    def topic_name(self, topic: Topic) -> str:
        """The transport-level name of a logical topic, e.g. ``queuecast.calls``."""
        return self._names[topic]

    def partition_count(self, topic: Topic) -> int:
        """How many partitions ``topic`` has."""
        return self._partitions[topic]

    def produce(self, events: Iterable[Event[Payload]]) -> ProduceReport:
        """Validate and append events, stamping ``recorded_at``; invalid ones are dead-lettered.

        Returns once every event is durable. Large inputs are appended in batches.
        """
        return self._produce_batches(events, self._prepare_event, origin="producer")

    def produce_raw(self, values: Iterable[bytes], *, origin: str = "external") -> ProduceReport:
        """Validate and append events given as JSON bytes (importers, external producers).

        Valid events are re-encoded canonically with ``recorded_at`` stamped; invalid
        ones go to the dead-letter topic byte for byte, labelled with ``origin``.
        """
        return self._produce_batches(values, self._prepare_raw, origin=origin)

    def consumer(
        self,
        *,
        group: str | None,
        topics: Sequence[Topic] = DATA_TOPICS,
        start: StartPosition = "earliest",
    ) -> EventConsumer:
        """Read valid events of ``topics``, in a consumer group with committed offsets or alone."""
        if Topic.DEADLETTER in topics:
            raise ValueError("read the dead-letter topic with dead_letters(), not consumer()")
        reader = self.transport.reader(
            topics=[self._names[t] for t in topics], group=group, start=start
        )
        return EventConsumer(self, reader)

    def dead_letters(
        self, *, group: str | None = None, start: StartPosition = "earliest"
    ) -> DeadLetterConsumer:
        """Read the dead-letter topic."""
        reader = self.transport.reader(
            topics=[self._names[Topic.DEADLETTER]], group=group, start=start
        )
        return DeadLetterConsumer(self, reader)

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Quarantine a valid event that a consumer could not process (stage ``project``):
        its canonical bytes go to the dead-letter topic with ``reason`` and its position."""
        name = self._names[delivery.topic]
        self.transport.append([self._dead_letter(
            encode_event(delivery.event), delivery.event.key.encode(), reason, "project",
            name, (name, delivery.partition), delivery.offset)])

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()

    # -- producing --------------------------------------------------------------

    def _produce_batches(
        self,
        items: Iterable[T],
        prepare: Callable[[T, datetime], OutgoingRecord],
        *,
        origin: str,
    ) -> ProduceReport:
        accepted = 0
        rejected: list[Rejection] = []
        batch: list[OutgoingRecord] = []
        now = to_utc_ms(self._clock())
        for index, item in enumerate(items):
            try:
                batch.append(prepare(item, now))
            except _RejectedError as exc:
                rejected.append(Rejection(index, exc.reason))
                batch.append(self._dead_letter(exc.original, None, exc.reason, "produce", origin))
            else:
                accepted += 1
            if len(batch) >= self._batch_size:
                self.transport.append(batch)
                batch = []
                now = to_utc_ms(self._clock())
        if batch:
            self.transport.append(batch)
        if rejected:
            log.warning(
                "events dead-lettered", stage="produce", origin=origin, count=len(rejected),
                first_reason=rejected[0].reason,
            )
        return ProduceReport(accepted, tuple(rejected))

    def _record(self, event: Event[Payload], value: bytes) -> OutgoingRecord:
        topic = event.payload.TOPIC
        partition = partition_for(event.key, self._partitions[topic])
        return OutgoingRecord(self._names[topic], partition, event.key.encode(), value)

    def _prepare_event(self, event: Event[Payload], now: datetime) -> OutgoingRecord:
        try:
            value = encode_event(stamp(event, now))
        except (TypeError, ValueError, AttributeError) as exc:
            reason = f"cannot encode {type(event).__name__}: {exc}"
            raise _RejectedError(reason, repr(event).encode()) from None
        # Struct constructors do not type-check, so validate what will actually be stored.
        try:
            return self._record(decode_event(value, expected_type=event.type), value)
        except InvalidEventError as exc:
            raise _RejectedError(exc.reason, value) from None

    def _prepare_raw(self, value: bytes, now: datetime) -> OutgoingRecord:
        try:
            event = decode_event(value)
        except InvalidEventError as exc:
            raise _RejectedError(exc.reason, bytes(value)) from None
        return self._record(event, encode_event(stamp(event, now)))

    def _dead_letter(
        self,
        original: bytes,
        key: bytes | None,
        reason: str,
        stage: Stage,
        origin: str,
        position: TopicPartition | None = None,
        offset: int | None = None,
    ) -> OutgoingRecord:
        headers = dead_letter_headers(
            reason, stage, origin, position[1] if position is not None else None, offset,
            at=self._clock())
        partitions = self._partitions[Topic.DEADLETTER]
        partition = partition_for(key.decode("utf-8", "replace"), partitions) if key else 0
        return OutgoingRecord(self._names[Topic.DEADLETTER], partition, key, original, headers)

    # -- consuming --------------------------------------------------------------

    def _delivery(self, record: StoredRecord) -> Delivery:
        event = decode_event(record.value)
        topic = self._topics[record.topic]
        if event.payload.TOPIC is not topic:
            raise InvalidEventError(
                f"{event.type} belongs on topic {self._names[event.payload.TOPIC]}, "
                f"found on {record.topic}"
            )
        if record.key != event.key.encode():
            raise InvalidEventError(
                f"record key {record.key!r} does not match the event key {event.key!r}"
            )
        return Delivery(event, topic, record.partition, record.offset)

    def _quarantine(self, record: StoredRecord, reason: str) -> OutgoingRecord:
        return self._dead_letter(
            record.value, record.key, reason, "consume", record.topic,
            (record.topic, record.partition), record.offset,
        )


class _RejectedError(InvalidEventError):
    """An input refused on produce, with the bytes to dead-letter."""

    def __init__(self, reason: str, original: bytes) -> None:
        super().__init__(reason)
        self.original = original


class _Consumer(Closing, Generic[T]):
    """Shared polling, position tracking and committing of the two consumer kinds."""

    def __init__(self, log: EventLog, reader: Reader) -> None:
        self._log = log
        self._reader = reader
        self._positions: dict[TopicPartition, int] = {}

    @abstractmethod
    def _convert(self, records: list[StoredRecord]) -> list[T]:
        """Turn stored records into what this consumer yields."""

    def poll(self, *, max_events: int = 10_000, timeout: float = 1.0) -> list[T]:
        """Up to ``max_events`` items, waiting at most ``timeout`` seconds for the first."""
        records = self._reader.poll(max_records=max_events, timeout=timeout)
        items = self._convert(records)
        for record in records:
            self._positions[(record.topic, record.partition)] = record.offset + 1
        return items

    def commit(self) -> None:
        """Commit the group's position after everything polled so far."""
        owned = self._reader.assignment()
        positions = {tp: offset for tp, offset in self._positions.items() if tp in owned}
        if positions:
            self._reader.commit(positions)

    def committed(self) -> dict[TopicPartition, int]:
        """The group's committed next offset per assigned partition (empty without a group)."""
        return self._reader.committed()

    def seek_to_beginning(self) -> None:
        """Replay: start again at the first retained record of every assigned partition."""
        self._reader.seek_to_beginning()
        self._positions.clear()

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this consumer reads now."""
        return self._reader.assignment()

    def drain(self, *, idle: float = 1.0, max_events: int = 10_000) -> Iterator[list[T]]:
        """Yield batches until one poll waits ``idle`` seconds with nothing new."""
        while True:
            batch = self.poll(max_events=max_events, timeout=idle)
            if not batch:
                return
            yield batch

    def close(self) -> None:
        """Close the reader; committed offsets stay."""
        self._reader.close()


class EventConsumer(_Consumer[Delivery]):
    """Valid events in per-partition order; invalid records are dead-lettered on the way."""

    def _convert(self, records: list[StoredRecord]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        quarantined: list[OutgoingRecord] = []
        for record in records:
            try:
                deliveries.append(self._log._delivery(record))
            except InvalidEventError as exc:
                quarantined.append(self._log._quarantine(record, exc.reason))
        if quarantined:
            self._log.transport.append(quarantined)
            log.warning(
                "events dead-lettered", stage="consume", count=len(quarantined),
                first_reason=quarantined[0].headers[0][1].decode(),
            )
        return deliveries


class DeadLetterConsumer(_Consumer[DeadLetter]):
    """Dead letters with their reasons, for operators and replay tools."""

    def _convert(self, records: list[StoredRecord]) -> list[DeadLetter]:
        return [_dead_letter_of(record) for record in records]


def _dead_letter_of(record: StoredRecord) -> DeadLetter:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
    partition = headers.get(_PARTITION)
    offset = headers.get(_OFFSET)
    at = headers.get(_AT)
    return DeadLetter(
        original=record.value,
        key=record.key,
        reason=headers.get(_REASON, "unknown (record has no reason header)"),
        stage=_STAGES.get(headers.get(_STAGE, ""), "produce"),
        origin=headers.get(_ORIGIN, ""),
        origin_partition=int(partition) if partition is not None else None,
        origin_offset=int(offset) if offset is not None else None,
        dead_lettered_at=(
            datetime.fromisoformat(at) if at else datetime.fromtimestamp(
                record.timestamp_ms / 1000, UTC
            )
        ),
        partition=record.partition,
        offset=record.offset,
    )
