"""Interval history input: validation messages, interval inference, gap rules (closed at
night, closed Sundays, missing days), time zones and queues."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from forecasting.series import SeriesError, read_history, series_frame


def rows(start: str, end: str, *, step: int = 15, hours: tuple[int, int] = (0, 24),
         skip_weekdays: tuple[int, ...] = (), skip_days: tuple[str, ...] = (),
         calls: int = 3) -> pd.DataFrame:
    """Rows as a warehouse exports them: only open intervals, quiet ones left out."""
    index = pd.date_range(start, end, freq=f"{step}min", inclusive="left")
    keep = ((index.hour >= hours[0]) & (index.hour < hours[1])
            & ~index.day_of_week.isin(skip_weekdays)
            & ~index.normalize().isin(pd.DatetimeIndex(skip_days)))
    index = index[keep]
    return pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M"),
                         "calls": np.full(len(index), calls)})


def test_complete_grid_freq_and_columns() -> None:
    history = read_history(rows("2026-01-05", "2026-01-07"))
    assert list(history) == ["all"]
    frame = history["all"]
    assert list(frame.columns) == ["calls", "aht"]
    assert frame.index.freqstr == "15min"
    assert frame.index[0] == pd.Timestamp("2026-01-05 00:00")
    assert frame.index[-1] == pd.Timestamp("2026-01-06 23:45")
    assert len(frame) == 2 * 96
    assert frame["calls"].sum() == 3 * 192
    assert frame["aht"].isna().all()


def test_closed_at_night_gives_zero_not_missing() -> None:
    frame = read_history(rows("2026-01-05", "2026-01-12", hours=(8, 20)))["all"]
    assert len(frame) == 7 * 96
    assert not frame["calls"].isna().any()
    assert frame.loc["2026-01-06 03:00", "calls"] == 0
    assert frame.loc["2026-01-06 19:45", "calls"] == 3
    assert frame["calls"].sum() == 7 * 48 * 3


def test_partial_first_and_last_day_are_missing_where_the_center_is_open() -> None:
    # A 24-hour center exported from 10:00 on the 5th to 12:00 on the 6th: the morning of
    # the 5th and the afternoon of the 6th were not observed (not 0 calls).
    data = rows("2026-01-05 10:00", "2026-01-06 12:00")
    frame = read_history(data)["all"]
    assert frame.index[0] == pd.Timestamp("2026-01-05")
    assert frame.index[-1] == pd.Timestamp("2026-01-06 23:45")
    assert frame.loc["2026-01-05 00:00":"2026-01-05 09:45", "calls"].isna().all()
    assert frame.loc["2026-01-06 12:00":"2026-01-06 23:45", "calls"].isna().all()
    assert frame["calls"].isna().sum() == 40 + 48
    assert frame["calls"].sum() == 3 * (96 - 40 + 48)


def test_partial_days_of_a_center_closed_at_night_keep_the_night_at_zero() -> None:
    # Open 08:00-20:00; the export starts at 10:00 on Monday and stops at 15:00 on Wednesday.
    data = rows("2026-01-05 10:00", "2026-01-07 15:00", hours=(8, 20))
    frame = read_history(data)["all"]
    calls = frame["calls"]
    assert calls.loc["2026-01-05 00:00":"2026-01-05 07:45"].eq(0).all()
    assert calls.loc["2026-01-05 08:00":"2026-01-05 09:45"].isna().all()
    assert calls.loc["2026-01-07 15:00":"2026-01-07 19:45"].isna().all()
    assert calls.loc["2026-01-07 20:00":"2026-01-07 23:45"].eq(0).all()
    assert calls.isna().sum() == 8 + 20


def test_every_queue_ends_on_the_last_day_of_the_input() -> None:
    # Queue b has no rows on the last weekend: its grid still reaches Sunday 25 January, so
    # both queues are forecast from Monday 26 January (the absent weekend is missing: b has
    # calls on the other weekends).
    a = rows("2026-01-05", "2026-01-26", hours=(8, 20)).assign(queue="a")
    b = rows("2026-01-06", "2026-01-24", hours=(8, 20)).assign(queue="b")
    history = read_history(pd.concat([a, b]))
    assert history["a"].index[-1] == history["b"].index[-1] == pd.Timestamp("2026-01-25 23:45")
    assert history["b"].index[0] == pd.Timestamp("2026-01-06")  # a queue starts with its data
    days = history["b"]["calls"].groupby(history["b"].index.normalize()).sum(min_count=1)
    assert days.isna().tolist() == [False] * 18 + [True] * 2
    assert (days.iloc[:18] == 48 * 3).all()


def test_closed_sundays_are_zero_and_a_missing_weekday_is_nan() -> None:
    data = rows("2026-01-05", "2026-02-02", hours=(8, 20), skip_weekdays=(6,),
                skip_days=("2026-01-14",))
    frame = read_history(data)["all"]
    days = frame["calls"].groupby(frame.index.normalize()).sum(min_count=1)
    assert len(days) == 27  # 2026-01-05 .. 2026-01-31 (the last Sunday has no rows)
    assert (days[days.index.day_of_week == 6] == 0).all()
    assert frame.loc["2026-01-14", "calls"].isna().all()
    assert days.isna().sum() == 1
    assert days["2026-01-15"] == 48 * 3


def test_a_weekday_present_in_half_its_weeks_is_open() -> None:
    # Saturdays 10 and 24 January have rows, 17 and 31 do not: open, so those are missing.
    data = rows("2026-01-05", "2026-02-02", hours=(9, 12),
                skip_days=("2026-01-17", "2026-01-31"))
    frame = read_history(data)["all"]
    assert frame.loc["2026-01-17", "calls"].isna().all()
    assert frame.loc["2026-01-31", "calls"].isna().all()


def test_explicit_empty_calls_are_missing() -> None:
    data = rows("2026-01-05", "2026-01-06", step=60)
    data.loc[3, "calls"] = np.nan
    frame = read_history(data)["all"]
    assert np.isnan(frame["calls"].iloc[3])
    assert frame["calls"].iloc[4] == 3


def test_interval_inferred_from_sparse_rows() -> None:
    data = rows("2026-01-05", "2026-01-12", step=30, hours=(9, 17))
    data = data.iloc[::3]  # quiet intervals dropped: mostly 90 minutes apart, on a 30-min grid
    frame = read_history(data.reset_index(drop=True))["all"]
    assert frame.index.freqstr == "30min"
    frame60 = read_history(rows("2026-01-05", "2026-01-06", step=60))["all"]
    assert frame60.index.freqstr == "60min"
    frame5 = read_history(rows("2026-01-05", "2026-01-06", step=5))["all"]
    assert len(frame5) == 288


def test_given_interval_is_used_and_checked() -> None:
    sparse = pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 11:00"],
                           "calls": [1, 1]})
    assert read_history(sparse)["all"].index.freqstr == "60min"
    assert len(read_history(sparse, interval_minutes=15)["all"]) == 96
    data = rows("2026-01-05", "2026-01-06", step=15, hours=(9, 10))
    with pytest.raises(SeriesError, match="not on a 30-minute grid"):
        read_history(data, interval_minutes=30)
    hourly = rows("2026-01-05", "2026-01-07", step=60)
    with pytest.raises(SeriesError, match="pass interval_minutes=60"):
        read_history(hourly, interval_minutes=15)
    with pytest.raises(SeriesError, match="interval_minutes=10 is not supported"):
        read_history(data, interval_minutes=10)


def test_queues_aht_and_series_frame_round_trip() -> None:
    csv = io.StringIO(
        "Timestamp,Queue,Calls,AHT\n"
        "2026-01-05 09:00,sales,4,180\n"
        "2026-01-05 09:15,sales,0,\n"
        "2026-01-05 09:00,service,2,300\n"
        "2026-01-05 10:00,service,1,240\n"
    )
    history = read_history(pd.read_csv(csv))
    assert sorted(history) == ["sales", "service"]
    sales, service = history["sales"], history["service"]
    assert sales.index.freqstr == "15min"  # both queues share one interval
    assert sales.loc["2026-01-05 09:00", "aht"] == 180
    assert np.isnan(sales.loc["2026-01-05 09:15", "aht"])
    assert service.loc["2026-01-05 10:00", "calls"] == 1
    assert service["calls"].sum() == 3
    long = series_frame(history)
    assert list(long.columns) == ["timestamp", "queue", "calls", "aht"]
    assert len(long) == 2 * 96
    back = long[long["calls"] > 0]
    # Without the zero row the sparse rows are all on the hour: give the interval.
    assert read_history(back)["service"].index.freqstr == "60min"
    again = read_history(back, interval_minutes=15)
    assert again["service"]["calls"].equals(service["calls"])


def test_aware_timestamps_become_their_own_wall_clock() -> None:
    data = pd.DataFrame({"timestamp": ["2026-01-05T08:00:00+08:00", "2026-01-05T08:15:00+08:00"],
                         "calls": [5, 6]})
    frame = read_history(data)["all"]
    assert frame.loc["2026-01-05 08:00", "calls"] == 5
    typed = data.assign(timestamp=pd.to_datetime(data["timestamp"]))
    assert read_history(typed)["all"]["calls"].equals(frame["calls"])


def test_daylight_saving_fall_back_hour_is_added_up() -> None:
    # Europe/Berlin, 25 October 2026: 02:00-03:00 happens twice (+02:00, then +01:00).
    data = pd.DataFrame({
        "timestamp": ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00",
                      "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"],
        "calls": [1, 2, 3, 4], "aht": [100, 100, 200, np.nan]})
    frame = read_history(data)["all"]
    assert frame.index.freqstr == "60min"
    assert frame.loc["2026-10-25 02:00", "calls"] == 5
    assert frame.loc["2026-10-25 02:00", "aht"] == pytest.approx((2 * 100 + 3 * 200) / 5)
    assert np.isnan(frame.loc["2026-10-25 03:00", "aht"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"time": ["2026-01-05 09:00"], "calls": [1]}),
         "missing column 'timestamp'"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00"]}), "missing column 'calls'"),
        (pd.DataFrame({"timestamp": [], "calls": []}), "no rows"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "yesterday"], "calls": [1, 2]}),
         "column 'timestamp' row 1 has 'yesterday'"),
        (pd.DataFrame({"timestamp": [1, 2], "calls": [1, 2]}), "holds numbers"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 09:15"],
                       "calls": [1, -2]}), "column 'calls' row 1 is negative"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00"], "calls": ["many"]}),
         "column 'calls' row 0 has 'many'"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 09:15"],
                       "calls": [1, 2], "aht": [100, -1]}), "column 'aht' row 1 is negative"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 09:15",
                                     "2026-01-05 09:15"], "calls": [1, 2, 3]}),
         "row 1 (2026-01-05 09:15:00) appears more than once for queue 'all'"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 09:10",
                                     "2026-01-05 09:20"], "calls": [1, 2, 3]}),
         "mostly 10 minutes apart, which is not an interval of (5, 15, 30, 60) minutes (row 1"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00", "2026-01-05 09:15",
                                     "2026-01-05 09:30", "2026-01-05 09:37"],
                       "calls": [1, 2, 3, 4]}),
         "row 3 (2026-01-05 09:37:00) is not on a 5-minute grid"),
        (pd.DataFrame({"timestamp": [f"2026-01-05 {h:02d}:00" for h in range(8, 19)]
                       + ["2026-01-05 18:15"], "calls": 1}),
         "most rows are 60 minutes apart but row 11 (2026-01-05 18:15:00) is off"),
        (pd.DataFrame({"timestamp": ["2026-01-05 09:00"], "calls": [1], "queue": [None]}),
         "column 'queue' row 0 is empty"),
    ],
)
def test_errors_name_the_column_row_and_fix(data: pd.DataFrame, message: str) -> None:
    with pytest.raises(SeriesError) as raised:
        read_history(data)
    assert message in str(raised.value)


def test_not_a_frame() -> None:
    with pytest.raises(SeriesError, match="must be a DataFrame"):
        read_history([1, 2])  # type: ignore[arg-type]
