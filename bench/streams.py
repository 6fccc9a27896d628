"""Streams host: throughput of the projections and event-to-view latency (issue 4).

Targets: the in-process host folds >= 100,000 events/s through all projections on one core,
and at 1,000 events/s an event is on the live boards within 500 ms at the 99th percentile.
The events are one simulated day of the ``large`` scenario (seed 7); the Faust worker
(target >= 10,000 events/s) runs on the first 200,000 of them on a local Tansu broker.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bench.report import append_results
from callcore.simulator import Simulation
from ingest.contract import Event, Payload, encode_event
from ingest.log import Delivery, EventLog
from ingest.log.embedded import EmbeddedTransport
from streams.alarms import ActiveAlarm, AlarmKey, AlarmRule, evaluate
from streams.facts import FactRows, FactsState, advance, apply
from streams.runner import RunReport, StreamsRunner
from streams.sink import WarehouseSink
from streams.views import Boards, apply_boards
from warehouse.client import ChdbWarehouse
from warehouse.migrations import migrate

__all__ = ["FoldTiming", "Latency", "fold_in_memory", "produce_paced", "run"]

ROOT = Path(__file__).resolve().parents[1]
SCENARIO, SEED = "large", 7
BATCH = 10_000
"""Events per poll of the runner (``StreamsRunner.run(max_events=...)``)."""
GRACE = timedelta(minutes=30)
RULES = (  # the four rules of queuecast.example.toml, the service level on every queue
    AlarmRule("long-queue", "queue_length", 10, clear=5),
    AlarmRule("long-wait", "longest_wait", 120),
    AlarmRule("low-sl", "service_level", 0.8, clear=0.85, window_minutes=60, min_calls=20),
    AlarmRule("not-ready", "not_ready_share", 0.5),
)

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "ungathered": {"gather": False},
    "facts": {"boards": False, "rules": ()},
}
"""The in-memory passes: all projections as the runner folds them, and two for the split."""


def _simulate() -> list[Event[Payload]]:
    events: list[Event[Payload]] = []
    Simulation(SCENARIO, seed=SEED).run(on_events=events.extend)
    return events


@dataclass(slots=True)
class FoldTiming:
    """One in-memory pass: wall and CPU seconds in all, and the wall seconds of its
    ``facts.advance`` and alarm evaluations; ``alarm_events`` raised or cleared."""

    events: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    advance_seconds: float = 0.0
    alarm_seconds: float = 0.0
    alarm_events: int = 0

    @property
    def rate(self) -> float:
        """Events per wall-clock second."""
        return self.events / self.seconds

    @property
    def cpu_rate(self) -> float:
        """Events per CPU second of this process."""
        return self.events / self.cpu_seconds


def fold_in_memory(events: Sequence[Event[Payload]], *, boards: bool = True,
                   gather: bool = True, rules: Sequence[AlarmRule] = RULES) -> FoldTiming:
    """Fold ``events`` as the runner does, in batches of ``BATCH``: per event ``facts.apply``
    (with ``gather``, its rows gathered into the batch's ``FactRows``) and, with ``boards``,
    ``views.apply_boards``; per batch ``facts.advance`` to the batch's latest event time and,
    with ``rules``, every rule on every queue board."""
    facts, board = FactsState(), Boards()
    active: dict[AlarmKey, ActiveAlarm] = {}
    timing = FoldTiming(len(events))
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(events), BATCH):
        batch = events[start:start + BATCH]
        rows = FactRows()
        for event in batch:
            _, produced = apply(facts, event)
            if boards:
                apply_boards(board, event, produced.calls)
            if gather:
                rows.extend(produced)
        latest = max(e.occurred_at for e in batch)
        step = time.perf_counter()
        rows.extend(advance(facts, latest, grace=GRACE)[1])
        timing.advance_seconds += time.perf_counter() - step
        step = time.perf_counter()
        for queue in board.queues.values():
            active, raised = evaluate(active, queue, latest, rules, board.settings)
            timing.alarm_events += len(raised)
        timing.alarm_seconds += time.perf_counter() - step
    timing.seconds = time.perf_counter() - started
    timing.cpu_seconds = time.process_time() - cpu
    return timing


def _idle_core() -> int:
    """The core of this process's affinity that was idlest over the last 0.2 s."""
    def idle() -> dict[int, int]:
        ticks: dict[int, int] = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields_ = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks[int(name[3:])] = int(fields_[3]) + int(fields_[4])  # idle + iowait
        return ticks
    allowed = os.sched_getaffinity(0)
    try:
        before = idle()
        time.sleep(0.2)
        after = idle()
    except (OSError, ValueError, IndexError):
        return min(allowed)
    return max(allowed, key=lambda core: after.get(core, 0) - before.get(core, 0))


def _one_core(events: Sequence[Event[Payload]], options: dict[str, Any]) -> FoldTiming:
    """``fold_in_memory(events, **options)`` pinned to the idler core."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {_idle_core()})
    try:
        return fold_in_memory(events, **options)
    finally:
        os.sched_setaffinity(0, affinity)


# -- end to end and latency: a StreamsRunner on the embedded log and chdb ---------------


@dataclass(slots=True)
class Latency:
    """Per event: wall-clock seconds from ``recorded_at`` (stamped when the producer called
    ``produce``) to the end of the fold of the batch holding it, and whether that batch was
    the first polled after a sink write; per loop step, how long the fold and the sink's
    writes took."""

    seconds: list[float] = field(default_factory=list)
    after_write: list[bool] = field(default_factory=list)
    folds: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)


class _TimedRunner(StreamsRunner):
    """A runner that times its folds and writes and, given ``total``, records when each event
    reached the boards and stops after ``total`` events."""

    def __init__(self, log_: EventLog, sink: WarehouseSink, *, total: int | None,
                 stop: threading.Event) -> None:
        super().__init__(log_, sink, alarms=RULES)
        self.latency = Latency()
        self._total, self._stop, self._seen = total, stop, 0
        self._wrote = False

    def _fold(self, batch: Sequence[Delivery], committed: dict[tuple[str, int], int],
              report: RunReport) -> bool:
        started = time.perf_counter()
        live = super()._fold(batch, committed, report)
        now = time.time()  # the boards hold these events from here on
        if batch:
            self.latency.folds.append(time.perf_counter() - started)
        if self._total is None:
            return live
        for delivery in batch:
            recorded = delivery.event.recorded_at
            if recorded is not None:
                self.latency.seconds.append(now - recorded.timestamp())
                self.latency.after_write.append(self._wrote)
        if batch:
            self._wrote = False
        self._seen += len(batch)
        if self._seen >= self._total:
            self._stop.set()
        return live

    def _write(self, report: RunReport, stop: threading.Event) -> None:
        started = time.perf_counter()
        super()._write(report, stop)
        self.latency.writes.append(time.perf_counter() - started)
        self._wrote = True


def produce_paced(log_path: str, events_path: str, rate: float, batch: int) -> dict[str, float]:
    """Append the encoded events of ``events_path`` to the embedded log at ``log_path``,
    ``batch`` at a time at ``rate`` events/s (the child side); prints and returns figures."""
    values: list[bytes] = pickle.loads(Path(events_path).read_bytes())
    log = EventLog(EmbeddedTransport(log_path))
    lag = produce_s = 0.0
    started = time.monotonic()
    for start in range(0, len(values), batch):
        due = started + start / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        lag = max(lag, time.monotonic() - due)
        called = time.monotonic()
        log.produce_raw(values[start:start + batch], origin="bench")
        produce_s = max(produce_s, time.monotonic() - called)
    elapsed = time.monotonic() - started
    log.close()
    figures = {"events": len(values), "seconds": elapsed, "rate": len(values) / elapsed,
               "max_lag_s": lag, "max_produce_s": produce_s}
    print(json.dumps(figures))
    return figures


def _end_to_end(events: Sequence[Event[Payload]], folder: Path,
                progress: Progress) -> dict[str, Any]:
    """Produce ``events`` into an embedded log, then time a runner reading them all into a
    fresh chdb warehouse."""
    task = progress.add_task("end to end: produce to the embedded log", total=len(events))
    log = EventLog(EmbeddedTransport(folder / "events.sqlite3"))
    produced_in = time.perf_counter()
    for start in range(0, len(events), BATCH):
        log.produce(events[start:start + BATCH])
        progress.advance(task, min(BATCH, len(events) - start))
    produce_s = time.perf_counter() - produced_in
    warehouse = ChdbWarehouse(folder / "warehouse-e2e")
    try:
        migrate(warehouse)
        stop = threading.Event()
        runner = _TimedRunner(log, WarehouseSink(warehouse), total=None, stop=stop)
        task = progress.add_task("end to end: runner into chdb", total=len(events))
        report = runner.run(until_idle=True, idle_s=0.2, stop=stop, on_batch=lambda r: (
            progress.update(task, completed=r.events)))
    finally:
        warehouse.close()
        log.close()
    return {"report": report, "produce_s": produce_s, "timing": runner.latency}


def _paced(events: Sequence[Event[Payload]], folder: Path, progress: Progress, *,
           rate: float, batch: int) -> dict[str, Any]:
    """A producer process appends ``events`` at ``rate`` while a runner here folds them."""
    events_path = folder / "paced.pickle"
    events_path.write_bytes(pickle.dumps([encode_event(e) for e in events]))
    log_path = folder / "paced.sqlite3"
    log = EventLog(EmbeddedTransport(log_path))
    warehouse = ChdbWarehouse(folder / "warehouse-paced")
    code = (f"from bench.streams import produce_paced; produce_paced({str(log_path)!r}, "
            f"{str(events_path)!r}, {rate!r}, {batch!r})")
    try:
        migrate(warehouse)
        stop = threading.Event()
        runner = _TimedRunner(log, WarehouseSink(warehouse), total=len(events), stop=stop)
        task = progress.add_task(f"latency at {rate:,.0f} events/s", total=len(events))
        producer = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + len(events) / rate + 60

        def watch(report: RunReport) -> None:
            progress.update(task, completed=report.events)
            if time.monotonic() > deadline or producer.poll() not in (None, 0):
                stop.set()

        report = runner.run(stop=stop, on_batch=watch)
        out, err = producer.communicate(timeout=60)
    finally:
        warehouse.close()
        log.close()
    if producer.returncode != 0:
        raise RuntimeError(f"paced producer failed:\n{err}")
    if report.events != len(events):
        raise RuntimeError(f"latency run folded {report.events} of {len(events)} events")
    return {"producer": json.loads(out.strip().splitlines()[-1]), "timing": runner.latency}


def _rates(passes: Sequence[FoldTiming]) -> str:
    wall = sorted(p.rate for p in passes)
    cpu = statistics.median(p.cpu_rate for p in passes)
    return (f"{statistics.median(wall):,.0f} events/s (median of {len(passes)}: "
            + " / ".join(f"{r:,.0f}" for r in wall) + f"; per CPU second {cpu:,.0f})")


@dataclass(frozen=True, slots=True)
class _Split:
    """Latencies of the events folded right after a sink write (or of the others)."""

    count: int
    share: float
    p50: float
    p99: float

    @classmethod
    def of(cls, seconds: Sequence[float], after_write: Sequence[bool], wanted: bool) -> _Split:
        chosen = [s for s, flag in zip(seconds, after_write, strict=True) if flag is wanted]
        if not chosen:
            return cls(0, 0.0, 0.0, 0.0)
        return cls(len(chosen), len(chosen) / len(seconds), _quantile(chosen, 0.5),
                   _quantile(chosen, 0.99))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _faust(events: Sequence[Event[Payload]]) -> dict[str, float]:
    """Produce ``events`` to a fresh Tansu broker, start a Faust worker, and time it from
    its first event to its last fact row (the rows the fold completes, no flush)."""
    from ingest.log.kafka import KafkaTransport
    from ingest.tansu import TansuBroker

    state, expected = FactsState(), 0
    for event in events:
        state, rows = apply(state, event)
        expected += len(rows)
    with TansuBroker() as broker, tempfile.TemporaryDirectory() as home:
        with EventLog(KafkaTransport(broker.bootstrap), namespace="bench") as log:
            log.produce(events)
        port = _free_port()
        env = {**os.environ, "QUEUECAST_HOME": home,
               "QUEUECAST_EVENT_LOG": f"kafka://{broker.bootstrap}",
               "QUEUECAST_EVENT_LOG__NAMESPACE": "bench", "QUEUECAST_LOG_LEVEL": "ERROR",
               "QUEUECAST_STREAMS__GROUP": "bench-faust"}
        started = time.monotonic()
        worker = subprocess.Popen([sys.executable, "-m", "queuecast", "streams", "worker",
                                   "--web-port", str(port)], env=env, cwd=home,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = done = None
        try:
            while time.monotonic() - started < 600 and done is None:
                time.sleep(0.25)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/streams/status",
                                                timeout=5) as answer:
                        status = json.loads(answer.read())
                except OSError:
                    continue
                if first is None and status["watermark"] is not None:
                    first = time.monotonic()
                if sum(status["written"].values()) >= expected:
                    done = time.monotonic()
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    if first is None or done is None:
        raise RuntimeError("the Faust worker did not finish within 600 s")
    return {"events": len(events), "seconds": done - first, "startup": first - started,
            "rate": len(events) / (done - first)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(*, repeats: int = 3, paced_events: int = 60_000, rate: float = 1_000.0,
        paced_batch: int = 20, faust_events: int = 200_000) -> str:
    """Run the streams benchmarks and append the results; return the Markdown."""
    rows: list[list[str]] = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"simulating {SCENARIO} (seed {SEED})", total=None)
        events = _simulate()
        progress.remove_task(task)
        count = f"{len(events):,}"
        passes: dict[str, list[FoldTiming]] = {name: [] for name in VARIANTS}
        task = progress.add_task("in-memory fold, one core", total=len(VARIANTS) * repeats)
        for _ in range(repeats):  # interleaved, so a busy spell on the machine hits each
            for name, options in VARIANTS.items():
                passes[name].append(_one_core(events, options))
                progress.advance(task)
        full = passes["full"]
        rows.append(["in memory, one core: facts.apply + views.apply_boards per event, "
                     f"facts.advance + {len(RULES)} alarm rules on every queue per "
                     f"{BATCH:,} events", count, _rates(full), ">= 100,000 events/s"])
        rows.append(["the same without gathering each event's rows (`FactRows.extend`)",
                     count, _rates(passes["ungathered"]), "-"])
        rows.append(["facts.apply (rows gathered) + advance alone: no boards, no alarms", count,
                     _rates(passes["facts"]), "-"])
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            e2e = _end_to_end(events, folder, progress)
            paced = _paced(events[:paced_events], folder, progress, rate=rate,
                           batch=paced_batch)
    report: RunReport = e2e["report"]
    written = sum(report.written.values())
    e2e_timing: Latency = e2e["timing"]
    rows.append(["end to end (not the 100k target): StreamsRunner, embedded log decode + fold "
                 "+ alarms + chdb sink, run(until_idle=True, idle_s=0.2), 2 cores",
                 f"{report.events:,}",
                 f"{report.events / report.seconds:,.0f} events/s ({report.seconds:.1f} s, "
                 f"{written:,} rows written)", "-"])
    timing: Latency = paced["timing"]
    producer = paced["producer"]
    lat = timing.seconds
    rows.append([f"event-to-view latency at {rate:,.0f} events/s ({paced_batch} events every "
                 f"{paced_batch / rate * 1000:.0f} ms), StreamsRunner with alarms, chdb sink",
                 f"{len(lat):,}",
                 f"p50 {_ms(_quantile(lat, 0.5))} / p95 {_ms(_quantile(lat, 0.95))} / "
                 f"p99 {_ms(_quantile(lat, 0.99))} / max {_ms(max(lat))} ms at "
                 f"{producer['rate']:,.0f} events/s", "p99 <= 500 ms"])
    faust = _faust(events[:faust_events])
    rows.append(["Faust worker (`queuecast streams worker`) on the local Tansu broker, chdb "
                 "sink: from its first event to its last fact row", f"{faust['events']:,}",
                 f"{faust['rate']:,.0f} events/s ({faust['seconds']:.1f} s; "
                 f"{faust['startup']:.1f} s before the first event)", ">= 10,000 events/s"])
    writes = timing.writes
    agent_share = sum(e.type.startswith("agent.") for e in events) / len(events)
    after = _Split.of(lat, timing.after_write, True)
    other = _Split.of(lat, timing.after_write, False)
    notes = (
        f"Events: one simulated day of the `{SCENARIO}` scenario (seed {SEED}), "
        f"{len(events):,} events ({agent_share:.0%} agent events, the rest call events), "
        "generated once before any timing. In memory: the functions `StreamsRunner._fold` calls, "
        f"without a log or a sink, in batches of {BATCH:,} as the runner polls them: per event "
        "`facts.apply` (its rows gathered in one `FactRows` per batch) and "
        "`views.apply_boards` (queue and agent boards); per batch `facts.advance` to the "
        "batch's latest event time (30 min ACW grace) and `alarms.evaluate` of the four rules "
        "of queuecast.example.toml (queue length, longest wait, service level over 60 min on "
        f"every queue, not-ready share) on every queue board ({full[0].alarm_events} alarm "
        "events raised or cleared over the day; the evaluations took "
        f"{statistics.median(p.alarm_seconds for p in full):.2f} s and `facts.advance` "
        f"{statistics.median(p.advance_seconds for p in full):.2f} s of a "
        f"{statistics.median(p.seconds for p in full):.1f} s pass, medians). "
        "The second row leaves out only the runner's `rows.extend(produced)` per event "
        "(`FactRows.extend` walks all seven tables for every event, though most events "
        "complete no row); the third leaves out the boards and the alarms, so the boards cost "
        "the difference between the first and third rows less the alarm time above. "
        "Each in-memory pass runs pinned to the idler of the two cores (sampled for 0.2 s "
        "before it), the three kinds of pass taking turns; 'per CPU second' "
        "divides by the process's CPU time, which leaves out time the core spent on other "
        "jobs. End to end: the same events produced once into an "
        f"embedded log ({len(events) / e2e['produce_s']:,.0f} events/s, not timed in the row), "
        "then a `StreamsRunner` with a `WarehouseSink` (10,000 rows / 1 s batches, "
        "`insert_new`) on a freshly migrated chdb warehouse and the same four alarm rules "
        "(the runner evaluates them after every poll that brought events and appends the "
        f"alarm events to the log: {report.alarms} here, against {full[0].alarm_events} in "
        "memory: it evaluates at the watermark, the slowest partition's latest event, after "
        f"each poll of up to {BATCH:,} events), timed "
        "by its own `RunReport` "
        "(including reading the empty alarms topic, the final 0.2 s idle poll and the "
        "flush); the process is not pinned, so chdb "
        f"may use the second core. Its {len(e2e_timing.writes)} sink writes took "
        f"{sum(e2e_timing.writes):.1f} s and its folds {sum(e2e_timing.folds):.1f} s; the rest "
        "is polling and decoding the log, committing, and the alarm rules. Latency: a "
        "separate producer process appends the "
        f"first {paced_events:,} events with `EventLog.produce_raw`, {paced_batch} every "
        f"{paced_batch / rate * 1000:.0f} ms (achieved {producer['rate']:,.0f} events/s, at "
        f"most {_ms(producer['max_lag_s'])} ms behind schedule, longest append "
        f"{_ms(producer['max_produce_s'])} ms), while a `StreamsRunner` in this process "
        "(defaults: poll timeout 1 s, embedded reader checking every 50 ms when idle, sink "
        "batch_seconds 1.0; the four alarm rules evaluated after every poll) consumes. "
        "Latency per event = the wall clock when the fold of its "
        "batch returned (the boards are updated there, before the sink write) minus its "
        "`recorded_at`, which the log stamps when `produce_raw` is called (millisecond "
        f"precision). During the run the sink wrote {len(writes)} times, median "
        f"{_ms(statistics.median(writes))} ms, p99 {_ms(_quantile(writes, 0.99))} ms, max "
        f"{_ms(max(writes))} ms; a fold of a poll's events took at most "
        f"{_ms(max(timing.folds))} ms. The runner's loop writes in the same thread, so "
        "events arriving during a write wait for it: the first poll after each write brought "
        f"{after.count:,} events ({after.share:.0%}), latency p50 {_ms(after.p50)} / p99 "
        f"{_ms(after.p99)} ms; the other {other.count:,}: p50 {_ms(other.p50)} / p99 "
        f"{_ms(other.p99)} ms. Faust: the first {faust_events:,} events produced to a Tansu "
        "broker started for the row; a `queuecast streams worker` subprocess (batched "
        "source agents, changelog tables, chdb sink) timed from the first event it read to "
        "the last fact row its sink wrote (all tables), polled every 0.25 s on /streams/status."
    )
    return append_results(
        "Streams host: projection throughput and event-to-view latency",
        ["measure", "events", "figure", "target"], rows, notes)
