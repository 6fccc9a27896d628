"""The Kafka transport: the event log on a Kafka-protocol broker, through confluent-kafka.

Appends go through an idempotent producer with ``acks=all`` and return once every
record is acknowledged. Readers never auto-commit: a group reader commits exactly the
positions it is given, and a reader without a group reads every partition and cannot
commit at all.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Final

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient, NewTopic, TopicMetadata

from ingest.log.transport import (
    Closing,
    CommitFailedError,
    Headers,
    LogError,
    LogUnavailableError,
    NoGroupError,
    OutgoingRecord,
    StartPosition,
    StoredRecord,
    TopicPartition,
    UnknownTopicError,
    check_reader_arguments,
)

__all__ = ["KafkaTransport"]

log = structlog.get_logger("queuecast.kafka")

# librdkafka's own log lines, forwarded into Python logging instead of raw stderr.
_CLIENT_LOG: Final = logging.getLogger("confluent_kafka.librdkafka")

# Properties this module sets itself; extra_config may not override them.
_RESERVED: Final = frozenset(
    {
        "bootstrap.servers",
        "client.id",
        "group.id",
        "acks",
        "enable.idempotence",
        "transactional.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "logger",
        "error_cb",
        "on_delivery",
    }
)
_MAX_CONSUME: Final = 1_000_000  # confluent-kafka's limit for one consume() call
_FLUSH_SLICE_S: Final = 0.1
_PID_REFUSALS_BEFORE_FALLBACK: Final = 3
_PID_REFUSAL_CODES: Final = frozenset(
    {
        KafkaError._UNSUPPORTED_FEATURE,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
_UNKNOWN_TOPIC_CODES: Final = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
    }
)
_REBALANCED_CODES: Final = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)
_UNAVAILABLE_CODES: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._FATAL,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_CONTROLLER,
    }
)

# librdkafka's wording of the retriable broker errors above, to tell them from refusals.
_TRANSIENT_TEXTS: Final = frozenset(KafkaError(code).str() for code in _UNAVAILABLE_CODES)


class KafkaTransport(Closing):
    """``Transport`` on a Kafka-protocol broker (Apache Kafka, Redpanda, Tansu).

    ``request_timeout_s`` bounds each append and each admin or metadata request.
    ``topic_config`` applies to topics this transport creates; ``extra_config`` adds
    librdkafka properties (security, compression, ...) to every client it opens.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "queuecast",
        session_timeout_ms: int = 6000,
        heartbeat_interval_ms: int = 1000,
        request_timeout_s: float = 30.0,
        replication_factor: int = 1,
        topic_config: Mapping[str, str] | None = None,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        if not bootstrap:
            raise ValueError("bootstrap must name at least one host:port")
        request_timeout_s = float(request_timeout_s)
        if request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be positive, got {request_timeout_s}")
        if not 0 < heartbeat_interval_ms < session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({heartbeat_interval_ms}) must be positive and below "
                f"session_timeout_ms ({session_timeout_ms})"
            )
        if replication_factor < 1:
            raise ValueError(f"replication_factor must be at least 1, got {replication_factor}")
        extra = dict(extra_config or {})
        if clash := sorted(_RESERVED & extra.keys()):
            raise ValueError(f"extra_config may not set {', '.join(clash)}: the transport does")
        self.bootstrap = bootstrap
        self._client_id = client_id
        self._session_timeout_ms = int(session_timeout_ms)
        self._heartbeat_interval_ms = int(heartbeat_interval_ms)
        self._request_timeout = request_timeout_s
        self._replication_factor = int(replication_factor)
        self._topic_config = dict(topic_config or {})
        self._common: dict[str, Any] = {
            **extra,
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "socket.timeout.ms": max(10, round(request_timeout_s * 1000)),
            "allow.auto.create.topics": False,
        }
        self._lock = threading.Lock()
        self._append_lock = threading.Lock()
        self._partitions: dict[str, int] = {}
        self._admin: AdminClient | None = None
        self._producer: _Producer | None = None
        self._idempotent = True
        self._readers: weakref.WeakSet[_KafkaReader] = weakref.WeakSet()
        self._closed = False

    # -- topics -----------------------------------------------------------------

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        """Create missing topics and wait until metadata shows them; existing ones are kept."""
        self._check_open()
        for name, count in partitions.items():
            if not name:
                raise ValueError("topic names must not be empty")
            if count < 1:
                raise ValueError(f"topic {name!r} needs at least one partition, got {count}")
        with self._lock:
            wanted = {n: c for n, c in partitions.items() if n not in self._partitions}
        if not wanted:
            return
        deadline = time.monotonic() + self._request_timeout
        futures = self._admin_client().create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=count,
                    replication_factor=self._replication_factor,
                    config=dict(self._topic_config),
                )
                for name, count in wanted.items()
            ],
            operation_timeout=self._request_timeout,
            request_timeout=self._request_timeout,
        )
        for name, future in futures.items():
            try:
                # librdkafka fails the future at request_timeout; the margin only guards that.
                future.result(timeout=max(0.0, deadline - time.monotonic()) + 5.0)
            except KafkaException as exc:
                error = _kafka_error(exc)
                if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise _log_error(f"cannot create topic {name!r}", error) from exc
            except TimeoutError as exc:
                raise LogUnavailableError(
                    f"creating topic {name!r} got no answer from {self.bootstrap}"
                ) from exc
        self._await_topics(wanted, deadline)

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (cached after the first look-up)."""
        self._check_open()
        with self._lock:
            cached = self._partitions.get(topic)
        if cached is not None:
            return cached
        return self._refresh_partition_count(topic)

    def _refresh_partition_count(self, topic: str) -> int:
        metadata = self._topic_metadata(topic, timeout=self._request_timeout)
        if metadata is None:
            raise UnknownTopicError(f"topic {topic!r} does not exist on {self.bootstrap}")
        count = len(metadata.partitions)
        with self._lock:
            self._partitions[topic] = count
        return count

    def _topic_metadata(self, topic: str, *, timeout: float) -> TopicMetadata | None:
        """The topic's metadata, or None if the cluster does not know it."""
        try:
            cluster = self._admin_client().list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise _log_error(f"no metadata from {self.bootstrap}", _kafka_error(exc)) from exc
        metadata = cluster.topics.get(topic)
        if metadata is None:
            return None
        error: KafkaError | None = metadata.error
        if error is not None:
            if error.code() in _UNKNOWN_TOPIC_CODES:
                return None
            if not metadata.partitions:
                raise _log_error(f"no metadata for topic {topic!r}", error)
        return metadata

    def _await_topics(self, wanted: Mapping[str, int], deadline: float) -> None:
        pending = dict(wanted)
        while True:
            for name, count in list(pending.items()):
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    metadata = self._topic_metadata(name, timeout=remaining)
                except LogUnavailableError:
                    metadata = None
                if metadata is None or not _all_led(metadata):
                    continue
                actual = len(metadata.partitions)
                if actual != count:
                    log.warning(
                        "topic exists with another partition count; keeping it",
                        topic=name,
                        partitions=actual,
                        requested=count,
                    )
                with self._lock:
                    self._partitions[name] = actual
                del pending[name]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise LogUnavailableError(
                    f"topics {sorted(pending)} did not appear in the metadata of "
                    f"{self.bootstrap} within {self._request_timeout:g} s"
                )
            time.sleep(0.05)

    # -- appending --------------------------------------------------------------

    def append(self, records: Sequence[OutgoingRecord]) -> None:
        """Append records and wait until all are acknowledged by every in-sync replica."""
        self._check_open()
        if not records:
            return
        self._check_partitions(records)
        with self._append_lock:
            deadline = time.monotonic() + self._request_timeout
            try:
                self._send(records, deadline)
            except _IdempotenceRefusedError as refused:
                log.warning(
                    "broker refused an idempotent producer id; falling back to a "
                    "non-idempotent producer (acks=all, one request in flight): a retried "
                    "request may now duplicate records",
                    bootstrap=self.bootstrap,
                    reason=str(refused),
                )
                self._idempotent = False
                self._send(records, deadline)

    def _check_partitions(self, records: Sequence[OutgoingRecord]) -> None:
        counts: dict[str, int] = {}
        for record in records:
            count = counts.get(record.topic)
            if count is None:
                count = counts[record.topic] = self.partition_count(record.topic)
            if not 0 <= record.partition < count:
                # Partitions may have been added since the count was cached.
                count = counts[record.topic] = self._refresh_partition_count(record.topic)
                if not 0 <= record.partition < count:
                    raise LogError(
                        f"topic {record.topic!r} has {count} partitions; "
                        f"a record names partition {record.partition}"
                    )

    def _send(self, records: Sequence[OutgoingRecord], deadline: float) -> None:
        producer = self._producer_for_append()
        tracker = _Deliveries()
        for record in records:
            while True:
                try:
                    producer.client.produce(
                        record.topic,
                        record.value,
                        record.key,
                        partition=record.partition,
                        headers=list(record.headers) if record.headers else None,
                        on_delivery=tracker,
                    )
                except BufferError:
                    # The local queue is full: serve delivery reports to make room.
                    self._serve(producer, _FLUSH_SLICE_S, flush=False)
                    self._check_producer(producer, tracker, len(records), deadline)
                    continue
                except KafkaException as exc:
                    producer.monitor.on_error(_kafka_error(exc))
                    self._check_producer(producer, tracker, len(records), deadline)
                    self._abandon(producer)
                    raise _log_error(
                        "the producer rejected a record", _kafka_error(exc), unavailable=True
                    ) from exc
                tracker.sent += 1
                break
        while tracker.pending:
            self._serve(producer, min(_FLUSH_SLICE_S, deadline - time.monotonic()), flush=True)
            self._check_producer(producer, tracker, len(records), deadline)
        if tracker.failed:
            assert tracker.first_error is not None
            raise LogUnavailableError(
                f"{tracker.failed} of {len(records)} records were not appended: "
                f"{_describe(tracker.first_error)}"
            ) from KafkaException(tracker.first_error)

    def _serve(self, producer: _Producer, timeout: float, *, flush: bool) -> None:
        """Wait for delivery reports; a fatal error is recorded for ``_check_producer``."""
        try:
            if flush:
                producer.client.flush(max(0.0, timeout))
            else:
                producer.client.poll(max(0.0, timeout))
        except KafkaException as exc:
            producer.monitor.on_error(_kafka_error(exc))

    def _check_producer(
        self, producer: _Producer, tracker: _Deliveries, total: int, deadline: float
    ) -> None:
        """Between waits: give up on a refused producer id, a failed producer, the deadline."""
        monitor = producer.monitor
        if producer.idempotent and (
            (monitor.fatal is not None and monitor.fatal.code() in _PID_REFUSAL_CODES)
            or monitor.pid_refusals >= _PID_REFUSALS_BEFORE_FALLBACK
        ):
            self._discard(producer)
            fatal = monitor.fatal
            raise _IdempotenceRefusedError(
                _describe(fatal) if fatal is not None else str(monitor.pid_failure)
            )
        if monitor.fatal is not None:
            self._discard(producer)
            raise LogUnavailableError(
                f"the producer failed: {_describe(monitor.fatal)}"
            ) from KafkaException(monitor.fatal)
        if tracker.pending and time.monotonic() >= deadline:
            unconfirmed = total - tracker.reported
            self._abandon(producer)
            last = monitor.last_error
            if last is not None:
                cause = f"; last client error: {_describe(last)}"
            elif monitor.pid_failure is not None:
                cause = f"; {monitor.pid_failure}"
            else:
                cause = ""
            raise LogUnavailableError(
                f"{unconfirmed} of {total} records were not acknowledged by "
                f"{self.bootstrap} within {self._request_timeout:g} s{cause}"
            ) from (KafkaException(last) if last is not None else None)

    def _abandon(self, producer: _Producer) -> None:
        """Drop the records still queued so that a retried batch is not overtaken by them."""
        try:
            producer.client.purge()
            producer.client.poll(0)
        except KafkaException as exc:
            producer.monitor.on_error(_kafka_error(exc))

    def _discard(self, producer: _Producer) -> None:
        """Stop using a producer that can no longer deliver; the next append makes a new one."""
        self._abandon(producer)
        if self._producer is producer:
            self._producer = None

    def _producer_for_append(self) -> _Producer:
        if self._producer is None:
            self._producer = _Producer(self._common, self._request_timeout, self._idempotent)
        return self._producer

    # -- reading ----------------------------------------------------------------

    def reader(
        self,
        *,
        topics: Sequence[str],
        group: str | None,
        start: StartPosition = "earliest",
    ) -> _KafkaReader:
        """Open a reader over ``topics``: a consumer-group member, or alone over all partitions."""
        self._check_open()
        check_reader_arguments(topics, group, start)
        names = list(dict.fromkeys(topics))
        counts = {name: self.partition_count(name) for name in names}
        config = {
            **self._common,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": start,
            "session.timeout.ms": self._session_timeout_ms,
            "heartbeat.interval.ms": self._heartbeat_interval_ms,
            "logger": _CLIENT_LOG,
        }
        reader: _KafkaReader
        if group is None:
            config["group.id"] = f"{self._client_id}-reader-{uuid.uuid4().hex}"
            partitions = [(name, p) for name, count in counts.items() for p in range(count)]
            reader = _AssignedReader(config, self._request_timeout, partitions, start)
        else:
            config["group.id"] = group
            reader = _GroupReader(config, self._request_timeout, names)
        self._readers.add(reader)
        return reader

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Close readers opened here, deliver what is queued (bounded by the timeout)."""
        if self._closed:
            return
        self._closed = True
        for reader in list(self._readers):
            reader.close()
        with self._append_lock:
            producer, self._producer = self._producer, None
            if producer is not None:
                left = producer.client.flush(self._request_timeout)
                if left:
                    log.warning("records dropped at close", count=left, bootstrap=self.bootstrap)
                    self._abandon(producer)
        self._admin = None

    def __repr__(self) -> str:
        return f"KafkaTransport({self.bootstrap!r})"

    def _admin_client(self) -> AdminClient:
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient({**self._common, "logger": _CLIENT_LOG})
            return self._admin

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the Kafka transport is closed")


class _IdempotenceRefusedError(Exception):
    """The broker will not give this producer an id; nothing of the batch was sent."""


class _ProducerMonitor(logging.LoggerAdapter[logging.Logger]):
    """A producer's librdkafka logs and errors, watched for a broker refusing producer ids.

    A fatal refusal (unsupported, unauthorized) arrives as a fatal error; any other error
    answer to InitProducerId is only logged by librdkafka, which then retries forever.
    """

    def __init__(self) -> None:
        super().__init__(_CLIENT_LOG, {})
        self.fatal: KafkaError | None = None
        self.last_error: KafkaError | None = None
        self.pid_refusals = 0
        self.pid_failure: str | None = None

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        # librdkafka calls log(level, "%s [%s] %s", facility, client name, text).
        if len(args) == 3 and args[0] == "GETPID" and "Failed to acquire" in str(args[2]):
            text = str(args[2])
            self.pid_failure = text
            # "Local: ..." errors are the network's doing, not the broker's answer.
            if "Local: " not in text and not any(t in text for t in _TRANSIENT_TEXTS):
                self.pid_refusals += 1
        super().log(level, msg, *args, **kwargs)

    def on_error(self, error: KafkaError) -> None:
        self.last_error = error
        if error.fatal():
            self.fatal = error


class _Producer:
    """A confluent-kafka producer with its monitor."""

    def __init__(self, common: Mapping[str, Any], request_timeout: float, idempotent: bool):
        self.idempotent = idempotent
        self.monitor = _ProducerMonitor()
        timeout_ms = max(1, round(request_timeout * 1000))
        config: dict[str, Any] = {
            **common,
            "acks": "all",
            "enable.idempotence": idempotent,
            "message.timeout.ms": timeout_ms,
            "request.timeout.ms": timeout_ms,
            "logger": self.monitor,
            "error_cb": self.monitor.on_error,
        }
        if not idempotent:
            # Without sequence numbers a retried request could overtake a later one.
            config["max.in.flight.requests.per.connection"] = 1
        self.client = Producer(config)


class _Deliveries:
    """Delivery reports of one append."""

    __slots__ = ("failed", "first_error", "reported", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.reported = 0
        self.failed = 0
        self.first_error: KafkaError | None = None

    @property
    def pending(self) -> int:
        return self.sent - self.reported

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        self.reported += 1
        if error is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = error


class _KafkaReader(Closing):
    """A confluent-kafka consumer behind the ``Reader`` protocol."""

    def __init__(self, config: Mapping[str, Any], request_timeout: float) -> None:
        self._request_timeout = request_timeout
        self._fatal: KafkaError | None = None
        self._deferred: LogError | None = None
        self._closed = False
        self._consumer = Consumer({**config, "error_cb": self._on_error})

    def poll(self, *, max_records: int, timeout: float) -> list[StoredRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        try:
            messages = self._consumer.consume(min(max_records, _MAX_CONSUME), max(0.0, timeout))
        except KafkaException as exc:
            raise _log_error("consume failed", _kafka_error(exc), unavailable=True) from exc
        records: list[StoredRecord] = []
        failure: LogError | None = None
        for message in messages:
            error = message.error()
            if error is None:
                records.append(_stored(message))
            elif error.code() != KafkaError._PARTITION_EOF and failure is None:
                where = f"{message.topic()} [{message.partition()}]"
                failure = _log_error(f"reading {where} failed", error)
        if failure is None and self._fatal is not None:
            failure = _log_error("the consumer failed", self._fatal)
        self._polled()
        if failure is not None:
            # Records already taken off the consumer are returned first, or they would be lost.
            if records:
                self._deferred = failure
            else:
                raise failure
        return records

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this reader currently reads."""
        self._check_open()
        return frozenset((p.topic, p.partition) for p in self._consumer.assignment())

    def close(self) -> None:
        """Close the consumer (leaving its group); committed offsets stay."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing a Kafka consumer failed", error=str(exc))

    def _polled(self) -> None:
        """Bookkeeping after each poll."""

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the reader is closed")


class _GroupReader(_KafkaReader):
    """A consumer-group member: partitions come from the group, offsets from its commits."""

    def __init__(
        self, config: Mapping[str, Any], request_timeout: float, topics: Sequence[str]
    ) -> None:
        super().__init__(config, request_timeout)
        strategy = str(config.get("partition.assignment.strategy", ""))
        self._incremental = (
            "cooperative" in strategy or str(config.get("group.protocol", "")) == "consumer"
        )
        self._rewind = False
        self._consumer.subscribe(list(topics), on_assign=self._on_assign)

    def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Synchronously commit, for the group, the next offset to read of each partition."""
        self._check_open()
        if not positions:
            return
        offsets = []
        for (topic, partition), offset in positions.items():
            if offset < 0:
                raise ValueError(f"cannot commit offset {offset} of {topic} [{partition}]")
            offsets.append(KafkaPartition(topic, partition, offset))
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise _log_error("commit failed", _kafka_error(exc)) from exc
        for result in results or ():
            if result.error is not None:
                where = f"{result.topic} [{result.partition}]"
                raise _log_error(f"commit of {where} failed", result.error)

    def committed(self) -> dict[TopicPartition, int]:
        """The group's committed next offsets of the assigned partitions (where any exist)."""
        self._check_open()
        assigned = self._consumer.assignment()
        if not assigned:
            return {}
        try:
            results = self._consumer.committed(assigned, timeout=self._request_timeout)
        except KafkaException as exc:
            raise _log_error("reading committed offsets failed", _kafka_error(exc)) from exc
        committed: dict[TopicPartition, int] = {}
        for result in results:
            if result.error is not None:
                where = f"{result.topic} [{result.partition}]"
                raise _log_error(f"reading the committed offset of {where} failed", result.error)
            if result.offset >= 0:
                committed[(result.topic, result.partition)] = result.offset
        return committed

    def seek_to_beginning(self) -> None:
        """Replay every assigned partition from its first record, and any assigned next.

        Right after subscribing, or during a rebalance, the reader has no partitions yet;
        the request then stands until a poll has run with partitions assigned, and the
        assignment callback starts each new partition at the beginning.
        """
        self._check_open()
        self._rewind = True
        for partition in self._consumer.assignment():
            try:
                self._consumer.seek(
                    KafkaPartition(partition.topic, partition.partition, OFFSET_BEGINNING)
                )
            except KafkaException as exc:
                where = f"{partition.topic} [{partition.partition}]"
                raise _log_error(f"seeking {where} failed", _kafka_error(exc)) from exc

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        if not self._rewind:
            return  # confluent-kafka assigns at the committed offsets itself
        for partition in partitions:
            partition.offset = OFFSET_BEGINNING
        if self._incremental:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _polled(self) -> None:
        if self._rewind and self._consumer.assignment():
            self._rewind = False


