"""The embedded event log: Kafka's model in one SQLite file (WAL mode) on local disk.

Topics of partitions with offsets from 0 per partition, headers, log-append timestamps,
consumer groups with committed offsets, replay and retention. Any number of processes
on the same machine may append to and read the same file at once; group members find
each other through a heartbeat table in the file itself.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, NamedTuple

import msgspec

from ingest.log.transport import (
    Closing,
    CommitFailedError,
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

__all__ = [
    "Durability",
    "EmbeddedReader",
    "EmbeddedTransport",
    "NotAnEventLogError",
    "Retention",
]

Durability = Literal["process", "power"]

_APPLICATION_ID: Final = 0x51434C47  # "QCLG" in the SQLite header marks a queuecast log
_FORMAT_VERSION: Final = 1
_BUSY_TIMEOUT_S: Final = 30.0
_SYNCHRONOUS: Final[dict[str, str]] = {"process": "NORMAL", "power": "FULL"}

_SCHEMA: Final = (
    """CREATE TABLE topics (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        partitions INTEGER NOT NULL
    )""",
    """CREATE TABLE partitions (
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        start_offset INTEGER NOT NULL DEFAULT 0,
        next_offset INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (topic_id, part)
    ) WITHOUT ROWID""",
    """CREATE TABLE records (
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        off INTEGER NOT NULL,
        key BLOB CHECK (key IS NULL OR typeof(key) = 'blob'),
        value BLOB NOT NULL CHECK (typeof(value) = 'blob'),
        ts INTEGER NOT NULL,
        headers BLOB,
        PRIMARY KEY (topic_id, part, off)
    ) WITHOUT ROWID""",
    """CREATE TABLE members (
        grp TEXT NOT NULL,
        member TEXT NOT NULL,
        topics TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        PRIMARY KEY (grp, member)
    ) WITHOUT ROWID""",
    """CREATE TABLE commits (
        grp TEXT NOT NULL,
        topic_id INTEGER NOT NULL,
        part INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (grp, topic_id, part)
    ) WITHOUT ROWID""",
)

_INSERT: Final = (
    "INSERT INTO records (topic_id, part, off, key, value, ts, headers) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_FETCH: Final = (
    "SELECT off, key, value, ts, headers FROM records "
    "WHERE topic_id = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?"
)
_NEXT_OFFSET: Final = "SELECT next_offset FROM partitions WHERE topic_id = ? AND part = ?"
_SET_NEXT_OFFSET: Final = "UPDATE partitions SET next_offset = ? WHERE topic_id = ? AND part = ?"
_LIVE_MEMBERS: Final = (
    "SELECT member, topics FROM members WHERE grp = ? AND expires_ms >= ? ORDER BY member"
)
_COMMIT: Final = (
    "INSERT INTO commits (grp, topic_id, part, next_offset) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (grp, topic_id, part) DO UPDATE SET next_offset = excluded.next_offset"
)

_encode_headers = msgspec.msgpack.Encoder().encode
_decode_headers = msgspec.msgpack.Decoder(tuple[tuple[str, bytes], ...]).decode


class NotAnEventLogError(LogError):
    """The file exists but is not a queuecast event log (or is of an unknown format)."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a topic keeps records: by age, by count per partition, or both (None: no limit)."""

    max_age_ms: int | None = None
    max_records: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_age_ms", "max_records"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Retention.{name} must be None or at least 0, got {value}")


class _Topic(NamedTuple):
    id: int
    name: str
    partitions: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock up front (no deadlock on upgrade)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@contextmanager
