"""The byte-level seam under the event log, in the manner of httpx transports.

Records are untracked msgspec structs (``gc=False``): millions pass through, none
holds a reference cycle, and a tracked object costs ten times as much to create.

A transport moves opaque records; it knows nothing of the event contract. The
``EventLog`` facade above it validates, routes, partitions and dead-letters, so
both backends (embedded SQLite and Kafka) share one implementation of those rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

import msgspec

__all__ = [
    "Closing",
    "CommitFailedError",
    "Headers",
    "LogError",
    "LogUnavailableError",
    "NoGroupError",
    "OutgoingRecord",
    "Reader",
    "StartPosition",
    "StoredRecord",
    "TopicPartition",
    "Transport",
    "UnknownTopicError",
    "check_reader_arguments",
]

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]
StartPosition = Literal["earliest", "latest"]


class LogError(RuntimeError):
    """Base class of event-log failures."""


class UnknownTopicError(LogError):
    """A topic was used before it was created."""


class NoGroupError(LogError):
    """A reader without a consumer group was asked to commit."""


class CommitFailedError(LogError):
    """A commit named partitions this group member no longer owns (the group rebalanced).

    Poll again to get the new assignment; records of lost partitions are redelivered to
    their new owner from the last commit.
    """


class LogUnavailableError(LogError):
    """The log did not accept or serve records (broker down, disk full, timeout)."""


class OutgoingRecord(msgspec.Struct, frozen=True, gc=False):
    """A record to append; the partition is chosen by the caller."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes
    headers: Headers = ()


class StoredRecord(msgspec.Struct, frozen=True, gc=False):
    """A record as read back from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: Headers = ()


class Closing(ABC):
    """``with`` support for anything with a ``close()``: the block's end closes it."""

    @abstractmethod
    def close(self) -> None:
        """Release what this object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class Reader(Protocol):
    """Reads records of some topics, alone or as a member of a consumer group."""

    def poll(self, *, max_records: int, timeout: float) -> list[StoredRecord]:
        """Return up to ``max_records`` records, waiting at most ``timeout`` seconds for the first.

        Records of one partition come in offset order. An empty list means nothing arrived.
        """
        ...

    def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Durably store, for the group, the next offset to read of each partition.

        Raises ``NoGroupError`` on a reader without a group and ``CommitFailedError``
        when the group rebalanced and this member lost one of the partitions.
        """
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

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_reader_arguments(topics: Sequence[str], group: str | None, start: str) -> None:
    """Refuse ``reader()`` arguments that no transport accepts, naming the fix."""
    if isinstance(topics, str):
        raise TypeError("topics must be a sequence of topic names, not one string")
    if not topics:
        raise ValueError("a reader needs at least one topic")
    if start not in ("earliest", "latest"):
        raise ValueError(f"start must be 'earliest' or 'latest', got {start!r}")
    if group == "":
        raise ValueError("group must be a non-empty name or None")


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
