"""Imported PBX history reaches the reports (issue 5): the real third-party files through
the importers, the fact fold and the warehouse (each engine in turn); per-day offered,
answered, abandoned and ASA equal pandas computed on the files themselves."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from real_calls import BANK, ROTATED, SYNK, bank_calls, master_calls, queue_log_calls
from support import REAL_DATA

from ingest.contract import Event
from ingest.importers.asterisk import QueueLogState, parse_queue_log
from ingest.importers.cdr import MAPPINGS, load_mapping, parse_cdr
from ingest.importers.report import Converted, Outcome
from streams.sink import write_events
from warehouse import reports
from warehouse.client import Warehouse
from warehouse.migrations import migrate


def real(*names: str) -> list[Path]:
    paths = [REAL_DATA / name for name in names]
    if not all(p.exists() for p in paths):
        pytest.skip(f"real data absent: {REAL_DATA} lacks {', '.join(names)}")
    return paths


def events_of(outcomes: Iterable[Outcome]) -> list[Event]:
    return [e for o in outcomes if isinstance(o, Converted) for e in o.events]


def load(warehouse: Warehouse, events: list[Event]) -> None:
    migrate(warehouse)
    write_events(warehouse, events)  # flushed at the end: PBX history has no agent events


def daily(warehouse: Warehouse, time_zone: str) -> pd.DataFrame:
    got = reports.interval_traffic(warehouse, start="2000-01-01", end="2100-01-01", grain="1d",
                                   time_zone=time_zone)
    got["day"] = got["interval_start"].dt.strftime("%Y-%m-%d")
    got["wait_answered"] = got["asa_s"].fillna(0) * got["answered"]
    per = got.groupby("day")[["offered", "answered", "abandoned", "wait_answered"]].sum()
    per["asa"] = per["wait_answered"] / per["answered"].replace(0, np.nan)
    return per.drop(columns="wait_answered")


def expected(calls: pd.DataFrame) -> pd.DataFrame:
    """The reports count calls that entered a queue (docs/metrics.md "Offered"); calls put
    straight through to an agent are not offered to a queue."""
    calls = calls[calls["queued"] == 1]
    per = calls.groupby("day").agg(offered=("offered", "sum"), answered=("answered", "sum"),
                                   abandoned=("abandoned", "sum"))
    answered = calls[calls["answered"] == 1]
    per["asa"] = answered.groupby("day")["wait"].mean()
    return per


def check(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.index.tolist() == want.index.astype(str).tolist()
    for column in ("offered", "answered", "abandoned"):
        assert got[column].astype(int).tolist() == want[column].astype(int).tolist(), column
    np.testing.assert_allclose(got["asa"].astype(float), want["asa"].astype(float),
                               rtol=1e-9, err_msg="asa")


def test_queue_log_series(warehouse: Warehouse) -> None:
    paths = real(*ROTATED)
    state = QueueLogState()
    events: list[Event] = []
    for path in paths:
        with path.open("rb") as handle:
            events += events_of(parse_queue_log(handle, source=path.name, state=state))
    load(warehouse, events)
    check(daily(warehouse, "UTC"), expected(queue_log_calls(paths)))


def test_master_csv(warehouse: Warehouse) -> None:
    (path,) = real(f"{SYNK}Master.csv")
    load(warehouse, events_of(parse_cdr(path.read_bytes(), source=path.name)))
    check(daily(warehouse, "UTC"), expected(master_calls(path)))


def test_anonymous_bank_month(warehouse: Warehouse) -> None:
    (path,) = real(BANK)
    mapping = load_mapping(MAPPINGS / "anonymous_bank.yaml")
    load(warehouse, events_of(parse_cdr(path.read_bytes(), mapping=mapping, source=BANK)))
    got = daily(warehouse, "Asia/Jerusalem")
    assert len(got) == 31
    check(got, expected(bank_calls(path)))
