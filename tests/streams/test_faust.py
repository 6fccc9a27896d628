"""The Faust host against the Tansu broker: one recorded stream through the Faust worker
and the in-process host gives the same boards and the same fact rows (issue 4)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from support import demo_events

from ingest.contract import Event
from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from ingest.log.kafka import KafkaTransport
from ingest.tansu import TansuBroker
from streams.facts import FACT_TABLES
from streams.runner import StreamsRunner
from streams.sink import WarehouseSink
from warehouse.client import ChdbWarehouse
from warehouse.digest import table_digest
from warehouse.migrations import migrate

pytestmark = pytest.mark.kafka


def first_hour(events: list[Event]) -> list[Event]:
    """The calls offered in the first simulated hour, whole, and the agents' events until
    those calls are over (plus ten minutes for after-call work)."""
    start = min(e.occurred_at for e in events)
    calls = {e.payload.call_id for e in events
             if e.type == "call.offered" and e.occurred_at < start + timedelta(hours=1)}
    chosen = [e for e in events if getattr(e.payload, "call_id", None) in calls
              and e.type.startswith("call.")]
    cutoff = max(e.occurred_at for e in chosen) + timedelta(minutes=10)
    return [e for e in events if (e.type.startswith("call.") and e in chosen)
            or (e.type.startswith("agent.") and e.occurred_at <= cutoff)]


def close(value: float | None) -> object:
    """Equal up to float summation order (the hosts add in different orders)."""
    return None if value is None else pytest.approx(value, rel=1e-12)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_faust_worker_equals_the_in_process_host(kafka_broker: TansuBroker, tmp_path: Path,
                                                 unique: Callable[[str], str]) -> None:
    recorded = first_hour(list(demo_events(seed=21)))

    # the in-process host
    with EventLog(EmbeddedTransport(tmp_path / "events.sqlite3")) as log:
        log.produce(recorded)
        with ChdbWarehouse(tmp_path / "in-process") as warehouse:
            migrate(warehouse)
            runner = StreamsRunner(log, WarehouseSink(warehouse))
            runner.run(until_idle=True, idle_s=0.3)
            want_tables = {t: table_digest(warehouse, t) for t in FACT_TABLES}
    now = runner.boards.last_at
    assert now is not None
    want = runner.boards.snapshot(now)
    assert want_tables["calls"].rows > 100

    # the Faust worker on the broker
    namespace, port = unique("qc"), free_port()
    with EventLog(KafkaTransport(kafka_broker.bootstrap), namespace=namespace) as kafka_log:
        kafka_log.produce(recorded)
    env = {**os.environ, "QUEUECAST_HOME": str(tmp_path / "faust"),
           "QUEUECAST_EVENT_LOG": f"kafka://{kafka_broker.bootstrap}",
           "QUEUECAST_EVENT_LOG__NAMESPACE": namespace,
           "QUEUECAST_STREAMS__GROUP": unique("faust"), "QUEUECAST_LOG_LEVEL": "WARNING"}
    log_file = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "queuecast", "streams", "worker",
                               "--web-port", str(port)], env=env, stdout=log_file,
                              stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        want_rows = {t: d.rows for t, d in want_tables.items()}
        wait_for(lambda: get(f"{base}/streams/status")["written"] == want_rows,
                 timeout=150, what=f"the worker's fact rows {want_rows}")
        wait_for(lambda: sum(q["offered"] for q in get(f"{base}/boards/queues")["queues"])
                 == sum(q.offered for q in want["queues"]), timeout=30,
                 what="the worker's queue boards")
        got_queues = get(f"{base}/boards/queues")["queues"]
        got_agents = get(f"{base}/boards/agents")["agents"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log_file.close()
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]

    for mine, theirs in zip(want["queues"], got_queues, strict=True):
        assert theirs["queue"] == mine.queue
        for name in ("waiting", "offered", "answered", "abandoned", "overflowed"):
            assert theirs[name] == getattr(mine, name), (mine.queue, name)
        for name in ("service_level", "asa_s", "aht_s", "abandon_rate", "longest_wait_s"):
            assert theirs[name] == close(getattr(mine, name)), name
        assert theirs["agents_by_state"] == dict(mine.agents_by_state)
    assert [a["agent_id"] for a in got_agents] == [a.agent_id for a in want["agents"]]
    for mine, theirs in zip(want["agents"], got_agents, strict=True):
        assert (theirs["state"], theirs["calls_today"]) == (mine.state, mine.calls_today)
        assert theirs["talk_s"] == close(mine.talk_s)

    with ChdbWarehouse(tmp_path / "faust" / "warehouse") as warehouse:
        got_tables = {t: table_digest(warehouse, t) for t in FACT_TABLES}
    assert got_tables == want_tables
