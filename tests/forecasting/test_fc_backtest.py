"""Rolling-origin backtests: origin tiling, no leakage, hand-computed metrics, choice, override.

The models here are small honest ones that follow the model interface, so every figure can be
worked out by hand: ``LastWeek`` (the same interval one week earlier, last week repeated),
``WeekdayAverage`` (mean of the same interval of the week over all earlier weeks) and
``TrueRate`` (forecasts a known rate series). Prediction intervals are mean +- a fixed width.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import (
    BacktestInputError,
    BacktestModelError,
    backtest,
    improvement_over_baselines,
    parse_horizon,
)

WEEK = pd.Timedelta(days=7)


def interval_frame(index: pd.DatetimeIndex, mean: np.ndarray, width80: float,
                   width95: float) -> pd.DataFrame:
    mean = np.asarray(mean, dtype=float)
    return pd.DataFrame({
        "mean": mean,
        "lower_80": np.clip(mean - width80, 0, None), "upper_80": mean + width80,
        "lower_95": np.clip(mean - width95, 0, None), "upper_95": mean + width95,
    }, index=index)


def next_index(history: pd.Series, periods: int) -> pd.DatetimeIndex:
    step = history.index.freq
    return pd.date_range(history.index[-1] + step, periods=periods, freq=step)


@dataclass
class Forecaster:
    history: pd.Series
    values: object  # callable (index) -> mean values
    width80: float
    width95: float

    def predict(self, periods: int) -> pd.DataFrame:
        index = next_index(self.history, periods)
        return interval_frame(index, self.values(index), self.width80, self.width95)


@dataclass
class LastWeek:
    name = "last_week"
    width80: float = 3.0
    width95: float = 6.0

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Forecaster:
        season = int(WEEK / pd.Timedelta(history.index.freq))
        last = history.to_numpy()[-season:]
        return Forecaster(history, lambda index: np.resize(last, len(index)),
                          self.width80, self.width95)


@dataclass
class WeekdayAverage:
    name = "weekday_average"
    width80: float = 3.0
    width95: float = 6.0

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Forecaster:
        def values(index: pd.DatetimeIndex) -> np.ndarray:
            out = []
            for ts in index:
                lags = [history[t] for k in range(1, 60)
                        if (t := ts - k * WEEK) in history.index]
                out.append(np.mean(lags))
            return np.array(out)
        return Forecaster(history, values, self.width80, self.width95)


@dataclass
class TrueRate:
    name = "true_rate"
    rate: pd.Series = field(default_factory=pd.Series)
    width80: float = 2.0
    width95: float = 6.0

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Forecaster:
        return Forecaster(history, lambda index: self.rate.loc[index].to_numpy(),
                          self.width80, self.width95)


@dataclass
class Spy:
    """Records what each origin saw and asked for; forecasts zeros."""

    log: list[tuple[pd.Timestamp, pd.Timestamp, int, pd.Timestamp]]
    name = "spy"

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Spy.Fitted:
        return Spy.Fitted(self.log, history)

    @dataclass
    class Fitted:
        log: list
        history: pd.Series

        def predict(self, periods: int) -> pd.DataFrame:
            index = next_index(self.history, periods)
            self.log.append((self.history.index[0], self.history.index[-1], periods, index[0]))
            return interval_frame(index, np.zeros(periods), 1.0, 2.0)


def calendar_for(*indexes: pd.DatetimeIndex) -> pd.DataFrame:
    first = min(ix[0] for ix in indexes).normalize()
    last = max(ix[-1] for ix in indexes).normalize()
    days = pd.date_range(first, last, freq="D", name="date")
    return pd.DataFrame({"weekday": days.day_of_week}, index=days)


def daily(start: str, *weeks: list[float]) -> pd.Series:
    values = [v for week in weeks for v in week]
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"),
                     dtype=float)


# Queue a (from Monday 2026-01-05): two training weeks, one test week; closed at weekends.
A = daily("2026-01-05", [10, 20, 30, 40, 50, 0, 0], [12, 18, 30, 44, 50, 0, 0],
          [11, 20, 35, 40, 52, 0, 0])
# Queue b (from Monday 2026-03-02): volume doubles in week 2, so last week beats the average.
B = daily("2026-03-02", [10, 10, 10, 10, 10, 0, 0], [20, 20, 20, 20, 20, 0, 0],
          [22, 18, 20, 20, 20, 0, 0])
RATE = pd.concat([
    daily("2026-01-19", [11, 20, 32, 38, 50, 0, 0]),
    daily("2026-03-16", [21, 19, 20, 20, 20, 0, 0]),
])
CALENDAR = calendar_for(A.index, B.index)


def models() -> dict:
    return {"seasonal_naive": LastWeek, "weekday_average": WeekdayAverage,
            "true_rate": lambda: TrueRate(RATE)}


def row(result, queue: str, horizon: str, model: str) -> pd.Series:
    table = result.table
    match = table[(table["queue"] == queue) & (table["horizon"] == horizon)
                  & (table["model"] == model)]
    assert len(match) == 1
    return match.iloc[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("1d", ("1d", 1)), ("7d", ("1w", 7)), ("1w", ("1w", 7)), ("4w", ("4w", 28)),
    ("28d", ("4w", 28)), ("3d", ("3d", 3)), (14, ("2w", 14)),
])
def test_parse_horizon(text, expected) -> None:
    assert parse_horizon(text) == expected


@pytest.mark.parametrize("bad", ["1h", "week", "0d", "", -1])
def test_bad_horizon_names_the_argument(bad) -> None:
    with pytest.raises(BacktestInputError, match="horizons"):
        backtest({"a": A}, calendar=CALENDAR, models=models(), horizons=(bad,), test_days=7)


def test_metrics_match_hand_computation() -> None:
    result = backtest({"a": A}, calendar=CALENDAR, models=models(), horizons=("1d",),
                      test_days=7)
    # Test week actual [11, 20, 35, 40, 52, 0, 0], sum 158. Last week [12, 18, 30, 44, 50, 0, 0]:
    # errors f - a = +1, -2, -5, +4, -2, 0, 0. MASE scale on the two training weeks only:
    # |week 2 - week 1| = 2, 2, 0, 4, 0, 0, 0 -> 8/7; MAE 14/7 = 2 -> MASE 1.75.
    naive = row(result, "a", "1d", "seasonal_naive")
    assert naive["wape"] == pytest.approx(14 / 158)
    assert naive["bias"] == pytest.approx(-4 / 158)
    assert naive["mase"] == pytest.approx(1.75)
    # Coverage over the 5 open days only (the weekend has actual = forecast = 0):
    # |error| <= 3 on 3 of 5 days, <= 6 on all 5.
    assert naive["coverage_80"] == pytest.approx(3 / 5)
    assert naive["coverage_95"] == pytest.approx(1.0)
    assert (naive["n_intervals"], naive["n_coverage_intervals"], naive["n_origins"]) == (7, 5, 7)
    assert naive["sum_actual"] == 158
    assert naive["sum_abs_error"] == 14
    # Weekday average of weeks 1-2: [11, 19, 30, 42, 50, 0, 0]; errors 0, -1, -5, +2, -2.
    average = row(result, "a", "1d", "weekday_average")
    assert average["wape"] == pytest.approx(10 / 158)
    assert average["bias"] == pytest.approx(-6 / 158)
    assert average["mase"] == pytest.approx((10 / 7) / (8 / 7))
    assert average["coverage_80"] == pytest.approx(4 / 5)
    # True rate [11, 20, 32, 38, 50, 0, 0]: errors 0, 0, -3, -2, -2; 80% width 2.
    truth = row(result, "a", "1d", "true_rate")
    assert truth["wape"] == pytest.approx(7 / 158)
    assert truth["bias"] == pytest.approx(-7 / 158)
    assert truth["coverage_80"] == pytest.approx(4 / 5)
    assert truth["coverage_95"] == pytest.approx(1.0)
    assert result.chosen == {("a", "1d"): "true_rate"}
    assert result.table["chosen"].tolist() == [False, False, True]


def test_forecasts_are_scored_against_the_recorded_calls() -> None:
    # Cleaning repaired Wednesday of the test week (recorded 65, cleaned 35) and Thursday
    # was not recorded at all: the score uses 65 and leaves Thursday out.
    recorded = A.copy()
    recorded.iloc[16], recorded.iloc[17] = 65.0, np.nan
    result = backtest({"a": A}, calendar=CALENDAR, models=models(), horizons=("1d",),
                      test_days=7, actuals={"a": recorded})
    naive = row(result, "a", "1d", "seasonal_naive")
    # last week [12, 18, 30, _, 50, 0, 0] against [11, 20, 65, _, 52, 0, 0]: 1 + 2 + 35 + 2
    assert naive["sum_actual"] == 148
    assert naive["wape"] == pytest.approx(40 / 148)
    assert naive["n_intervals"] == 6
    assert naive["n_coverage_intervals"] == 4
    with pytest.raises(BacktestInputError, match="actuals has no series for queue 'a'"):
        backtest({"a": A}, calendar=CALENDAR, models=models(), test_days=7, actuals={})


def test_criterion_changes_the_choice() -> None:
    result = backtest({"a": A}, calendar=CALENDAR, models=models(), test_days=7,
                      criterion="abs_bias")
    # |bias|: seasonal naive 4/158 < weekday average 6/158 < true rate 7/158.
    assert result.chosen[("a", "1d")] == "seasonal_naive"
    assert result.criterion == "abs_bias"


def test_origins_tile_the_test_period_without_leakage() -> None:
    index = pd.date_range("2026-01-05", periods=24 * 4, freq="6h")  # 24 days, 4 per day
    calls = pd.Series(np.arange(len(index), dtype=float), index=index)
    log: list = []
    result = backtest({"q": calls}, calendar=calendar_for(index),
                      models={"spy": lambda: Spy(log)}, horizons=("1d", "7d", "4w"),
                      test_days=10, keep_forecasts=True)
    test_start = pd.Timestamp("2026-01-19")  # 14 training days
    step = pd.Timedelta(hours=6)
    by_horizon = {"1d": log[:10], "1w": log[10:12], "4w": log[12:]}
    expected = {
        "1d": [(test_start + pd.Timedelta(days=k), 4) for k in range(10)],
        "1w": [(test_start, 28), (test_start + WEEK, 12)],
        "4w": [(test_start, 40)],
    }
    for horizon, calls_seen in by_horizon.items():
        assert [(first, periods) for _, _, periods, first in calls_seen] == expected[horizon]
        for history_start, history_end, _, first in calls_seen:
            assert history_start == index[0]  # all data before the origin
            assert history_end == first - step  # and nothing from the forecast days
        frame = result.forecasts[("q", horizon, "spy")]
        assert frame.index.equals(index[index >= test_start])
        assert (frame["actual"] == calls[frame.index]).all()
        assert (frame["origin"] <= frame.index).all()
        assert (frame.index - frame["origin"] < pd.Timedelta(days=parse_horizon(horizon)[1])).all()
    table = result.table.set_index("horizon")
    assert table["n_origins"].to_dict() == {"1d": 10, "1w": 2, "4w": 1}
    assert table["n_intervals"].tolist() == [40, 40, 40]
    assert table["horizon_days"].tolist() == [1, 7, 28]


def test_horizons_differ_when_the_origin_is_further_away() -> None:
    # Two test weeks. At 4w one origin forecasts both weeks from week 2; at 1w the second
    # origin has seen test week 3.
    series = daily("2026-01-05", [10] * 7, [20] * 7, [30] * 7, [40] * 7)
    result = backtest({"a": series}, calendar=calendar_for(series.index),
                      models={"seasonal_naive": LastWeek}, horizons=("1w", "4w"), test_days=14)
    # 1w: forecasts 20 for week 3 and 30 for week 4: errors 70 + 70 over 490 calls.
    assert row(result, "a", "1w", "seasonal_naive")["wape"] == pytest.approx(140 / 490)
    # 4w: forecasts 20 for both weeks: errors 70 + 140.
    assert row(result, "a", "4w", "seasonal_naive")["wape"] == pytest.approx(210 / 490)


def test_override_returns_a_new_result_and_records_it() -> None:
    result = backtest({"a": A, "b": B}, calendar=CALENDAR, models=models(), test_days=7)
    changed = result.override(queue="a", horizon="1d", model="weekday_average",
                              reason="campaign next week")
    assert result.chosen[("a", "1d")] == "true_rate"
    assert result.overrides == ()
    assert changed.chosen == {("a", "1d"): "weekday_average", ("b", "1d"): "true_rate"}
    (record,) = changed.overrides
    assert (record.queue, record.horizon, record.automatic, record.model, record.reason) == (
        "a", "1d", "true_rate", "weekday_average", "campaign next week")
    table = changed.table
    a = table[table["queue"] == "a"].set_index("model")
    assert a["automatic"].to_dict() == {"seasonal_naive": False, "weekday_average": False,
                                        "true_rate": True}
    assert a["chosen"].to_dict() == {"seasonal_naive": False, "weekday_average": True,
                                     "true_rate": False}
    assert "override: a 1d: true_rate -> weekday_average (campaign next week)" in (
        changed.summary())
    with pytest.raises(BacktestInputError, match="model='mstl'"):
        result.override(queue="a", horizon="1d", model="mstl")
    with pytest.raises(BacktestInputError, match="queue='z'"):
        result.override(queue="z", horizon="1d", model="true_rate")
    with pytest.raises(BacktestInputError, match="horizon='1w'"):
        result.override(queue="a", horizon="1w", model="true_rate")


def test_improvement_over_baselines_per_queue_and_pooled() -> None:
    result = backtest({"a": A, "b": B}, calendar=CALENDAR, models=models(), test_days=7)
    comparison = improvement_over_baselines(result, horizon="1d")
    table = comparison.table
    # a: true rate 7/158 vs weekday average 10/158. b: test week [22, 18, 20, 20, 20, 0, 0]
    # (100 calls); last week (20s) errs 4, the average (15s) 25, the true rate 2.
    assert table.loc["a", "best_baseline"] == "weekday_average"
    assert table.loc["b", "best_baseline"] == "seasonal_naive"
    assert table.loc["b", "best_baseline_wape"] == pytest.approx(4 / 100)
    assert table["chosen"].tolist() == ["true_rate", "true_rate"]
    assert table.loc["a", "improvement"] == pytest.approx(0.3)
    assert table.loc["b", "improvement"] == pytest.approx(0.5)
    assert comparison.pooled_chosen_wape == pytest.approx(9 / 258)
    assert comparison.pooled_baseline_wape == pytest.approx(14 / 258)
    assert comparison.pooled_improvement == pytest.approx(5 / 14)
    # 80% coverage of the true rate (width 2): 4 of 5 open days on a, 5 of 5 on b.
    assert comparison.pooled_coverage_80 == pytest.approx(9 / 10)
    # MASE of b's seasonal naive: MAE 4/7 over the scale 50/7.
    assert row(result, "b", "1d", "seasonal_naive")["mase"] == pytest.approx(0.08)
    with pytest.raises(BacktestInputError, match="baselines"):
        improvement_over_baselines(result, baselines=("mstl",))
    with pytest.raises(BacktestInputError, match="horizon"):
        improvement_over_baselines(result, horizon="4w")


def test_a_queue_without_calls_in_the_test_period_still_gets_a_model() -> None:
    # z had a few calls, none in the test week: WAPE is undefined for every model, so the
    # choice falls to the fewest calls forecast (last week 2; the average 5.5; the true
    # rate of queue a's week 151).
    z = daily("2026-01-05", [3, 0, 3, 0, 3, 0, 0], [1, 0, 0, 0, 1, 0, 0], [0] * 7)
    result = backtest({"a": A, "z": z}, calendar=CALENDAR, models=models(), test_days=7)
    rows = result.table.set_index(["queue", "model"]).loc["z"]
    assert rows["wape"].isna().all()
    assert rows["sum_abs_error"].to_dict() == {
        "seasonal_naive": 2.0, "weekday_average": 5.5, "true_rate": 151.0}
    assert result.chosen[("z", "1d")] == "seasonal_naive"
    comparison = improvement_over_baselines(result, horizon="1d")
    assert comparison.table.loc["z", "best_baseline"] == "seasonal_naive"
    assert comparison.table.loc["z", "improvement"] == 0.0
    # pooled: a's true rate errs 7 and z's last week 2 over a's 158 calls
    assert comparison.pooled_chosen_wape == pytest.approx(9 / 158)
    assert comparison.pooled_baseline_wape == pytest.approx(12 / 158)


def test_parallel_equals_serial_and_reports_progress() -> None:
    import cloudpickle  # joblib depends on it

    # loky workers cannot import this test module by name: ship its models by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    serial_ticks: list[int] = []
    parallel_ticks: list[int] = []
    serial = backtest({"a": A, "b": B}, calendar=CALENDAR, models=models(),
                      horizons=("1d", "1w"), test_days=7, progress=serial_ticks.append)
    parallel = backtest({"a": A, "b": B}, calendar=CALENDAR, models=models(),
                        horizons=("1d", "1w"), test_days=7, n_jobs=2,
                        progress=parallel_ticks.append)
    pd.testing.assert_frame_equal(serial.table.drop(columns="fit_seconds"),
                                  parallel.table.drop(columns="fit_seconds"))
    assert serial_ticks == list(range(1, 13))
    assert parallel_ticks == [6, 12]
    assert (serial.table["fit_seconds"] >= 0).all()


def test_short_history_error_names_test_days() -> None:
    with pytest.raises(BacktestInputError, match=r"test_days=10 .* lower test_days to at most 7"):
        backtest({"a": A}, calendar=CALENDAR, models=models(), test_days=10)
    # Too short for any test period: no negative test_days suggested.
    short = A.iloc[:10]
    with pytest.raises(BacktestInputError, match=r"spans 10 day\(s\); supply at least 15 days"):
        backtest({"a": short}, calendar=CALENDAR, models=models(), test_days=1)


def test_model_minimum_history_is_respected() -> None:
    class NeedsThreeWeeks(LastWeek):
        min_history_days = 21

    with pytest.raises(BacktestInputError, match="need 21"):
        backtest({"a": A}, calendar=CALENDAR, models={"x": NeedsThreeWeeks}, test_days=7)


@pytest.mark.parametrize(("histories", "match"), [
    ({"a": A.where(A.index != A.index[3])}, "missing value"),
    ({"a": A.iloc[[0, 1, 3, 4]]}, "regular grid"),
    ({"a": -A}, "negative"),
    ({}, "histories"),
])
def test_bad_histories(histories, match) -> None:
    with pytest.raises(BacktestInputError, match=match):
        backtest(histories, calendar=CALENDAR, models=models(), test_days=7)


def test_calendar_must_cover_the_history() -> None:
    with pytest.raises(BacktestInputError, match="calendar does not cover 2 day"):
        backtest({"a": A}, calendar=CALENDAR.iloc[2:], models=models(), test_days=7)


def test_failing_model_is_recorded_or_raised() -> None:
    class Broken(LastWeek):
        def fit(self, history, *, calendar):
            raise np.linalg.LinAlgError("singular matrix")

    class WrongLength(LastWeek):
        def fit(self, history, *, calendar):
            fitted = super().fit(history, calendar=calendar)
            return Forecaster(fitted.history.iloc[:-1], fitted.values, 1, 2)

    chosen_models = {"broken": Broken, "seasonal_naive": LastWeek}
    result = backtest({"a": A}, calendar=CALENDAR, models=chosen_models, test_days=7,
                      errors="record")
    broken = row(result, "a", "1d", "broken")
    assert broken["error"] == "LinAlgError: singular matrix"
    assert np.isnan(broken["wape"])
    assert result.chosen[("a", "1d")] == "seasonal_naive"
    with pytest.raises(BacktestInputError, match="failed"):
        result.override(queue="a", horizon="1d", model="broken")
    with pytest.raises(np.linalg.LinAlgError):
        backtest({"a": A}, calendar=CALENDAR, models=chosen_models, test_days=7)
    with pytest.raises(BacktestModelError, match="right after the history"):
        backtest({"a": A}, calendar=CALENDAR, models={"wrong": WrongLength}, test_days=7)


def test_summary_lists_every_model_and_marks_the_choice() -> None:
    result = backtest({"a": A}, calendar=CALENDAR, models=models(), test_days=7)
    text = result.summary()
    assert "last 7 day(s), choice by lowest wape" in text
    line = next(ln for ln in text.splitlines() if "true_rate" in ln)
    assert " * " in f" {line} "
    assert "4.4%" in line  # WAPE 7/158
    assert "80.0%" in line  # coverage_80


def test_partial_last_day_is_forecast_as_far_as_the_history_goes() -> None:
    # 6-hourly intervals from Monday 00:00 for 15 days, then the last day up to 12:00.
    index = pd.date_range("2026-01-05", "2026-01-20 12:00", freq="6h")
    log: list = []
    result = backtest({"q": pd.Series(1.0, index=index)}, calendar=calendar_for(index),
                      models={"spy": lambda: Spy(log)}, horizons=("1d", "1w"), test_days=2)
    assert [(first, periods) for _, _, periods, first in log] == [
        (pd.Timestamp("2026-01-19"), 4), (pd.Timestamp("2026-01-20"), 3),  # 1d
        (pd.Timestamp("2026-01-19"), 7),  # 1w: one origin, 7 intervals left
    ]
    assert result.table["n_intervals"].tolist() == [7, 7]
