"""Manual forecast adjustment (WF-03): the planner scales a day or intervals, or overrides them.

A forecast frame has a DatetimeIndex of interval starts (naive local time) and the columns
``mean`` (offered calls), prediction bounds ``lower_*`` / ``upper_*`` (e.g. ``lower_80``) and
optionally ``aht`` (seconds). Every function here leaves its input untouched and returns an
``AdjustedForecast``: the original frame, the adjusted frame and the audit trail of
``Adjustment`` records. Pass an ``AdjustedForecast`` back in to stack adjustments.

Rules:

* scaling by ``factor`` multiplies ``mean`` and every bound by ``factor`` (the interval keeps
  its width relative to the mean);
* overriding an interval's calls with ``v`` multiplies its bounds by ``v / old mean`` (the
  same relative width); where the old mean is 0 there is no relative width, so the bounds keep
  their absolute distance from the mean instead (``lower + v``, ``upper + v``);
* ``aht`` is not changed: scaling the volume says nothing about handle time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "AdjustedForecast",
    "Adjustment",
    "AdjustmentError",
    "daily_totals",
    "override_intervals",
    "scale_day",
    "scale_intervals",
]

AdjustmentKind = Literal["scale_day", "scale_intervals", "override_intervals"]


class AdjustmentError(ValueError):
    """An adjustment that cannot apply to this forecast (outside it, negative, no reason)."""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One audited change: which intervals, how, why and when it was made.

    ``start`` is the first adjusted interval and ``end`` the end of the last one (exclusive).
    ``factor`` is set for scaling; ``changes`` lists (interval, old calls, new calls) for
    overrides. ``calls_before`` / ``calls_after`` are the forecast calls of the adjusted
    intervals before and after the change. ``made_at`` is UTC.
    """

    kind: AdjustmentKind
    start: pd.Timestamp
    end: pd.Timestamp
    n_intervals: int
    factor: float | None
    changes: tuple[tuple[pd.Timestamp, float, float], ...]
    calls_before: float
    calls_after: float
    reason: str
    made_at: datetime


@dataclass(frozen=True)
class AdjustedForecast:
    """A forecast with the planner's changes: ``frame`` (adjusted), ``original`` and the
    ``adjustments`` in the order they were made. Immutable: ``frame`` and ``original`` return
    copies."""

    _original: pd.DataFrame = field(repr=False)
    _frame: pd.DataFrame = field(repr=False)
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def frame(self) -> pd.DataFrame:
        return self._frame.copy()

    @property
    def original(self) -> pd.DataFrame:
        return self._original.copy()


def scale_day(forecast: pd.DataFrame | AdjustedForecast, day: date | str | pd.Timestamp,
              factor: float, *, reason: str, at: datetime | None = None) -> AdjustedForecast:
    """Multiply every interval of the local calendar ``day`` by ``factor`` (> 0)."""
    base, frame, done = _unpack(forecast)
    try:
        midnight = pd.Timestamp(day).normalize()
    except (TypeError, ValueError) as exc:
        raise AdjustmentError(f"day={day!r} is not a date: give e.g. '2026-02-16'") from exc
    mask = frame.index.normalize() == midnight
    if not mask.any():
        raise AdjustmentError(
            f"day={midnight.date()} is outside the forecast ({_span(frame)}): "
            "pick a day it covers")
    return _scale(base, frame, done, mask, factor, "scale_day", reason, at)


def scale_intervals(forecast: pd.DataFrame | AdjustedForecast,
                    start: datetime | str | pd.Timestamp, end: datetime | str | pd.Timestamp,
                    factor: float, *, reason: str, at: datetime | None = None
                    ) -> AdjustedForecast:
    """Multiply the intervals starting in [``start``, ``end``) by ``factor`` (> 0)."""
    base, frame, done = _unpack(forecast)
    try:
        first, stop = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise AdjustmentError(
            f"start={start!r} / end={end!r}: give interval times like '2026-02-16 09:00'"
        ) from exc
    horizon_end = frame.index[-1] + _step(frame.index)
    if stop <= first:
        raise AdjustmentError(f"end={stop} is not after start={first}: end is exclusive")
    if first < frame.index[0] or first >= horizon_end:
        raise AdjustmentError(f"start={first} is outside the forecast ({_span(frame)})")
    if stop > horizon_end:
        raise AdjustmentError(f"end={stop} is after the forecast ends ({_span(frame)})")
    mask = (frame.index >= first) & (frame.index < stop)
    if not mask.any():
        raise AdjustmentError(f"no forecast interval starts in [start={first}, end={stop})")
    return _scale(base, frame, done, mask, factor, "scale_intervals", reason, at)


