"""Warehouse benchmark: batched inserts into ``calls`` and the 15-minute queue KPI query,
chdb and the ClickHouse 18.16 server side by side in one run.

Targets (issue 5), on chdb: batched insert >= 500,000 rows/s; the 15-minute queue KPI query
(offered, answered, abandoned, service level within 20 s, ASA, AHT per queue and interval)
over 10 million calls <= 1 s. The server (started on a free loopback port in a temporary
folder by ``scripts/clickhouse-server.sh`` and stopped at the end) runs the same workload;
its figures are reported without a target. Both engines must return the same KPI figures.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.report import append_results
from warehouse.client import ChdbWarehouse, ServerWarehouse, Warehouse
from warehouse.migrations import migrate

__all__ = ["KPI_SQL", "compare_kpis", "kpi_timings", "run",
           "synthetic_calls"]

BATCH = 100_000
QUEUES = np.array([f"queue_{i:02d}" for i in range(10)])
AGENTS = np.array([f"agent_{i:03d}" for i in range(500)])
REGIONS = np.array(["emea", "amer", "apac"])
DISPOSITIONS = np.array(["resolved", "callback", "escalated", "sale", "no_action"])
MONTH_START = pd.Timestamp("2026-03-01", tz="UTC")
MONTH_S = 31 * 86_400
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "clickhouse-server.sh"
COLUMNS = ["call_id", "event_id", "direction", "queue", "first_queue", "agent_id", "region",
           "offered_at", "offered_ms", "queued_at", "answered_at", "answered_ms", "ended_at",
           "ended_ms", "ivr_s", "wait_s", "ring_s", "talk_s", "hold_s", "acw_s", "outcome",
           "disposition", "transfers", "holds", "survey_score"]
COUNTS = ["n_offered", "n_answered", "n_abandoned", "n_short_abandoned", "n_within_20s",
          "max_wait_s"]
"""Compared exactly between engines and queries (a max of stored values is exact)."""
MEANS = ["service_level", "asa_s", "aht_s"]
RUNS = 5
_ID_DIGITS = 10

_RAW = """
SELECT queue, toUInt32(toStartOfFifteenMinutes(offered_at)) AS interval_s,
       count() AS n_offered,
       countIf(outcome = 'answered') AS n_answered,
       countIf(outcome = 'abandoned') AS n_abandoned,
       countIf(outcome = 'abandoned' AND wait_s <= 5) AS n_short_abandoned,
       countIf(outcome = 'answered' AND wait_s <= 20) AS n_within_20s,
       n_within_20s / n_offered AS service_level,
       sumIf(wait_s, outcome = 'answered') / n_answered AS asa_s,
       sumIf(talk_s + hold_s + acw_s, outcome = 'answered') / n_answered AS aht_s,
       max(wait_s) AS max_wait_s
FROM calls {final}
WHERE queue != ''
GROUP BY queue, interval_s
ORDER BY queue, interval_s
"""
_ROLLUP = """
SELECT queue, toUInt32(interval_start) AS interval_s,
       sum(offered) AS n_offered,
       sum(answered) AS n_answered,
       sum(abandoned) AS n_abandoned,
       sum(short_abandoned) AS n_short_abandoned,
       sum(answered_within_20s) AS n_within_20s,
       n_within_20s / n_offered AS service_level,
       sum(answered_wait_sum) / n_answered AS asa_s,
       (sum(talk_sum) + sum(hold_sum) + sum(acw_sum)) / n_answered AS aht_s,
       maxMerge(wait_max) AS max_wait_s
