"""History cleaning (WF-01) on synthetic Poisson series with known weekly seasonality:
injected spikes and outages are found and repaired near the truth, missing days are filled,
holidays, events and make-up workdays are kept, and a clean series stays (almost) clean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import day_calendar
from forecasting.cleaning import Cleaned, CleaningError, clean
from forecasting.series import read_history

START, END = "2025-08-25", "2025-11-16"  # 12 weeks from a Monday, National Day inside
WEEKDAY_LEVEL = np.array([1.0, 0.95, 0.9, 0.9, 0.85, 0.45, 0.35])
HOLIDAY_LEVEL = 0.3


def truth(calendar: pd.DataFrame, *, step: int = 15, peak: float = 40.0) -> pd.Series:
    """Expected calls per interval: a daytime hump (never quite 0 at night) times the
    weekday level; holidays at 30%, make-up workdays at a Friday's level."""
    index = pd.date_range(START, END, freq=f"{step}min", inclusive="left")
    hour = index.hour + index.minute / 60
    profile = np.clip(np.sin((hour - 7) / 14 * np.pi), 0, None) ** 1.5 + 0.02
    day = calendar.reindex(index.normalize())
    level = WEEKDAY_LEVEL[index.day_of_week]
    level = np.where(day["makeup_workday"], WEEKDAY_LEVEL[4], level)
    level = np.where(day["holiday"], HOLIDAY_LEVEL, level)
    return pd.Series(peak * profile * level, index=index, name="calls")


@pytest.fixture(scope="module")
def calendar() -> pd.DataFrame:
    return day_calendar(START, END)


@pytest.fixture(scope="module")
def expected(calendar: pd.DataFrame) -> pd.Series:
    return truth(calendar)


def draw(expected: pd.Series, seed: int) -> pd.Series:
    calls = np.random.default_rng(seed).poisson(expected.to_numpy()).astype(float)
    series = pd.Series(calls, index=expected.index, name="calls")
    series.index.freq = expected.index.freq
    return series


def test_clean_series_has_few_changes_and_keeps_values(calendar: pd.DataFrame,
                                                        expected: pd.Series) -> None:
    flagged = 0
    for seed in range(4):
        calls = draw(expected, seed)
        result = clean(calls, calendar=calendar)
        flagged += int((result.frame["change"] != "").sum())
        unchanged = result.frame["change"] == ""
        assert (result.frame.loc[unchanged, "calls"] == calls[unchanged]).all()
    # 4 x 8064 intervals; measured 0 to 1 false flags at the default threshold 4.5.
    assert flagged <= 3


def test_frame_columns_and_report_shape(calendar: pd.DataFrame, expected: pd.Series) -> None:
    result = clean(draw(expected, 1), calendar=calendar)
    assert isinstance(result, Cleaned)
    assert list(result.frame.columns) == ["calls", "calls_original", "change", "expected",
                                          "score", "holiday", "event", "aht"]
    assert result.frame.index.freqstr == "15min"
    assert list(result.report.columns) == ["start", "end", "intervals", "reason", "original",
                                           "cleaned", "score"]
    assert result.calls.index.freqstr == "15min"
    assert 0 <= result.dispersion < 0.3
    with pytest.raises(AttributeError):
        result.threshold = 1.0  # type: ignore[misc]


def test_spikes_found_and_repaired_near_truth(calendar: pd.DataFrame,
                                              expected: pd.Series) -> None:
    calls = draw(expected, 2)
    spikes = pd.DatetimeIndex(["2025-09-03 10:00", "2025-09-16 14:30", "2025-10-21 11:15",
                               "2025-11-05 16:45", "2025-09-09 19:00"])
    calls[spikes] = 3 * expected[spikes] + 30
    result = clean(calls, calendar=calendar)
    frame = result.frame
    assert (frame.loc[spikes, "change"] == "outlier").all()
    assert (frame.loc[spikes, "calls_original"] == calls[spikes]).all()
    error = (frame.loc[spikes, "calls"] - expected[spikes]).abs()
    assert (error <= 0.15 * expected[spikes] + 3).all()
    assert (frame.loc[spikes, "score"] > 4.5).all()
    outliers = result.report[result.report["reason"] == "outlier"]
    assert set(spikes).issubset(set(outliers["start"]))
    assert len(result.report) <= len(spikes) + 1


