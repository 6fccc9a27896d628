"""History cleaning (WF-01): fill missing intervals, repair outliers and outages, mark
holidays and user events, and report every change.

The expectation of an interval is the median of the same weekday and interval over up to
``weeks`` weeks before and after (the interval itself, holidays, user event days, make-up
workdays, missing values and, in the second pass, flagged values left out). A make-up
workday is expected like a typical workday of its week (the median of the Monday to Friday
expectations). Residuals are scored against a count-aware scale,

    score = (x - m) / sqrt(max(m, 1) + (c * m) ** 2),

Poisson noise plus a multiplicative part whose ``c`` is fitted so that the scores of ordinary
intervals have a robust (MAD) standard deviation of 1. The floor of 1 keeps quiet night
intervals from scoring high on a call or two.

- ``outlier``: an interval with ``|score| > threshold``; repaired to the expectation.
- ``outage``: a run of at least ``min_outage_minutes`` of intervals each at most
  ``outage_ratio`` of a positive expectation, whose run score (summed residual over the
  square root of the summed variance) is below ``-threshold`` and that lost at least
  ``min_outage_calls`` calls; repaired to the expectation.
- ``missing``: a NaN interval; filled with the expectation (or, with no peers in the window,
  the median of that weekday and interval over the whole history, then of that interval over
  all ordinary days, then 0).
- ``closed``: a whole missing day that is a holiday or event day: the center was closed,
  filled with 0 (ordinary days cannot stand in for it).

Holidays and user events are real changes in demand the models learn from: they are marked,
never scored as outliers or outages, and only their missing values are filled (within the
day, by linear interpolation). AHT is passed through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecasting.series import INTERVALS

__all__ = [
    "REASONS",
    "Cleaned",
    "CleaningError",
    "clean",
]

REASONS = ("missing", "outlier", "outage", "closed")
"""Values of the ``change`` column besides '' (unchanged)."""

_MAD_TO_SD = 1.4826
_MIN_CALIBRATION_CELLS = 50
_CALIBRATION_MIN_EXPECTED = 5.0
_REPORT_COLUMNS = ["start", "end", "intervals", "reason", "original", "cleaned", "score"]


class CleaningError(ValueError):
    """An argument of ``clean`` is invalid; the message names it and gives the fix."""


@dataclass(frozen=True)
class Cleaned:
    """Result of ``clean``.

    ``frame``: per interval ``calls`` (cleaned), ``calls_original``, ``change`` ('' or one of
    ``REASONS``), ``expected`` (seasonal expectation, NaN where no peers), ``score`` (against
    the expectation, also shown on holidays though never acted on there), ``holiday`` (bool),
    ``event`` (str), ``aht`` (unchanged).
    ``report``: one row per change, i.e. per run of consecutive intervals of one day with the
    same reason: ``start``, ``end`` (exclusive), ``intervals``, ``reason``, ``original`` (sum,
    NaN if all missing), ``cleaned`` (sum), ``score`` (run score; NaN for missing/closed).
    ``dispersion``: the fitted ``c`` of the score scale.
    """

    frame: pd.DataFrame
    report: pd.DataFrame
    dispersion: float
    threshold: float

    @property
    def calls(self) -> pd.Series:
        """Cleaned calls (no NaN) with the history's index and freq, for the models."""
        series = self.frame["calls"].copy()
        series.index.freq = self.frame.index.freq
        return series


def _step_minutes(index: pd.DatetimeIndex) -> int:
    freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        raise CleaningError(
            "history: the index has no regular interval; build it with read_history"
        )
    minutes = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).total_seconds() / 60
    if minutes not in INTERVALS:
        raise CleaningError(
            f"history: interval of {minutes:g} minutes is not one of {INTERVALS}; "
            "aggregate it first"
        )
    return int(minutes)


