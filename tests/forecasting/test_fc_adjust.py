"""Manual forecast adjustment (WF-03): hand-computed arithmetic, immutability and the audit."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from forecasting.adjust import (
    AdjustedForecast,
    AdjustmentError,
    daily_totals,
    override_intervals,
    scale_day,
    scale_intervals,
)

AT = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@pytest.fixture
def forecast() -> pd.DataFrame:
    """Two days of a center open 08:00-12:00 (hourly intervals, closed at night)."""
    index = pd.DatetimeIndex([f"2026-02-16 {h:02d}:00" for h in (8, 9, 10, 11)]
                             + [f"2026-02-17 {h:02d}:00" for h in (8, 9, 10, 11)])
    return pd.DataFrame({
        "mean": [10, 20, 30, 40, 5, 0, 15, 25],
        "lower_80": [8, 16, 24, 32, 4, 0, 12, 20],
        "upper_80": [12, 24, 36, 48, 6, 2, 18, 30],
        "lower_95": [6, 12, 18, 24, 3, 0, 9, 15],
        "upper_95": [14, 28, 42, 56, 7, 3, 21, 35],
        "aht": [300, 300, 240, 240, 200, 180, 200, 200],
    }, index=index, dtype=float)


def test_scale_day_scales_mean_and_bounds_of_that_day_only(forecast) -> None:
    before = forecast.copy()
    adjusted = scale_day(forecast, "2026-02-16", 1.5, reason="TV campaign", at=AT)
    frame = adjusted.frame
    assert frame["mean"].tolist() == [15, 30, 45, 60, 5, 0, 15, 25]
    assert frame["lower_80"].tolist() == [12, 24, 36, 48, 4, 0, 12, 20]
    assert frame["upper_95"].tolist() == [21, 42, 63, 84, 7, 3, 21, 35]
    assert frame["aht"].tolist() == forecast["aht"].tolist()
    pd.testing.assert_frame_equal(forecast, before)  # the input is untouched
    pd.testing.assert_frame_equal(adjusted.original, before)
    (record,) = adjusted.adjustments
    assert record.kind == "scale_day"
    assert (record.start, record.end) == (ts("2026-02-16 08:00"), ts("2026-02-16 12:00"))
    assert (record.n_intervals, record.factor) == (4, 1.5)
    assert (record.calls_before, record.calls_after) == (100, 150)
    assert (record.reason, record.made_at, record.changes) == ("TV campaign", AT, ())


def test_adjustments_stack_and_keep_the_audit_in_order(forecast) -> None:
    first = scale_day(forecast, pd.Timestamp("2026-02-16"), 1.5, reason="campaign", at=AT)
    second = scale_intervals(first, "2026-02-17 09:00", "2026-02-17 11:00", 0.5,
                             reason="system upgrade")
    frame = second.frame
    assert frame["mean"].tolist() == [15, 30, 45, 60, 5, 0, 7.5, 25]
    assert frame["lower_80"].tolist() == [12, 24, 36, 48, 4, 0, 6, 20]
    assert frame["upper_80"].tolist() == [18, 36, 54, 72, 6, 1, 9, 30]
    assert [a.kind for a in second.adjustments] == ["scale_day", "scale_intervals"]
    record = second.adjustments[1]
    assert (record.start, record.end, record.n_intervals) == (
        ts("2026-02-17 09:00"), ts("2026-02-17 11:00"), 2)
    assert (record.calls_before, record.calls_after) == (15, 7.5)
    assert record.made_at.tzinfo is not None
    # the first result is unchanged, and both remember the same original
    assert first.frame["mean"].iloc[6] == 15
    pd.testing.assert_frame_equal(second.original, forecast)
    # copies: editing what .frame returns does not change the adjusted forecast
    frame.iloc[0, 0] = 999
    assert second.frame["mean"].iloc[0] == 15


def test_override_keeps_relative_width_or_absolute_width_at_zero(forecast) -> None:
    adjusted = override_intervals(
        forecast, {"2026-02-16 09:00": 30, ts("2026-02-17 09:00"): 4}, reason="known outage",
        at=AT)
    frame = adjusted.frame
    # 20 -> 30 is x1.5: bounds 16/24/12/28 -> 24/36/18/42
    assert frame.loc["2026-02-16 09:00", ["mean", "lower_80", "upper_80", "lower_95",
                                          "upper_95"]].tolist() == [30, 24, 36, 18, 42]
    # 0 -> 4: no relative width, the bounds (0, 2, 0, 3) move up by 4
    assert frame.loc["2026-02-17 09:00", ["mean", "lower_80", "upper_80", "lower_95",
                                          "upper_95"]].tolist() == [4, 4, 6, 4, 7]
    untouched = frame.index.difference(pd.DatetimeIndex(["2026-02-16 09:00",
                                                         "2026-02-17 09:00"]))
    pd.testing.assert_frame_equal(frame.loc[untouched], forecast.loc[untouched])
    (record,) = adjusted.adjustments
    assert record.kind == "override_intervals"
    assert record.factor is None
    assert record.changes == ((ts("2026-02-16 09:00"), 20.0, 30.0),
                              (ts("2026-02-17 09:00"), 0.0, 4.0))
    assert (record.calls_before, record.calls_after) == (20, 34)
    assert (record.start, record.end) == (ts("2026-02-16 09:00"), ts("2026-02-17 10:00"))


def test_override_to_zero_closes_the_interval(forecast) -> None:
    frame = override_intervals(forecast, {"2026-02-16 08:00": 0}, reason="closed").frame
    assert frame.loc["2026-02-16 08:00", ["mean", "lower_80", "upper_80", "lower_95",
                                          "upper_95"]].tolist() == [0, 0, 0, 0, 0]


def test_daily_totals_with_call_weighted_aht(forecast) -> None:
    totals = daily_totals(forecast)
    assert totals.index.name == "date"
    assert totals.index.tolist() == [ts("2026-02-16"), ts("2026-02-17")]
    assert totals["calls"].tolist() == [100, 45]
    # (10*300 + 20*300 + 30*240 + 40*240) / 100 and (5*200 + 0*180 + 15*200 + 25*200) / 45
    assert totals["aht"].tolist() == pytest.approx([258, 200])
    adjusted = daily_totals(scale_day(forecast, "2026-02-16", 1.5, reason="campaign"))
    assert adjusted["calls"].tolist() == [150, 45]
    assert adjusted["calls_original"].tolist() == [100, 45]
    assert adjusted["aht"].tolist() == pytest.approx([258, 200])


def test_daily_totals_without_aht_or_calls(forecast) -> None:
    closed = forecast.drop(columns="aht").assign(mean=0.0)
    totals = daily_totals(closed)
    assert list(totals.columns) == ["calls"]
    assert totals["calls"].tolist() == [0, 0]
    with_aht = daily_totals(forecast.assign(mean=0.0))
    assert with_aht["aht"].isna().all()  # no calls: no handle time


def test_integer_forecast_columns_are_scaled_as_floats(forecast) -> None:
    as_int = forecast.astype(int)
    frame = scale_day(as_int, "2026-02-17", 0.5, reason="half staff of callers").frame
    assert frame["mean"].tolist() == [10, 20, 30, 40, 2.5, 0, 7.5, 12.5]


@pytest.mark.parametrize(("call", "match"), [
    (lambda f: scale_day(f, "2026-02-18", 1.2, reason="x"), r"day=2026-02-18 is outside"),
    (lambda f: scale_day(f, "not a day", 1.2, reason="x"), "day="),
    (lambda f: scale_day(f, "2026-02-16", 0, reason="x"), "factor=0"),
    (lambda f: scale_day(f, "2026-02-16", -1.5, reason="x"), "factor=-1.5"),
    (lambda f: scale_day(f, "2026-02-16", float("nan"), reason="x"), "factor=nan"),
    (lambda f: scale_day(f, "2026-02-16", 1.2, reason=" "), "reason"),
    (lambda f: scale_intervals(f, "2026-02-16 07:00", "2026-02-16 09:00", 2, reason="x"),
     "start="),
    (lambda f: scale_intervals(f, "2026-02-17 11:00", "2026-02-17 13:00", 2, reason="x"),
     "end="),
    (lambda f: scale_intervals(f, "2026-02-16 10:00", "2026-02-16 10:00", 2, reason="x"),
     "end=.* is not after start"),
    (lambda f: scale_intervals(f, "2026-02-16 13:00", "2026-02-16 20:00", 2, reason="x"),
     "no forecast interval"),
    (lambda f: override_intervals(f, {"2026-02-16 09:30": 5}, reason="x"),
     "values: 2026-02-16 09:30:00 is not an interval start"),
    (lambda f: override_intervals(f, {"2026-02-16 09:00": -1}, reason="x"), "values"),
    (lambda f: override_intervals(f, {"2026-02-16 09:00": "many"}, reason="x"), "values"),
    (lambda f: override_intervals(f, {}, reason="x"), "values is empty"),
    (lambda f: override_intervals(f, {"2026-02-16 09:00": 1}, reason=""), "reason"),
    (lambda f: daily_totals(f.drop(columns="mean")), "mean"),
])
def test_errors_name_the_argument(forecast, call, match) -> None:
    with pytest.raises(AdjustmentError, match=match):
        call(forecast)


def test_result_type_and_end_of_last_interval_allowed(forecast) -> None:
    adjusted = scale_intervals(forecast, "2026-02-17 11:00", "2026-02-17 12:00", 2.0,
                               reason="late peak")
    assert isinstance(adjusted, AdjustedForecast)
    assert adjusted.frame["mean"].iloc[-1] == 50
    assert np.array_equal(adjusted.frame["mean"].iloc[:-1], forecast["mean"].iloc[:-1])
