"""A forecast as a ``wfm.forecast_published`` event (WF-02, WF-03).

The event carries each interval's start in UTC, the expected offered calls, the 80%
prediction interval as ``calls_low``/``calls_high`` and the expected handle time. The
streams write it to the warehouse's ``forecasts`` table; the planner reads it to staff and
schedule (``queuecast schedule plan``).
"""

from __future__ import annotations

from datetime import datetime

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


def _utc_starts(index: pd.DatetimeIndex, timezone: str) -> pd.DatetimeIndex:
    try:
        local = index.tz_localize(timezone, ambiguous="infer", nonexistent="raise")
    except Exception as exc:  # pytz/zoneinfo raise several types for DST gaps and bad zones
        raise PublishError(f"timezone: cannot place the forecast's local times in "
                           f"{timezone!r} ({exc}); give an IANA zone such as "
                           "'Asia/Shanghai', or forecast on a grid without DST gaps") from None
    return local.tz_convert("UTC")


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
    starts = _utc_starts(pd.DatetimeIndex(forecast.index), timezone)
    aht = forecast["aht"] if "aht" in forecast.columns else None
    intervals = [
        ForecastInterval(
            start=start.to_pydatetime(), calls=round(float(row.mean), 4),
            calls_low=round(float(row.lower_80), 4), calls_high=round(float(row.upper_80), 4),
            aht_s=None if aht is None or pd.isna(aht.iloc[i]) else round(float(aht.iloc[i]), 3))
        for i, (start, row) in enumerate(zip(starts, forecast.itertuples(), strict=True))]
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
