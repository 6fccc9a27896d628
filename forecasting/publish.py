"""A forecast as a ``wfm.forecast_published`` event (WF-02, WF-03).

The event carries each interval's start in UTC, the expected offered calls, the 80%
prediction interval as ``calls_low``/``calls_high`` and the expected handle time. Across a
daylight-saving change the local grid is mapped onto real time (see ``_utc_rows``). The
streams write it to the warehouse's ``forecasts`` table; the planner reads it to staff and
schedule (``queuecast schedule plan``).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from ingest.contract import (
    Event,
    ForecastInterval,
    ForecastPublished,
    InvalidEventError,
    decode_event,
    encode_event,
    make_event,
)

__all__ = ["PublishError", "forecast_event"]


class PublishError(ValueError):
    """The forecast cannot be published as it is; the message names the fix."""


def _utc_rows(forecast: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """The forecast rows with a UTC ``start``, in time order, across daylight-saving changes.

    A wall-clock interval that does not exist (spring forward) has no calls and is left out.
    One that happens twice (fall back) holds both hours' calls, as ``read_history`` adds
    them up: it becomes two intervals with half the calls, bounds and the same AHT each.
    """
    index = pd.DatetimeIndex(forecast.index)
    try:
        summer = index.tz_localize(timezone, ambiguous=np.ones(len(index), dtype=bool),
                                   nonexistent="NaT")
        winter = index.tz_localize(timezone, ambiguous=np.zeros(len(index), dtype=bool),
                                   nonexistent="NaT")
    except Exception as exc:  # pytz/zoneinfo raise several types for a bad zone
        raise PublishError(f"timezone: cannot place the forecast's local times in "
                           f"{timezone!r} ({exc}); give an IANA zone such as "
                           "'Asia/Shanghai'") from None
    exists = ~summer.isna()
    if not exists.any():
        raise PublishError(f"timezone: cannot place the forecast's local times in "
                           f"{timezone!r}: every interval falls in a daylight-saving gap")
    repeated = exists & (summer != winter)
    halved = [c for c in ("mean", "lower_80", "upper_80") if c in forecast.columns]
    rows = forecast.reset_index(drop=True).astype(dict.fromkeys(halved, float))
    rows.loc[repeated, halved] = rows.loc[repeated, halved] / 2
    first = rows[exists].assign(start=summer[exists].tz_convert("UTC"))
    second = rows[repeated].assign(start=winter[repeated].tz_convert("UTC"))
    return pd.concat([first, second]).sort_values("start", kind="stable")


def forecast_event(forecast: pd.DataFrame, *, queue: str, timezone: str, forecast_id: str,
                   model: str, published_by: str, now: datetime, version: int = 1,
                   source: str = "queuecast.forecasting", site: str = "main",
                   ) -> Event[ForecastPublished]:
    """The ``wfm.forecast_published`` event of ``forecast`` (naive local interval starts
    on a regular grid; columns ``mean``, ``lower_80``, ``upper_80``, optional ``aht``)."""
    if not isinstance(forecast.index, pd.DatetimeIndex) or len(forecast.index) < 1:
        raise PublishError("forecast: needs a non-empty DatetimeIndex of interval starts")
    missing = [c for c in ("mean", "lower_80", "upper_80") if c not in forecast.columns]
    if missing:
        raise PublishError(f"forecast: missing column(s) {missing}; pass the frame a model's "
                           "predict() returns")
    step = pd.Series(forecast.index).diff().dropna().unique()
    if len(step) > 1 or (len(step) and step[0] <= pd.Timedelta(0)):
        raise PublishError("forecast: interval starts must be increasing on one regular grid")
    minutes = int(step[0] / pd.Timedelta(minutes=1)) if len(step) else 1440
    rows = _utc_rows(forecast, timezone)
    starts = pd.DatetimeIndex(rows["start"])
    aht = rows["aht"] if "aht" in rows.columns else None
    intervals = [
        ForecastInterval(
            start=start.to_pydatetime(), calls=round(float(row.mean), 4),
            calls_low=round(float(row.lower_80), 4), calls_high=round(float(row.upper_80), 4),
            aht_s=None if aht is None or pd.isna(aht.iloc[i]) else round(float(aht.iloc[i]), 3))
        for i, (start, row) in enumerate(zip(starts, rows.itertuples(), strict=True))]
    end = starts[-1] + pd.Timedelta(minutes=minutes)
    payload = ForecastPublished(
        queue=queue, forecast_id=forecast_id, version=version, interval_minutes=minutes,
        start=starts[0].to_pydatetime(), end=end.to_pydatetime(), model=model,
        published_by=published_by, intervals=intervals)
    event = make_event(payload, occurred_at=now, source=source, site=site)
    try:  # never hand the log an event a consumer would dead-letter
        decode_event(encode_event(event), expected_type=payload.TYPE)
    except InvalidEventError as exc:
        raise PublishError(f"the forecast would break the event contract: {exc.reason}") from None
    return event
