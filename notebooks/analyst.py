"""What the analyst notebooks share: open the warehouse, choose the report window, check KPIs.

The notebooks import this module by its plain name (``import analyst``): Jupyter and
``python -m notebooks.run`` both start the kernel in this folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd

from queuecast.config import load_settings
from warehouse.client import Warehouse, open_warehouse

__all__ = ["WAREHOUSE_ENV", "check_kpis", "connect", "report_window"]

WAREHOUSE_ENV = "QUEUECAST_WAREHOUSE"
"""The environment variable with the warehouse URL (``chdb:///path``, ``clickhouse://..``)."""


def connect(env: Mapping[str, str] | None = None) -> Warehouse:
    """Open the warehouse named by ``$QUEUECAST_WAREHOUSE``, else the one of the settings
    (``queuecast.toml`` / ``QUEUECAST_*``; the default is the chdb folder under the home)."""
    env = os.environ if env is None else env
    settings = load_settings(env=env)
    url = env.get(WAREHOUSE_ENV) or settings.warehouse.url
    return open_warehouse(url, home=settings.home)


def _local(name: str, value: object, time_zone: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{name}={value!r} is not a time; pass an ISO date such as "
                         "'2026-03-02' or None for the latest days of data")
    return stamp.tz_localize(time_zone) if stamp.tzinfo is None else stamp.tz_convert(time_zone)


def report_window(wh: Warehouse, *, start: object | None, end: object | None, time_zone: str,
                  days: int = 7) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` as local timestamps in ``time_zone``.

    Given bounds are used as they are (naive ones are wall-clock times in ``time_zone``). A
    missing ``end`` is the local midnight after the latest offered call in the warehouse; a
    missing ``start`` is ``days`` days before ``end``.
    """
    if end is None:
        latest = wh.query("SELECT count() AS calls, toUInt32(max(offered_at)) AS last "
                          "FROM calls FINAL WHERE queue != ''")
        if int(latest["calls"].iloc[0]) == 0:
            raise ValueError("the warehouse holds no offered calls; fill it first with "
                             "`queuecast simulate demo && queuecast streams run --until-idle` "
                             "or set END to the end of the window you want")
        last = pd.Timestamp(int(latest["last"].iloc[0]), unit="s", tz="UTC")
        end_at = last.tz_convert(time_zone).normalize() + pd.Timedelta(days=1)
    else:
        end_at = _local("END", end, time_zone)
    start_at = end_at - pd.Timedelta(days=days) if start is None else _local(
        "START", start, time_zone)
    if start_at >= end_at:
        raise ValueError(f"START ({start_at}) must be before END ({end_at})")
    return start_at, end_at


def check_kpis(frame: pd.DataFrame, what: str) -> None:
    """Fail when a traffic report (columns of ``warehouse.reports.KPI_COLUMNS``) contradicts
    the definitions of docs/metrics.md "Report KPIs"; ``what`` names the report."""
    def fail(rule: str, bad: pd.Series) -> None:
        if bad.any():
            raise AssertionError(f"{what}: {rule} fails in {int(bad.sum())} rows, e.g.\n"
                                 f"{frame[bad].head(3).to_string()}")
    fail("answered + abandoned <= offered",
         frame["answered"] + frame["abandoned"] > frame["offered"])
    fail("answered within T <= answered", frame["answered_within"] > frame["answered"])
    fail("short abandons <= abandoned", frame["short_abandoned"] > frame["abandoned"])
    for ratio in ("service_level", "abandon_rate"):
        fail(f"0 <= {ratio} <= 1", ~frame[ratio].between(0, 1) & frame[ratio].notna())
    for seconds in ("asa_s", "avg_wait_s", "aht_s"):
        fail(f"{seconds} >= 0", frame[seconds] < 0)
    fail("ASA is NaN exactly when nothing was answered",
         frame["asa_s"].isna() != (frame["answered"] == 0))
