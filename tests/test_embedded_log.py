"""The embedded SQLite log: crash durability, several processes, group leases, retention, errors."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.log.embedded import (
    CommitFailedError,
    EmbeddedReader,
    EmbeddedTransport,
    NoGroupError,
    NotAnEventLogError,
    Retention,
)
from ingest.log.transport import OutgoingRecord, StoredRecord, UnknownTopicError

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 10.0

# Appends numbered records to ``topic``; prints the count acknowledged after each batch.
APPENDER = textwrap.dedent(
    """
    import sys
    from ingest.log.embedded import EmbeddedTransport
    from ingest.log.transport import OutgoingRecord

    path, topic, tag = sys.argv[1:4]
    batches, size, partitions = map(int, sys.argv[4:7])
    transport = EmbeddedTransport(path)
    print("ready", flush=True)
    sys.stdin.readline()
    sent = 0
    while batches == 0 or sent < batches * size:
        transport.append([
            OutgoingRecord(topic, n % partitions, tag.encode(), f"{tag}:{n}:".encode() * 20)
            for n in range(sent, sent + size)
        ])
        sent += size
        print(sent, flush=True)
    transport.close()
    """
)


def value_of(tag: str, n: int) -> bytes:
    return f"{tag}:{n}:".encode() * 20


def start_appender(
    path: Path, topic: str, tag: str, *, batches: int, size: int, partitions: int = 1
) -> subprocess.Popen[str]:
    """An appender process, started and waiting for a line on stdin to begin."""
    child = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(path), topic, tag, str(batches), str(size),
         str(partitions)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    return child


def go(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


def read_all(reader: EmbeddedReader) -> list[StoredRecord]:
    """Everything the reader can read now."""
    records: list[StoredRecord] = []
    while batch := reader.poll(max_records=5_000, timeout=0):
        records += batch
    return records


def read(reader: EmbeddedReader, count: int) -> list[StoredRecord]:
    """Poll until ``count`` records arrived (failing after ``DEADLINE_S``)."""
    records: list[StoredRecord] = []
    end = time.monotonic() + DEADLINE_S
    while len(records) < count:
        assert time.monotonic() < end, f"only {len(records)} of {count} records"
        records += reader.poll(max_records=count - len(records), timeout=0.2)
    return records


def numbered(topic: str, count: int, partitions: int = 1) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(topic, n % partitions, None, f"r{n}".encode()) for n in range(count)
    ]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite3"


@pytest.fixture
def log(path: Path) -> Iterator[EmbeddedTransport]:
    with EmbeddedTransport(path) as transport:
        yield transport


# -- durability and several processes ---------------------------------------------


def test_every_acknowledged_record_survives_kill_9(path: Path, log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 1})
    child = start_appender(path, "calls", "w", batches=0, size=500)
    assert child.stdout is not None
    go(child)
    acknowledged = 0
    while acknowledged < 5_000:
        line = child.stdout.readline()
        assert line, "the appender died"
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    # Batches acknowledged before the signal may still be in the pipe.
    for line in child.stdout:
        if line.endswith("\n"):
            acknowledged = int(line)
    assert child.wait(timeout=DEADLINE_S) == -signal.SIGKILL

    with EmbeddedTransport(path) as reopened, reopened.reader(
        topics=["calls"], group=None
    ) as reader:
        records = read_all(reader)
    assert len(records) >= acknowledged
    assert [r.offset for r in records] == list(range(len(records)))
    assert all(r.value == value_of("w", r.offset) and r.key == b"w" for r in records)


def test_two_processes_append_to_one_topic_without_losing_or_reusing_offsets(
    path: Path, log: EmbeddedTransport
) -> None:
    log.ensure_topics({"calls": 2})
    children = [
        start_appender(path, "calls", tag, batches=40, size=100, partitions=2)
        for tag in ("a", "b")
    ]
    for child in children:
        go(child)
    for child in children:
        assert child.wait(timeout=60) == 0

    with log.reader(topics=["calls"], group=None) as reader:
        records = read_all(reader)
    assert len(records) == 2 * 40 * 100
    sequences: dict[tuple[int, bytes | None], list[int]] = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for record in records:
        offsets[record.partition].append(record.offset)
        tag, n, _ = record.value.decode().split(":", 2)
        assert record.value == value_of(tag, int(n))
        sequences[(record.partition, record.key)].append(int(n))
    assert offsets == {p: list(range(4_000)) for p in (0, 1)}
    for (partition, key), ns in sequences.items():
        assert ns == list(range(partition, 4_000, 2)), f"writer {key!r} on partition {partition}"
    assert log.high_watermarks("calls") == {0: 4_000, 1: 4_000}


# -- consumer groups ------------------------------------------------------------------


def test_members_split_partitions_and_take_over_when_one_closes(path: Path) -> None:
    first, second = EmbeddedTransport(path), EmbeddedTransport(path)
    first.ensure_topics({"calls": 4})
    first.append(numbered("calls", 40, partitions=4))
    a = first.reader(topics=["calls"], group="g")
    b = second.reader(topics=["calls"], group="g")
    assert len(a.poll(max_records=100, timeout=0)) == 20
    assert len(b.poll(max_records=100, timeout=0)) == 20
    assert a.assignment() == {("calls", 0), ("calls", 2)}
    assert b.assignment() == {("calls", 1), ("calls", 3)}
    a.commit({("calls", 0): 4, ("calls", 2): 7})
    with pytest.raises(CommitFailedError, match=r"calls \[1\].*rebalanced"):
        a.commit({("calls", 1): 1})

    a.close()
    taken = read(b, 6 + 3)
    assert b.assignment() == {("calls", p) for p in range(4)}
    assert sorted((r.partition, r.offset) for r in taken) == [
        (0, o) for o in range(4, 10)
    ] + [(2, o) for o in range(7, 10)]
    first.close()
    second.close()


def test_a_member_that_stops_polling_loses_its_partitions(path: Path) -> None:
    first = EmbeddedTransport(path, member_timeout=0.5, poll_interval=0.01)
    second = EmbeddedTransport(path, member_timeout=0.5, poll_interval=0.01)
    first.ensure_topics({"calls": 2})
    first.append(numbered("calls", 10, partitions=2))
    a = first.reader(topics=["calls"], group="g")
    b = second.reader(topics=["calls"], group="g")
    assert [r.partition for r in read(a, 5)] == [0] * 5
    assert [r.partition for r in read(b, 5)] == [1] * 5
    a.commit({("calls", 0): 3})

    end = time.monotonic() + DEADLINE_S
    taken: list[StoredRecord] = []
    while len(b.assignment()) < 2:  # a is silent; its lease runs out
        assert time.monotonic() < end, "the silent member kept its partitions"
        taken += b.poll(max_records=10, timeout=0.05)
    assert b.committed() == {("calls", 0): 3}
    with pytest.raises(CommitFailedError, match="did not poll within"):
        a.commit({("calls", 0): 5})

    # b resumed partition 0 at the commit; a, back, starts over from the commits too.
    first.append(numbered("calls", 2, partitions=2))
    taken += read(b, 4 - len(taken))
    assert sorted((r.partition, r.offset) for r in taken) == [(0, 3), (0, 4), (0, 5), (1, 5)]
    b.commit({("calls", 0): 6, ("calls", 1): 6})
    assert a.poll(max_records=10, timeout=0) == []
    assert a.assignment() == {("calls", 0)}
    with pytest.raises(CommitFailedError, match=r"calls \[0\]"):
        b.commit({("calls", 0): 6})
    first.close()
    second.close()


def test_a_group_member_starting_at_latest_skips_what_is_there(log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 1})
    log.append(numbered("calls", 3))
    with log.reader(topics=["calls"], group="g", start="latest") as reader:
        assert reader.poll(max_records=10, timeout=0) == []
        log.append(numbered("calls", 1))
        assert [r.offset for r in reader.poll(max_records=10, timeout=0)] == [3]


# -- polling ----------------------------------------------------------------------------


def test_poll_waits_for_records_from_another_connection(path: Path, log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 1})
    with log.reader(topics=["calls"], group=None) as reader:
        started = time.monotonic()
        assert reader.poll(max_records=10, timeout=0.1) == []
        assert time.monotonic() - started >= 0.1
        with EmbeddedTransport(path) as other:
            timer = threading.Timer(0.2, other.append, [numbered("calls", 1)])
            timer.start()
            started = time.monotonic()
            assert len(reader.poll(max_records=10, timeout=DEADLINE_S)) == 1
            assert time.monotonic() - started < DEADLINE_S / 2
            timer.join()


def test_a_busy_partition_does_not_starve_the_others(log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 3})
    log.append([OutgoingRecord("calls", 0, None, b"x")] * 1_000)
    log.append([OutgoingRecord("calls", p, None, b"y") for p in (1, 2) for _ in range(5)])
    with log.reader(topics=["calls"], group=None) as reader:
        first = reader.poll(max_records=100, timeout=0)
    assert len(first) == 100
    counts = {p: sum(r.partition == p for r in first) for p in range(3)}
    assert counts == {0: 90, 1: 5, 2: 5}


# -- retention ------------------------------------------------------------------------


def test_retention_by_count_moves_the_log_start_and_never_reuses_offsets(path: Path) -> None:
    with EmbeddedTransport(path, retention={"calls": Retention(max_records=5)}) as log:
        log.ensure_topics({"calls": 2, "other": 1})
        log.append(numbered("calls", 24, partitions=2) + numbered("other", 3))
        with log.reader(topics=["calls"], group="g") as reader:
            assert len(read(reader, 4)) == 4
            reader.commit({("calls", 0): 2, ("calls", 1): 2})
        lagging = log.reader(topics=["calls"], group=None)
        assert len(lagging.poll(max_records=6, timeout=0)) == 6

        assert log.enforce_retention() == {"calls": 14}
        assert log.enforce_retention() == {"calls": 0}
        assert log.log_start_offsets("calls") == {0: 7, 1: 7}
        assert log.high_watermarks("calls") == {0: 12, 1: 12}
        assert log.log_start_offsets("other") == {0: 0}

        log.append(numbered("calls", 2, partitions=2))
        assert log.high_watermarks("calls") == {0: 13, 1: 13}
        expected = [(p, o) for p in (0, 1) for o in range(7, 13)]
        assert sorted((r.partition, r.offset) for r in read_all(lagging)) == expected
        with log.reader(topics=["calls"], group="g") as reader:
            # The group's commit (2) fell below the log start (7): it resumes there.
            resumed = read_all(reader)
            assert reader.committed() == {("calls", 0): 2, ("calls", 1): 2}
            reader.seek_to_beginning()
            replayed = read_all(reader)
        assert sorted((r.partition, r.offset) for r in resumed) == expected
        assert sorted(replayed, key=lambda r: (r.partition, r.offset)) == sorted(
            resumed, key=lambda r: (r.partition, r.offset)
        )


def test_retention_by_age_deletes_the_records_older_than_the_limit(path: Path) -> None:
    with EmbeddedTransport(path, retention={"calls": Retention(max_age_ms=1_000)}) as log:
        log.ensure_topics({"calls": 1})
        log.append(numbered("calls", 3))
        tick = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 <= tick:
            time.sleep(0.001)
        log.append(numbered("calls", 2))
        with log.reader(topics=["calls"], group=None) as reader:
            stamps = [r.timestamp_ms for r in read_all(reader)]
        assert stamps[2] < stamps[3]

        assert log.enforce_retention(now_ms=stamps[3] + 1_000) == {"calls": 3}
        assert log.log_start_offsets("calls") == {0: 3}
        assert log.enforce_retention(now_ms=stamps[4] + 1_001) == {"calls": 2}
        assert log.log_start_offsets("calls") == log.high_watermarks("calls") == {0: 5}
        log.append(numbered("calls", 1))
        with log.reader(topics=["calls"], group=None) as reader:
            assert [r.offset for r in read_all(reader)] == [5]


# -- errors ------------------------------------------------------------------------------


def test_appending_to_an_unknown_topic_says_to_create_it(log: EmbeddedTransport) -> None:
    with pytest.raises(UnknownTopicError, match=r"'nope'.*call ensure_topics first"):
        log.append([OutgoingRecord("nope", 0, None, b"x")])
    with pytest.raises(UnknownTopicError, match="'nope'"):
        log.reader(topics=["nope"], group=None)


def test_ensure_topics_keeps_existing_topics(log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 2})
    log.ensure_topics({"calls": 5, "agents": 3})
    assert (log.partition_count("calls"), log.partition_count("agents")) == (2, 3)
    with pytest.raises(ValueError, match="at least one partition"):
        log.ensure_topics({"empty": 0})


def test_a_partition_out_of_range_is_refused_and_nothing_is_appended(
    log: EmbeddedTransport,
) -> None:
    log.ensure_topics({"calls": 2})
    with pytest.raises(ValueError, match=r"partition 2 of topic 'calls' does not exist"):
        log.append([OutgoingRecord("calls", 0, None, b"ok"), OutgoingRecord("calls", 2, None, b"")])
    assert log.high_watermarks("calls") == {0: 0, 1: 0}
    with pytest.raises(TypeError, match="must be bytes"):
        log.append([OutgoingRecord("calls", 0, None, "text")])  # type: ignore[arg-type]


def test_a_reader_without_a_group_cannot_commit(log: EmbeddedTransport) -> None:
    log.ensure_topics({"calls": 1})
    with log.reader(topics=["calls"], group=None) as reader, pytest.raises(
        NoGroupError, match="no consumer group"
    ):
        reader.commit({("calls", 0): 1})


def test_files_that_are_not_event_logs_are_refused_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"these are not the records you are looking for\n" * 100)
    with pytest.raises(NotAnEventLogError, match="not a queuecast event log"):
        EmbeddedTransport(garbage)

    foreign = tmp_path / "other.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    conn.close()
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    with pytest.raises(NotAnEventLogError, match="SQLite database but not a queuecast event log"):
        EmbeddedTransport(foreign)
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "other.sqlite3-wal").exists()

    with pytest.raises(NotAnEventLogError, match="directory"):
        EmbeddedTransport(tmp_path)


def test_options_are_checked(path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        EmbeddedTransport(path, durability="disk")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="member_timeout"):
        EmbeddedTransport(path, member_timeout=0)
    with pytest.raises(ValueError, match="max_records"):
        Retention(max_records=-1)
    with EmbeddedTransport(path, durability="power") as log:
        log.ensure_topics({"calls": 1})
        log.append(numbered("calls", 1))
        assert log.high_watermarks("calls") == {0: 1}