def _translated(path: Path, action: str) -> Iterator[None]:
    """Turn SQLite failures into the transport's errors."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "CHECK constraint" in str(exc):
            raise TypeError("record keys (or None) and values must be bytes") from None
        raise LogError(f"{action} failed on the event log {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise LogUnavailableError(f"{action} failed on the event log {path}: {exc}") from exc


def _connect(path: Path, durability: Durability) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[durability]}")
        conn.execute("PRAGMA cache_size = -16384")
    except BaseException:
        conn.close()
        raise
    return conn


def _is_fresh(conn: sqlite3.Connection, path: Path) -> bool:
    """Whether the database is empty; raises unless it is empty or a queuecast log."""
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if application_id == _APPLICATION_ID:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != _FORMAT_VERSION:
            raise NotAnEventLogError(
                f"{path} is a queuecast event log of format {version}; this version of "
                f"queuecast reads format {_FORMAT_VERSION}"
            )
        return False
    if application_id == 0 and not conn.execute("SELECT 1 FROM sqlite_master").fetchone():
        return True
    raise NotAnEventLogError(
        f"{path} is an SQLite database but not a queuecast event log; "
        "point the event log at a new file or an existing queuecast log"
    )


def _open(path: Path, durability: Durability) -> sqlite3.Connection:
    """Connect, checking that ``path`` is a queuecast log, and create the schema if new."""
    if path.is_dir():
        raise NotAnEventLogError(f"{path} is a directory, not a queuecast event log file")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path, durability)
        # Check before switching to WAL so that a foreign database is left untouched.
        _is_fresh(conn, path)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise LogUnavailableError(
                f"the event log {path} cannot use write-ahead logging (journal mode {mode!r}); "
                "put it on a local file system"
            )
        with _immediate(conn):
            if _is_fresh(conn, path):
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_FORMAT_VERSION}")
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise NotAnEventLogError(
                f"{path} is not a queuecast event log (not an SQLite database)"
            ) from None
        if isinstance(exc, sqlite3.Error):
            raise LogUnavailableError(f"cannot open the event log {path}: {exc}") from exc
        raise
    return conn


def _unknown_topic(name: str, path: Path) -> UnknownTopicError:
    return UnknownTopicError(
        f"topic {name!r} does not exist in the event log {path}; call ensure_topics first"
    )


def _lookup_topic(conn: sqlite3.Connection, name: str, path: Path) -> _Topic:
    row = conn.execute("SELECT id, partitions FROM topics WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise _unknown_topic(name, path)
    return _Topic(row[0], name, row[1])


class EmbeddedTransport(Closing):
    """``Transport`` on one SQLite file in WAL mode, shareable by processes on one machine.

    ``append`` returns once its transaction has committed. With ``durability="process"``
    (``synchronous=NORMAL``) a committed append survives the death of the process, even
    by ``kill -9``, because WAL commits are in the operating system's page cache; a
    power loss or kernel crash may lose the last commits. ``durability="power"``
    (``synchronous=FULL``) syncs the WAL on each commit and survives those too, at the
    cost of one ``fsync`` per append.

    ``retention`` maps topic names to a ``Retention``, applied by ``enforce_retention``.
    A group member that does not poll (or commit) for ``member_timeout`` seconds loses
    its partitions to the other members; an idle ``poll`` checks for data every
    ``poll_interval`` seconds.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        durability: Durability = "process",
        retention: Mapping[str, Retention] | None = None,
        member_timeout: float = 10.0,
        poll_interval: float = 0.05,
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability must be 'process' or 'power', got {durability!r}")
        if member_timeout <= 0:
            raise ValueError(f"member_timeout must be positive, got {member_timeout}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self.path = Path(path)
        self.durability: Durability = durability
        self.retention: dict[str, Retention] = dict(retention or {})
        self.member_timeout = float(member_timeout)
        self.poll_interval = float(poll_interval)
        self._lock = threading.Lock()
        # Topics are never dropped and their partition counts never change, so caching is safe.
        self._topics: dict[str, _Topic] = {}
        self._readers: weakref.WeakSet[EmbeddedReader] = weakref.WeakSet()
        self._closed = False
        self._conn = _open(self.path, durability)

    def ensure_topics(self, partitions: Mapping[str, int]) -> None:
        """Create missing topics with the given partition counts; existing topics are kept."""
        self._check_open()
        for name, count in partitions.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"topic names must be non-empty strings, got {name!r}")
            if count < 1:
                raise ValueError(f"topic {name!r} needs at least one partition, got {count}")
        with self._lock, _translated(self.path, "creating topics"), _immediate(self._conn):
            for name, count in partitions.items():
                cursor = self._conn.execute(
                    "INSERT INTO topics (name, partitions) VALUES (?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, count),
                )
                if cursor.rowcount:
                    self._conn.executemany(
                        "INSERT INTO partitions (topic_id, part) VALUES (?, ?)",
                        [(cursor.lastrowid, part) for part in range(count)],
                    )

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has; raises ``UnknownTopicError`` if it does not exist."""
        self._check_open()
        with self._lock, _translated(self.path, "reading topics"):
            return self._topic(topic).partitions

    def append(self, records: Sequence[OutgoingRecord]) -> None:
        """Append records in one transaction, keeping their order within each partition.

        Returns once the transaction has committed (see the class docstring for what
        survives what). Raises ``UnknownTopicError`` for a topic not yet created and
        ``ValueError`` for a partition the topic does not have; nothing is appended then.
        """
        self._check_open()
        if not records:
            return
        now = _now_ms()
        encode = _encode_headers
        rows: list[tuple[int, int, int, bytes | None, bytes, int, bytes | None]] = []
        add = rows.append
        # (topic, partition) -> [topic id, next offset], read inside the write transaction
        # so that appends from other processes are accounted for.
        cursors: dict[TopicPartition, list[int]] = {}
        with self._lock, _translated(self.path, "append"), _immediate(self._conn):
            for record in records:
                part = record.partition
                cursor = cursors.get((record.topic, part))
                if cursor is None:
                    cursor = cursors[(record.topic, part)] = self._cursor(record.topic, part)
                offset = cursor[1]
                cursor[1] = offset + 1
                headers = record.headers
                add((cursor[0], part, offset, record.key, record.value, now,
                     encode(headers) if headers else None))
            self._conn.executemany(_INSERT, rows)
            self._conn.executemany(
                _SET_NEXT_OFFSET,
                [(cursor[1], cursor[0], part) for (_, part), cursor in cursors.items()],
            )

    def reader(
        self,
        *,
        topics: Sequence[str],
        group: str | None,
        start: StartPosition = "earliest",
    ) -> EmbeddedReader:
        """Open a reader over ``topics``: a consumer-group member, or alone over all partitions."""
        self._check_open()
        check_reader_arguments(topics, group, start)
        with self._lock, _translated(self.path, "opening a reader"):
            subscribed = [self._topic(name) for name in dict.fromkeys(topics)]
        reader = EmbeddedReader(self, subscribed, group, start)
        self._readers.add(reader)
        return reader

    def enforce_retention(self, now_ms: int | None = None) -> dict[str, int]:
        """Delete records older or more numerous than each topic's ``Retention`` allows.

        Only a prefix of each partition is deleted: its log start offset moves up and
        offsets are never reused. Returns how many records were deleted per topic.
        """
        self._check_open()
        now = _now_ms() if now_ms is None else now_ms
        deleted: dict[str, int] = {}
        with self._lock, _translated(self.path, "enforcing retention"):
            for name, rule in self.retention.items():
                try:
                    topic = self._topic(name)
                except UnknownTopicError:
                    continue
                deleted[name] = sum(
                    self._trim(topic.id, part, rule, now) for part in range(topic.partitions)
                )
        return deleted

    def log_start_offsets(self, topic: str) -> dict[int, int]:
        """The first retained offset of each partition of ``topic``."""
        return self._partition_column(topic, "start_offset")

    def high_watermarks(self, topic: str) -> dict[int, int]:
        """The offset the next record of each partition of ``topic`` will get."""
        return self._partition_column(topic, "next_offset")

    def close(self) -> None:
        """Close the readers opened here and the database connection."""
        if self._closed:
            return
        self._closed = True
        try:
            for reader in list(self._readers):
                reader.close()
        finally:
            with self._lock:
                self._conn.close()

    def __repr__(self) -> str:
        return f"EmbeddedTransport({str(self.path)!r}, durability={self.durability!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"the embedded transport on {self.path} is closed")

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _lookup_topic(self._conn, name, self.path)
        return topic

    def _cursor(self, name: str, part: int) -> list[int]:
        topic = self._topic(name)
        if not 0 <= part < topic.partitions:
            raise ValueError(
                f"partition {part} of topic {name!r} does not exist; the topic has "
                f"{topic.partitions} partition(s), numbered from 0"
            )
        (next_offset,) = self._conn.execute(_NEXT_OFFSET, (topic.id, part)).fetchone()
        return [topic.id, next_offset]

    def _trim(self, topic_id: int, part: int, rule: Retention, now: int) -> int:
        conn = self._conn
        with _immediate(conn):
            start, end = conn.execute(
                "SELECT start_offset, next_offset FROM partitions WHERE topic_id = ? AND part = ?",
                (topic_id, part),
            ).fetchone()
            first = start
            if rule.max_records is not None:
                first = max(first, end - rule.max_records)
            if rule.max_age_ms is not None:
                young = conn.execute(
                    "SELECT off FROM records WHERE topic_id = ? AND part = ? AND off >= ? "
                    "AND ts >= ? ORDER BY off LIMIT 1",
                    (topic_id, part, start, now - rule.max_age_ms),
                ).fetchone()
                first = max(first, end if young is None else young[0])
            if first <= start:
                return 0
            removed = conn.execute(
                "DELETE FROM records WHERE topic_id = ? AND part = ? AND off < ?",
                (topic_id, part, first),
            ).rowcount
            conn.execute(
                "UPDATE partitions SET start_offset = ? WHERE topic_id = ? AND part = ?",
                (first, topic_id, part),
            )
            return removed

    def _partition_column(self, name: str, column: str) -> dict[int, int]:
        self._check_open()
        with self._lock, _translated(self.path, "reading offsets"):
            topic = self._topic(name)
            rows = self._conn.execute(
                f"SELECT part, {column} FROM partitions WHERE topic_id = ? ORDER BY part",
                (topic.id,),
            ).fetchall()
        return dict(rows)


class _Position(NamedTuple):
    start: int
    end: int
    committed: int | None


class EmbeddedReader(Closing):
    """A reader of an ``EmbeddedTransport``: alone over every partition, or a group member.

    Group members register in the log file with a lease of ``member_timeout`` seconds
    that each poll renews. The partitions of the subscribed topics are dealt round-robin
    to the live members sorted by id, so every member computes the same assignment; a
    member that finds the membership changed adopts its new share, starting each newly
    assigned partition at the group's committed offset.
    """

    def __init__(
        self,
        transport: EmbeddedTransport,
        topics: Sequence[_Topic],
        group: str | None,
        start: StartPosition,
    ) -> None:
        self.group = group
        self._path = transport.path
        self._start: StartPosition = start
        self._timeout_ms = round(transport.member_timeout * 1000)
        # Renewing well before expiry tolerates a slow poll loop without one write per poll.
        self._renew_every = transport.member_timeout / 10
        self._sleep = min(transport.poll_interval, self._renew_every)
        self._topics: dict[str, _Topic] = {topic.name: topic for topic in topics}
        self._foreign: dict[str, _Topic] = {}
        self._names: dict[int, str] = {topic.id: topic.name for topic in topics}
        self._ids = tuple(self._names)
        self._subscription = json.dumps(sorted(self._topics))
        self._bounds_sql = (
            "SELECT topic_id, part, start_offset, next_offset FROM partitions "
            f"WHERE topic_id IN ({', '.join('?' * len(self._ids))}) ORDER BY topic_id, part"
        )
        self._member = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        self._members: tuple[tuple[str, str], ...] = ()
        self._renewed = 0.0
        self._positions: dict[TopicPartition, int] = {}
        self._turn = 0
        self._closed = False
        try:
            self._conn = _connect(self._path, transport.durability)
        except sqlite3.Error as exc:
            raise LogUnavailableError(f"cannot open the event log {self._path}: {exc}") from exc
        try:
            with _translated(self._path, "joining"):
                if group is None:
                    bounds = self._bounds()
                    every = [(name, part) for name, topic in self._topics.items()
                             for part in range(topic.partitions)]
                    self._positions = self._starts(every, bounds)
                else:
                    self._refresh(force=True)
        except BaseException:
            self._conn.close()
            raise

    def poll(self, *, max_records: int, timeout: float) -> list[StoredRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first.

        Records of a partition come in offset order; partitions take turns so that a
        busy one does not starve the others.
        """
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        deadline = time.monotonic() + max(0.0, timeout)
        with _translated(self._path, "poll"):
            while True:
                if self.group is not None:
                    self._refresh()
                records = self._fetch(max_records)
                left = deadline - time.monotonic()
                if records or left <= 0:
                    return records
                time.sleep(min(self._sleep, left))

    def commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Durably store, for the group, the next offset to read of each partition.

        Raises ``CommitFailedError`` if this member no longer owns one of them: the
        group rebalanced (or this member's lease lapsed) since its last poll.
        """
        self._check_open()
        if self.group is None:
            raise NoGroupError(
                "this reader has no consumer group, so it cannot commit; "
                "open it with reader(..., group='name')"
            )
        rows: list[tuple[str, int, int, int]] = []
        for (name, part), offset in positions.items():
            topic = self._topics.get(name)
            if topic is None:
                raise CommitFailedError(f"this reader does not read topic {name!r}")
            if offset < 0:
                raise ValueError(f"cannot commit offset {offset} of {name} [{part}]")
            rows.append((self.group, topic.id, part, offset))
        if not rows:
            return
        with _translated(self._path, "commit"), _immediate(self._conn):
            now = _now_ms()
            members = self._live_members(now)
            if all(member != self._member for member, _ in members):
                raise CommitFailedError(
                    f"this member of group {self.group!r} did not poll within its "
                    f"member_timeout of {self._timeout_ms / 1000:g} s and its partitions went "
                    "to other members; poll again, then process from the committed offsets"
                )
            owned = self._share(members)
            lost = sorted(tp for tp in positions if tp not in owned or tp not in self._positions)
            if lost:
                listed = ", ".join(f"{name} [{part}]" for name, part in lost)
                raise CommitFailedError(
                    f"cannot commit {listed}: not assigned to this member of group "
                    f"{self.group!r} (the group rebalanced); poll again, then process from "
                    "the committed offsets"
                )
            self._conn.executemany(_COMMIT, rows)
            self._conn.execute(
                "UPDATE members SET expires_ms = ? WHERE grp = ? AND member = ?",
                (now + self._timeout_ms, self.group, self._member),
            )
        self._renewed = time.monotonic()

    def committed(self) -> dict[TopicPartition, int]:
        """The group's committed next offsets of the assigned partitions (where any exist)."""
        self._check_open()
        if self.group is None:
            return {}
        with _translated(self._path, "reading committed offsets"):
            rows = self._conn.execute(
                "SELECT topic_id, part, next_offset FROM commits WHERE grp = ?", (self.group,)
            ).fetchall()
        names = self._names
        return {
            tp: offset
            for topic_id, part, offset in rows
            if topic_id in names and (tp := (names[topic_id], part)) in self._positions
        }

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this reader currently reads."""
        self._check_open()
        return frozenset(self._positions)

    def seek_to_beginning(self) -> None:
        """Restart every assigned partition at its first retained record (replay)."""
        self._check_open()
        with _translated(self._path, "seek"):
            bounds = self._bounds()
        for tp in self._positions:
            self._positions[tp] = bounds[tp].start

    def close(self) -> None:
        """Leave the group (its other members take over at once) and release the file."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.group is not None:
                with _translated(self._path, "leaving the group"), _immediate(self._conn):
                    self._conn.execute(
                        "DELETE FROM members WHERE grp = ? AND member = ?",
                        (self.group, self._member),
                    )
        finally:
            self._conn.close()

    def __repr__(self) -> str:
        return f"EmbeddedReader(topics={sorted(self._topics)}, group={self.group!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise LogError("the reader is closed")

    # -- reading ------------------------------------------------------------------

    def _fetch(self, max_records: int) -> list[StoredRecord]:
        positions = self._positions
        if not positions:
            return []
        names = self._names
        ends: dict[TopicPartition, int] = {}
        for topic_id, part, start, end in self._conn.execute(self._bounds_sql, self._ids):
            tp = (names[topic_id], part)
            position = positions.get(tp)
            if position is not None and position < end:
                if position < start:  # retention passed this reader by
                    positions[tp] = start
                ends[tp] = end
        if not ends:
            return []
        ready = list(ends)
        turn = self._turn % len(ready)
        self._turn += 1
        ready = ready[turn:] + ready[:turn]
        records: list[StoredRecord] = []
        budget = max_records
        execute = self._conn.execute
        decode = _decode_headers
        while ready and budget > 0:
            share = max(1, budget // len(ready))
            unfinished: list[TopicPartition] = []
            for tp in ready:
                if budget <= 0:
                    break
                name, part = tp
                take = min(share, budget)
                rows = execute(
                    _FETCH, (self._topics[name].id, part, positions[tp], take)
                ).fetchall()
                if not rows:
                    continue
                records += [
                    StoredRecord(name, part, offset, key, value, ts,
                                 () if headers is None else decode(headers))
                    for offset, key, value, ts, headers in rows
                ]
                positions[tp] = rows[-1][0] + 1
                budget -= len(rows)
                if len(rows) == take and positions[tp] < ends[tp]:
                    unfinished.append(tp)
            ready = unfinished
        return records

    def _bounds(self) -> dict[TopicPartition, _Position]:
        """Start and end offsets of every subscribed partition, with the group's commits."""
        names = self._names
        committed: dict[TopicPartition, int] = {}
        if self.group is not None:
            for topic_id, part, offset in self._conn.execute(
                "SELECT topic_id, part, next_offset FROM commits WHERE grp = ?", (self.group,)
            ):
                if topic_id in names:
                    committed[(names[topic_id], part)] = offset
        return {
            (tp := (names[topic_id], part)): _Position(start, end, committed.get(tp))
            for topic_id, part, start, end in self._conn.execute(self._bounds_sql, self._ids)
        }

    def _starts(
        self, partitions: Sequence[TopicPartition], bounds: Mapping[TopicPartition, _Position]
    ) -> dict[TopicPartition, int]:
        """Where new partitions begin: the commit, else ``start``; never before the log start."""
        starts: dict[TopicPartition, int] = {}
        for tp in partitions:
            bound = bounds[tp]
            if bound.committed is not None:
                starts[tp] = max(bound.committed, bound.start)
            else:
                starts[tp] = bound.start if self._start == "earliest" else bound.end
        return starts

    # -- group membership ---------------------------------------------------------

    def _refresh(self, *, force: bool = False) -> None:
        """Renew the lease when due and adopt a new share if the membership changed."""
        lapsed = False
        if force or time.monotonic() - self._renewed >= self._renew_every:
            lapsed = self._renew() and not force
        members = self._live_members(_now_ms())
        if not (force or lapsed or members != self._members):
            return
        self._members = members
        mine = self._share(members)
        # After a lapse others may have read and committed our partitions: start afresh.
        kept = {} if lapsed else self._positions
        positions = {tp: kept[tp] for tp in sorted(mine) if tp in kept}
        fresh = [tp for tp in sorted(mine) if tp not in kept]
        if fresh:
            positions.update(self._starts(fresh, self._bounds()))
        self._positions = {tp: positions[tp] for tp in sorted(positions)}

    def _renew(self) -> bool:
        """Extend this member's lease; True if it had lapsed (or was never taken)."""
        assert self.group is not None
        with _immediate(self._conn):
            now = _now_ms()
            row = self._conn.execute(
                "SELECT expires_ms FROM members WHERE grp = ? AND member = ?",
                (self.group, self._member),
            ).fetchone()
            self._conn.execute(
                "INSERT OR REPLACE INTO members (grp, member, topics, expires_ms) "
                "VALUES (?, ?, ?, ?)",
                (self.group, self._member, self._subscription, now + self._timeout_ms),
            )
            self._conn.execute(
                "DELETE FROM members WHERE grp = ? AND expires_ms < ?", (self.group, now)
            )
        self._renewed = time.monotonic()
        return row is None or row[0] < now

    def _live_members(self, now: int) -> tuple[tuple[str, str], ...]:
        return tuple(self._conn.execute(_LIVE_MEMBERS, (self.group, now)).fetchall())

    def _share(self, members: Sequence[tuple[str, str]]) -> set[TopicPartition]:
        """This member's partitions: all subscribed partitions dealt round-robin to ``members``."""
        subscriptions = [(member, frozenset(json.loads(topics))) for member, topics in members]
        names = sorted(set().union(*(topics for _, topics in subscriptions)))
        counts = {name: self._partition_count(name) for name in names}
        mine: set[TopicPartition] = set()
        turn = 0
        for name in names:
            for part in range(counts[name]):
                for step in range(len(subscriptions)):
                    member, topics = subscriptions[(turn + step) % len(subscriptions)]
                    if name in topics:
                        if member == self._member:
                            mine.add((name, part))
                        turn = (turn + step + 1) % len(subscriptions)
                        break
        return mine

    def _partition_count(self, name: str) -> int:
        topic = self._topics.get(name) or self._foreign.get(name)
        if topic is None:  # a topic only other members read
            topic = self._foreign[name] = _lookup_topic(self._conn, name, self._path)
        return topic.partitions
