"""Average handle time (AHT) forecast per interval.

The AHT of a future interval is the calls-weighted average handle time of the same day type
(workday, which includes make-up workdays; weekend; holiday) and the same interval of the day
over the last ``weeks`` weeks. Where that interval had no calls with a known AHT, the
calls-weighted daily average of the day type is used instead; a day type not seen in the window
(a holiday, a weekend of a center open on workdays only) borrows the next one in the order
holiday -> weekend -> workday -> all days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.models import ForecastInputError, _calendar_rows, _day_class, _positive_int

__all__ = ["forecast_aht"]

_FALLBACK = {"holiday": "weekend", "weekend": "workday", "workday": None}


def forecast_aht(
    history: pd.DataFrame, periods: int, *, calendar: pd.DataFrame, weeks: int = 8
) -> pd.Series:
    """AHT in seconds for the ``periods`` intervals after ``history`` (columns calls, aht).

    ``history`` is on a regular DatetimeIndex with a freq; ``calendar`` is a ``day_calendar``
    frame covering the last ``weeks`` weeks and the forecast days. Returns a Series named
    ``aht`` on the forecast timestamps.
    """
    periods = _positive_int(periods, "periods")
    weeks = _positive_int(weeks, "weeks")
    if not isinstance(history, pd.DataFrame) or not {"calls", "aht"} <= set(history.columns):
        raise ForecastInputError("history must be a DataFrame with columns calls and aht")
    index = history.index
    if not isinstance(index, pd.DatetimeIndex) or index.freq is None:
        raise ForecastInputError("history must be on a regular DatetimeIndex with a freq")
    step = pd.Timedelta(index.freq)
    slots = int(pd.Timedelta(days=1) / step)
    start = index[-1].normalize() - pd.Timedelta(weeks=weeks) + pd.Timedelta(days=1)
    recent = history.loc[index >= start]
    days = recent.index.normalize()
    classes = _day_class(_calendar_rows(calendar, days.unique())["day_type"])
    class_of = dict(zip(days.unique(), classes, strict=True))
    row_class = np.array([class_of[d] for d in days])
    slot = ((recent.index - days) / step).to_numpy(dtype=np.int64)
    calls = recent["calls"].to_numpy(dtype=float)
    aht = recent["aht"].to_numpy(dtype=float)
    known = np.isfinite(aht) & np.isfinite(calls) & (calls > 0)
    seconds = np.where(known, calls * aht, 0.0)
    volume = np.where(known, calls, 0.0)
    if volume.sum() <= 0:
        raise ForecastInputError(
            f"history has no interval with calls and a known aht in the last {weeks} weeks"
        )
    overall = np.full(slots, seconds.sum() / volume.sum())
    per_slot: dict[str, np.ndarray] = {}
    for name in ("workday", "weekend", "holiday"):
        chosen = row_class == name
        slot_volume = np.bincount(slot[chosen], weights=volume[chosen], minlength=slots)
        if slot_volume.sum() <= 0:
            continue
        slot_seconds = np.bincount(slot[chosen], weights=seconds[chosen], minlength=slots)
        daily = slot_seconds.sum() / slot_volume.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            per_slot[name] = np.where(slot_volume > 0, slot_seconds / slot_volume, daily)

    def profile(name: str | None) -> np.ndarray:
        if name is None:
            return overall
        return per_slot[name] if name in per_slot else profile(_FALLBACK[name])

    future = pd.date_range(index[-1] + step, periods=periods, freq=step)
    future_days = future.normalize()
    targets = _calendar_rows(calendar, future_days.unique())
    target_class = dict(zip(future_days.unique(), _day_class(targets["day_type"]), strict=True))
    future_slot = ((future - future_days) / step).to_numpy(dtype=np.int64)
    values = [profile(target_class[d])[s] for d, s in zip(future_days, future_slot, strict=True)]
    return pd.Series(values, index=future, name="aht", dtype=float)
