"""What every ``Transport`` promises, checked on both backends (embedded SQLite and Kafka)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import pytest

from ingest.log.transport import (
    LogError,
    OutgoingRecord,
    Reader,
    StoredRecord,
    TopicPartition,
    Transport,
    UnknownTopicError,
)

DEADLINE_S = 30.0

MakeTransport = Callable[[], Transport]
Unique = Callable[[str], str]


def records_for(topic: str, partitions: int, count: int) -> list[OutgoingRecord]:
    """``count`` records dealt round-robin over the partitions, values numbered in order."""
    return [
        OutgoingRecord(topic, i % partitions, f"key-{i}".encode(), f"value-{i}".encode())
        for i in range(count)
    ]


def read(reader: Reader, count: int, *, deadline_s: float = DEADLINE_S) -> list[StoredRecord]:
    """Poll until ``count`` records arrived; fail after ``deadline_s``."""
    got: list[StoredRecord] = []
    end = time.monotonic() + deadline_s
    while len(got) < count:
        if time.monotonic() > end:
            raise AssertionError(f"only {len(got)} of {count} records within {deadline_s} s")
        got += reader.poll(max_records=count - len(got), timeout=0.5)
    assert len(got) == count, f"asked for {count} records, got {len(got)}"
    return got


def by_partition(records: Iterable[StoredRecord]) -> dict[int, list[StoredRecord]]:
    """Records grouped by partition, each group in the order received."""
    grouped: dict[int, list[StoredRecord]] = defaultdict(list)
    for record in records:
        grouped[record.partition].append(record)
    return dict(grouped)


def positions_after(records: Iterable[StoredRecord]) -> dict[TopicPartition, int]:
    """The next offset to read of each partition after ``records``."""
    return {(r.topic, r.partition): r.offset + 1 for r in records}


def test_offsets_count_from_zero_in_order_per_partition(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic = unique("ordered")
    transport.ensure_topics({topic: 3})
    assert transport.partition_count(topic) == 3
    transport.append(records_for(topic, 3, 30))
    transport.append(records_for(topic, 3, 30)[:6])
    with transport.reader(topics=[topic], group=None) as reader:
        got = read(reader, 36)
    grouped = by_partition(got)
    assert sorted(grouped) == [0, 1, 2]
    for partition, records in grouped.items():
        assert [r.offset for r in records] == list(range(12))
        assert all(r.topic == topic for r in records)
        expected = [f"value-{i}".encode() for i in range(partition, 30, 3)]
        expected += [f"value-{i}".encode() for i in range(partition, 6, 3)]
        assert [r.value for r in records] == expected


def test_keys_headers_and_empty_values_round_trip(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic = unique("shapes")
    transport.ensure_topics({topic: 1})
    sent = [
        OutgoingRecord(topic, 0, None, b""),
        OutgoingRecord(topic, 0, b"", b"empty key"),
        OutgoingRecord(topic, 0, b"k", bytes(range(256)), (("trace", b"t-1"),)),
        OutgoingRecord(
            topic, 0, b"\x00\xff", b"{}",
            (("a", b"1"), ("a", b"2"), ("blank", b"\x00"), ("ünïcode", "ü".encode())),
        ),
    ]
    before_ms = int(time.time() * 1000)
    transport.append(sent)
    with transport.reader(topics=[topic], group=None) as reader:
        got = read(reader, len(sent))
    assert [(r.key, r.value, r.headers) for r in got] == [
        (s.key, s.value, s.headers) for s in sent
    ]
    assert [r.offset for r in got] == [0, 1, 2, 3]
    assert all(abs(r.timestamp_ms - before_ms) < 60_000 for r in got)


def test_a_group_resumes_after_its_last_commit_and_redelivers_the_rest(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic, group = unique("resume"), unique("group")
    transport.ensure_topics({topic: 2})
    transport.append(records_for(topic, 2, 20))
    with transport.reader(topics=[topic], group=group) as reader:
        got = read(reader, 20)
        grouped = by_partition(got)
        # Commit part of what was read: 6 records of partition 0, 4 of partition 1.
        reader.commit({(topic, 0): grouped[0][5].offset + 1, (topic, 1): grouped[1][3].offset + 1})
        assert reader.committed() == {(topic, 0): 6, (topic, 1): 4}

    restarted = make_transport()
    with restarted.reader(topics=[topic], group=group) as reader:
        again = read(reader, 10)
        assert reader.committed() == {(topic, 0): 6, (topic, 1): 4}
        assert reader.poll(max_records=10, timeout=1.0) == []
    assert {p: [r.offset for r in rs] for p, rs in by_partition(again).items()} == {
        0: [6, 7, 8, 9],
        1: [4, 5, 6, 7, 8, 9],
    }
    assert {(r.partition, r.offset): r.value for r in again} == {
        (r.partition, r.offset): r.value for r in got if r.offset >= (6, 4)[r.partition]
    }


def test_a_group_without_commits_starts_at_the_earliest_record(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic = unique("fresh")
    transport.ensure_topics({topic: 2})
    transport.append(records_for(topic, 2, 8))
    with transport.reader(topics=[topic], group=unique("group")) as reader:
        got = read(reader, 8)
        assert reader.committed() == {}
    assert {p: [r.offset for r in rs] for p, rs in by_partition(got).items()} == {
        0: [0, 1, 2, 3],
        1: [0, 1, 2, 3],
    }


@pytest.mark.parametrize("grouped", [False, True], ids=["alone", "in-group"])
def test_seek_to_beginning_replays_the_same_records(
    make_transport: MakeTransport, unique: Unique, grouped: bool
) -> None:
    transport = make_transport()
    topic = unique("replay")
    transport.ensure_topics({topic: 3})
    transport.append(records_for(topic, 3, 24))
    group = unique("group") if grouped else None
    with transport.reader(topics=[topic], group=group) as reader:
        first = read(reader, 24)
        reader.seek_to_beginning()
        second = read(reader, 24)
    assert by_partition(second) == by_partition(first)


def test_a_reader_without_a_group_cannot_commit(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic = unique("nogroup")
    transport.ensure_topics({topic: 1})
    transport.append(records_for(topic, 1, 2))
    with transport.reader(topics=[topic], group=None) as reader:
        got = read(reader, 2)
        with pytest.raises(LogError, match="group"):
            reader.commit(positions_after(got))
        assert reader.committed() == {}


def test_two_members_of_a_group_share_the_partitions_and_each_record_once(
    make_transport: MakeTransport, unique: Unique
) -> None:
    transport = make_transport()
    topic, group = unique("shared"), unique("group")
    partitions = 4
    everything = frozenset((topic, p) for p in range(partitions))
    transport.ensure_topics({topic: partitions})
    first = transport.reader(topics=[topic], group=group)
    second = make_transport().reader(topics=[topic], group=group)
    readers = (first, second)

    def settled() -> bool:
        a, b = (reader.assignment() for reader in readers)
        return bool(a) and bool(b) and not a & b and a | b == everything

    end = time.monotonic() + DEADLINE_S
    stable = 0
    while stable < 2:  # the split must hold on two rounds in a row
        assert time.monotonic() < end, "the group did not settle on a split of the partitions"
        for reader in readers:
            assert reader.poll(max_records=10, timeout=0.2) == []
        stable = stable + 1 if settled() else 0

    transport.append(records_for(topic, partitions, 80))
    end = time.monotonic() + DEADLINE_S
    received: dict[int, list[StoredRecord]] = {0: [], 1: []}
    while sum(map(len, received.values())) < 80:
        assert time.monotonic() < end, f"only {sum(map(len, received.values()))} of 80 records"
        for index, reader in enumerate(readers):
            got = reader.poll(max_records=16, timeout=0.2)
            if got:
                reader.commit(positions_after(got))
                received[index] += got
    for reader in readers:
        assert reader.poll(max_records=10, timeout=0.5) == []

    seen = [(r.partition, r.offset) for records in received.values() for r in records]
    assert sorted(seen) == sorted((p, o) for p in range(partitions) for o in range(20))
    committed: dict[TopicPartition, int] = {}
    for index, reader in enumerate(readers):
        assert received[index], f"reader {index} received nothing"
        assert {(r.topic, r.partition) for r in received[index]} <= reader.assignment()
        committed |= reader.committed()
    assert committed == {(topic, p): 20 for p in range(partitions)}
    first.close()
    second.close()


def test_unknown_topics_are_refused(make_transport: MakeTransport, unique: Unique) -> None:
    transport = make_transport()
    missing = unique("missing")
    with pytest.raises(UnknownTopicError, match=missing):
        transport.append([OutgoingRecord(missing, 0, None, b"x")])
    with pytest.raises(UnknownTopicError, match=missing):
        transport.partition_count(missing)