def test_outage_half_a_day_repaired(calendar: pd.DataFrame, expected: pd.Series) -> None:
    calls = draw(expected, 3)
    window = slice("2025-10-15 08:00", "2025-10-15 13:45")  # a Wednesday, 24 intervals
    calls[window] = 0.0
    result = clean(calls, calendar=calendar)
    frame = result.frame
    assert (frame.loc[window, "change"] == "outage").all()
    repaired = frame.loc[window, "calls"].sum()
    true_total = expected[window].sum()
    assert abs(repaired - true_total) <= 0.08 * true_total
    outages = result.report[result.report["reason"] == "outage"]
    assert len(outages) == 1
    row = outages.iloc[0]
    # The run may start a little early: 07:xx expects ~2 calls and may well draw 0.
    assert pd.Timestamp("2025-10-15 07:00") <= row["start"] <= pd.Timestamp("2025-10-15 08:00")
    assert row["end"] == pd.Timestamp("2025-10-15 14:00")
    assert 24 <= row["intervals"] <= 28
    assert row["original"] <= 2
    assert row["score"] < -10
    assert (frame.loc["2025-10-15 14:00":"2025-10-15 23:45", "change"] == "").all()


def test_a_short_dip_at_night_is_not_an_outage(calendar: pd.DataFrame,
                                               expected: pd.Series) -> None:
    calls = draw(expected, 4)
    calls["2025-09-10 00:00":"2025-09-10 05:45"] = 0.0  # about 0.8 calls per interval lost
    result = clean(calls, calendar=calendar)
    assert (result.frame.loc["2025-09-10 00:00":"2025-09-10 05:45", "change"] == "").all()


def test_missing_day_filled_from_neighbouring_weeks(calendar: pd.DataFrame,
                                                    expected: pd.Series) -> None:
    calls = draw(expected, 5)
    rows = pd.DataFrame({"timestamp": calls.index, "calls": calls.to_numpy()})
    rows = rows[(rows["calls"] > 0) & (rows["timestamp"].dt.normalize()
                                       != pd.Timestamp("2025-09-23"))]
    history = read_history(rows)["all"]
    assert history.loc["2025-09-23", "calls"].isna().all()
    result = clean(history, calendar=calendar)
    day = result.frame.loc["2025-09-23"]
    assert (day["change"] == "missing").all()
    assert day["calls_original"].isna().all()
    true_total = expected["2025-09-23"].sum()
    assert abs(day["calls"].sum() - true_total) <= 0.05 * true_total
    # The peak interval is filled near its expectation, not with a flat average.
    assert abs(day.loc["2025-09-23 14:00", "calls"] - expected["2025-09-23 14:00"]) <= 6
    missing = result.report[result.report["reason"] == "missing"]
    assert len(missing) == 1
    assert missing.iloc[0]["intervals"] == 96
    assert np.isnan(missing.iloc[0]["original"])
    assert not result.frame["calls"].isna().any()


def test_holidays_marked_kept_and_not_flagged(calendar: pd.DataFrame,
                                              expected: pd.Series) -> None:
    calls = draw(expected, 6)
    result = clean(calls, calendar=calendar)
    frame = result.frame
    national_day = frame.loc["2025-10-01":"2025-10-08 23:45"]
    assert national_day["holiday"].all()
    assert (national_day["change"] == "").all()
    assert (national_day["calls"] == calls["2025-10-01":"2025-10-08 23:45"]).all()
    # The drop is real and large: far below the ordinary-day expectation.
    assert national_day["calls"].sum() < 0.5 * national_day["expected"].sum()
    assert not frame.loc["2025-09-30", "holiday"].any()
    # Make-up workdays (Sunday 28 September, Saturday 11 October) behave like workdays.
    for day in ("2025-09-28", "2025-10-11"):
        assert (frame.loc[day, "change"] == "").all()
        assert frame.loc[day, "expected"].sum() == pytest.approx(expected[day].sum(), rel=0.1)


def test_events_marked_and_not_flagged(expected: pd.Series) -> None:
    events = pd.DataFrame({"date": ["2025-09-17"], "name": ["campaign"]})
    calendar = day_calendar(START, END, events=events)
    calls = draw(expected, 7)
    calls["2025-09-17"] = calls["2025-09-17"] * 3
    result = clean(calls, calendar=calendar)
    day = result.frame.loc["2025-09-17"]
    assert (day["event"] == "campaign").all()
    assert (day["change"] == "").all()
    assert (result.frame.loc["2025-09-18", "event"] == "").all()


def test_missing_holiday_means_closed(calendar: pd.DataFrame, expected: pd.Series) -> None:
    calls = draw(expected, 8)
    calls["2025-10-02"] = np.nan
    calls["2025-10-03 10:00"] = np.nan
    result = clean(calls, calendar=calendar)
    assert (result.frame.loc["2025-10-02", "change"] == "closed").all()
    assert (result.frame.loc["2025-10-02", "calls"] == 0).all()
    gap = result.frame.loc["2025-10-03 10:00"]
    assert gap["change"] == "missing"
    neighbours = calls[["2025-10-03 09:45", "2025-10-03 10:15"]].mean()
    assert gap["calls"] == pytest.approx(neighbours)