class _AssignedReader(_KafkaReader):
    """A reader outside any group: every partition, from the start position, no commits."""

    def __init__(
        self,
        config: Mapping[str, Any],
        request_timeout: float,
        partitions: Sequence[TopicPartition],
        start: StartPosition,
    ) -> None:
        super().__init__(config, request_timeout)
        self._partitions = tuple(partitions)
        # librdkafka retries the start-offset look-up only after 500 ms if it does not know
        # the partition leaders at assign time; fetching their metadata first avoids that.
        for topic in dict.fromkeys(topic for topic, _ in self._partitions):
            try:
                self._consumer.list_topics(topic, timeout=request_timeout)
            except KafkaException:
                break  # the consumer looks the leaders up itself
        self._assign(OFFSET_BEGINNING if start == "earliest" else OFFSET_END)

    def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Always fails: only a reader with a group can commit."""
        raise NoGroupError(
            "this reader has no consumer group, so it cannot commit; open it with one"
        )

    def committed(self) -> dict[TopicPartition, int]:
        """Nothing: a reader without a group has no committed offsets."""
        self._check_open()
        return {}

    def seek_to_beginning(self) -> None:
        """Restart every partition at its first retained record."""
        self._check_open()
        self._assign(OFFSET_BEGINNING)

    def _assign(self, offset: int) -> None:
        try:
            self._consumer.assign(
                [KafkaPartition(topic, partition, offset) for topic, partition in self._partitions]
            )
        except KafkaException as exc:
            raise _log_error("assigning partitions failed", _kafka_error(exc)) from exc


def _stored(message: Message) -> StoredRecord:
    kind, timestamp = message.timestamp()
    value = message.value()
    return StoredRecord(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        b"" if value is None else value,
        -1 if kind == TIMESTAMP_NOT_AVAILABLE else timestamp,
        _headers(message.headers()),
    )


def _headers(raw: list[tuple[str, bytes | None]] | None) -> Headers:
    if not raw:
        return ()
    headers = tuple(raw)
    for _, value in headers:
        if value is None:  # a null header value; the protocol's headers carry bytes
            return tuple((name, b"" if value is None else value) for name, value in headers)
    return headers  # type: ignore[return-value]


def _all_led(metadata: TopicMetadata) -> bool:
    """Whether every partition of a topic has a leader (it can take writes)."""
    return bool(metadata.partitions) and all(
        p.error is None and p.leader >= 0 for p in metadata.partitions.values()
    )


def _kafka_error(exc: KafkaException) -> KafkaError:
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, KafkaError):
        return cause
    return KafkaError(KafkaError._FAIL, str(exc))


def _describe(error: KafkaError) -> str:
    return f"{error.str()} ({error.name()})"


def _log_error(context: str, error: KafkaError, *, unavailable: bool = False) -> LogError:
    """The ``LogError`` subclass for a client error, with ``context`` in front."""
    message = f"{context}: {_describe(error)}"
    code = error.code()
    if code in _UNKNOWN_TOPIC_CODES:
        return UnknownTopicError(message)
    if code in _REBALANCED_CODES:
        return CommitFailedError(message)
    if unavailable or code in _UNAVAILABLE_CODES or error.retriable():
        return LogUnavailableError(message)
    return LogError(message)
