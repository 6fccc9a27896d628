"""AHT forecast per interval: calls-weighted same day type and interval, with fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.aht import forecast_aht
from forecasting.models import ForecastInputError

START = pd.Timestamp("2026-03-02")  # a Monday


def make_calendar(days: int, *, holidays: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame with the columns of ``day_calendar`` (built here, independent of calendar.py)."""
    dates = pd.date_range(START, periods=days, freq="D", name="date")
    holiday = dates.isin(pd.to_datetime(list(holidays)))
    weekend = dates.day_of_week >= 5
    return pd.DataFrame(
        {
            "weekday": dates.day_of_week,
            "holiday": holiday,
            "makeup_workday": False,
            "holiday_name": np.where(holiday, "Holiday", ""),
            "event": "",
            "day_type": np.where(holiday, "holiday", np.where(weekend, "weekend", "workday")),
        },
        index=dates,
    )


def hourly_history(days: int) -> pd.DataFrame:
    """Hourly calls and AHT: workdays open 08-18 (AHT 100 s), weekends 08-12 (AHT 200 s)."""
    index = pd.date_range(START, periods=days * 24, freq="60min")
    hour = index.hour.to_numpy()
    weekend = index.day_of_week.to_numpy() >= 5
    open_ = (hour >= 8) & (hour < np.where(weekend, 12, 18))
    calls = np.where(open_, 10.0, 0.0)
    aht = np.where(open_, np.where(weekend, 200.0, 100.0), np.nan)
    return pd.DataFrame({"calls": calls, "aht": aht}, index=index)


def test_calls_weighted_average_of_the_same_day_type_and_interval() -> None:
    history = hourly_history(14)
    # Workday 09:00: 10 calls at 100 s except on the two Mondays: 30 calls at 180 s.
    mondays = (history.index.day_of_week == 0) & (history.index.hour == 9)
    history.loc[mondays, ["calls", "aht"]] = [30.0, 180.0]
    calendar = make_calendar(21)
    forecast = forecast_aht(history, 24 * 7, calendar=calendar, weeks=2)
    assert forecast.name == "aht"
    assert forecast.index[0] == pd.Timestamp("2026-03-16 00:00")
    # 8 workdays x 10 calls x 100 s plus 2 Mondays x 30 calls x 180 s, over 140 calls.
    expected = (8 * 10 * 100 + 2 * 30 * 180) / (8 * 10 + 2 * 30)
    assert forecast.loc["2026-03-18 09:00"] == pytest.approx(expected)
    assert forecast.loc["2026-03-16 10:00"] == pytest.approx(100.0)
    assert forecast.loc["2026-03-21 09:00"] == pytest.approx(200.0)  # a Saturday


def test_intervals_without_calls_fall_back_to_the_daily_average() -> None:
    history = hourly_history(14)
    history.loc[(history.index.hour == 17) & (history.index.day_of_week < 5), "aht"] = 160.0
    forecast = forecast_aht(history, 24, calendar=make_calendar(15), weeks=2)
    # Nine hours at 100 s and one at 160 s, equal calls: the night uses that daily average.
    assert forecast.loc["2026-03-16 03:00"] == pytest.approx((9 * 100 + 160) / 10)
    assert forecast.loc["2026-03-16 17:00"] == pytest.approx(160.0)


def test_holiday_without_history_borrows_the_weekend() -> None:
    history = hourly_history(14)
    calendar = make_calendar(15, holidays=("2026-03-16",))
    forecast = forecast_aht(history, 24, calendar=calendar)
    assert forecast.loc["2026-03-16 09:00"] == pytest.approx(200.0)


def test_errors() -> None:
    history = hourly_history(14)
    calendar = make_calendar(15)
    with pytest.raises(ForecastInputError, match="columns calls and aht"):
        forecast_aht(history[["calls"]], 24, calendar=calendar)
    with pytest.raises(ForecastInputError, match="no interval with calls and a known aht"):
        forecast_aht(history.assign(aht=np.nan), 24, calendar=calendar)
    with pytest.raises(ForecastInputError, match="calendar does not cover 2026-03-16"):
        forecast_aht(history, 24, calendar=make_calendar(14))
    with pytest.raises(ForecastInputError, match="weeks must be an integer >= 1"):
        forecast_aht(history, 24, calendar=calendar, weeks=0)
