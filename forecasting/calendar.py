"""Day calendar for forecasting: public holidays, make-up workdays and user events per date.

For China (``CN``) the official schedule comes from ``chinese_calendar`` for the years it
publishes (days off and 调休 make-up workdays); for other years the rule-based ``holidays``
package supplies the lunar holidays (Spring Festival, Dragon Boat, Mid-Autumn) and the few
make-up workdays it knows. Any other country uses ``holidays.country_holidays`` only.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import chinese_calendar
import holidays
import pandas as pd

__all__ = [
    "DAY_TYPES",
    "CalendarError",
    "day_calendar",
    "read_events",
]

DAY_TYPES = ("workday", "weekend", "holiday", "makeup_workday")
"""Values of the ``day_type`` column."""

_HOLIDAY, _MAKEUP = "holiday", "makeup_workday"
_CN_PUBLISHED_YEARS = frozenset(d.year for d in chinese_calendar.holidays)


class CalendarError(ValueError):
    """A calendar argument or the user events frame is invalid; the message gives the fix."""


def _timestamp(value: Any, argument: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise CalendarError(f"{argument}={value!r} is not a date; pass e.g. '2026-01-31'")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def _parse_dates(column: pd.Series, name: str, *, required: bool) -> pd.Series:
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = parsed.isna() if required else parsed.isna() & column.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise CalendarError(
            f"events: column {name!r} row {row} has {column.iloc[row]!r}, not a date; "
            "write dates as YYYY-MM-DD"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()


def read_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate user events (campaign days, outages): columns ``date`` and ``name``, optional
    ``end`` (last day of a multi-day event, inclusive). Returns columns ``date``, ``end``
    (equal to ``date`` for one-day events) and ``name``, sorted by date.

    Raises ``CalendarError`` naming the column and the first bad row.
    """
    if not isinstance(frame, pd.DataFrame):
        raise CalendarError(
            f"events must be a DataFrame with columns date, name (optional end), "
            f"not {type(frame).__name__}"
        )
    renamed = frame.rename(columns=lambda c: str(c).strip().lower())
    for column in ("date", "name"):
        if column not in renamed.columns:
            raise CalendarError(
                f"events: missing column {column!r}; columns are {list(frame.columns)}; "
                "give date and name (and end for multi-day events)"
            )
    starts = _parse_dates(renamed["date"].reset_index(drop=True), "date", required=True)
    if "end" in renamed.columns:
        ends = _parse_dates(renamed["end"].reset_index(drop=True), "end", required=False)
        ends = ends.fillna(starts)
    else:
        ends = starts
    names = renamed["name"].reset_index(drop=True)
    blank = names.isna() | (names.astype(str).str.strip() == "")
    if blank.any():
        row = int(blank.to_numpy().nonzero()[0][0])
        raise CalendarError(f"events: column 'name' row {row} is empty; name every event")
    backwards = ends < starts
    if backwards.any():
        row = int(backwards.to_numpy().nonzero()[0][0])
        raise CalendarError(
            f"events: row {row} ends ({ends.iloc[row].date()}) before it starts "
            f"({starts.iloc[row].date()}); swap date and end"
        )
    result = pd.DataFrame(
        {"date": starts, "end": ends, "name": names.astype(str).str.strip()}
    )
    return result.sort_values(["date", "end"], kind="stable").reset_index(drop=True)


@lru_cache(maxsize=256)
def _rule_based(country: str, subdivision: str | None, year: int) -> tuple[
    dict[date, str], frozenset[date], frozenset[int]
]:
    try:
        rules = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except RuntimeError as exc:  # the package's "country not available" error derives from it
        raise CalendarError(
            f"country={country!r} subdivision={subdivision!r}: {exc}; use an ISO 3166 code "
            "known to the holidays package, e.g. CN"
        ) from None
    # The package accumulates make-up workdays of several years in one set: keep this year's.
    makeup = frozenset(d for d in getattr(rules, "weekend_workdays", ()) if d.year == year)
    return dict(rules.items()), makeup, frozenset(getattr(rules, "weekend", {5, 6}))