def test_closed_sundays_and_nights_stay_zero(calendar: pd.DataFrame) -> None:
    index = pd.date_range(START, END, freq="30min", inclusive="left")
    makeup = calendar["makeup_workday"].reindex(index.normalize()).to_numpy()
    open_hours = ((index.hour >= 8) & (index.hour < 20)
                  & ((index.day_of_week != 6) | makeup))  # open on make-up Sunday 28 Sep
    expected = pd.Series(np.where(open_hours, 25.0, 0.0), index=index)
    calls = draw(expected, 9)
    calls.index.freq = "30min"
    result = clean(calls, calendar=calendar)
    closed = result.frame.loc[~open_hours]
    assert (closed["calls"] == 0).all()
    assert (closed["change"] == "").all()
    assert (result.frame.loc["2025-09-28", "change"] == "").all()
    assert result.frame.loc["2025-09-28 10:00", "expected"] == pytest.approx(25, abs=5)
    assert int((result.frame["change"] != "").sum()) <= 1


def test_partial_days_and_a_frame_with_aht(calendar: pd.DataFrame,
                                           expected: pd.Series) -> None:
    calls = draw(expected, 10)["2025-08-27 12:00":"2025-11-14 18:00"]
    frame = pd.DataFrame({"calls": calls, "aht": 180.0})
    result = clean(frame, calendar=calendar)
    assert result.frame.index.equals(frame.index)
    assert (result.frame["aht"] == 180.0).all()
    assert int((result.frame["change"] != "").sum()) <= 2


def test_five_minute_series(calendar: pd.DataFrame) -> None:
    expected = truth(calendar, step=5, peak=14.0)["2025-09-01":"2025-10-26 23:55"]
    calls = draw(expected, 11)
    calls["2025-09-24 09:00":"2025-09-24 11:55"] = 0.0
    result = clean(calls, calendar=calendar)
    assert (result.frame.loc["2025-09-24 09:00":"2025-09-24 11:55", "change"]
            == "outage").all()
    assert int((result.frame["change"] == "outlier").sum()) <= 2


def test_threshold_option_trades_flags(calendar: pd.DataFrame, expected: pd.Series) -> None:
    calls = draw(expected, 12)
    loose = clean(calls, calendar=calendar, threshold=3.0)
    strict = clean(calls, calendar=calendar, threshold=6.0)
    assert (loose.frame["change"] != "").sum() > (strict.frame["change"] != "").sum()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weeks": 0}, "weeks=0"),
        ({"threshold": 0}, "threshold=0"),
        ({"outage_ratio": 1.5}, "outage_ratio=1.5"),
        ({"min_outage_minutes": 5}, "min_outage_minutes=5"),
        ({"min_outage_calls": -1}, "min_outage_calls=-1"),
    ],
)
def test_option_errors(calendar: pd.DataFrame, expected: pd.Series,
                       kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(CleaningError, match=message):
        clean(expected, calendar=calendar, **kwargs)  # type: ignore[arg-type]


def test_input_errors(calendar: pd.DataFrame, expected: pd.Series) -> None:
    with pytest.raises(CleaningError, match=r"does not cover 2025-11-15"):
        clean(expected, calendar=calendar.loc[:"2025-11-14"])
    longer = day_calendar("2025-08-01", "2025-12-31")
    assert len(clean(expected, calendar=longer).frame) == len(expected)
    with pytest.raises(CleaningError, match="'calls' column"):
        clean(pd.DataFrame({"x": expected}), calendar=calendar)
    with pytest.raises(CleaningError, match="lacks columns"):
        clean(expected, calendar=calendar[["weekday"]])
    irregular = expected.iloc[[0, 1, 5, 9]]
    irregular.index.freq = None
    with pytest.raises(CleaningError, match="no regular interval"):
        clean(irregular, calendar=calendar)


def test_short_history_fills_from_any_day_at_that_interval() -> None:
    index = pd.date_range("2026-01-07 10:00", "2026-01-09 12:00", freq="60min")
    calls = pd.Series(5.0, index=index)
    calls["2026-01-08 11:00"] = 9.0
    calls["2026-01-07 11:00"] = np.nan  # no other Wednesday: Thursday's 11:00 stands in
    result = clean(calls, calendar=day_calendar("2026-01-07", "2026-01-09"))
    assert result.frame.loc["2026-01-07 11:00", "calls"] == pytest.approx(7.0)  # (9 + 5) / 2
    assert result.frame.loc["2026-01-07 11:00", "change"] == "missing"
    assert (result.frame["change"] != "").sum() == 1
