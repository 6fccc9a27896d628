"""One event-log API over two transports: embedded (SQLite on local disk) and Kafka.

``open_log("embedded", home=...)`` or ``open_log("kafka://host:9092", home=...)`` gives an
``EventLog``; everything above the transport (validation, partitioning, dead letters)
is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from ingest.contract import Topic
from ingest.log.eventlog import (
    DeadLetter,
    DeadLetterConsumer,
    Delivery,
    EventConsumer,
    EventLog,
    ProduceReport,
    Rejection,
)
from ingest.log.partitioner import partition_for
from ingest.log.transport import (
    CommitFailedError,
    LogError,
    LogUnavailableError,
    NoGroupError,
    OutgoingRecord,
    StoredRecord,
    Transport,
    UnknownTopicError,
)

__all__ = [
    "CommitFailedError",
    "DeadLetter",
    "DeadLetterConsumer",
    "Delivery",
    "EventConsumer",
    "EventLog",
    "LogError",
    "LogUnavailableError",
    "NoGroupError",
    "OutgoingRecord",
    "ProduceReport",
    "Rejection",
    "StoredRecord",
    "Transport",
    "UnknownTopicError",
    "open_log",
    "open_transport",
    "partition_for",
]

_FORMS = "'embedded', 'embedded:///path/to/events.sqlite3' or 'kafka://host:port[,host:port]'"


def open_transport(url: str, *, home: Path, options: Mapping[str, Any] | None = None) -> Transport:
    """The transport an event-log URL names; ``options`` are passed to its constructor.

    ``embedded`` keeps the log in ``home/eventlog/events.sqlite3``; query parameters of
    a ``kafka://`` URL (e.g. ``?session_timeout_ms=10000``) become integer options.
    """
    parts = urlsplit(url)
    extra: dict[str, Any] = dict(options or {})
    if url == "embedded" or parts.scheme == "embedded":
        from ingest.log.embedded import EmbeddedTransport

        named = parts.path if parts.scheme == "embedded" else ""
        path = Path(named) if named else home / "eventlog" / "events.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        return EmbeddedTransport(path, **extra)
    if parts.scheme == "kafka" and parts.netloc:
        from ingest.log.kafka import KafkaTransport

        for name, value in parse_qsl(parts.query):
            extra[name] = int(value) if value.isdigit() else value
        return KafkaTransport(parts.netloc, **extra)
    raise ValueError(f"event log URL {url!r} is not understood; use {_FORMS}")


def open_log(
    url: str,
    *,
    home: Path,
    namespace: str = "queuecast",
    partitions: Mapping[Topic, int] | None = None,
    options: Mapping[str, Any] | None = None,
) -> EventLog:
    """Open the event log that ``url`` names (see ``open_transport``).

    An embedded log's ``retention`` option maps logical topic names to
    ``{"max_age_ms": .., "max_records": ..}``; it applies to this namespace's topics.
    """
    extra = dict(options or {})
    if "retention" in extra:
        from ingest.log.embedded import Retention

        extra["retention"] = {
            f"{namespace}.{Topic(name).value}": msgspec.convert(rule, Retention)
            for name, rule in dict(extra["retention"]).items()
        }
    return EventLog(
        open_transport(url, home=home, options=extra), namespace=namespace,
        partitions=partitions,
    )
