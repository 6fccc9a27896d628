"""Interval history of offered calls and AHT: validation and a complete regular grid per queue.

Input rows come from the warehouse or a CSV (``timestamp, calls`` and optional ``queue,
aht``). Both omit intervals without calls, so the grid is completed with these rules:

- an absent interval on a day that has at least one row is 0 calls (the center was quiet or
  closed at night);
- a whole absent day is NaN (data missing), unless the center is closed on that weekday by
  design: a weekday is closed when fewer than half of its dates in the queue's history have
  rows (e.g. closed Sundays); then the day is 0 calls. With a single date of a weekday in the
  history an absent date counts as closed;
- every queue's grid ends with the last day of the whole input, so all queues are forecast
  from the same day on (a queue without rows on the last days gets those days by the rule
  above);
- the data cover the input's first timestamp to its last one: on the first day before the
  first row and on the last day after the last row (a history that starts mid-day, or a
  partial last day exported before midnight), an absent interval is NaN (not observed) at a
  busy time of day (calls on at least half of the queue's days with rows), else 0 (closed
  or quiet at night).

Timestamps are naive local wall-clock times. Time-zone aware timestamps (a tz-aware column or
text with an offset such as ``+08:00``) are converted to the naive wall clock of their own
zone, which is what the offset says; on a daylight-saving fall-back night the repeated hour's
rows then fall on the same wall-clock interval and are added up.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = [
    "INTERVALS",
    "SeriesError",
    "read_history",
    "series_frame",
]

INTERVALS = (5, 15, 30, 60)
"""Allowed interval lengths in minutes."""

_DAY_MIN = 1440
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


class SeriesError(ValueError):
    """The interval history is invalid; the message names the column, row and fix."""


def _first(mask: np.ndarray | pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _timestamps(column: pd.Series) -> tuple[pd.Series, bool]:
    """Naive local wall-clock timestamps and whether the input carried time zones."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        raise SeriesError(
            "column 'timestamp' holds numbers; give date-times such as 2026-01-05 08:15"
        )
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_localize(None), True
    if pd.api.types.is_datetime64_dtype(column):
        return column, False
    text = column.astype("string")
    aware = bool(text.str.contains(_OFFSET, regex=True, na=False).any())
    if aware:
        text = text.str.replace(_OFFSET, "", regex=True)
    text = text.str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = _first(bad)
        raise SeriesError(
            f"column 'timestamp' row {row} has {column.iloc[row]!r}, not a date-time; "
            "write e.g. 2026-01-05 08:15 (local time)"
        )
    return parsed.astype("datetime64[ns]"), aware


def _numbers(frame: pd.DataFrame, name: str) -> pd.Series:
    column = frame[name]
    values = pd.to_numeric(column, errors="coerce").astype(float)
    bad = values.isna() & column.notna() & (column.astype("string").str.strip() != "")
    if bad.any():
        row = _first(bad)
        raise SeriesError(f"column {name!r} row {row} has {column.iloc[row]!r}, not a number")
    negative = values < 0
    if negative.any():
        row = _first(negative)
        raise SeriesError(
            f"column {name!r} row {row} is negative ({values.iloc[row]:g}); "
            f"{name} cannot be below 0, fix or drop the row"
        )
    infinite = np.isinf(values)
    if infinite.any():
        raise SeriesError(f"column {name!r} row {_first(infinite)} is infinite; fix the row")
    return values


