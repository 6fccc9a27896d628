"""The analyst notebooks run end to end on a simulated warehouse (issue 5 item 6).

Two days of the demo center go through the fact fold into a chdb folder; then
``python -m notebooks.run`` executes both notebooks in a subprocess (its kernels open the
folder, so this process closes it first: one process per chdb folder). The executed
notebooks must hold no errors, one Plotly figure per ``fig.show()``, the report tables, and
figures that match counts taken straight from the simulated events."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
from support import demo_events

from ingest.contract import Event
from notebooks.run import NotebookError, execute
from streams.sink import write_events
from warehouse import reports
from warehouse.client import open_warehouse
from warehouse.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PLOTLY = "application/vnd.plotly.v1+json"


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(demo_events(seed=7, days=2))


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, events: list[Event]) -> Path:
    """The folder of executed notebooks, run against a fresh chdb warehouse."""
    base = tmp_path_factory.mktemp("notebooks")
    folder = base / "warehouse"
    with open_warehouse(f"chdb://{folder}") as wh:
        migrate(wh)
        write_events(wh, events)
    env = {k: v for k, v in os.environ.items() if k != "QUEUECAST_CONFIG"}
    env |= {"QUEUECAST_WAREHOUSE": f"chdb://{folder}", "QUEUECAST_HOME": str(base / "home")}
    done = subprocess.run([sys.executable, "-m", "notebooks.run", "--out", str(base / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, f"notebooks.run failed:\n{done.stdout}\n{done.stderr}"
    return base / "out"


def offered_and_answered(events: list[Event]) -> tuple[int, int]:
    """Calls that waited in a queue, and those of them answered, from the raw events."""
    kinds = pd.DataFrame({"call_id": [getattr(e.payload, "call_id", None) for e in events],
                          "type": [e.type for e in events]})
    queued = set(kinds.loc[kinds["type"].isin(["call.queued", "call.overflowed"]), "call_id"])
    answered = set(kinds.loc[kinds["type"] == "call.answered", "call_id"]) & queued
    return len(queued), len(answered)


def outputs(notebook: nbformat.NotebookNode, kind: str | None = None) -> list[Any]:
    found = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return [o for o in found if kind is None or kind in o.get("data", {})]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(o["text"] for o in outputs(notebook) if o["output_type"] == "stream")


def values(array: Any) -> np.ndarray:
    """A Plotly JSON array: a list, or ``{"dtype", "bdata"}`` (base64 typed array)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


@pytest.mark.parametrize("name", ["interval_kpis", "agent_performance"])
def test_notebook_runs_clean_with_figures(executed: Path, name: str) -> None:
    notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
    errors = [o for o in outputs(notebook) if o["output_type"] == "error"]
    assert errors == []
    shows = (NOTEBOOKS / f"{name}.py").read_text(encoding="utf-8").count("fig.show()")
    assert shows >= 4
    figures = outputs(notebook, PLOTLY)
    assert len(figures) == shows
    assert all(f["data"][PLOTLY]["data"] for f in figures), "a figure without traces"
    assert all(c.get("execution_count") for c in notebook.cells if c.cell_type == "code")


def test_interval_kpis_tables_and_figures(executed: Path, events: list[Event]) -> None:
    notebook = nbformat.read(executed / "interval_kpis.ipynb", as_version=4)
    offered, _ = offered_and_answered(events)
    assert f"3 queue(s), {offered} offered calls: all grains agree" in printed(notebook)
    tables = [o["data"]["text/html"] for o in outputs(notebook, "text/html")]
    week = tables[0]  # the queue table
    for column in ("queue", *reports.KPI_COLUMNS):
        assert f"<th>{column}</th>" in week, column
    assert all(f"<th>{q}</th>" in week or f"<td>{q}</td>" in week
               for q in ("billing", "sales", "support"))
    # the 15-minute chart's "offered" lines add up to the offered calls
    first = outputs(notebook, PLOTLY)[0]["data"][PLOTLY]["data"]
    lines = [t for t in first if t["name"] == "offered"]
    assert len(lines) == 3
    assert sum(int(values(t["y"]).sum()) for t in lines) == offered


def test_agent_performance_tables_and_figures(executed: Path, events: list[Event]) -> None:
    notebook = nbformat.read(executed / "agent_performance.ipynb", as_version=4)
    _, answered = offered_and_answered(events)
    agents = {getattr(e.payload, "agent_id", None) for e in events if e.type == "agent.logged_in"}
    assert f"{len(agents)} agent(s) handled {answered} calls; all queues answered {answered}" in (
        printed(notebook))
    table = outputs(notebook, "text/html")[0]["data"]["text/html"]
    for column in reports.AGENT_COLUMNS[1:]:
        assert f"<th>{column}</th>" in table, column
    for agent in agents:
        assert f"<th>{agent}</th>" in table
    handled = outputs(notebook, PLOTLY)[0]["data"][PLOTLY]["data"]
    assert sum(int(values(t["y"]).sum()) for t in handled) == answered
    assert "<th>reason</th>" in outputs(notebook, "text/html")[1]["data"]["text/html"]


def test_a_failing_cell_names_notebook_cell_and_line(tmp_path: Path) -> None:
    source = tmp_path / "broken.py"
    source.write_text('# %% [markdown]\n# A check that fails\n\n# %% tags=["parameters"]\n'
                      "LIMIT = 1\n\n# %%\nanswered, offered = 5, 4\n"
                      'assert answered <= offered * LIMIT, "answered > offered"\n\n'
                      '# %%\nprint("not reached")\n', encoding="utf-8")
    with pytest.raises(NotebookError) as failed:
        execute(source, tmp_path / "out", values={"LIMIT": 1})
    message = str(failed.value)
    assert message.startswith("broken.py: cell 4 (line 8: answered, offered = 5, 4) raised "
                              "AssertionError: answered > offered")
    notebook = nbformat.read(tmp_path / "out" / "broken.ipynb", as_version=4)
    assert notebook.cells[2].source == "LIMIT = 1"  # the injected parameters
    assert "injected-parameters" in notebook.cells[2].metadata["tags"]
    assert notebook.cells[4].outputs == []  # never run