@lru_cache(maxsize=256)
def _official_cn(year: int) -> tuple[dict[date, str], dict[date, str]] | None:
    """Holidays and make-up workdays of the published CN schedule, ``None`` if unpublished."""
    if year not in _CN_PUBLISHED_YEARS:
        return None
    days_off = {d: n for d, n in chinese_calendar.holidays.items() if d.year == year}
    makeup = {d: n for d, n in chinese_calendar.workdays.items()
              if d.year == year and d.weekday() >= 5}
    return days_off, makeup


def _year_days(
    country: str, subdivision: str | None, year: int
) -> tuple[dict[date, str], dict[date, str], frozenset[int]]:
    """(holiday name by date, make-up workday name by date, weekend weekdays) of one year."""
    official = _official_cn(year) if country == "CN" else None
    if official is not None:
        days_off, makeup = official
        return days_off, makeup, frozenset({5, 6})
    rules, makeup_days, weekend = _rule_based(country, subdivision, year)
    return rules, dict.fromkeys(makeup_days, "Make-up workday"), weekend


def day_calendar(
    start: Any,
    end: Any,
    *,
    country: str = "CN",
    events: pd.DataFrame | None = None,
    subdivision: str | None = None,
) -> pd.DataFrame:
    """One row per local date from ``start`` to ``end`` inclusive (index ``date``).

    Columns: ``weekday`` (0 = Monday), ``holiday`` (public holiday day off),
    ``makeup_workday`` (official working weekend day, CN 调休), ``holiday_name`` ('' if
    none; on a make-up workday the holiday it makes up for), ``event`` (user event names
    joined by '; ', '' if none), ``day_type`` (one of ``DAY_TYPES``).

    ``events`` is a frame accepted by ``read_events``. Raises ``CalendarError``.
    """
    first, last = _timestamp(start, "start"), _timestamp(end, "end")
    if last < first:
        raise CalendarError(f"end={last.date()} is before start={first.date()}; swap them")
    if not isinstance(country, str) or not country.strip():
        raise CalendarError(f"country={country!r} is not a country code; use e.g. 'CN'")
    country = country.strip().upper()
    index = pd.date_range(first, last, freq="D", name="date")
    holiday_names: dict[date, str] = {}
    makeup_names: dict[date, str] = {}
    weekend_by_year: dict[int, frozenset[int]] = {}
    for year in range(first.year, last.year + 1):
        days_off, makeup, weekend = _year_days(country, subdivision, year)
        holiday_names.update(days_off)
        makeup_names.update(makeup)
        weekend_by_year[year] = weekend
    days = index.date
    weekday = index.day_of_week.to_numpy()
    is_holiday = pd.array([d in holiday_names for d in days], dtype=bool)
    is_makeup = pd.array([d in makeup_names and d not in holiday_names for d in days],
                         dtype=bool)
    is_weekend = pd.array([w in weekend_by_year[d.year] for d, w in zip(days, weekday,
                                                                           strict=True)],
                          dtype=bool)
    names = [holiday_names.get(d) or makeup_names.get(d, "") for d in days]
    day_type = pd.Series("workday", index=index, dtype=object)
    day_type[is_weekend] = "weekend"
    day_type[is_makeup] = _MAKEUP
    day_type[is_holiday] = _HOLIDAY
    frame = pd.DataFrame(
        {
            "weekday": weekday.astype(int),
            "holiday": is_holiday,
            "makeup_workday": is_makeup,
            "holiday_name": names,
            "event": _event_names(index, events),
            "day_type": day_type.astype(str),
        },
        index=index,
    )
    frame["holiday"] = frame["holiday"].astype(bool)
    frame["makeup_workday"] = frame["makeup_workday"].astype(bool)
    return frame


def _event_names(index: pd.DatetimeIndex, events: pd.DataFrame | None) -> list[str]:
    names: list[list[str]] = [[] for _ in range(len(index))]
    if events is not None:
        table = read_events(events)
        first, last = index[0], index[-1]
        for start, stop, name in table.itertuples(index=False):
            if stop < first or start > last:
                continue
            lo = index.get_loc(max(start, first))
            hi = index.get_loc(min(stop, last))
            for i in range(lo, hi + 1):
                if name not in names[i]:
                    names[i].append(name)
    return ["; ".join(n) for n in names]
