"""Simulator throughput: the large scenario (10 queues, 500 agents, ~100,000 calls) for a day.

Targets (call-control issue): one simulated day in <= 30 s of wall time on one core and
>= 50,000 engine events/s end to end, with peak memory reported. Each measurement runs in
a fresh process pinned to one core, so its peak resident set is its own: once with no
event log (events only counted) and once writing every event to an embedded log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.report import append_results

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
MODES = {"none": "no log (--no-log)", "embedded": "embedded event log (SQLite WAL)"}


def _rss_mib() -> float:
    """The current resident set of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM: its own address space; ``ru_maxrss`` would
    carry over the parent's peak at fork time, the whole benchmark runner's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(mode: str, scenario: str, seed: int | None) -> dict[str, Any]:
    """One run in this process (the child side); prints and returns its figures."""
    from callcore.simulator import Simulation
    from ingest.log import EventLog
    from ingest.log.embedded import EmbeddedTransport

    model = Simulation(scenario, seed=seed)
    before = _rss_mib()
    if mode == "embedded":
        with tempfile.TemporaryDirectory() as folder:
            log = EventLog(EmbeddedTransport(Path(folder) / "events.sqlite3"))
            try:
                result = model.run(log=log)
            finally:
                log.close()
    else:
        result = model.run()
    figures = {"calls": result.calls, "events": result.events, "wall_s": result.wall_s,
               "events_per_s": result.events_per_s, "rss_before_mib": before,
               "peak_rss_mib": _peak_rss_mib()}
    print(json.dumps(figures))
    return figures


def _in_child(mode: str, scenario: str, seed: int | None) -> dict[str, Any]:
    code = f"from bench.simulator import measure; measure({mode!r}, {scenario!r}, {seed!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"simulator benchmark ({mode}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(*, scenario: str = "large", seed: int | None = None) -> str:
    """Run the simulator benchmarks and append the results; return the Markdown."""
    rows: list[list[str]] = []
    affinity = os.sched_getaffinity(0)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=True) as progress:
        os.sched_setaffinity(0, {min(affinity)})  # the children inherit one core
        try:
            for mode, label in MODES.items():
                task = progress.add_task(f"simulating {scenario}: {label}", total=None)
                figures = _in_child(mode, scenario, seed)
                progress.remove_task(task)
                rows.append([label, f"{figures['calls']:,}", f"{figures['events']:,}",
                             f"{figures['wall_s']:.1f}", "30", f"{figures['events_per_s']:,.0f}",
                             "50,000", f"{figures['peak_rss_mib']:.0f}",
                             f"{figures['peak_rss_mib'] - figures['rss_before_mib']:.0f}"])
        finally:
            os.sched_setaffinity(0, affinity)
    notes = (
        f"Scenario `{scenario}` (callcore/scenarios/{scenario}.yaml): one simulated day, "
        "10 queues, 500 multi-skilled agents in four shifts with breaks, lognormal handle and "
        "wrap-up times, exponential patience, retrials and RONA. Each row is a fresh process "
        "pinned to one core; wall time covers the whole run (engine, simulator and, in the "
        "second row, validating and appending every event to the log). Peak RSS is the "
        "process's maximum resident set; 'of which the run' subtracts the resident set after "
        "imports and loading the scenario."
    )
    return append_results(
        "Simulator: one day of the large scenario",
        ["output", "calls", "events", "wall s", "target s", "events/s", "target events/s",
         "peak RSS MiB", "of which the run MiB"],
        rows, notes,
    )
