"""Analyst reports (RP-01..RP-07) over the fact tables, on chdb and ClickHouse 18.16.

Every KPI is defined once in ``docs/metrics.md`` ("Report KPIs") and built here once: the
call measures by :data:`KPI_SELECT` + :func:`_finish_kpis` (offered, answered, abandoned,
short abandons, service level and its variants, ASA, average wait, AHT, abandon rate), the
agent-state times by :func:`_state_time` (logged-in, ready, not-ready, busy, occupancy).
Reports read the facts with ``FINAL`` (never the rollups), so they are exact before merges.

Options are keyword-only. Values are always bound as ``%(name)s`` parameters; identifiers
(the interval grain, the origin level, the calling-time bucket) come from fixed whitelists.
``start``/``end`` (end exclusive) are datetimes, dates, pandas timestamps or ISO strings;
naive ones are wall-clock times in ``time_zone`` (UTC by default). Times come back as
tz-aware pandas timestamps in ``time_zone``. A ratio whose denominator is 0 is NaN.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from warehouse.client import Warehouse

__all__ = [
    "AGENT_COLUMNS",
    "BUSY_STATES",
    "CDR_COLUMNS",
    "DEFAULT_WAIT_BINS",
    "GRAINS",
    "KPI_COLUMNS",
    "KPI_SELECT",
    "LOGGED_IN_STATES",
    "SL_VARIANTS",
    "ReportError",
    "agent_performance",
    "agent_state_detail",
    "call_detail",
    "calling_time",
    "interval_traffic",
    "lost_calls",
    "origin_analysis",
    "qa_report",
    "queue_report",
    "satisfaction",
    "shrinkage_by_reason",
    "wait_distribution",
]

TimeLike = dt.datetime | dt.date | pd.Timestamp | str


class ReportError(ValueError):
    """A report option is invalid; the message names the argument and the accepted values."""


# --- call KPIs ---------------------------------------------------------------------------

_OFFERED = "queue != ''"
_ANSWERED = f"{_OFFERED} AND outcome = 'answered'"
_ABANDONED = f"{_OFFERED} AND outcome = 'abandoned'"

KPI_SELECT: Final[str] = f"""
    count() AS all_calls,
    countIf({_OFFERED}) AS offered,
    countIf({_ANSWERED}) AS answered,
    countIf({_ABANDONED}) AS abandoned,
    countIf({_ABANDONED} AND wait_s <= %(short_abandon_s)s) AS short_abandoned,
    countIf({_ANSWERED} AND wait_s <= %(sl_threshold_s)s) AS answered_within,
    sumIf(wait_s, {_ANSWERED}) AS answered_wait_sum,
    sumIf(wait_s, {_OFFERED}) AS offered_wait_sum,
    sumIf(talk_s + hold_s + acw_s, {_ANSWERED}) AS handle_sum"""
"""The call measures of docs/metrics.md "Report KPIs", one aggregate list for every report
(a call is *offered* when it has a queue leg, ``queue != ''``)."""

_CALL_RANGE = (  # offered in [start, end), to the millisecond
    "offered_at >= %(start)s AND offered_at <= %(end)s "
    "AND toInt64(toUInt32(offered_at)) * 1000 + offered_ms >= %(start_ms)s "
    "AND toInt64(toUInt32(offered_at)) * 1000 + offered_ms < %(end_ms)s")

_COUNTS = ("all_calls", "offered", "answered", "abandoned", "short_abandoned", "answered_within")
_SUMS = ("answered_wait_sum", "offered_wait_sum", "handle_sum")

KPI_COLUMNS: Final[tuple[str, ...]] = (
    "offered", "answered", "abandoned", "short_abandoned", "answered_within", "service_level",
    "asa_s", "avg_wait_s", "aht_s", "abandon_rate",
)
"""The measures every traffic report returns, after its key columns."""

SL_VARIANTS: Final[Mapping[str, Callable[[pd.DataFrame], pd.Series]]] = {
    "answered": lambda f: f["answered"],
    "offered": lambda f: f["offered"],
    "abandoned_in": lambda f: f["answered"] + f["abandoned"],
    "short_excluded": lambda f: f["offered"] - f["short_abandoned"],
}
"""Service level = answered within T / the denominator of the chosen variant."""

GRAINS: Final[Mapping[str, str]] = {
    "15m": "toStartOfFifteenMinutes(offered_at, %(time_zone)s)",
    "30m": ("addMinutes(toStartOfHour(offered_at, %(time_zone)s), "
            "intDiv(toMinute(offered_at, %(time_zone)s), 30) * 30)"),
    "1h": "toStartOfHour(offered_at, %(time_zone)s)",
    "1d": "toStartOfDay(offered_at, %(time_zone)s)",
    "1mo": "toDateTime(toStartOfMonth(offered_at, %(time_zone)s), %(time_zone)s)",
}
"""Interval grain -> the local interval start (ClickHouse 18.16 has no toStartOfInterval)."""

_ORIGIN_LEVELS: Final[Mapping[str, tuple[str, ...]]] = {
    "region": ("region",), "city": ("region", "city"), "carrier": ("carrier",),
}
_CALLING_TIME: Final[Mapping[str, tuple[str, range]]] = {
    "hour": ("toHour(offered_at, %(time_zone)s)", range(24)),
    "weekday": ("toDayOfWeek(toDate(offered_at, %(time_zone)s))", range(1, 8)),
    "month": ("toMonth(offered_at, %(time_zone)s)", range(1, 13)),
}

# --- agent states ------------------------------------------------------------------------

LOGGED_IN_STATES: Final[tuple[str, ...]] = (
    "after_call_work", "hold", "not_ready", "ready", "ringing", "talking")
"""States that count as logged in (every contract ``AgentState``; gaps are logged out)."""

BUSY_STATES: Final[tuple[str, ...]] = ("after_call_work", "hold", "ringing", "talking")
"""States that count as handling calls in occupancy."""

_SPELL_START_MS = "(toInt64(toUInt32(`start`)) * 1000 + start_ms)"
_SPELL_END_MS = "(toInt64(toUInt32(`end`)) * 1000 + end_ms)"
_CLIPPED_S = (f"greatest(toInt64(0), least({_SPELL_END_MS}, toInt64(%(end_ms)s)) - "
              f"greatest({_SPELL_START_MS}, toInt64(%(start_ms)s))) / 1000")
_SPELL_RANGE = (f"`start` <= %(end)s AND `end` >= %(start)s "
                f"AND {_SPELL_START_MS} < %(end_ms)s AND {_SPELL_END_MS} > %(start_ms)s")

DEFAULT_WAIT_BINS: Final[tuple[float, ...]] = (0, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300)
"""Lower edges (seconds) of the waiting-time bins; the last bin is open-ended."""

CDR_COLUMNS: Final[tuple[str, ...]] = (
    "call_id", "direction", "caller", "dialed", "customer_id", "queue", "agent_id", "agents",
    "region", "city", "carrier", "offered_at", "answered_at", "ended_at", "ivr_s", "wait_s",
    "ring_s", "talk_s", "hold_s", "acw_s", "outcome", "abandon_stage", "disposition",
    "transfers",
)
"""The columns of :func:`call_detail` (times tz-aware in the report's zone)."""

_SEARCH_COLUMNS = ("caller", "dialed", "call_id", "customer_id", "agent_id")


# --- argument checks ---------------------------------------------------------------------

def _zone(time_zone: str) -> str:
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ReportError(f"time_zone={time_zone!r} is not an IANA zone; pass e.g. 'UTC' or "
                          "'Asia/Shanghai'") from None
    return time_zone


def _instant(name: str, value: TimeLike, time_zone: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ReportError(f"{name}={value!r} is not a time; pass a datetime, date or ISO "
                          "string") from None
    if stamp is pd.NaT:
        raise ReportError(f"{name} is missing; pass a datetime, date or ISO string")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(time_zone, ambiguous="raise", nonexistent="raise")
    return stamp.tz_convert("UTC")


def _window(start: TimeLike, end: TimeLike, time_zone: str) -> dict[str, Any]:
    """Parameters of the range [start, end): second bounds for the partition key, ms for rows."""
    zone = _zone(time_zone)
    lo, hi = _instant("start", start, zone), _instant("end", end, zone)
    if hi <= lo:
        raise ReportError(f"end ({hi}) must be after start ({lo})")
    return {"time_zone": zone,
            "start": lo.floor("s").to_pydatetime(), "end": hi.ceil("s").to_pydatetime(),
            "start_ms": int(lo.value // 1_000_000), "end_ms": int(-(-hi.value // 1_000_000))}


def _names(name: str, values: Sequence[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ReportError(f"{name} must be a list of strings (or None for all), not {values!r}")
    if not values:
        raise ReportError(f"{name} is empty; pass None for all or at least one value")
    return tuple(values)


def _choice(name: str, value: str, allowed: Mapping[str, Any]) -> Any:
    if value not in allowed:
        raise ReportError(f"{name}={value!r} is not one of {sorted(allowed)}")
    return allowed[value]


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0:
        raise ReportError(f"{name}={value!r} must be a finite number of seconds >= 0")
    return float(value)


# --- frames ------------------------------------------------------------------------------

def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    num = numerator.astype("float64")
    den = denominator.astype("float64")
    return (num / den.where(den != 0)).astype("float64")


def _columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with exactly ``columns`` (chdb returns no columns for an empty result)."""
    return frame.reindex(columns=list(columns)).reset_index(drop=True)


def _stamps(seconds: pd.Series, ms: pd.Series, time_zone: str) -> pd.Series:
    """Epoch seconds (+ milliseconds; NaN/None -> NaT) as tz-aware timestamps in the zone."""
    whole = pd.to_numeric(seconds, errors="coerce").astype("float64")
    parts = pd.to_numeric(ms, errors="coerce").fillna(0).astype("float64")
    stamp = pd.to_datetime((whole * 1000 + parts).round().astype("Int64"), unit="ms", utc=True)
    return pd.Series(stamp, index=seconds.index).dt.tz_convert(time_zone)


def _finish_kpis(frame: pd.DataFrame, sl_variant: str) -> pd.DataFrame:
    """Counts to int, then the ratio KPIs of docs/metrics.md; drops the helper sums."""
    out = frame.copy()
    for column in _COUNTS:
        out[column] = pd.to_numeric(out[column]).fillna(0).astype("int64")
    for column in _SUMS:
        out[column] = pd.to_numeric(out[column]).fillna(0.0).astype("float64")
    out["service_level"] = _ratio(out["answered_within"], SL_VARIANTS[sl_variant](out))
    out["asa_s"] = _ratio(out["answered_wait_sum"], out["answered"])
    out["avg_wait_s"] = _ratio(out["offered_wait_sum"], out["offered"])
    out["aht_s"] = _ratio(out["handle_sum"], out["answered"])
    out["abandon_rate"] = _ratio(out["abandoned"], out["offered"])
    return out.drop(columns=list(_SUMS))


def _group(keys: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """``(select prefix, GROUP BY/ORDER BY clause)`` for ``keys`` of (alias, expression)."""
    if not keys:
        return "", ""
    select = "".join(expr + ", " if expr == alias else f"{expr} AS {alias}, "
                     for alias, expr in keys)
    aliases = ", ".join(alias for alias, _ in keys)
    return select, f"\nGROUP BY {aliases} ORDER BY {aliases}"


def _traffic(wh: Warehouse, *, keys: Sequence[tuple[str, str]], where: Sequence[str],
             params: dict[str, Any], sl_variant: str | None) -> pd.DataFrame:
    """KPI_SELECT over calls FINAL in the window, grouped by ``keys`` (alias, expression).

    Finished by :func:`_finish_kpis` unless ``sl_variant`` is None (then the raw counts and
    sums, for callers that add empty keys first).
    """
    select, group = _group(keys)
    conditions = " AND ".join([_CALL_RANGE, *where])
    sql = f"SELECT {select}{KPI_SELECT}\nFROM calls FINAL\nWHERE {conditions}{group}"
    frame = _columns(wh.query(sql, params), [a for a, _ in keys] + [*_COUNTS, *_SUMS])
    return frame if sl_variant is None else _finish_kpis(frame, sl_variant)


def _every_key(frame: pd.DataFrame, key: str, values: Sequence[int]) -> pd.DataFrame:
    """Raw traffic with a row for each of ``values`` of ``key`` (absent ones: 0 calls)."""
    frame = frame.assign(**{key: pd.to_numeric(frame[key]).astype("int64")})
    full = pd.DataFrame({key: np.asarray(list(values), dtype="int64")})
    return full.merge(frame, on=key, how="left").fillna(dict.fromkeys((*_COUNTS, *_SUMS), 0))


def _kpi_params(window: dict[str, Any], *, sl_threshold_s: float, short_abandon_s: float,
                sl_variant: str) -> dict[str, Any]:
    _choice("sl_variant", sl_variant, SL_VARIANTS)
    return {**window, "sl_threshold_s": _seconds("sl_threshold_s", sl_threshold_s),
            "short_abandon_s": _seconds("short_abandon_s", short_abandon_s)}


def _queue_filter(queues: Sequence[str] | None, params: dict[str, Any]) -> list[str]:
    chosen = _names("queues", queues)
    if chosen is None:
        return [_OFFERED]
    params["queues"] = chosen
    return [_OFFERED, "queue IN %(queues)s"]


# --- RP-02 / RP-04 -----------------------------------------------------------------------

def interval_traffic(wh: Warehouse, *, start: TimeLike, end: TimeLike, grain: str = "15m",
                     queues: Sequence[str] | None = None, time_zone: str = "UTC",
                     sl_threshold_s: float = 20.0, sl_variant: str = "abandoned_in",
                     short_abandon_s: float = 5.0) -> pd.DataFrame:
    """RP-02: per queue and local interval, ``queue, interval_start`` + :data:`KPI_COLUMNS`.

    Calls are placed by ``offered_at`` in the local interval of ``time_zone`` (grain one of
    :data:`GRAINS`); intervals without offered calls are absent.
    """
    expr = _choice("grain", grain, GRAINS)
    params = _kpi_params(_window(start, end, time_zone), sl_threshold_s=sl_threshold_s,
                         short_abandon_s=short_abandon_s, sl_variant=sl_variant)
    where = _queue_filter(queues, params)
    frame = _traffic(wh, keys=[("queue", "queue"), ("interval_epoch", f"toUInt32({expr})")],
                     where=where, params=params, sl_variant=sl_variant)
    frame.insert(1, "interval_start", _stamps(frame["interval_epoch"],
                                              pd.Series(0, index=frame.index), time_zone))
    frame = frame.sort_values(["queue", "interval_start"], kind="stable")
    return _columns(frame, ["queue", "interval_start", *KPI_COLUMNS])


def queue_report(wh: Warehouse, *, start: TimeLike, end: TimeLike,
                 queues: Sequence[str] | None = None, time_zone: str = "UTC",
                 sl_threshold_s: float = 20.0, sl_variant: str = "abandoned_in",
                 short_abandon_s: float = 5.0) -> pd.DataFrame:
    """RP-04: one row per queue over the whole range: ``queue`` + :data:`KPI_COLUMNS`."""
    params = _kpi_params(_window(start, end, time_zone), sl_threshold_s=sl_threshold_s,
                         short_abandon_s=short_abandon_s, sl_variant=sl_variant)
    where = _queue_filter(queues, params)
    frame = _traffic(wh, keys=[("queue", "queue")], where=where, params=params,
                     sl_variant=sl_variant)
    return _columns(frame, ["queue", *KPI_COLUMNS])


# --- RP-03 -------------------------------------------------------------------------------

def _agent_filter(agents: Sequence[str] | None, params: dict[str, Any]) -> list[str]:
    chosen = _names("agents", agents)
    if chosen is None:
        return []
    params["agents"] = chosen
    return ["agent_id IN %(agents)s"]


def _state_time(wh: Warehouse, *, keys: Sequence[tuple[str, str]], where: Sequence[str],
                params: dict[str, Any]) -> pd.DataFrame:
    """Seconds per state class, spells clipped to the window, grouped by ``keys``."""
    select, group = _group(keys)
    conditions = " AND ".join([_SPELL_RANGE, *where])
    sql = (f"SELECT {select}sumIf(d, state IN %(logged_in)s) AS logged_in_s, "
           "sumIf(d, state = 'ready') AS ready_s, sumIf(d, state = 'not_ready') AS not_ready_s, "
           "sumIf(d, state IN %(busy)s) AS busy_s\n"
           f"FROM (SELECT agent_id, state, reason, {_CLIPPED_S} AS d "
           f"FROM agent_state_intervals FINAL WHERE {conditions}){group}")
    frame = wh.query(sql, {**params, "logged_in": LOGGED_IN_STATES, "busy": BUSY_STATES})
    frame = _columns(frame, [*(a for a, _ in keys), "logged_in_s", "ready_s", "not_ready_s",
                             "busy_s"])
    for column in ("logged_in_s", "ready_s", "not_ready_s", "busy_s"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0.0).astype("float64")
    return frame


_AGENT_CALLS = f"""
SELECT agent_id, count() AS handled, countIf(direction = 'outbound') AS outbound,
       sum(talk_s) AS talk_sum, sum(hold_s) AS hold_sum, sum(acw_s) AS acw_sum,
       sum(talk_s + hold_s + acw_s) AS handle_sum
FROM calls FINAL
WHERE outcome = 'answered' AND agent_id != '' AND {_CALL_RANGE} {{agents}}
GROUP BY agent_id ORDER BY agent_id"""

_AGENT_RINGS = f"""
SELECT agent_id, countIf(rang) AS rung, countIf(rang AND talked) AS rung_answered
FROM (SELECT agent_id, call_id,
             max(state = 'ringing' AND {_SPELL_START_MS} >= %(start_ms)s
                 AND {_SPELL_START_MS} < %(end_ms)s) AS rang,
             max(state = 'talking') AS talked
      FROM agent_state_intervals FINAL
      WHERE call_id != '' AND state IN ('ringing', 'talking') AND `start` >= %(start)s {{agents}}
      GROUP BY agent_id, call_id)
GROUP BY agent_id ORDER BY agent_id"""

AGENT_COLUMNS: Final[tuple[str, ...]] = (
    "agent_id", "handled", "outbound", "talk_s", "hold_s", "acw_s", "aht_s", "rung",
    "rung_answered", "answer_rate", "logged_in_s", "ready_s", "not_ready_s", "busy_s",
    "occupancy", "not_ready_share",
)


def agent_performance(wh: Warehouse, *, start: TimeLike, end: TimeLike,
                      agents: Sequence[str] | None = None,
                      time_zone: str = "UTC") -> pd.DataFrame:
    """RP-03: per agent :data:`AGENT_COLUMNS` (see docs/metrics.md "Report KPIs").

    Calls (handled = answered calls whose first answering agent is the agent, by
    ``offered_at``), rings and answer rate (ringing spells with a call_id starting in the
    range; answered when the agent also has a talking spell for that call), state times
    clipped to the range, occupancy and not-ready share.
    """
    params = _window(start, end, time_zone)
    where = _agent_filter(agents, params)
    extra = "".join(f" AND {w}" for w in where)
    calls = _columns(wh.query(_AGENT_CALLS.format(agents=extra), params),
                     ["agent_id", "handled", "outbound", "talk_sum", "hold_sum", "acw_sum",
                      "handle_sum"]).rename(columns={"talk_sum": "talk_s", "hold_sum": "hold_s",
                                                     "acw_sum": "acw_s"})
    rings = _columns(wh.query(_AGENT_RINGS.format(agents=extra), params),
                     ["agent_id", "rung", "rung_answered"])
    states = _state_time(wh, keys=[("agent_id", "agent_id")], where=where, params=params)
    out = calls.merge(rings, on="agent_id", how="outer").merge(states, on="agent_id",
                                                               how="outer")
    for column in ("handled", "outbound", "rung", "rung_answered"):
        out[column] = pd.to_numeric(out[column]).fillna(0).astype("int64")
    for column in ("talk_s", "hold_s", "acw_s", "handle_sum", "logged_in_s", "ready_s",
                   "not_ready_s", "busy_s"):
        out[column] = pd.to_numeric(out[column]).fillna(0.0).astype("float64")
    out["aht_s"] = _ratio(out["handle_sum"], out["handled"])
    out["answer_rate"] = _ratio(out["rung_answered"], out["rung"])
    out["occupancy"] = _ratio(out["busy_s"], out["busy_s"] + out["ready_s"])
    out["not_ready_share"] = _ratio(out["not_ready_s"], out["logged_in_s"])
    out["agent_id"] = out["agent_id"].astype(str)
    out = out.sort_values("agent_id", kind="stable")
    return _columns(out, AGENT_COLUMNS)


def agent_state_detail(wh: Warehouse, *, agent_id: str, start: TimeLike, end: TimeLike,
                       time_zone: str = "UTC") -> pd.DataFrame:
    """RP-03 detail: the agent's state spells overlapping the range, in order, unclipped.

    Columns ``spell_id, state, reason, call_id, queue, start, end, duration_s``.
    """
    if not isinstance(agent_id, str) or not agent_id:
        raise ReportError(f"agent_id={agent_id!r} must be a non-empty string")
    params = {**_window(start, end, time_zone), "agent_id": agent_id}
    sql = (f"SELECT spell_id, state, reason, call_id, queue, toUInt32(`start`) AS s_epoch, "
           f"start_ms, toUInt32(`end`) AS e_epoch, end_ms, duration_s "
           f"FROM agent_state_intervals FINAL WHERE agent_id = %(agent_id)s AND {_SPELL_RANGE} "
           f"ORDER BY `start`, start_ms")
    frame = _columns(wh.query(sql, params), ["spell_id", "state", "reason", "call_id", "queue",
                                             "s_epoch", "start_ms", "e_epoch", "end_ms",
                                             "duration_s"])
    frame["start"] = _stamps(frame["s_epoch"], frame["start_ms"], time_zone)
    frame["end"] = _stamps(frame["e_epoch"], frame["end_ms"], time_zone)
    frame["reason"] = frame["reason"].astype(object).where(frame["reason"].notna(), None)
    frame["duration_s"] = frame["duration_s"].astype("float64")
    return _columns(frame, ["spell_id", "state", "reason", "call_id", "queue", "start", "end",
                            "duration_s"])


def shrinkage_by_reason(wh: Warehouse, *, start: TimeLike, end: TimeLike,
                        agents: Sequence[str] | None = None,
                        time_zone: str = "UTC") -> pd.DataFrame:
    """Shrinkage from states: per not-ready reason (``''`` when none), ``not_ready_s`` and
    ``share`` = not_ready_s / logged-in seconds of the selected agents, largest first."""
    params = _window(start, end, time_zone)
    where = _agent_filter(agents, params)
    total = _state_time(wh, keys=[], where=where, params=params)
    logged_in = float(total["logged_in_s"].sum())
    by_reason = _state_time(wh, keys=[("reason_code", "ifNull(reason, '')")],
                            where=[*where, "state = 'not_ready'"], params=params)
    out = pd.DataFrame({"reason": by_reason["reason_code"].astype(str),
                        "not_ready_s": by_reason["not_ready_s"]})
    out["share"] = _ratio(out["not_ready_s"], pd.Series(logged_in, index=out.index))
    out = out.sort_values(["not_ready_s", "reason"], ascending=[False, True], kind="stable")
    return _columns(out, ["reason", "not_ready_s", "share"])


# --- RP-01 -------------------------------------------------------------------------------

def _cdr(frame: pd.DataFrame, time_zone: str) -> pd.DataFrame:
    frame = frame.copy()
    for name in ("offered", "answered", "ended"):
        frame[f"{name}_at"] = _stamps(frame[f"{name}_epoch"], frame[f"{name}_ms"], time_zone)
    frame["agents"] = [list(map(str, v)) if v is not None else [] for v in frame["agents"]]
    frame["transfers"] = pd.to_numeric(frame["transfers"]).fillna(0).astype("int64")
    return frame


_CDR_SELECT = """call_id, direction, caller, dialed, customer_id, queue, agent_id, agents,
       region, city, carrier, toUInt32(offered_at) AS offered_epoch, offered_ms,
       toUInt32(answered_at) AS answered_epoch, answered_ms, toUInt32(ended_at) AS ended_epoch,
       ended_ms, ivr_s, wait_s, ring_s, talk_s, hold_s, acw_s, outcome, abandon_stage,
       disposition, transfers"""
_CDR_RAW = ("call_id", "direction", "caller", "dialed", "customer_id", "queue", "agent_id",
            "agents", "region", "city", "carrier", "offered_epoch", "offered_ms",
            "answered_epoch", "answered_ms", "ended_epoch", "ended_ms", "ivr_s", "wait_s",
            "ring_s", "talk_s", "hold_s", "acw_s", "outcome", "abandon_stage", "disposition",
            "transfers")


def call_detail(wh: Warehouse, *, start: TimeLike, end: TimeLike, search: str | None = None,
                queue: str | None = None, agent_id: str | None = None, limit: int = 1000,
                time_zone: str = "UTC") -> pd.DataFrame:
    """RP-01: call detail records (:data:`CDR_COLUMNS`) offered in the range, oldest first.

    ``search`` keeps calls where it is a case-insensitive substring (UTF-8) of caller,
    dialed, call_id, customer_id or agent_id; ``%``, ``_``, quotes and backslashes are plain
    characters. ``agent_id`` matches any agent who talked to the caller.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ReportError(f"limit={limit!r} must be a positive integer")
    params: dict[str, Any] = {**_window(start, end, time_zone), "limit": limit}
    where = [_CALL_RANGE]
    if search is not None and not isinstance(search, str):
        raise ReportError(f"search={search!r} must be a string or None")
    if search:
        params["search"] = search
        where.append("(" + " OR ".join(f"positionCaseInsensitiveUTF8({c}, %(search)s) > 0"
                                       for c in _SEARCH_COLUMNS) + ")")
    if queue is not None:
        params["queue"] = str(queue)
        where.append("queue = %(queue)s")
    if agent_id is not None:
        params["agent_id"] = str(agent_id)
        where.append("(agent_id = %(agent_id)s OR has(agents, %(agent_id)s))")
    sql = (f"SELECT {_CDR_SELECT}\nFROM calls FINAL\nWHERE {' AND '.join(where)}\n"
           "ORDER BY offered_at, offered_ms, call_id LIMIT %(limit)s")
    frame = _cdr(_columns(wh.query(sql, params), _CDR_RAW), time_zone)
    return _columns(frame, CDR_COLUMNS)


# --- RP-05 -------------------------------------------------------------------------------

_LOST = f"""
SELECT call_id, caller, customer_id, queue, offered_epoch, offered_ms, wait_s, outcome,
       abandon_stage, lost_ms, length(later) > 0 AS called_back,
       arrayReduce('min', later) AS back_ms
FROM (
    SELECT call_id, caller, customer_id, queue, offered_epoch, offered_ms, wait_s, outcome,
           abandon_stage, lost_ms, arrayFilter(t -> t > lost_ms, answered_ms_list) AS later
           -- 18.16 loses a column that only a lambda reads: lost_ms is selected outside too
    FROM (SELECT call_id, caller, caller AS party, customer_id, queue,
                 toUInt32(offered_at) AS offered_epoch, offered_ms, wait_s, outcome,
                 abandon_stage, toInt64(toUInt32(offered_at)) * 1000 + offered_ms AS lost_ms
          FROM calls FINAL
          WHERE {_CALL_RANGE} AND queue != '' AND outcome IN ('abandoned', 'unanswered')
                {{queues}}) AS lost
    ALL LEFT JOIN (
        SELECT party, groupArray(t) AS answered_ms_list
        FROM (SELECT if(direction = 'outbound', dialed, caller) AS party,
                     toInt64(toUInt32(offered_at)) * 1000 + offered_ms AS t
              FROM calls FINAL
              WHERE outcome = 'answered' AND offered_at >= %(start)s)
        WHERE party != ''
        GROUP BY party) AS answered_by_party USING party)
ORDER BY offered_epoch, offered_ms, call_id"""


def lost_calls(wh: Warehouse, *, start: TimeLike, end: TimeLike,
               queues: Sequence[str] | None = None, time_zone: str = "UTC") -> pd.DataFrame:
    """RP-05: abandoned and unanswered offered calls, with the call-back check.

    ``called_back`` is true when a later answered call exists with the same number (the
    caller calling in again, or an outbound call dialing it), at any time after the lost
    call; ``called_back_at`` is the first such call's offered time. Anonymous callers
    (empty number) are never matched.
    """
    params = _window(start, end, time_zone)
    chosen = _names("queues", queues)
    extra = ""
    if chosen is not None:
        params["queues"] = chosen
        extra = "AND queue IN %(queues)s"
    frame = _columns(wh.query(_LOST.format(queues=extra), params),
                     ["call_id", "caller", "customer_id", "queue", "offered_epoch",
                      "offered_ms", "wait_s", "outcome", "abandon_stage", "called_back",
                      "back_ms"])
    frame["offered_at"] = _stamps(frame["offered_epoch"], frame["offered_ms"], time_zone)
    frame["called_back"] = pd.to_numeric(frame["called_back"]).fillna(0).astype(bool)
    back = pd.to_numeric(frame["back_ms"], errors="coerce").astype("float64")
    back = back.where(frame["called_back"])
    frame["called_back_at"] = _stamps(back // 1000, back % 1000, time_zone)
    return _columns(frame, ["call_id", "caller", "customer_id", "queue", "offered_at", "wait_s",
                            "outcome", "abandon_stage", "called_back", "called_back_at"])


def wait_distribution(wh: Warehouse, *, start: TimeLike, end: TimeLike,
                      bins: Sequence[float] = DEFAULT_WAIT_BINS,
                      queues: Sequence[str] | None = None, time_zone: str = "UTC",
                      sl_threshold_s: float = 20.0, short_abandon_s: float = 5.0
                      ) -> pd.DataFrame:
    """RP-05 waiting-time detail: offered calls per wait bin [low, high) (seconds).

    ``bins`` are increasing lower edges starting at 0; the last bin is [last, inf). Columns
    ``bin_low, bin_high`` + :data:`KPI_COLUMNS` + ``share`` (of offered) and
    ``cumulative_share``. Every bin is listed, empty ones with 0 calls.
    """
    edges = [float(b) for b in bins] if not isinstance(bins, str) else []
    if (not edges or edges[0] != 0 or not all(math.isfinite(b) for b in edges)
            or any(b >= c for b, c in itertools.pairwise(edges))):
        raise ReportError(f"bins={bins!r} must be increasing finite lower edges starting at 0")
    params = _kpi_params(_window(start, end, time_zone), sl_threshold_s=sl_threshold_s,
                         short_abandon_s=short_abandon_s, sl_variant="abandoned_in")
    params["edges"] = edges
    where = _queue_filter(queues, params)
    raw = _traffic(wh, keys=[("bin_no", "arraySum(arrayMap(b -> wait_s >= b, %(edges)s))")],
                   where=where, params=params, sl_variant=None)
    frame = _finish_kpis(_every_key(raw, "bin_no", range(1, len(edges) + 1)), "abandoned_in")
    frame["bin_low"] = edges
    frame["bin_high"] = [*edges[1:], math.inf]
    total = frame["offered"].sum()
    frame["share"] = _ratio(frame["offered"], pd.Series(total, index=frame.index))
    frame["cumulative_share"] = _ratio(frame["offered"].cumsum(),
                                       pd.Series(total, index=frame.index))
    return _columns(frame, ["bin_low", "bin_high", *KPI_COLUMNS, "share", "cumulative_share"])


# --- RP-06 -------------------------------------------------------------------------------

_SURVEY_KEYS: Final[Mapping[str, str]] = {"agent": "agent_id", "queue": "queue"}


def satisfaction(wh: Warehouse, *, start: TimeLike, end: TimeLike, by: str = "agent",
                 satisfied_ratio: float = 0.8, time_zone: str = "UTC") -> pd.DataFrame:
    """RP-06: surveys answered in the range per agent (``agent_id``) or per call queue.

    ``responses``, ``mean_score``, ``mean_ratio`` (mean of score / max_score over surveys with
    max_score > 0), ``satisfied_share`` (score >= satisfied_ratio x max_score). Surveys not
    about a call (tickets) have queue ``''``.
    """
    key = _choice("by", by, _SURVEY_KEYS)
    if not isinstance(satisfied_ratio, int | float) or not 0 <= satisfied_ratio <= 1:
        raise ReportError(f"satisfied_ratio={satisfied_ratio!r} must be within [0, 1]")
    params = {**_window(start, end, time_zone), "satisfied_ratio": float(satisfied_ratio)}
    source = "surveys FINAL"
    if key == "queue":
        source = ("surveys FINAL ANY LEFT JOIN (SELECT call_id, queue FROM calls FINAL "
                  "WHERE call_id != '') AS call_queue USING call_id")
    sql = f"""
SELECT {key}, count() AS responses, sum(score) AS score_sum,
       countIf(max_score > 0) AS scored, sumIf(score / max_score, max_score > 0) AS ratio_sum,
       countIf(max_score > 0 AND score >= %(satisfied_ratio)s * max_score) AS satisfied
FROM {source}
WHERE answered_at >= %(start)s AND answered_at < %(end)s
GROUP BY {key} ORDER BY {key}"""
    frame = _columns(wh.query(sql, params), [key, "responses", "score_sum", "scored",
                                             "ratio_sum", "satisfied"])
    for column in ("responses", "scored", "satisfied"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    frame["mean_score"] = _ratio(frame["score_sum"], frame["responses"])
    frame["mean_ratio"] = _ratio(frame["ratio_sum"], frame["scored"])
    frame["satisfied_share"] = _ratio(frame["satisfied"], frame["scored"])
    return _columns(frame, [key, "responses", "mean_score", "mean_ratio", "satisfied_share"])


def qa_report(wh: Warehouse, *, start: TimeLike, end: TimeLike,
              agents: Sequence[str] | None = None, time_zone: str = "UTC") -> pd.DataFrame:
    """RP-06 QA: per agent and form, evaluations scored in the range: ``evaluations``,
    ``mean_score``, ``mean_ratio`` / ``min_ratio`` / ``max_ratio`` of score / max_score
    (over evaluations with max_score > 0)."""
    params = _window(start, end, time_zone)
    where = "".join(f" AND {w}" for w in _agent_filter(agents, params))
    sql = f"""
SELECT agent_id, form, count() AS evaluations, sum(score) AS score_sum,
       countIf(max_score > 0) AS scored, sumIf(score / max_score, max_score > 0) AS ratio_sum,
       minIf(score / max_score, max_score > 0) AS lo, maxIf(score / max_score, max_score > 0) AS hi
FROM qa_scores FINAL
WHERE scored_at >= %(start)s AND scored_at < %(end)s{where}
GROUP BY agent_id, form ORDER BY agent_id, form"""
    frame = _columns(wh.query(sql, params), ["agent_id", "form", "evaluations", "score_sum",
                                             "scored", "ratio_sum", "lo", "hi"])
    for column in ("evaluations", "scored"):
        frame[column] = pd.to_numeric(frame[column]).fillna(0).astype("int64")
    has = frame["scored"] > 0
    frame["mean_score"] = _ratio(frame["score_sum"], frame["evaluations"])
    frame["mean_ratio"] = _ratio(frame["ratio_sum"], frame["scored"])
    frame["min_ratio"] = pd.to_numeric(frame["lo"]).astype("float64").where(has)
    frame["max_ratio"] = pd.to_numeric(frame["hi"]).astype("float64").where(has)
    return _columns(frame, ["agent_id", "form", "evaluations", "mean_score", "mean_ratio",
                            "min_ratio", "max_ratio"])


# --- RP-07 -------------------------------------------------------------------------------

def _direction_filter(direction: str | None, params: dict[str, Any]) -> list[str]:
    if direction is None:
        return []
    if direction not in {"inbound", "outbound", "internal"}:
        raise ReportError(f"direction={direction!r} must be 'inbound', 'outbound', "
                          "'internal' or None (all)")
    params["direction"] = direction
    return ["direction = %(direction)s"]


def _with_share(frame: pd.DataFrame) -> pd.DataFrame:
    total = frame["all_calls"].sum()
    frame = frame.rename(columns={"all_calls": "calls"})
    frame["share"] = _ratio(frame["calls"], pd.Series(total, index=frame.index))
    return frame


def origin_analysis(wh: Warehouse, *, start: TimeLike, end: TimeLike, level: str = "region",
                    direction: str | None = "inbound", time_zone: str = "UTC",
                    sl_threshold_s: float = 20.0, sl_variant: str = "abandoned_in",
                    short_abandon_s: float = 5.0) -> pd.DataFrame:
    """RP-07: calls per caller origin (``region``; ``region, city``; or ``carrier``):
    ``calls`` (every call of ``direction``), ``share`` of those calls, and
    :data:`KPI_COLUMNS`."""
    key_columns = _choice("level", level, _ORIGIN_LEVELS)
    params = _kpi_params(_window(start, end, time_zone), sl_threshold_s=sl_threshold_s,
                         short_abandon_s=short_abandon_s, sl_variant=sl_variant)
    frame = _traffic(wh, keys=[(c, c) for c in key_columns],
                     where=_direction_filter(direction, params), params=params,
                     sl_variant=sl_variant)
    frame = _with_share(frame)
    return _columns(frame, [*key_columns, "calls", "share", *KPI_COLUMNS])


def calling_time(wh: Warehouse, *, start: TimeLike, end: TimeLike, by: str = "hour",
                 direction: str | None = "inbound", time_zone: str = "UTC",
                 sl_threshold_s: float = 20.0, sl_variant: str = "abandoned_in",
                 short_abandon_s: float = 5.0) -> pd.DataFrame:
    """RP-07: calls per local hour (0-23), ISO weekday (1 = Monday .. 7) or month (1-12) in
    ``time_zone``: ``calls``, ``share`` and :data:`KPI_COLUMNS`; every bucket is listed."""
    expr, buckets = _choice("by", by, _CALLING_TIME)
    params = _kpi_params(_window(start, end, time_zone), sl_threshold_s=sl_threshold_s,
                         short_abandon_s=short_abandon_s, sl_variant=sl_variant)
    raw = _traffic(wh, keys=[("bucket", expr)], where=_direction_filter(direction, params),
                   params=params, sl_variant=None)
    frame = _finish_kpis(_every_key(raw, "bucket", buckets), sl_variant)
    frame = _with_share(frame).rename(columns={"bucket": by})
    return _columns(frame, [by, "calls", "share", *KPI_COLUMNS])