def _infer_step(stamps: pd.Series, queues: pd.Series, given: int | None) -> int:
    """The interval in minutes.

    Inferred: the longest of ``INTERVALS`` that every timestamp lies on (counted from
    midnight); sparse rows of a quiet queue still show their grid. Refused as mixed: rows
    mostly a longer gap apart (90% of the timestamps on that longer grid) with a few rows
    between. A given interval is refused when timestamps are off its grid, or when the data
    are dense rows of a longer interval (at least 20 gaps, 90% of them that interval).
    """
    ns = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
    order = np.lexsort((ns, queues.to_numpy()))
    q_sorted, ns_sorted = queues.to_numpy()[order], ns[order]
    same = q_sorted[1:] == q_sorted[:-1]
    gaps = np.diff(ns_sorted)[same] // 60_000_000_000
    second_of_pair = order[1:][same][gaps > 0]
    gaps = gaps[gaps > 0]
    minute_of_day = (ns % (86_400 * 10**9)) / 6e10
    grid = next((m for m in reversed(INTERVALS) if (minute_of_day % m == 0).all()), None)
    if grid is None:
        step = given if given in INTERVALS else 5
        row = _first(minute_of_day % step != 0)
        raise SeriesError(
            f"column 'timestamp' row {row} ({stamps.iloc[row]}) is not on a {step}-minute "
            "grid from midnight; interval starts must be e.g. 08:00, 08:15"
        )
    if given is not None:
        if given not in INTERVALS:
            raise SeriesError(
                f"interval_minutes={given!r} is not supported; use one of {INTERVALS}"
            )
        off = minute_of_day % given != 0
        if off.any():
            row = _first(off)
            raise SeriesError(
                f"interval_minutes={given} but column 'timestamp' row {row} "
                f"({stamps.iloc[row]}) is not on a {given}-minute grid from midnight; "
                "pass the data's interval or omit interval_minutes to infer it"
            )
        if grid > given and len(gaps) >= 20 and np.mean(gaps == grid) >= 0.9:
            raise SeriesError(
                f"interval_minutes={given} but the rows are consecutive {grid}-minute "
                f"intervals ({grid}-minute data); pass interval_minutes={grid} or omit it"
            )
        return given
    if len(gaps):
        values, counts = np.unique(gaps, return_counts=True)
        usual = int(values[np.argmax(counts)])
        if usual > grid and np.mean(minute_of_day % usual == 0) >= 0.9:
            if usual in INTERVALS:
                row = _first(minute_of_day % usual != 0)
                raise SeriesError(
                    f"column 'timestamp' mixes interval lengths: most rows are {usual} "
                    f"minutes apart but row {row} ({stamps.iloc[row]}) is off that grid; "
                    "give one interval length for all rows and queues"
                )
            raise SeriesError(
                f"column 'timestamp': rows are mostly {usual} minutes apart, which is not "
                f"an interval of {INTERVALS} minutes (row {second_of_pair[gaps == usual][0]}: "
                f"{stamps.iloc[second_of_pair[gaps == usual][0]]}); "
                "aggregate to 15 or 60 minutes first"
            )
    return grid