def _history_frame(history: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(history, pd.Series):
        history = history.to_frame("calls")
    if not isinstance(history, pd.DataFrame) or "calls" not in history.columns:
        raise CleaningError(
            "history must be a frame with a 'calls' column (as from read_history) or a "
            "Series of calls"
        )
    if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is not None:
        raise CleaningError(
            "history: the index must be a naive local DatetimeIndex; use read_history"
        )
    if len(history) == 0:
        raise CleaningError("history is empty; give at least one day of intervals")
    if not history.index.is_monotonic_increasing or history.index.has_duplicates:
        raise CleaningError("history: the index must be increasing without duplicates")
    return history


def _day_flags(calendar: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    if not isinstance(calendar, pd.DataFrame):
        raise CleaningError("calendar must be a frame from day_calendar(start, end)")
    missing_columns = {"holiday", "makeup_workday", "event"} - set(calendar.columns)
    if missing_columns:
        raise CleaningError(
            f"calendar lacks columns {sorted(missing_columns)}; build it with day_calendar"
        )
    cal = calendar.copy()
    cal.index = pd.DatetimeIndex(cal.index).normalize()
    absent = days.difference(cal.index)
    if len(absent):
        raise CleaningError(
            f"calendar does not cover {absent[0].date()} ({len(absent)} day(s) of the history "
            f"missing); build it with day_calendar('{days[0].date()}', '{days[-1].date()}')"
        )
    flags = cal.loc[days, ["holiday", "makeup_workday", "event"]]
    return pd.DataFrame(
        {
            "holiday": flags["holiday"].astype(bool).to_numpy(),
            "makeup": flags["makeup_workday"].astype(bool).to_numpy(),
            "event": flags["event"].fillna("").astype(str).to_numpy(),
        },
        index=days,
    )


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where all are NaN), without warnings."""
    ordered = np.sort(values, axis=-1)
    count = np.sum(~np.isnan(values), axis=-1)
    lo = np.clip((count - 1) // 2, 0, None)[..., None]
    hi = np.clip(count // 2, 0, values.shape[-1] - 1)[..., None]
    low = np.take_along_axis(ordered, lo, axis=-1)[..., 0]
    high = np.take_along_axis(ordered, hi, axis=-1)[..., 0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _expectation(
    peers: np.ndarray, makeup: np.ndarray, weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """(windowed expectation, whole-history fallback) per padded day and interval.

    ``peers`` is (7 * W, P), Monday-aligned, NaN where a value may not serve as a peer.
    """
    n_weeks, per_day = peers.shape[0] // 7, peers.shape[1]
    cube = peers.reshape(n_weeks, 7, per_day)
    padded = np.full((n_weeks + 2 * weeks, 7, per_day), np.nan)
    padded[weeks:weeks + n_weeks] = cube
    window = sliding_window_view(padded, 2 * weeks + 1, axis=0).copy()
    window[..., weeks] = np.nan
    by_weekday = _nanmedian(window)
    workday = _nanmedian(by_weekday[:, :5, :].transpose(0, 2, 1))
    expected = by_weekday.reshape(-1, per_day)
    week_of = np.arange(expected.shape[0]) // 7
    expected[makeup] = workday[week_of[makeup]]
    overall = _nanmedian(cube.transpose(1, 2, 0))
    overall_workday = _nanmedian(cube[:, :5, :].transpose(2, 0, 1).reshape(per_day, -1))
    fallback = overall[np.arange(expected.shape[0]) % 7]
    fallback[makeup] = overall_workday
    any_day = _nanmedian(cube.transpose(2, 0, 1).reshape(per_day, -1))
    fallback = np.where(np.isnan(fallback), any_day, fallback)
    return expected, fallback


def _variance(expected: np.ndarray, dispersion: float) -> np.ndarray:
    mean = np.maximum(expected, 0.0)
    return np.maximum(mean, 1.0) + (dispersion * mean) ** 2


def _score(values: np.ndarray, expected: np.ndarray, dispersion: float) -> np.ndarray:
    """Anscombe residual: ``2 (sqrt(x + 3/8) - sqrt(m + 3/8))`` is about N(0, 1) for Poisson
    counts even when small; multiplicative noise ``c`` adds ``c**2 m`` to its variance."""
    mean = np.maximum(expected, 0.0)
    return 2 * (np.sqrt(values + 0.375) - np.sqrt(mean + 0.375)) / np.sqrt(
        1 + dispersion**2 * mean)


def _fit_dispersion(values: np.ndarray, expected: np.ndarray) -> float:
    """The ``c`` giving ordinary intervals' scores a MAD-based standard deviation of 1."""
    usable = ~np.isnan(values) & (expected >= _CALIBRATION_MIN_EXPECTED)
    if usable.sum() < _MIN_CALIBRATION_CELLS:
        return 0.0
    x, m = values[usable], expected[usable]

    def spread(c: float) -> float:
        z = _score(x, m, c)
        return _MAD_TO_SD * float(np.median(np.abs(z - np.median(z))))

    if spread(0.0) <= 1.0:
        return 0.0
    lo, hi = 0.0, 2.0
    if spread(hi) > 1.0:
        return hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spread(mid) > 1.0 else (lo, mid)
    return (lo + hi) / 2


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and exclusive ends of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _spread_runs(n: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, ends, -1)
    return np.cumsum(marks[:-1]) > 0


@dataclass(frozen=True)
class _Options:
    weeks: int
    threshold: float
    outage_ratio: float
    outage_intervals: int
    min_outage_calls: float


def _detect(
    values: np.ndarray, expected: np.ndarray, candidate: np.ndarray, options: _Options,
    dispersion: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outlier mask, outage mask, score) over flattened time."""
    variance = _variance(expected, dispersion)
    residual = values - expected
    score = _score(values, expected, dispersion)
    usable = candidate & ~np.isnan(expected)
    low = usable & (expected > 0) & (values <= options.outage_ratio * expected)
    starts, ends = _runs(low)
    cum_r = np.concatenate(([0.0], np.cumsum(np.where(low, residual, 0.0))))
    cum_v = np.concatenate(([0.0], np.cumsum(np.where(low, variance, 0.0))))
    lost = -(cum_r[ends] - cum_r[starts])
    run_score = -lost / np.sqrt(cum_v[ends] - cum_v[starts])
    accept = (
        (ends - starts >= options.outage_intervals)
        & (lost >= options.min_outage_calls)
        & (run_score < -options.threshold)
    )
    outage = _spread_runs(len(values), starts[accept], ends[accept])
    outlier = usable & ~outage & (np.abs(np.nan_to_num(score)) > options.threshold)
    return outlier, outage, score


def clean(
    history: pd.DataFrame | pd.Series,
    *,
    calendar: pd.DataFrame,
    weeks: int = 4,
    threshold: float = 4.5,
    outage_ratio: float = 0.25,
    min_outage_minutes: int = 60,
    min_outage_calls: float = 10.0,
) -> Cleaned:
    """Clean one queue's interval history (WF-01); see the module docstring for the rules.

    ``history``: a frame from ``read_history`` (``calls``, optional ``aht``) or a Series of
    calls on a regular naive DatetimeIndex. ``calendar``: a ``day_calendar`` frame covering
    every day of the history. ``weeks``: peers before and after; ``threshold``: |score| that
    makes an outlier (and run score an outage); ``outage_ratio``, ``min_outage_minutes``,
    ``min_outage_calls``: what makes a run of low intervals an outage.
    Raises ``CleaningError``.
    """
    frame = _history_frame(history)
    step = _step_minutes(frame.index)
    if not isinstance(weeks, int) or weeks < 1:
        raise CleaningError(f"weeks={weeks!r} must be a whole number >= 1, e.g. 4")
    if not threshold > 0:
        raise CleaningError(f"threshold={threshold!r} must be > 0, e.g. 4.5")
    if not 0 < outage_ratio < 1:
        raise CleaningError(f"outage_ratio={outage_ratio!r} must be in (0, 1), e.g. 0.25")
    if not min_outage_minutes >= step:
        raise CleaningError(
            f"min_outage_minutes={min_outage_minutes!r} must be >= the {step}-minute interval"
        )
    if not min_outage_calls >= 0:
        raise CleaningError(f"min_outage_calls={min_outage_calls!r} must be >= 0")
    options = _Options(weeks, float(threshold), float(outage_ratio),
                       int(min_outage_minutes // step), float(min_outage_calls))

    per_day = 1440 // step
    first_day = frame.index[0].normalize()
    days = pd.date_range(first_day, frame.index[-1].normalize(), freq="D")
    flags = _day_flags(calendar, days)
    # Pad to whole weeks from a Monday so that (week, weekday, interval) is a reshape.
    lead = int(first_day.day_of_week)
    n_weeks = -(-(lead + len(days)) // 7)
    grid = pd.date_range(first_day - pd.Timedelta(days=lead), periods=n_weeks * 7 * per_day,
                         freq=f"{step}min")
    position = grid.get_indexer(frame.index)
    if (position < 0).any():
        bad = frame.index[position < 0][0]
        raise CleaningError(f"history: {bad} is not on the {step}-minute grid from midnight")
    n_cells = len(grid)
    values = np.full(n_cells, np.nan)
    values[position] = frame["calls"].to_numpy(dtype=float)
    observed = np.zeros(n_cells, dtype=bool)
    observed[position] = True

    day_slice = slice(lead, lead + len(days))
    special_day = np.zeros(n_weeks * 7, dtype=bool)
    special_day[day_slice] = flags["holiday"].to_numpy() | (flags["event"].to_numpy() != "")
    makeup_day = np.zeros(n_weeks * 7, dtype=bool)
    makeup_day[day_slice] = flags["makeup"].to_numpy() & ~special_day[day_slice]
    special = np.repeat(special_day, per_day)
    makeup = np.repeat(makeup_day, per_day)

    present = ~np.isnan(values)
    base_peer = present & ~special & ~makeup
    candidate = present & ~special & observed
    flagged = np.zeros(n_cells, dtype=bool)
    dispersion = 0.0
    for _ in range(2):
        peers = np.where(base_peer & ~flagged, values, np.nan).reshape(-1, per_day)
        expected_2d, fallback_2d = _expectation(peers, makeup_day, weeks)
        expected = expected_2d.ravel()
        ordinary = candidate & ~flagged
        dispersion = _fit_dispersion(np.where(ordinary, values, np.nan), expected)
        outlier, outage, score = _detect(values, expected, candidate, options, dispersion)
        flagged = outlier | outage

    fill = np.where(np.isnan(expected), fallback_2d.ravel(), expected)
    fill = np.nan_to_num(fill, nan=0.0)
    missing = observed & ~present
    change = np.full(n_cells, "", dtype=object)
    cleaned = values.copy()
    change[outlier] = "outlier"
    change[outage] = "outage"
    repaired = outlier | outage
    cleaned[repaired] = fill[repaired]
    ordinary_missing = missing & ~special
    cleaned[ordinary_missing] = fill[ordinary_missing]
    change[ordinary_missing] = "missing"
    special_missing = missing & special
    if special_missing.any():
        _fill_special(cleaned, change, special_missing, observed, per_day)

    keep = position
    day_flags = flags.reindex(frame.index.normalize())
    out = pd.DataFrame(
        {
            "calls": cleaned[keep],
            "calls_original": values[keep],
            "change": change[keep].astype(str),
            "expected": expected[keep],
            "score": score[keep],
            "holiday": day_flags["holiday"].to_numpy(dtype=bool),
            "event": day_flags["event"].to_numpy().astype(str),
            "aht": (frame["aht"].to_numpy(dtype=float) if "aht" in frame.columns
                    else np.full(len(frame), np.nan)),
        },
        index=frame.index,
    )
    out.index.freq = frame.index.freq or pd.tseries.frequencies.to_offset(f"{step}min")
    report = _report(out, keep // per_day, dispersion, step)
    return Cleaned(frame=out, report=report, dispersion=dispersion, threshold=float(threshold))


def _fill_special(
    cleaned: np.ndarray, change: np.ndarray, missing: np.ndarray, observed: np.ndarray,
    per_day: int,
) -> None:
    """Holiday and event days: a wholly missing day was closed (0); gaps inside are
    interpolated within the day."""
    days = cleaned.reshape(-1, per_day)
    gaps = missing.reshape(-1, per_day)
    whole = (gaps | ~observed.reshape(-1, per_day)).all(axis=1) & gaps.any(axis=1)
    for day in np.flatnonzero(gaps.any(axis=1)):
        row = days[day]
        if whole[day]:
            row[gaps[day]] = 0.0
        else:
            known = ~np.isnan(row)
            row[gaps[day]] = np.interp(np.flatnonzero(gaps[day]), np.flatnonzero(known),
                                       row[known])
    flat_whole = np.repeat(whole, per_day) & missing
    change[flat_whole] = "closed"
    change[missing & ~flat_whole] = "missing"


def _report(frame: pd.DataFrame, day: np.ndarray, dispersion: float, step: int) -> pd.DataFrame:
    changed = (frame["change"] != "").to_numpy()
    if not changed.any():
        return pd.DataFrame(
            {
                "start": pd.DatetimeIndex([], dtype="datetime64[ns]"),
                "end": pd.DatetimeIndex([], dtype="datetime64[ns]"),
                "intervals": pd.Series([], dtype=int),
                "reason": pd.Series([], dtype=str),
                **{c: pd.Series([], dtype=float) for c in ("original", "cleaned", "score")},
            }
        )
    reason = frame["change"].to_numpy()
    boundary = np.ones(len(frame), dtype=bool)
    boundary[1:] = (reason[1:] != reason[:-1]) | (day[1:] != day[:-1])
    run = np.cumsum(boundary)
    expected = frame["expected"].to_numpy()
    rows = pd.DataFrame(
        {
            "run": run,
            "start": frame.index,
            "reason": reason,
            "original": frame["calls_original"].to_numpy(),
            "cleaned": frame["calls"].to_numpy(),
            "residual": frame["calls_original"].to_numpy() - expected,
            "variance": _variance(expected, dispersion),
        }
    )[changed]
    grouped = rows.groupby("run", sort=True)
    report = grouped.agg(
        start=("start", "first"),
        end=("start", "last"),
        intervals=("start", "size"),
        reason=("reason", "first"),
        original=("original", lambda s: s.sum(min_count=1)),
        cleaned=("cleaned", "sum"),
        residual=("residual", "sum"),
        variance=("variance", "sum"),
    )
    report["end"] = report["end"] + pd.Timedelta(minutes=step)
    scored = report["reason"].isin(["outlier", "outage"])
    report["score"] = (report["residual"] / np.sqrt(report["variance"])).where(scored)
    return report[_REPORT_COLUMNS].reset_index(drop=True)
