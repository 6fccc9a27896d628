"""Interval forecasts of offered calls (WF-02): baselines, ETS, MSTL, regression, two-stage.

Every model is a small class with keyword-only options and
``fit(history, *, calendar) -> Fitted``; ``Fitted.predict(periods)`` forecasts the ``periods``
intervals right after the history with columns ``mean, lower_80, upper_80, lower_95, upper_95``.

``history`` is a cleaned series of offered calls per interval (no NaN) on a regular
5/15/30/60-minute DatetimeIndex; ``calendar`` is a ``day_calendar`` frame covering the history
and the forecast days. Internally a history is a day x interval matrix (a partial first or last
day is padded with NaN).

Models:

- ``seasonal_naive``: the same weekday and interval last week.
- ``weekday_average``: mean of the same weekday and interval over the last ``weeks`` weeks.
- ``holt_winters``: additive Holt-Winters (no trend) over the last ``window_weeks`` weeks
  with one weekly season of intervals, which holds both the intraday and the weekday
  pattern (a short Friday or a closed Sunday keeps its own shape).
- ``mstl``: MSTL with a daily and a weekly period over the last ``window_weeks`` weeks; the
  trend plus remainder is forecast by simple exponential smoothing and the seasonal sum is
  carried over from the same interval one week earlier.
- ``regression``: a Poisson log-linear regression of daily totals on the weekday, public
  holiday, make-up workday (counted as an average Monday-Friday), user events and a linear
  trend, times an intraday profile per day type pooled over ``profile_weeks`` weeks (holidays
  use their own profile, else the weekend's, else the workday's).
- ``two_stage``: the regression plus a day level that follows recent days: the log residual of
  daily totals is an AR(1) day level observed with Poisson noise, filtered by a Kalman filter
  (its parameters come from the residual moments, the Poisson part of the residual being
  known). One-day-ahead, this is what day-level AR(1) noise around weekday x holiday x trend
  calls for; further ahead the level decays back to the regression.

Prediction intervals (see ``forecasting.intervals``) are negative binomial with variance
``m + phi * m**2``. ``phi`` comes from each model's own one-day-ahead errors over the last
``dispersion_days`` days: for the interval-level models (baselines, Holt-Winters, MSTL) from
the errors of the intervals themselves, each day forecast from the end of the day before
(Holt-Winters and MSTL scale them up because their weekly terms and smoothing weights are
estimated on the very days being checked); for ``regression`` and ``two_stage`` from
the errors of daily totals plus the over-dispersion of intervals around ``day total x
profile``, and ``two_stage`` widens it with the horizon as the day-level state variance grows.
Slots whose last four same-weekday values were all zero (a center closed at night or on a
weekday) are forecast as exactly zero by every model.

Cost (fit + one-day predict, 26 weeks of 15-minute history, one core): baselines, regression
and two_stage ~5 ms; Holt-Winters ~17 ms and MSTL ~29 ms on their default 8-week window (about
three times that on 5-minute data; pass a smaller ``window_weeks`` there).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing, SimpleExpSmoothing
from statsmodels.tsa.seasonal import MSTL

from forecasting.intervals import count_bands, count_dispersion

__all__ = [
    "BASELINES",
    "MODELS",
    "Fitted",
    "ForecastInputError",
    "HoltWinters",
    "Model",
    "Mstl",
    "Regression",
    "SeasonalNaive",
    "TwoStage",
    "WeekdayAverage",
]

_DAY = pd.Timedelta(days=1)
_CALENDAR_COLUMNS = ("weekday", "holiday", "makeup_workday", "event", "day_type")
_CLOSED_WEEKS = 4


class ForecastInputError(ValueError):
    """A history, calendar or option a forecast model cannot use (the message names it)."""


class Model(Protocol):
    """What every forecast model offers."""

    name: str

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Fitted: ...


@dataclass(frozen=True)
class _Days:
    """A history as a day x interval matrix; NaN pads a partial first or last day."""

    dates: pd.DatetimeIndex
    values: np.ndarray
    step: pd.Timedelta
    last: pd.Timestamp

    @property
    def slots(self) -> int:
        return self.values.shape[1]

    def complete(self) -> np.ndarray:
        """Row numbers of fully observed days."""
        return np.flatnonzero(~np.isnan(self.values).any(axis=1))


def _positive_int(value: object, argument: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ForecastInputError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _day_matrix(history: pd.Series, *, model: str, min_days: int) -> _Days:
    if not isinstance(history, pd.Series) or not isinstance(history.index, pd.DatetimeIndex):
        raise ForecastInputError("history must be a pandas Series on a DatetimeIndex")
    if history.index.tz is not None:
        raise ForecastInputError("history must use naive local timestamps; drop the time zone")
    freq = history.index.freq or (pd.infer_freq(history.index) if len(history) > 2 else None)
    if freq is None:
        raise ForecastInputError(
            "history must be on a regular grid with a freq (use forecasting.series.read_history)"
        )
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    if step <= pd.Timedelta(0) or _DAY % step != pd.Timedelta(0):
        raise ForecastInputError(f"history interval {step} does not divide a day (use 5-60 min)")
    values = history.to_numpy(dtype=float)
    if np.isnan(values).any() or (values < 0).any():
        raise ForecastInputError("history must be cleaned calls: no NaN and no negative counts")
    slots = int(_DAY / step)
    first = history.index[0].normalize()
    last_day = history.index[-1].normalize()
    n_days = int((last_day - first) / _DAY) + 1
    if n_days < min_days:
        raise ForecastInputError(
            f"history covers {n_days} days; model {model!r} needs at least {min_days} days"
        )
    matrix = np.full(n_days * slots, np.nan)
    matrix[((history.index - first) / step).astype(np.int64)] = values
    return _Days(
        dates=pd.date_range(first, periods=n_days, freq="D"),
        values=matrix.reshape(n_days, slots),
        step=step,
        last=history.index[-1],
    )


def _calendar_rows(calendar: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    if not isinstance(calendar, pd.DataFrame) or not isinstance(calendar.index, pd.DatetimeIndex):
        raise ForecastInputError("calendar must be a day_calendar frame on a daily DatetimeIndex")
    missing_columns = [c for c in _CALENDAR_COLUMNS if c not in calendar.columns]
    if missing_columns:
        raise ForecastInputError(f"calendar lacks columns {missing_columns}; use day_calendar()")
    rows = calendar.reindex(dates)
    absent = rows["day_type"].isna().to_numpy()
    if absent.any():
        raise ForecastInputError(
            f"calendar does not cover {dates[absent][0].date()}: it must span the history and "
            f"the forecast days ({dates[0].date()} to {dates[-1].date()})"
        )
    return rows


def _same_weekday_mean(values: np.ndarray, rows: np.ndarray, weeks: int) -> np.ndarray:
    """Per interval, the mean of the last ``weeks`` observed values 7, 14, ... days before."""
    n_days, slots = values.shape
    span = weeks + int(max(rows.max() - n_days + 1, 0)) // 7 + 2
    source = rows[:, None] - 7 * np.arange(1, span + 1)[None, :]
    padded = np.vstack([values, np.full((1, slots), np.nan)])
    source = np.where((source < 0) | (source >= n_days), n_days, source)
    stack = padded[source]
    seen = ~np.isnan(stack)
    use = seen & (np.cumsum(seen, axis=1) <= weeks)
    count = use.sum(axis=1)
    total = np.where(use, stack, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _recent_open(values: np.ndarray, rows: np.ndarray, calendar: pd.DataFrame) -> np.ndarray:
    """Per target row and interval, the recent same-weekday mean; 0 marks a closed slot.

    A make-up workday opens like a workday even on a weekday the center is closed (CN 调休):
    its slot is closed only when closed on every Monday to Friday of its week.
    """
    recent = _same_weekday_mean(values, rows, _CLOSED_WEEKS)
    makeup = calendar["makeup_workday"].to_numpy(dtype=bool)
    if makeup.any():
        monday = rows[makeup] - calendar["weekday"].to_numpy(dtype=int)[makeup]
        workdays = _same_weekday_mean(
            values, (monday[:, None] + np.arange(5)[None, :]).ravel(), _CLOSED_WEEKS)
        # Unknown (no history for that weekday) counts as open.
        workdays = np.nan_to_num(workdays, nan=1.0).reshape(len(monday), 5, -1)
        recent[makeup] = workdays.max(axis=1)
    return recent


class Fitted(ABC):
    """A fitted model: ``predict(periods)`` gives the forecast frame for the next intervals.

    Subclasses supply ``_forecast_days(rows, calendar)``: the mean per interval of the target
    day rows (numbered from the first history day) and the dispersion ``phi`` per row.
    """

    def __init__(self, *, model: str, days: _Days, calendar: pd.DataFrame) -> None:
        self.model = model
        self._days = days
        self._calendar = calendar

    @abstractmethod
    def _forecast_days(
        self, rows: np.ndarray, calendar: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(self, periods: int) -> pd.DataFrame:
        """Forecast the ``periods`` intervals after the history (mean and 80 % / 95 % bands)."""
        periods = _positive_int(periods, "periods")
        days = self._days
        index = pd.date_range(days.last + days.step, periods=periods, freq=days.step)
        first_row = len(days.dates) - 1
        dates = pd.date_range(days.dates[-1], index[-1].normalize(), freq="D")
        rows = first_row + np.arange(len(dates))
        calendar = _calendar_rows(self._calendar, dates)
        mean, phi = self._forecast_days(rows, calendar)
        recent = _recent_open(days.values, rows, calendar)
        mean = np.where(recent == 0, 0.0, np.clip(mean, 0.0, None))
        row_of = ((index.normalize() - dates[0]) / _DAY).astype(np.int64)
        slot_of = ((index - index.normalize()) / days.step).astype(np.int64)
        phi_cells = np.broadcast_to(np.asarray(phi, dtype=float).reshape(len(rows), -1), mean.shape)
        return count_bands(mean[row_of, slot_of], phi_cells[row_of, slot_of], index)


def _recent_dispersion(
    days: _Days,
    forecast: Callable[[np.ndarray], np.ndarray],
    dispersion_days: int,
    *,
    inflation: float = 1.0,
) -> float:
    """``phi`` from one-day-ahead forecasts of the intervals of the last complete days.

    Interval errors carry both the day-level error shared by a day's intervals and the error
    of each interval's own seasonal estimate (a few noisy weeks for these models).
    """
    rows = days.complete()
    rows = rows[rows >= len(days.dates) - dispersion_days]
    if len(rows) == 0:
        return 0.0
    predicted = forecast(rows)
    return count_dispersion(days.values[rows].ravel(), predicted.ravel(), inflation=inflation)


# --------------------------------------------------------------------------- baselines


class _IntervalFitted(Fitted):
    """Interval-level forecasts: ``continuation(rows)`` gives the mean of the target rows."""

    def __init__(
        self, *, continuation: Callable[[np.ndarray], np.ndarray], phi: float, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._continuation = continuation
        self.phi = phi

    def _forecast_days(
        self, rows: np.ndarray, calendar: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._continuation(rows), np.full(len(rows), self.phi)


class WeekdayAverage:
    """Mean of the same weekday and interval over the last ``weeks`` weeks (a baseline)."""

    name = "weekday_average"

    def __init__(self, *, weeks: int = 4, dispersion_days: int = 56) -> None:
        self.weeks = _positive_int(weeks, "weeks")
        self.dispersion_days = _positive_int(dispersion_days, "dispersion_days")

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Fitted:
        """Fit on ``history``; needs ``7 * weeks + 1`` days (later days also give the spread)."""
        days = _day_matrix(history, model=self.name, min_days=7 * self.weeks + 1)
        _calendar_rows(calendar, days.dates)
        def same_weekday(rows: np.ndarray) -> np.ndarray:
            return _same_weekday_mean(days.values, rows, self.weeks)

        phi = _recent_dispersion(days, same_weekday, self.dispersion_days)
        return _IntervalFitted(
            continuation=lambda rows: np.nan_to_num(same_weekday(rows)),
            phi=phi, model=self.name, days=days, calendar=calendar,
        )


class SeasonalNaive(WeekdayAverage):
    """The same weekday and interval last week (a baseline); needs 8 days."""

    name = "seasonal_naive"

    def __init__(self, *, dispersion_days: int = 56) -> None:
        super().__init__(weeks=1, dispersion_days=dispersion_days)


# ------------------------------------------------------------- interval-level smoothing


def _window_rows(days: _Days, window_weeks: int) -> np.ndarray:
    """The last ``window_weeks`` weeks of rows, starting at a complete day."""
    start = max(len(days.dates) - 7 * window_weeks, 0)
    if np.isnan(days.values[start]).any():
        start += 1
    return np.arange(start, len(days.dates))


def _flatten(values: np.ndarray) -> np.ndarray:
    """Rows end to end, without the NaN tail of a partial last day."""
    flat = values.ravel()
    return flat[: len(flat) - int(np.isnan(values[-1]).sum())]


def _in_sample_inflation(window: np.ndarray) -> float:
    """Out- over in-sample error variance of a mean over the window's ``k`` weeks: the
    weekly terms of Holt-Winters and MSTL average the very days whose errors give ``phi``."""
    weeks = max(len(window) / 7, 2.0)
    return (weeks + 1) / (weeks - 1)


class _Windowed:
    """An interval-level model fitted on the last ``window_weeks`` weeks."""

    name: str
    min_days: int

    def __init__(self, *, window_weeks: int = 8, dispersion_days: int = 56) -> None:
        self.window_weeks = _positive_int(window_weeks, "window_weeks", minimum=2)
        self.dispersion_days = _positive_int(dispersion_days, "dispersion_days")

    def _window(self, history: pd.Series, calendar: pd.DataFrame
                ) -> tuple[_Days, np.ndarray, np.ndarray]:
        """The day matrix, the window's rows and its values end to end."""
        days = _day_matrix(history, model=self.name, min_days=self.min_days)
        _calendar_rows(calendar, days.dates)
        window = _window_rows(days, self.window_weeks)
        return days, window, _flatten(days.values[window])