def read_history(
    frame: pd.DataFrame, *, interval_minutes: int | None = None
) -> dict[str, pd.DataFrame]:
    """Validate interval rows and return, per queue (``"all"`` without a ``queue`` column),
    a frame on a complete regular grid (freq set) from the first day 00:00 to the end of the
    last day, with columns ``calls`` (float, NaN = data missing) and ``aht`` (float seconds,
    NaN where unknown or no calls). See the module docstring for how gaps are filled.

    ``interval_minutes`` (5, 15, 30 or 60) is inferred from the data when omitted; a given
    value the timestamps contradict is refused. Raises ``SeriesError``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SeriesError(
            f"history must be a DataFrame with columns timestamp, calls (optional queue, aht), "
            f"not {type(frame).__name__}"
        )
    data = frame.rename(columns=lambda c: str(c).strip().lower()).reset_index(drop=True)
    if data.columns.duplicated().any():
        raise SeriesError(f"history has duplicate column names {list(frame.columns)}; "
                          "rename them")
    for column in ("timestamp", "calls"):
        if column not in data.columns:
            raise SeriesError(
                f"history: missing column {column!r}; columns are {list(frame.columns)}; "
                "give timestamp and calls (optional queue, aht)"
            )
    if data.empty:
        raise SeriesError("history has no rows; give at least one day of intervals")
    stamps, aware = _timestamps(data["timestamp"])
    calls = _numbers(data, "calls")
    aht = _numbers(data, "aht") if "aht" in data.columns else pd.Series(np.nan, index=data.index)
    if "queue" in data.columns:
        blank = data["queue"].isna() | (data["queue"].astype("string").str.strip() == "")
        if blank.any():
            raise SeriesError(
                f"column 'queue' row {_first(blank)} is empty; name the queue of every row"
            )
        queues = data["queue"].astype(str).str.strip()
    else:
        queues = pd.Series("all", index=data.index)
    step = _infer_step(stamps, queues, interval_minutes)
    rows = pd.DataFrame({"queue": queues, "timestamp": stamps, "calls": calls, "aht": aht})
    duplicated = rows.duplicated(["queue", "timestamp"], keep=False)
    if duplicated.any() and not aware:
        row = _first(duplicated)
        raise SeriesError(
            f"column 'timestamp' row {row} ({stamps.iloc[row]}) appears more than once for "
            f"queue {queues.iloc[row]!r}; give one row per queue and interval (sum them)"
        )
    if duplicated.any():
        rows = _merge_repeated(rows)
    first, last = rows["timestamp"].min(), rows["timestamp"].max()
    return {str(q): _grid(part, step, first=first, last=last)
            for q, part in rows.groupby("queue", sort=True)}


def _merge_repeated(rows: pd.DataFrame) -> pd.DataFrame:
    """Add up rows on the same wall-clock interval (daylight-saving fall-back hour)."""
    handled = rows["aht"] * rows["calls"]
    rows = rows.assign(
        handled=handled, known=rows["calls"].where(rows["aht"].notna(), 0.0)
    )
    merged = rows.groupby(["queue", "timestamp"], sort=False).agg(
        calls=("calls", lambda s: s.sum(min_count=1)),
        handled=("handled", "sum"),
        known=("known", "sum"),
    )
    merged["aht"] = (merged["handled"] / merged["known"]).where(merged["known"] > 0)
    return merged.drop(columns=["handled", "known"]).reset_index()


def _grid(part: pd.DataFrame, step: int, *, first: pd.Timestamp,
          last: pd.Timestamp) -> pd.DataFrame:
    """One queue's rows on the grid from its first day to the input's last day; ``first``
    and ``last`` are the input's first and last timestamps (all queues)."""
    stamps = pd.DatetimeIndex(part["timestamp"])
    first_day, last_day = stamps.min().normalize(), last.normalize()
    index = pd.date_range(
        first_day, last_day + pd.Timedelta(days=1) - pd.Timedelta(minutes=step),
        freq=f"{step}min", name="timestamp",
    )
    values = part.set_index(stamps)[["calls", "aht"]]
    grid = values.reindex(index)
    days = pd.date_range(first_day, last_day, freq="D")
    seen = days.isin(stamps.normalize().unique())
    closed = _closed_weekdays(days, seen)
    day_of = index.normalize()
    # Day-level rule per interval: a day with rows, or a closed weekday, means absent = 0.
    filled_day = pd.Series(seen | np.isin(days.day_of_week, closed), index=days)
    zero = filled_day.reindex(day_of).to_numpy() & ~index.isin(stamps)
    calls = grid["calls"].to_numpy(dtype=float, copy=True)
    calls[zero] = 0.0
    per_day = _DAY_MIN // step
    # A time of day is busy when most days with rows have calls then: an absent interval
    # there before the first or after the last row was not observed; elsewhere it is quiet.
    busy = (calls.reshape(-1, per_day)[seen] > 0).mean(axis=0) >= 0.5
    unobserved = (index < first) | (index > last)
    calls[unobserved & ~index.isin(stamps) & np.tile(busy, len(days))] = np.nan
    aht = grid["aht"].to_numpy(dtype=float, copy=True)
    aht[~(calls > 0)] = np.nan
    result = pd.DataFrame({"calls": calls, "aht": aht}, index=index)
    result.index.freq = index.freq
    return result


def _closed_weekdays(days: pd.DatetimeIndex, seen: np.ndarray) -> list[int]:
    weekday = days.day_of_week
    closed = []
    for w in range(7):
        mask = weekday == w
        total = int(mask.sum())
        if total and seen[mask].sum() * 2 < total:
            closed.append(w)
    return closed


def series_frame(history: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The inverse of ``read_history``: long rows ``timestamp, queue, calls, aht``, one per
    queue and interval of the grid (zero and missing intervals included)."""
    parts = []
    for queue, frame in history.items():
        part = frame.reindex(columns=["calls", "aht"]).rename_axis("timestamp").reset_index()
        part.insert(1, "queue", queue)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["timestamp", "queue", "calls", "aht"])
    return pd.concat(parts, ignore_index=True)
