"""The byte-level seam under the event log, in the manner of httpx transports.

A transport moves opaque records; it knows nothing of the event contract. The
``EventLog`` facade above it validates, routes, partitions and dead-letters, so
both backends (embedded SQLite and Kafka) share one implementation of those rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Headers",
    "LogError",
    "LogUnavailableError",
    "OutgoingRecord",
    "Reader",
    "StartPosition",
    "StoredRecord",
    "TopicPartition",
    "Transport",
    "UnknownTopicError",
]

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]
StartPosition = Literal["earliest", "latest"]


class LogError(RuntimeError):
    """Base class of event-log failures."""


class UnknownTopicError(LogError):
    """A topic was used before it was created."""


class LogUnavailableError(LogError):
    """The log did not accept or serve records (broker down, disk full, timeout)."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to append; the partition is chosen by the caller."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as read back from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: Headers = field(default=())


@runtime_checkable
class Reader(Protocol):
    """Reads records of some topics, alone or as a member of a consumer group."""

    def poll(self, *, max_records: int, timeout: float) -> list[StoredRecord]:
        """Return up to ``max_records`` records, waiting at most ``timeout`` seconds for the first.

        Records of one partition come in offset order. An empty list means nothing arrived.
        """
        ...

    def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Durably store, for the group, the next offset to read of each partition."""
        ...

    def committed(self) -> dict[TopicPartition, int]:
        """The group's committed next offsets of the partitions this reader is assigned."""
        ...

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this reader currently reads."""
        ...

    def seek_to_beginning(self) -> None:
        """Restart every assigned partition at its first retained record (replay)."""
        ...

    def close(self) -> None:
        """Leave the group and release resources; committed offsets stay."""
        ...


@runtime_checkable
class Transport(Protocol):
    """Durable, partitioned, append-only record log."""

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        """Create missing topics with the given partition counts; existing topics are kept."""
        ...

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has; raises ``UnknownTopicError`` if it does not exist."""
        ...

    def append(self, records: Sequence[OutgoingRecord]) -> None:
        """Append records, keeping their order within each partition.

        Returns only once every record is durable (a committed transaction, or acks=all);
        raises ``LogUnavailableError`` otherwise, in which case some records may have
        been written (at-least-once: the caller retries the batch).
        """
        ...

    def reader(
        self,
        *,
        topics: Sequence[str],
        group: str | None,
        start: StartPosition = "earliest",
    ) -> Reader:
        """Open a reader over ``topics``.

        With a ``group``, partitions are shared among the group's live readers and each
        partition starts at the group's committed offset (``start`` applies where none
        is committed). Without a group the reader takes every partition from ``start``
        and may not commit.
        """
        ...

    def close(self) -> None:
        """Flush and release resources."""
        ...