class HoltWinters(_Windowed):
    """Additive Holt-Winters with a weekly season of intervals: one season holds both the
    intraday and the weekday pattern, so a short Friday or a closed Saturday keeps its own
    shape."""

    name = "holt_winters"
    min_days = 14

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Fitted:
        """Fit on the last ``window_weeks`` weeks; needs 14 days."""
        days, window, series = self._window(history, calendar)
        slots = days.slots
        if not np.nansum(series) > 0:  # no calls in the window: nothing to smooth
            return _IntervalFitted(
                continuation=lambda rows: np.zeros((len(rows), slots)), phi=0.0,
                model=self.name, days=days, calendar=calendar,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = ExponentialSmoothing(
                series, seasonal="add", seasonal_periods=7 * slots,
                initialization_method="heuristic",
            ).fit(use_brute=False)
        level = np.asarray(result.level)
        season = np.asarray(result.season)
        week = 7 * slots
        n_full = len(series) // slots

        def one_day_ahead(rows: np.ndarray) -> np.ndarray:
            # Each day forecast from the end of the day before: that level plus the seasonal
            # term a week earlier. (The fitted values are one interval ahead: their errors
            # are far smaller than a day ahead and gave too narrow bands.) The first week
            # only echoes the initial season.
            position = rows - window[0]
            valid = (position >= 7) & (position < n_full)
            starts = position[valid] * slots
            out = np.full((len(rows), slots), np.nan)
            out[valid] = level[starts - 1][:, None] + season[
                starts[:, None] + np.arange(slots)[None, :] - week]
            return out

        phi = _recent_dispersion(
            days, one_day_ahead, self.dispersion_days, inflation=_in_sample_inflation(window)
        )

        def continuation(rows: np.ndarray) -> np.ndarray:
            tail = int(np.isnan(days.values[rows[0]]).sum())
            path = np.asarray(result.forecast(tail + (len(rows) - 1) * slots))
            out = np.zeros((len(rows), slots))
            if tail:
                out[0, slots - tail :] = path[:tail]
            out[1:] = path[tail:].reshape(-1, slots)
            return out

        return _IntervalFitted(
            continuation=continuation, phi=phi, model=self.name, days=days, calendar=calendar
        )


class Mstl(_Windowed):
    """MSTL (daily and weekly periods) with simple exponential smoothing of trend + remainder."""

    name = "mstl"
    min_days = 15

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Fitted:
        """Fit on the last ``window_weeks`` weeks; needs 15 days (two weeks and a day)."""
        days, window, series = self._window(history, calendar)
        slots = days.slots
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decomposition = MSTL(
                series, periods=(slots, 7 * slots),
                # Linear interpolation between every day's loess fits and one inner
                # iteration keep a fit at a few ms instead of ~1 s (15-minute data).
                stl_kwargs={"trend_jump": slots, "low_pass_jump": slots, "inner_iter": 1},
            ).fit()
            seasonal = np.asarray(decomposition.seasonal).reshape(len(series), -1).sum(axis=1)
            smoothing = SimpleExpSmoothing(
                series - seasonal, initialization_method="heuristic"
            ).fit()
        level = np.asarray(smoothing.level)
        week = 7 * slots
        first = window[0]

        def seasonal_at(positions: np.ndarray) -> np.ndarray:
            """The seasonal sum carried over whole weeks into ``positions`` of the window."""
            back = np.maximum(np.ceil((positions - len(series) + 1) / week), 1).astype(np.int64)
            return seasonal[positions - back * week]

        def one_day_ahead(rows: np.ndarray) -> np.ndarray:
            out = np.full((len(rows), slots), np.nan)
            local = rows - first
            valid = local >= 7
            positions = local[valid][:, None] * slots + np.arange(slots)[None, :]
            ends = level[local[valid] * slots - 1][:, None]
            out[valid] = ends + seasonal[positions - week]
            return out

        phi = _recent_dispersion(
            days, one_day_ahead, self.dispersion_days, inflation=_in_sample_inflation(window)
        )

        def continuation(rows: np.ndarray) -> np.ndarray:
            positions = (rows - first)[:, None] * slots + np.arange(slots)[None, :]
            return level[-1] + seasonal_at(positions)

        return _IntervalFitted(
            continuation=continuation, phi=phi, model=self.name, days=days, calendar=calendar
        )


# ----------------------------------------------------------------- daily-level models


def _poisson_regression(design: np.ndarray, counts: np.ndarray, *, ridge: float) -> np.ndarray:
    """Poisson log-linear coefficients by IRLS, with a small ridge (not on the intercept).

    The ridge keeps a coefficient finite when a regressor separates the data (a center closed
    on every holiday in the history).
    """
    penalty = np.full(design.shape[1], ridge)
    penalty[0] = 0.0
    beta = np.zeros(design.shape[1])
    beta[0] = np.log(max(counts.mean(), 0.5))
    for _ in range(50):
        eta = np.clip(design @ beta, -30.0, 30.0)
        mu = np.exp(eta)
        working = eta + (counts - mu) / mu
        weighted = design * mu[:, None]
        step = np.linalg.solve(design.T @ weighted + np.diag(penalty), weighted.T @ working)
        if np.max(np.abs(step - beta)) < 1e-8:
            return step
        beta = step
    return beta


def _day_class(day_type: pd.Series) -> np.ndarray:
    return day_type.replace({"makeup_workday": "workday"}).to_numpy(dtype=str)


class _DailyDesign:
    """Regressors of a day total: weekday, holiday, the days just before and after a holiday,
    make-up workday, events and a linear trend.

    Holidays and make-up workdays take an average Monday-Friday as their weekday: a holiday's
    volume does not depend on the weekday it falls on.
    """

    def __init__(self, fit_rows: pd.DataFrame, origin: pd.Timestamp) -> None:
        self.events = sorted({e for e in fit_rows["event"].astype(str) if e})
        self.holiday_seen = bool(fit_rows["holiday"].astype(bool).any())
        self.origin = origin

    def matrix(self, rows: pd.DataFrame, calendar: pd.DataFrame) -> np.ndarray:
        """The design matrix of ``rows``; ``calendar`` gives their neighbouring days."""
        weekday = rows["weekday"].to_numpy(dtype=int)
        holiday = rows["holiday"].to_numpy(dtype=bool)
        makeup = rows["makeup_workday"].to_numpy(dtype=bool)
        weekdays = np.eye(7)[weekday]
        workday = np.r_[np.full(5, 0.2), 0.0, 0.0]
        weekdays[makeup] = workday
        # Without a holiday in the history, a holiday is forecast like a Sunday.
        weekdays[holiday] = workday if self.holiday_seen else np.eye(7)[6]
        off = calendar["holiday"].astype(bool)
        before = off.shift(-1, freq="D").reindex(rows.index, fill_value=False).to_numpy(dtype=bool)
        after = off.shift(1, freq="D").reindex(rows.index, fill_value=False).to_numpy(dtype=bool)
        trend = ((rows.index - self.origin) / pd.Timedelta(days=365)).to_numpy(dtype=float)
        events = rows["event"].astype(str).to_numpy()
        columns = [np.ones(len(rows)), *weekdays[:, 1:].T, holiday, makeup, trend]
        columns += [before & ~holiday, after & ~holiday]
        columns += [events == name for name in self.events]
        return np.column_stack(columns).astype(float)


def _profiles(
    values: np.ndarray, classes: np.ndarray, recent: np.ndarray
) -> dict[str, np.ndarray]:
    """Intraday share per day class; holidays pool all history, other classes recent days."""
    slots = values.shape[1]
    pooled: dict[str, np.ndarray] = {}
    for name in ("workday", "weekend", "holiday"):
        chosen = (classes == name) & (recent | (name == "holiday"))
        total = values[chosen].sum(axis=0)
        if total.sum() > 0:
            pooled[name] = total / total.sum()
    everything = values.sum(axis=0)
    flat = everything / everything.sum() if everything.sum() > 0 else np.full(slots, 1 / slots)
    workday = pooled.get("workday", flat)
    weekend = pooled.get("weekend", workday)
    return {"workday": workday, "weekend": weekend, "holiday": pooled.get("holiday", weekend)}


def _intraday_dispersion(values: np.ndarray, shares: np.ndarray) -> float:
    """Over-dispersion of interval counts around ``day total x profile`` (floored at 0)."""
    totals = values.sum(axis=1, keepdims=True)
    expected = totals * shares
    excess = (values - expected) ** 2 - expected * (1 - shares)
    scale = np.sum(expected**2)
    return max(0.0, float(excess.sum() / scale)) if scale > 0 else 0.0


@dataclass(frozen=True)
class _DayLevel:
    """Kalman filter of an AR(1) day level observed in log residuals with Poisson noise."""

    rho: float
    innovation: float
    state: float
    state_variance: float
    one_day_ahead: np.ndarray

    @classmethod
    def filter(cls, residual: np.ndarray, noise: np.ndarray) -> _DayLevel:
        if len(residual) < 2:  # (almost) no open day: no level to follow
            return cls(0.0, 0.0, 0.0, 0.0, np.zeros(len(residual)))
        level_variance = max(float(np.var(residual) - noise.mean()), 1e-6)
        lagged = float(np.mean(residual[1:] * residual[:-1]))
        rho = float(np.clip(lagged / level_variance, 0.0, 0.95))
        innovation = level_variance * (1 - rho**2)
        state, variance = 0.0, level_variance
        ahead = np.empty(len(residual))
        for i, (observed, observation_noise) in enumerate(zip(residual, noise, strict=True)):
            state, variance = rho * state, rho**2 * variance + innovation
            ahead[i] = state
            gain = variance / (variance + observation_noise)
            state += gain * (observed - state)
            variance *= 1 - gain
        return cls(rho, innovation, state, variance, ahead)

    def path(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected level and its extra variance over the one-day-ahead one, ``steps`` ahead."""
        power = self.rho ** (2 * steps.astype(float))
        carried = power * self.state_variance + self.innovation * np.where(
            self.rho < 1, (1 - power) / (1 - self.rho**2), steps
        )
        first = self.rho**2 * self.state_variance + self.innovation
        return self.rho**steps * self.state, np.maximum(carried - first, 0.0)


class _DailyFitted(Fitted):
    def __init__(
        self,
        *,
        design: _DailyDesign,
        beta: np.ndarray,
        profiles: dict[str, np.ndarray],
        phi: float,
        level: _DayLevel | None,
        last_fit_date: pd.Timestamp,
        closed_on_holidays: bool,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._closed_on_holidays = closed_on_holidays
        self._design = design
        self._beta = beta
        self._profiles = profiles
        self.phi = phi
        self._level = level
        self._last_fit_date = last_fit_date

    def _forecast_days(
        self, rows: np.ndarray, calendar: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self._design.matrix(calendar, self._calendar)
        totals = np.exp(np.clip(x @ self._beta, -30, 30))
        phi = np.full(len(rows), self.phi)
        if self._level is not None:
            # The day level is an AR(1) over open days, so count open days ahead.
            ahead = np.asarray(calendar.index > self._last_fit_date) & (totals >= 1.0)
            shift, extra = self._level.path(np.maximum(np.cumsum(ahead), 1))
            totals = (totals + 0.5) * np.exp(shift) - 0.5
            phi = phi + extra
        if self._closed_on_holidays:
            totals[calendar["holiday"].to_numpy(dtype=bool)] = 0.0
        shares = np.vstack([self._profiles[c] for c in _day_class(calendar["day_type"])])
        return np.clip(totals, 0.0, None)[:, None] * shares, phi


class Regression:
    """Poisson regression of daily totals on calendar regressors, times an intraday profile."""

    name = "regression"
    _dynamic = False

    def __init__(
        self,
        *,
        window_weeks: int = 52,
        profile_weeks: int = 8,
        dispersion_days: int = 56,
        ridge: float = 1e-3,
    ) -> None:
        self.window_weeks = _positive_int(window_weeks, "window_weeks", minimum=4)
        self.profile_weeks = _positive_int(profile_weeks, "profile_weeks")
        self.dispersion_days = _positive_int(dispersion_days, "dispersion_days")
        if not ridge >= 0:
            raise ForecastInputError(f"ridge must be >= 0, got {ridge!r}")
        self.ridge = float(ridge)

    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> Fitted:
        """Fit daily totals over ``window_weeks`` weeks; needs two weeks (each weekday twice)."""
        days = _day_matrix(history, model=self.name, min_days=14)
        rows = days.complete()
        rows = rows[rows >= len(days.dates) - 7 * self.window_weeks]
        if len(rows) < 14:
            raise ForecastInputError(
                f"history has {len(rows)} complete days; model {self.name!r} needs at least 14"
            )
        cal = _calendar_rows(calendar, days.dates[rows])
        values = days.values[rows]
        totals = values.sum(axis=1)
        last_fit_date = days.dates[rows[-1]]
        design = _DailyDesign(cal, last_fit_date)
        x = design.matrix(cal, calendar)
        beta = _poisson_regression(x, totals, ridge=self.ridge)
        holidays = cal["holiday"].to_numpy(dtype=bool)
        fitted_totals = np.exp(np.clip(x @ beta, -30, 30))
        level = None
        one_day_ahead = fitted_totals
        if self._dynamic:
            is_open = fitted_totals >= 1.0
            residual = np.log((totals[is_open] + 0.5) / (fitted_totals[is_open] + 0.5))
            level = _DayLevel.filter(residual, 1.0 / (fitted_totals[is_open] + 0.5))
            one_day_ahead = fitted_totals.copy()
            one_day_ahead[is_open] = (fitted_totals[is_open] + 0.5) * np.exp(
                level.one_day_ahead
            ) - 0.5
        recent_days = rows >= len(days.dates) - self.dispersion_days
        # In-sample errors of a fit with ``parameters`` coefficients understate new errors.
        parameters = x.shape[1] + (2 if self._dynamic else 0)
        phi = count_dispersion(
            totals[recent_days], one_day_ahead[recent_days],
            inflation=len(rows) / max(len(rows) - parameters, 1),
        )
        classes = _day_class(cal["day_type"])
        in_profile = rows >= len(days.dates) - 7 * self.profile_weeks
        profiles = _profiles(values, classes, in_profile)
        shares = np.vstack([profiles[c] for c in classes[in_profile]])
        phi += _intraday_dispersion(values[in_profile], shares)
        return _DailyFitted(
            design=design, beta=beta, profiles=profiles, phi=phi, level=level,
            last_fit_date=last_fit_date, model=self.name, days=days, calendar=calendar,
            closed_on_holidays=bool(design.holiday_seen and totals[holidays].sum() == 0),
        )


class TwoStage(Regression):
    """Daily total (regression x a Kalman-filtered AR(1) day level) times an intraday profile."""

    name = "two_stage"
    _dynamic = True


MODELS: dict[str, Callable[[], Model]] = {
    model.name: model
    for model in (SeasonalNaive, WeekdayAverage, HoltWinters, Mstl, Regression, TwoStage)
}
BASELINES: tuple[str, ...] = ("seasonal_naive", "weekday_average")
