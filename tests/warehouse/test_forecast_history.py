"""The warehouse history of ``queuecast forecast --warehouse`` against pandas on the raw events:
the simulated week of test_kpis_week (each engine in turn), offered calls per queue and local
interval, read by ``forecasting.read_history``; plus the same week moved onto the US
daylight-saving fall-back night."""

from __future__ import annotations

import datetime as dt

import msgspec
import numpy as np
import pandas as pd
import pytest
from test_kpis_week import (  # noqa: F401  (fixtures: the loaded week and its raw events)
    ZONE,
    calls_in_pandas,
    loaded,
    raw,
    week,
)

import queuecast.cli  # noqa: F401  (the CLI package first: its sub-commands import it)
from forecasting import read_history
from ingest.contract import Event
from queuecast.forecast_cli import warehouse_history
from streams.sink import write_events
from warehouse.client import Warehouse
from warehouse.migrations import migrate

NEW_YORK = "America/New_York"  # the Beijing day is the New York night; DST changes inside
FALL_BACK_SHIFT = pd.Timedelta(weeks=34)  # Mon 2 Mar 2026 -> Mon 26 Oct 2026 (US: 1 Nov)


def expected_history(calls: pd.DataFrame, zone: str, minutes: int) -> pd.DataFrame:
    """Offered calls and AHT per queue and naive local interval, straight from the events."""
    offered = calls[calls["queue"] != ""]
    start = (offered["offered_at"].dt.tz_convert(zone).dt.tz_localize(None)
             .dt.floor(f"{minutes}min"))
    keyed = offered.assign(timestamp=start, handle=offered["talk_s"] + offered["acw_s"])
    answered = keyed[keyed["answered"]]
    out = keyed.groupby(["queue", "timestamp"]).size().rename("calls").to_frame()
    out["aht"] = answered.groupby(["queue", "timestamp"])["handle"].mean()
    return out


def check_history(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == ["timestamp", "queue", "calls", "aht"]
    assert got["timestamp"].dt.tz is None
    keyed = got.set_index(["queue", "timestamp"])
    assert keyed.index.is_unique
    assert keyed.index.tolist() == want.index.tolist()  # intervals without calls are absent
    assert keyed["calls"].tolist() == want["calls"].astype(float).tolist()
    np.testing.assert_allclose(keyed["aht"], want["aht"], rtol=1e-9, atol=0)


def window(calls: pd.DataFrame, zone: str) -> dict[str, object]:
    local = calls["offered_at"].dt.tz_convert(zone)
    return {"since": local.min().date(), "until": local.max().date() + dt.timedelta(days=1),
            "timezone": zone}


def test_warehouse_history_equals_pandas_and_reads_as_a_history(
        loaded: Warehouse, raw: pd.DataFrame) -> None:  # noqa: F811
    calls = calls_in_pandas(raw)
    for zone, minutes in ((ZONE, 15), (ZONE, 30), (ZONE, 60), (NEW_YORK, 15)):
        got = warehouse_history(loaded, **window(calls, zone), interval=minutes)
        want = expected_history(calls, zone, minutes)
        check_history(got, want)
        assert got["calls"].sum() == (calls["queue"] != "").sum() == 11_706

        histories = read_history(got)
        assert sorted(histories) == ["billing", "sales", "support"]
        for queue, history in histories.items():
            per_day = 1440 // minutes
            assert history.index.freq == pd.Timedelta(minutes=minutes)
            assert len(history) % per_day == 0
            assert history.index[0] == history.index[0].normalize()
            mine = want.loc[queue, "calls"]
            # every interval of the grid: the warehouse's count, or 0 where it had no row;
            # before the first and after the last call of the week (all queues), times of
            # day with calls on at least half of the queue's days were not observed (NaN:
            # a partial first or last day)
            stamps = want.index.get_level_values("timestamp")
            days_with_calls = mine.groupby(mine.index.time).size()
            busy = days_with_calls[days_with_calls >= 0.5 * mine.index.normalize().nunique()]
            unseen = (((history.index < stamps.min()) | (history.index > stamps.max()))
                      & np.isin(history.index.time, list(busy.index)))
            expected = pd.Series([float(mine.get(t, 0)) for t in history.index],
                                 index=history.index, name="calls").mask(unseen)
            pd.testing.assert_series_equal(history["calls"], expected, check_freq=False)
            assert history["calls"].sum() == mine.sum()
        if zone == ZONE:  # Beijing: open 08:00-20:00, the nights read as 0 calls, not missing
            support = histories["support"]
            assert not support["calls"].isna().any()
            night = support.between_time("20:00", "07:59")
            assert len(night) == 7 * 12 * 60 // minutes
            assert (night["calls"] == 0).all()
            assert night["aht"].isna().all()
            assert support.index[0] == pd.Timestamp("2026-03-02")
            assert support.index[-1] == pd.Timestamp("2026-03-08 23:00") + pd.Timedelta(
                minutes=60 - minutes)
        else:  # New York: calls from Sunday 19:00 to Sunday 08:00 local, across the DST change
            support = histories["support"]
            assert (support.index[0], support.index[-1]) == (
                pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-08 23:45"))
            # the simulation starts at 11:00 New York time on 1 March: the busy night
            # before is not observed; the quiet afternoon is 0
            first_day = support.loc["2026-03-01", "calls"]
            assert first_day.between_time("00:00", "06:45").isna().all()
            assert (first_day.between_time("12:00", "18:45") == 0).all()
            # 02:00-02:59 of 8 March does not exist in New York: on the grid it reads 0
            assert (support.loc["2026-03-08 02:00":"2026-03-08 02:45", "calls"] == 0).all()
            assert support.loc["2026-03-08 03:00", "calls"] > 0

    quiet = warehouse_history(loaded, since=dt.date(2026, 4, 1), until=dt.date(2026, 4, 2),
                              timezone=ZONE, interval=15)
    assert quiet.empty
    assert list(quiet.columns) == ["timestamp", "queue", "calls", "aht"]
    with pytest.raises(ValueError, match="interval=5"):
        warehouse_history(loaded, **window(calls, ZONE), interval=5)


def test_the_repeated_hour_of_a_fall_back_night_is_added_up(
        warehouse: Warehouse, week: list[Event]) -> None:  # noqa: F811
    moved = [msgspec.structs.replace(e, occurred_at=e.occurred_at + FALL_BACK_SHIFT)
             for e in week]
    migrate(warehouse)
    write_events(warehouse, moved)
    calls = calls_in_pandas(raw.__wrapped__(moved))
    got = warehouse_history(warehouse, **window(calls, NEW_YORK), interval=15)
    want = expected_history(calls, NEW_YORK, 15)
    check_history(got, want)
    # 1 Nov 2026 01:00-01:59 New York happens twice (EDT, then EST): both hours' calls
    offered = calls[calls["queue"] != ""]
    local = offered["offered_at"].dt.tz_convert(NEW_YORK)
    repeated = (local.dt.date == dt.date(2026, 11, 1)) & (local.dt.hour == 1)
    offsets = local[repeated].map(lambda t: t.utcoffset())
    assert offsets.nunique() == 2  # the week really has calls in both of those hours
    night = got[(got["timestamp"] >= "2026-11-01 01:00") & (got["timestamp"] < "2026-11-01 02:00")]
    assert night["calls"].sum() == repeated.sum()
    history = read_history(got)["support"]
    assert history.loc["2026-11-01 01:00":"2026-11-01 01:45", "calls"].tolist() == \
        want.loc["support"].loc["2026-11-01 01:00":"2026-11-01 01:45", "calls"].tolist()