FROM calls_queue_15m
GROUP BY queue, interval_start
ORDER BY queue, interval_s
"""
KPI_SQL = {
    "calls FINAL": _RAW.format(final="FINAL"),
    "calls (no FINAL)": _RAW.format(final=""),
    "calls_queue_15m rollup": _ROLLUP,
}
"""The 15-minute queue KPI query, from the raw facts (with and without FINAL) and the rollup."""


def _seconds(values: np.ndarray) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.round(values), unit="s")


def synthetic_calls(chunk: int, *, chunks: int, rows: int = BATCH,
                    seed: int = 2026) -> pd.DataFrame:
    """Chunk ``chunk`` of ``chunks`` of a month of inbound calls (March 2026, UTC) as a
    ``calls`` frame.

    Chunks follow each other in time (chunk k covers the k-th slice of the month, as a history
    import loads it); call ids are unique over all chunks. IVR time exponential (mean 20 s);
    3% hang up in the IVR (``ivr_abandoned``: no queue, no queued_at). The others queue on one
    of 10 queues with mean waits 10-40 s and exponential patience (mean 150 s: callers who
    run out abandon, with no agent and no talk); 1% of the rest go to voicemail
    (``unanswered``). Answered calls: one of 500 agents, ring 1-8 s, log-normal talk (median
    ~150 s), 1-3 holds on 20% of calls, ACW ~30 s, 0-2 transfers, a survey score on 10%.
    Deterministic in (seed, chunk).
    """
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk {chunk} must be in 0..{chunks - 1} (chunks={chunks})")
    rng = np.random.default_rng([seed, chunk])
    first = chunk * rows
    ids = pd.Series(np.arange(first, first + rows)).astype(str).str.zfill(_ID_DIGITS)
    span = MONTH_S / chunks
    offset = np.sort(rng.uniform(chunk * span, (chunk + 1) * span, rows))
    ivr = rng.exponential(20.0, rows).round(3)
    in_ivr = rng.random(rows) < 0.03
    queue = rng.integers(0, QUEUES.size, rows)
    wait = rng.exponential(10.0 + 30.0 * queue / (QUEUES.size - 1))
    patience = rng.exponential(150.0, rows)
    abandoned = ~in_ivr & (patience < wait)
    unanswered = ~in_ivr & ~abandoned & (rng.random(rows) < 0.01)
    answered = ~in_ivr & ~abandoned & ~unanswered
    wait = np.where(in_ivr, 0.0, np.where(abandoned, patience, wait)).round(3)
    ring = np.where(answered, rng.uniform(1.0, 8.0, rows).round(3), 0.0)
    talk = np.where(answered, rng.lognormal(5.0, 0.6, rows).round(3), 0.0)
    holds = np.where(answered & (rng.random(rows) < 0.2), rng.integers(1, 4, rows), 0)
    hold = (holds * rng.exponential(30.0, rows)).round(3)
    acw = np.where(answered, rng.exponential(30.0, rows).round(3), 0.0)
    offered_at = MONTH_START + pd.to_timedelta(np.floor(offset), unit="s")
    queued_at = pd.Series(offered_at + _seconds(ivr)).where(~in_ivr)
    answered_at = (queued_at + _seconds(wait)).where(answered)
    ended_at = offered_at + _seconds(ivr + wait + talk + hold)
    score = pd.array(rng.integers(1, 6, rows), dtype="UInt8")
    score[~answered | (rng.random(rows) >= 0.1)] = pd.NA
    queue_name = np.where(in_ivr, "", QUEUES[queue])
    outcome = np.select([answered, abandoned, unanswered],
                        ["answered", "abandoned", "unanswered"], "ivr_abandoned")
    return pd.DataFrame({
        "call_id": "call-" + ids,
        "event_id": "evt-" + ids,
        "direction": "inbound",
        "queue": queue_name,
        "first_queue": np.where(in_ivr, "", QUEUES[queue]),
        "agent_id": np.where(answered, AGENTS[rng.integers(0, AGENTS.size, rows)], ""),
        "region": REGIONS[rng.integers(0, REGIONS.size, rows)],
        "offered_at": offered_at,
        "offered_ms": ((offset % 1) * 1000).astype(np.uint16),
        "queued_at": queued_at,
        "answered_at": answered_at,
        "answered_ms": rng.integers(0, 1000, rows).astype(np.uint16),
        "ended_at": ended_at,
        "ended_ms": rng.integers(0, 1000, rows).astype(np.uint16),
        "ivr_s": ivr,
        "wait_s": wait,
        "ring_s": ring,
        "talk_s": talk,
        "hold_s": hold,
        "acw_s": acw,
        "outcome": outcome,
        "disposition": np.where(answered, DISPOSITIONS[rng.integers(0, 5, rows)], ""),
        "transfers": np.where(answered, rng.choice(3, rows, p=[0.85, 0.12, 0.03]), 0)
        .astype(np.uint8),
        "holds": holds.astype(np.uint16),
        "survey_score": score,
    })


def _load(warehouse: Warehouse, table: str, chunks: range, total: int, progress: Progress,
          label: str) -> tuple[int, float]:
    """Insert chunks ``chunks`` (of ``total``) into ``table``: rows and seconds spent in insert
    (data generation is not timed)."""
    task = progress.add_task(label, total=len(chunks) * BATCH)
    rows, seconds = 0, 0.0
    for chunk in chunks:
        frame = synthetic_calls(chunk, chunks=total)
        started = time.perf_counter()
        rows += warehouse.insert(table, frame)
        seconds += time.perf_counter() - started
        progress.advance(task, len(frame))
    progress.remove_task(task)
    return rows, seconds


def _stored(warehouse: Warehouse, table: str, expected: int) -> str:
    """"count() = N" when ``table`` holds ``expected`` rows; raises otherwise."""
    stored = int(warehouse.query(f"SELECT count() AS n FROM {table}")["n"].iloc[0])
    if stored != expected:
        raise RuntimeError(f"{table} holds {stored:,} rows after loading {expected:,}")
    return f"count() = {stored:,}"


def kpi_timings(warehouse: Warehouse, *, runs: int = RUNS,
                on_query: Callable[[str], None] | None = None,
                ) -> dict[str, tuple[float, pd.DataFrame]]:
    """Each KPI query: one warm-up, then the median seconds of ``runs`` runs, and its rows."""
    results: dict[str, tuple[float, pd.DataFrame]] = {}
    for name, sql in KPI_SQL.items():
        if on_query is not None:
            on_query(name)
        frame = warehouse.query(sql)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            frame = warehouse.query(sql)
            times.append(time.perf_counter() - started)
        results[name] = (statistics.median(times), frame)
    return results


def compare_kpis(reference: pd.DataFrame, other: pd.DataFrame, *, rtol: float = 1e-9) -> str:
    """"same" when ``other`` has the reference's intervals, equal counts and means within
    ``rtol``; otherwise what differs."""
    keys = ["queue", "interval_s"]
    left = reference.astype({"interval_s": "int64"}).sort_values(keys).reset_index(drop=True)
    right = other.astype({"interval_s": "int64"}).sort_values(keys).reset_index(drop=True)
    if len(left) != len(right) or not (left[keys].astype(str) == right[keys].astype(str)
                                       ).all().all():
        return f"DIFFERENT intervals ({len(left):,} vs {len(right):,} rows)"
    problems = []
    for column in COUNTS:
        differ = int((left[column].astype("int64") != right[column].astype("int64")).sum())
        if differ:
            problems.append(f"{column} differs in {differ:,} rows")
    for column in MEANS:
        a, b = left[column].to_numpy(float), right[column].to_numpy(float)
        bad = ~np.isclose(a, b, rtol=rtol, atol=0.0, equal_nan=True)
        if bad.any():
            worst = np.nanmax(np.abs(a - b) / np.abs(a))
            problems.append(f"{column} off in {int(bad.sum()):,} rows (max rel {worst:.1e})")
    return "same" if not problems else "DIFFERENT: " + "; ".join(problems)


@contextmanager
def _server(folder: Path) -> Iterator[int]:
    """ClickHouse 18.16 via scripts/clickhouse-server.sh in ``folder``; yields its port."""
    done = subprocess.run([str(SCRIPT), "--folder", str(folder)], capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{SCRIPT} exited {done.returncode}: {done.stderr.strip()[-1000:]}")
    try:
        yield int(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run([str(SCRIPT), "--folder", str(folder), "--stop"], capture_output=True,
                       timeout=60, check=False)


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s ({seconds:.1f} s)"


def _kpi_rows(engine: str, rows: int, timings: dict[str, tuple[float, pd.DataFrame]],
              reference: pd.DataFrame, reference_name: str, target: str) -> list[list[str]]:
    out = []
    for name, (seconds, frame) in timings.items():
        check = ("reference" if frame is reference
                 else f"{compare_kpis(reference, frame)} as {reference_name}")
        out.append([f"15-min queue KPI from {name} ({len(frame):,} queue-intervals)", engine,
                    f"{rows:,}", f"{seconds:.3f} s", target, check])
    return out


def run(*, rows: int = 10_000_000, plain_rows: int = 2_000_000,
        server_client_rows: int = 2_000_000, server_plain_rows: int = 1_000_000) -> str:
    """Run the warehouse benchmark on chdb and the 18.16 server; append and return Markdown."""
    if rows % BATCH or plain_rows % BATCH or server_client_rows % BATCH \
            or server_plain_rows % BATCH:
        raise ValueError(f"row counts must be multiples of the batch size {BATCH:,}")
    chunks = rows // BATCH
    client = shutil.which("clickhouse-client")
    table: list[list[str]] = []
    with (tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp,
          Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                   transient=True) as progress):
        folder = Path(tmp)
        export = folder / "calls-rest.tsv"
        split_id = "call-" + str(server_client_rows).zfill(_ID_DIGITS)  # first not sent
        with ChdbWarehouse(folder / "chdb") as wh:
            migrate(wh)
            wh.execute("CREATE TABLE calls_plain AS calls")
            loaded, seconds = _load(wh, "calls", range(chunks), chunks, progress,
                                    "chdb: insert into calls")
            table.append(["insert into calls (2 materialized views fire)", "chdb", f"{loaded:,}",
                          _rate(loaded, seconds), ">= 500,000 rows/s",
                          _stored(wh, "calls", loaded)])
            loaded, seconds = _load(wh, "calls_plain", range(plain_rows // BATCH), chunks,
                                    progress, "chdb: insert into calls_plain")
            table.append(["insert into calls_plain (same table, no views)", "chdb", f"{loaded:,}",
                          _rate(loaded, seconds), "-", _stored(wh, "calls_plain", loaded)])
            task = progress.add_task("chdb: KPI queries", total=None)
            chdb_kpis = kpi_timings(wh, on_query=lambda name: progress.update(
                task, description=f"chdb: KPI from {name}"))
            queued = int(wh.query("SELECT count() AS n FROM calls FINAL WHERE "
                                  "queue != ''")["n"].iloc[0])
            progress.update(task, description="chdb: export the rest for the server")
            wh.execute(f"SELECT {', '.join(COLUMNS)} FROM calls WHERE call_id >= "
                       f"'{split_id}' INTO OUTFILE '{export}' FORMAT TSV")
            progress.remove_task(task)
        reference_name = "chdb calls FINAL"
        reference = chdb_kpis["calls FINAL"][1]
        offered = int(reference["n_offered"].sum())
        if offered != queued:
            raise RuntimeError(f"chdb KPI counts {offered:,} offered calls, loaded {queued:,} "
                               "that queued")
        table += _kpi_rows("chdb", rows, chdb_kpis, reference, reference_name, "<= 1 s")

        task = progress.add_task("server: starting clickhouse-server 18.16", total=None)
        with _server(folder / "server") as port, ServerWarehouse("127.0.0.1", port) as wh:
            progress.remove_task(task)
            version = wh.query("SELECT version() AS v")["v"].iloc[0]
            engine = f"server {version}"
            migrate(wh)
            wh.execute("CREATE TABLE calls_plain AS calls")
            loaded, seconds = _load(wh, "calls", range(server_client_rows // BATCH), chunks,
                                    progress, "server: insert into calls")
            table.append(["insert into calls (2 materialized views fire)", engine,
                          f"{loaded:,}", _rate(loaded, seconds), "-",
                          _stored(wh, "calls", loaded)])
            loaded, seconds = _load(wh, "calls_plain", range(server_plain_rows // BATCH),
                                    chunks, progress, "server: insert into calls_plain")
            table.append(["insert into calls_plain (same table, no views)", engine,
                          f"{loaded:,}", _rate(loaded, seconds), "-",
                          _stored(wh, "calls_plain", loaded)])
            rest = rows - server_client_rows
            task = progress.add_task(f"server: the other {rest:,} calls by clickhouse-client",
                                     total=None)
            if client is None:
                raise RuntimeError("clickhouse-client is not on PATH; scripts/clickhouse-"
                                   "server.sh installs it with clickhouse-server")
            started = time.perf_counter()
            with export.open("rb") as data:
                done = subprocess.run(
                    [client, "--host", "127.0.0.1", "--port", str(port), "--query",
                     f"INSERT INTO calls ({', '.join(COLUMNS)}) FORMAT TSV"],
                    stdin=data, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"clickhouse-client insert failed: {done.stderr[-1000:]}")
            table.append(["bulk: the rest of calls as TSV through clickhouse-client "
                          "(not the queuecast client; views fire)", engine, f"{rest:,}",
                          _rate(rest, seconds), "-", _stored(wh, "calls", rows)])
            progress.update(task, description="server: KPI queries")
            server_kpis = kpi_timings(wh, on_query=lambda name: progress.update(
                task, description=f"server: KPI from {name}"))
            progress.remove_task(task)
        table += _kpi_rows(engine, rows, server_kpis, reference, reference_name, "-")
    notes = (
        f"Calls: {rows:,} synthetic inbound calls of one month (March 2026) in the revised "
        "`calls` schema: 3% end in the IVR (never offered to a queue), the "
        "others queue on one of 10 queues (~14% abandon, 1% go to voicemail), 500 agents; "
        "generated with numpy in DataFrames "
        f"of {BATCH:,} rows and {len(COLUMNS)} columns (`bench.warehouse.synthetic_calls`), "
        "the chunks in time order as a history import loads them. Inserts go through the "
        "queuecast client (`Warehouse.insert(\"calls\", frame)`) into a migrated warehouse, "
        "so both materialized views (`calls_queue_15m_mv`, `calls_agent_15m_mv`, plain "
        "counts and sums into SummingMergeTree) fire on every batch; `calls_plain` is "
        "`CREATE TABLE calls_plain AS calls` (same engine, no views) loaded with the first "
        "chunks of the same data. Rates count only the time inside `insert` (not "
        "generation). The chdb client inserts with `optimize_on_insert = 0` (no "
        "Replacing/Summing merge pass over each block; reads use FINAL or GROUP BY; "
        "ClickHouse 18.16 has no such pass). On the server only the first "
        f"{server_client_rows:,} calls go through the "
        "queuecast client (clickhouse-driver, native protocol, columns converted to Python "
        "values), which is too slow to load 10 million in the time of the bench; the other "
        "calls are the same rows exported from chdb as TSV and piped into "
        "`clickhouse-client` (its own row, labelled), so both engines hold the same "
        f"{rows:,} calls for the KPI query.\n\n"
        "KPI query: per queue (calls offered to a queue) and 15-minute interval of `offered_at`, "
        "offered, answered, abandoned, short abandoned (<= 5 s), answered within 20 s, "
        "service level (answered within 20 s / offered), ASA (`asa_s`: wait of answered "
        "calls / answered), AHT ((talk + hold + ACW) / answered) and the longest wait "
        "(`max_wait_s`), through `Warehouse.query` (so the time includes building the "
        f"DataFrame); median of {RUNS} runs after one warm-up, with the parts as loaded (no "
        "OPTIMIZE; background merges may run). The check compares every queue-interval with "
        "chdb's `calls FINAL` result: counts and the longest wait exactly, means within 1e-9 "
        "relative. The data has no redelivered calls, so FINAL and no FINAL give the same "
        "figures; FINAL is what the warehouse reads."
    )
    return append_results(
        "Warehouse: batched inserts and the 15-minute queue KPI, chdb and ClickHouse 18.16",
        ["case", "engine", "rows", "figure", "target", "check"], table, notes,
    )