def override_intervals(forecast: pd.DataFrame | AdjustedForecast,
                       values: Mapping[datetime | str | pd.Timestamp, float], *, reason: str,
                       at: datetime | None = None) -> AdjustedForecast:
    """Set the forecast calls of the given intervals (timestamps of interval starts)."""
    base, frame, done = _unpack(forecast)
    _check_reason(reason)
    if not values:
        raise AdjustmentError("values is empty: give {interval start: calls}")
    new = {}
    for key, value in values.items():
        try:
            stamp, calls = pd.Timestamp(key), float(value)
        except (TypeError, ValueError) as exc:
            raise AdjustmentError(
                f"values: {key!r}: {value!r} is not an interval start and a number of calls"
            ) from exc
        if stamp not in frame.index:
            raise AdjustmentError(
                f"values: {stamp} is not an interval start of the forecast ({_span(frame)})")
        if not math.isfinite(calls) or calls < 0:
            raise AdjustmentError(f"values[{stamp}]={value!r}: calls must be finite and >= 0")
        new[stamp] = calls
    stamps = pd.DatetimeIndex(sorted(new))
    old_mean = frame.loc[stamps, "mean"].to_numpy(dtype=float)
    new_mean = np.array([new[s] for s in stamps])
    adjusted = _editable(frame)
    bounds = _bounds(frame)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(old_mean > 0, new_mean / old_mean, np.nan)
    for column in bounds:
        old = frame.loc[stamps, column].to_numpy(dtype=float)
        adjusted.loc[stamps, column] = np.where(old_mean > 0, old * ratio, old + new_mean)
    adjusted.loc[stamps, "mean"] = new_mean
    record = Adjustment(
        kind="override_intervals", start=stamps[0], end=stamps[-1] + _step(frame.index),
        n_intervals=len(stamps), factor=None,
        changes=tuple(zip(stamps, old_mean.tolist(), new_mean.tolist(), strict=True)),
        calls_before=float(old_mean.sum()), calls_after=float(new_mean.sum()),
        reason=reason, made_at=at or datetime.now(UTC))
    return _result(base, adjusted, done, record)


def daily_totals(forecast: pd.DataFrame | AdjustedForecast) -> pd.DataFrame:
    """Forecast calls per local day (``calls``), the call-weighted ``aht`` if the forecast
    has one, and for an ``AdjustedForecast`` also ``calls_original``. Index ``date``."""
    base, frame, _ = _unpack(forecast)
    totals = _day_sums(frame)
    if isinstance(forecast, AdjustedForecast):
        totals.insert(1, "calls_original", _day_sums(base)["calls"])
    return totals


def _day_sums(frame: pd.DataFrame) -> pd.DataFrame:
    days = pd.DatetimeIndex(frame.index.normalize(), name="date")
    calls = frame["mean"].groupby(days).sum()
    totals = pd.DataFrame({"calls": calls})
    if "aht" in frame.columns:
        # a day with no forecast calls has no defined handle time
        seconds = (frame["mean"] * frame["aht"]).groupby(days).sum(min_count=1)
        totals["aht"] = seconds / calls.where(calls > 0)
    return totals


def _unpack(forecast: pd.DataFrame | AdjustedForecast
            ) -> tuple[pd.DataFrame, pd.DataFrame, tuple[Adjustment, ...]]:
    """(original, current frame, adjustments so far); the original is before any change."""
    if isinstance(forecast, AdjustedForecast):
        return forecast._original, forecast._frame, forecast.adjustments
    if not isinstance(forecast, pd.DataFrame) or not isinstance(forecast.index,
                                                                 pd.DatetimeIndex):
        raise AdjustmentError("forecast must be a DataFrame on a DatetimeIndex of intervals")
    if "mean" not in forecast.columns:
        raise AdjustmentError("forecast has no 'mean' column (forecast calls per interval)")
    if forecast.empty or not forecast.index.is_monotonic_increasing \
            or forecast.index.has_duplicates:
        raise AdjustmentError("forecast needs increasing, unique interval starts")
    return forecast, forecast, ()


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    if index.freq is not None:
        return pd.Timedelta(index.freq)
    if len(index) < 2:
        raise AdjustmentError("forecast has a single interval and no freq: set index.freq")
    return pd.Timedelta((index[1:] - index[:-1]).min())


def _bounds(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(("lower_", "upper_"))]


def _span(frame: pd.DataFrame) -> str:
    return f"{frame.index[0]} to {frame.index[-1] + _step(frame.index)}"


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise AdjustmentError("reason is empty: say why the forecast is changed (for the audit)")


def _scale(base: pd.DataFrame, frame: pd.DataFrame, done: tuple[Adjustment, ...],
           mask: np.ndarray, factor: float,
           kind: AdjustmentKind, reason: str, at: datetime | None) -> AdjustedForecast:
    _check_reason(reason)
    if isinstance(factor, bool) or not isinstance(factor, int | float | np.number) \
            or not math.isfinite(factor) or factor <= 0:
        raise AdjustmentError(
            f"factor={factor!r}: give a finite number > 0 (e.g. 1.2 for +20%); to set calls "
            "to zero use override_intervals")
    adjusted = _editable(frame)
    columns = ["mean", *_bounds(frame)]
    adjusted.loc[mask, columns] = adjusted.loc[mask, columns] * float(factor)
    stamps = frame.index[mask]
    before = float(frame.loc[mask, "mean"].sum())
    record = Adjustment(
        kind=kind, start=stamps[0], end=stamps[-1] + _step(frame.index),
        n_intervals=len(stamps), factor=float(factor), changes=(), calls_before=before,
        calls_after=float(adjusted.loc[mask, "mean"].sum()), reason=reason,
        made_at=at or datetime.now(UTC))
    return _result(base, adjusted, done, record)


def _editable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(dict.fromkeys(["mean", *_bounds(frame)], float))


def _result(base: pd.DataFrame, adjusted: pd.DataFrame, done: tuple[Adjustment, ...],
            record: Adjustment) -> AdjustedForecast:
    return AdjustedForecast(_original=base.copy(), _frame=adjusted,
                            adjustments=(*done, record))
