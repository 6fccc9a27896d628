"""Shared fixtures: the Tansu test broker (one per session) and both log transports."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clickhouse_fixtures import (  # noqa: F401  (fixtures for tests/warehouse and tests/streams)
    clickhouse_server,
    database,
    warehouse,
)

from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from ingest.log.kafka import KafkaTransport
from ingest.log.transport import Transport
from ingest.tansu import TansuBroker

BACKENDS = ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TansuBroker]:
    """A Tansu broker on a free loopback port for the whole session."""
    with TansuBroker() as broker:
        yield broker


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that no other test uses (topics and groups live as long as the session broker)."""
    token = uuid.uuid4().hex[:10]
    return lambda name: f"{name}-{token}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: ``embedded`` and ``kafka``."""
    return request.param


@pytest.fixture
def make_transport(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Transport]]:
    """Open a new transport over the same underlying log (call again to simulate a restart)."""
    opened: list[Transport] = []

    def factory() -> Transport:
        transport: Transport
        if backend == "embedded":
            transport = EmbeddedTransport(tmp_path / "eventlog.sqlite3")
        else:
            broker: TansuBroker = request.getfixturevalue("kafka_broker")
            transport = KafkaTransport(broker.bootstrap)
        opened.append(transport)
        return transport

    yield factory
    for transport in opened:
        transport.close()


@pytest.fixture
def make_log(
    make_transport: Callable[[], Transport], unique: Callable[[str], str]
) -> Callable[[], EventLog]:
    """Open an EventLog in a namespace of its own (call again to reopen the same log)."""
    namespace = unique("qc")
    return lambda: EventLog(make_transport(), namespace=namespace)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh QUEUECAST_HOME (and working folder) for commands run in-process."""
    folder = tmp_path / "home"
    monkeypatch.setenv("QUEUECAST_HOME", str(folder))
    monkeypatch.setenv("QUEUECAST_LOG_LEVEL", "ERROR")
    monkeypatch.chdir(tmp_path)
    return folder
