"""Simulation check of a published schedule against its forecast (WF-04, WF-06, WF-09).

Erlang formulas judge each interval alone and in steady state, with exponential handle
times and patience. ``check_schedule`` runs the call-control simulator instead: the
forecast as arrivals, the rostered agents logging in, taking breaks and leaving as the
schedule says, handle times and patience from fitted distributions, and calls left
waiting at the end of one interval carried into the next. Per interval it reports the
simulated offered, answered and abandoned calls, service level, ASA and abandon rate
(means over independent replications with Student t intervals), the staffed agents, and
beside them the Erlang C and Erlang A predictions (``scheduling.erlang.queue_metrics``).

``python -m queuecast.schedule_check --bank FILE`` runs the demonstration on the Anonymous
Bank month (``docs/simulation-check.md``).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rich import box
from rich.table import Table
from scipy import stats

from callcore.scenario import Distribution, Exponential, load_scenario
from callcore.simulator import Simulation
from ingest.contract import (
    Event,
    ForecastInterval,
    ForecastPublished,
    Payload,
    ScheduledActivity,
    ScheduledShift,
    SchedulePublished,
    encode_event,
    make_event,
)
from queuecast.jsonable import json_value
from scheduling.erlang import QueueMetrics, queue_metrics, required_agents
from scheduling.fitting import HandleTimeFit, PatienceFit, fit_handle_time, fit_patience

__all__ = [
    "BankDemonstration",
    "ScheduleCheck",
    "ScheduleCheckError",
    "bank_demonstration",
    "bank_variants",
    "check_schedule",
    "staffing_schedule",
]

_NUMBER = "4000"
_EPS = 1e-9


class ScheduleCheckError(ValueError):
    """An input of ``check_schedule`` is unusable; the message names it and the fix."""


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shift:
    agent_id: str
    start: pd.Timestamp  # naive local
    end: pd.Timestamp
    activities: tuple[tuple[pd.Timestamp, pd.Timestamp, str], ...]


def _local(moment: Any, zone: str) -> pd.Timestamp:
    """A naive local ``pd.Timestamp`` of an aware instant or a naive local time."""
    ts = pd.Timestamp(moment)
    return ts.tz_convert(zone).tz_localize(None) if ts.tzinfo is not None else ts


def _utc(moment: pd.Timestamp, zone: str) -> datetime:
    """The aware UTC instant of a naive local time in ``zone``."""
    try:
        aware = moment.tz_localize(zone, ambiguous="raise", nonexistent="raise")
    except ValueError as exc:
        raise ScheduleCheckError(f"{moment} does not exist or is ambiguous in timezone "
                                 f"{zone}: {exc}; shift it off the DST change") from None
    return aware.tz_convert(UTC).to_pydatetime()


def _forecast_frame(forecast: pd.DataFrame | ForecastPublished, *, zone: str,
                    interval_minutes: int | None) -> tuple[pd.DataFrame, int, str | None]:
    """(frame indexed by naive local start with ``calls`` and ``aht_s``, minutes, queue)."""
    if isinstance(forecast, ForecastPublished):
        rows = sorted(forecast.intervals, key=lambda i: i.start)
        frame = pd.DataFrame(
            {"calls": [i.calls for i in rows],
             "aht_s": [np.nan if i.aht_s is None else i.aht_s for i in rows]},
            index=pd.DatetimeIndex([_local(i.start, zone) for i in rows], name="start"))
        return frame, forecast.interval_minutes, forecast.queue
    if not isinstance(forecast, pd.DataFrame):
        raise ScheduleCheckError("forecast must be a DataFrame (interval start -> calls, aht) "
                                 f"or a ForecastPublished; got {type(forecast).__name__}")
    frame = forecast.copy()
    if "start" in frame.columns:
        frame = frame.set_index("start")
    calls = next((c for c in ("calls", "offered") if c in frame.columns), None)
    if calls is None:
        raise ScheduleCheckError("forecast needs a 'calls' (or 'offered') column of expected "
                                 "calls per interval")
    aht = next((c for c in ("aht_s", "aht") if c in frame.columns), None)
    if pd.api.types.is_numeric_dtype(frame.index) or len(frame) == 0:
        raise ScheduleCheckError("forecast must have rows indexed by interval start "
                                 "timestamps (or a 'start' column)")
    index = pd.DatetimeIndex(frame.index, name="start")
    if index.tz is not None:
        index = index.tz_convert(zone).tz_localize(None)
    out = pd.DataFrame({"calls": frame[calls].to_numpy(dtype=float),
                        "aht_s": (frame[aht].to_numpy(dtype=float) if aht
                                  else np.full(len(frame), np.nan))}, index=index)
    out = out.sort_index()
    if out.index.has_duplicates:
        raise ScheduleCheckError("forecast has the same interval start twice; sum or drop "
                                 "the duplicates")
    if interval_minutes is None:
        if len(out) < 2:
            raise ScheduleCheckError("forecast has one interval; pass interval_minutes")
        step = out.index.to_series().diff().min()
        interval_minutes = int(step / pd.Timedelta(minutes=1))
    if not 0 < interval_minutes <= 1440 or 1440 % interval_minutes:
        raise ScheduleCheckError(f"interval_minutes must divide a day, e.g. 15 or 30; got "
                                 f"{interval_minutes}")
    offsets = (out.index - out.index[0]) / pd.Timedelta(minutes=interval_minutes)
    if np.any(offsets != np.round(offsets)):
        raise ScheduleCheckError(f"forecast interval starts are not on a {interval_minutes}-"
                                 "minute grid; resample it first")
    if np.any(out["calls"] < 0) or not np.all(np.isfinite(out["calls"])):
        raise ScheduleCheckError("forecast calls must be finite and >= 0")
    return out, interval_minutes, None


def _shifts(schedule: SchedulePublished | pd.DataFrame, *, zone: str) -> list[_Shift]:
    if isinstance(schedule, SchedulePublished):
        return [_Shift(s.agent_id, _local(s.start, zone), _local(s.end, zone),
                       tuple((_local(a.start, zone), _local(a.end, zone), a.kind)
                             for a in s.activities)) for s in schedule.shifts]
    if not isinstance(schedule, pd.DataFrame):
        raise ScheduleCheckError("schedule must be a SchedulePublished payload or a DataFrame "
                                 f"of shifts; got {type(schedule).__name__}")
    missing = [c for c in ("start", "end") if c not in schedule.columns]
    if missing or not ({"agent_id", "count"} & set(schedule.columns)):
        raise ScheduleCheckError("schedule rows need start, end and agent_id (a roster) or "
                                 "count (a shift frame, scheduling.model.SHIFT_COLUMNS)")
    found: list[_Shift] = []
    serial = 0
    for i, row in enumerate(schedule.to_dict("records")):
        start, end = _local(row["start"], zone), _local(row["end"], zone)
        if not start < end:
            raise ScheduleCheckError(f"schedule row {i} ends at {end}, not after its start "
                                     f"{start}; give end > start")
        activities = tuple(
            (_local(a.start, zone), _local(a.end, zone), str(getattr(a, "kind", "break")))
            for a in (row.get("activities") or ()))
        if "agent_id" in row and isinstance(row["agent_id"], str):
            found.append(_Shift(row["agent_id"], start, end, activities))
            continue
        for _ in range(int(row["count"])):
            serial += 1
            found.append(_Shift(f"agent-{serial:04d}", start, end, activities))
    return found


def _staffed(shifts: Sequence[_Shift], starts: pd.DatetimeIndex, minutes: int
             ) -> NDArray[np.float64]:
    """Time-weighted mean agents on the phones per interval (in a shift, not in an activity)."""
    step = np.timedelta64(minutes, "m")
    a = starts.to_numpy(dtype="datetime64[s]")
    b = a + step
    total = np.zeros(len(a))

    def overlap(s: pd.Timestamp, e: pd.Timestamp) -> NDArray[np.float64]:
        lo = np.maximum(a, np.datetime64(s.to_datetime64(), "s"))
        hi = np.minimum(b, np.datetime64(e.to_datetime64(), "s"))
        return np.clip((hi - lo) / step, 0.0, None)

    for shift in shifts:
        total += overlap(shift.start, shift.end)
        for s, e, _ in shift.activities:
            total -= overlap(max(s, shift.start), min(e, shift.end))
    return np.maximum(np.round(total, 9), 0.0)


def _distribution(value: Distribution | HandleTimeFit | PatienceFit, name: str) -> Distribution:
    dist = getattr(value, "distribution", value)
    if not hasattr(dist, "sample") or not hasattr(dist, "mean_s"):
        raise ScheduleCheckError(f"{name} must be a callcore.scenario distribution or a fit "
                                 f"from scheduling.fitting; got {type(value).__name__}")
    return dist


# -- results --------------------------------------------------------------------------------


_COUNTS = ("offered", "answered", "abandoned", "within", "wait_s")


@dataclass(frozen=True, slots=True)
class ScheduleCheck:
    """Simulated and Erlang figures per interval of a schedule check.

    ``intervals`` (index: naive local interval start) holds ``forecast_calls``, ``aht_s``,
    ``staffed``; the simulated means ``offered``, ``answered``, ``abandoned``,
    ``service_level``, ``asa_s``, ``abandon_rate``, each rate with ``_low`` / ``_high``
    bounds (Student t over replications at ``confidence``); and ``erlang_c_service_level``,
    ``erlang_c_asa_s``, ``erlang_a_service_level``, ``erlang_a_asa_s``,
    ``erlang_a_abandon_rate``. Service level is answered within ``service_level_s`` over
    offered calls, as in ``docs/metrics.md``. ``counts`` holds the raw per-replication
    counts (replication, start, offered, answered, abandoned, within, wait_s).
    """

    intervals: pd.DataFrame
    counts: pd.DataFrame
    interval_minutes: int
    service_level_s: float
    replications: int
    seeds: tuple[int, ...]
    confidence: float
    handle_time: Distribution
    patience: Distribution | None
    patience_mean: float | None
    wall_s: float
    notes: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, float]:
        """The figures pooled over the whole horizon (``pooled()``)."""
        return self.pooled()

    def pooled(self, start: Any = None, end: Any = None) -> dict[str, float]:
        """Figures pooled over the intervals starting in [``start``, ``end``): simulated
        ratios per replication, their mean and t interval, and the Erlang figures
        weighted by forecast calls (ASA by calls expected to be answered)."""
        index = self.intervals.index
        keep = np.ones(len(index), dtype=bool)
        if start is not None:
            keep &= index >= pd.Timestamp(start)
        if end is not None:
            keep &= index < pd.Timestamp(end)
        chosen = set(index[keep])
        counts = self.counts[self.counts["start"].isin(chosen)]
        per_rep = counts.groupby("replication")[list(_COUNTS)].sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            sl = (per_rep["within"] / per_rep["offered"]).to_numpy()
            asa = (per_rep["wait_s"] / per_rep["answered"]).to_numpy()
            ab = (per_rep["abandoned"] / per_rep["offered"]).to_numpy()
        rows = self.intervals[keep]
        calls = rows["forecast_calls"].to_numpy()
        out: dict[str, float] = {
            "forecast_calls": float(calls.sum()),
            "offered": float(per_rep["offered"].mean()),
            "answered": float(per_rep["answered"].mean()),
            "abandoned": float(per_rep["abandoned"].mean()),
        }
        for name, values in (("service_level", sl), ("asa_s", asa), ("abandon_rate", ab)):
            mean, low, high = _t_interval(values, self.confidence)
            out[name], out[f"{name}_low"], out[f"{name}_high"] = mean, low, high
        weight = calls.sum()
        out["erlang_c_service_level"] = _weighted(rows["erlang_c_service_level"], calls)
        out["erlang_c_asa_s"] = _weighted(rows["erlang_c_asa_s"], calls)
        out["erlang_a_service_level"] = _weighted(rows["erlang_a_service_level"], calls)
        out["erlang_a_abandon_rate"] = _weighted(rows["erlang_a_abandon_rate"], calls)
        answered = calls * (1 - rows["erlang_a_abandon_rate"].to_numpy())
        out["erlang_a_asa_s"] = _weighted(rows["erlang_a_asa_s"], answered)
        out["staffed_hours"] = float(rows["staffed"].sum() * self.interval_minutes / 60)
        if weight == 0:
            out = {k: (v if k in ("forecast_calls", "staffed_hours") else math.nan)
                   for k, v in out.items()}
        return out

    def summary(self, *, title: str | None = None) -> Table:
        """The intervals and the totals as a rich table."""
        table = Table(title=title or (
            f"Schedule check: {self.replications} replications, SL within "
            f"{self.service_level_s:g} s, {self.confidence:.0%} intervals"),
            box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in ("interval", "calls", "staffed", "SL sim [CI]", "SL A", "SL C",
                       "ASA sim", "ASA A", "aband sim", "aband A"):
            table.add_column(column, justify="left" if column == "interval" else "right",
                             no_wrap=True)
        for start, row in self.intervals.iterrows():
            table.add_row(pd.Timestamp(start).strftime("%Y-%m-%d %H:%M"), *_cells(row))
        table.add_section()
        table.add_row("total", *_cells(pd.Series(self.totals), staffed_hours=True))
        return table

    def markdown(self) -> str:
        """The intervals and the totals as a Markdown table."""
        head = ("| interval | calls | staffed | SL sim [CI] | SL Erlang A | SL Erlang C | "
                "ASA sim s | ASA Erlang A s | abandon sim | abandon Erlang A |")
        lines = [head, "|" + "---|" * 10]
        for start, row in self.intervals.iterrows():
            lines.append("| " + " | ".join((pd.Timestamp(start).strftime("%H:%M"),
                                            *_cells(row))) + " |")
        lines.append("| **total** | " + " | ".join(
            _cells(pd.Series(self.totals), staffed_hours=True)) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, ``totals`` and one record per interval."""
        records = []
        for start, row in self.intervals.iterrows():
            record = {"start": pd.Timestamp(start).isoformat()}
            record.update({k: json_value(v) for k, v in row.items()})
            records.append(record)
        return {
            "interval_minutes": self.interval_minutes,
            "service_level_s": self.service_level_s,
            "replications": self.replications, "seeds": list(self.seeds),
            "confidence": self.confidence,
            "handle_time": msgspec.to_builtins(self.handle_time),
            "patience": (None if self.patience is None
                         else msgspec.to_builtins(self.patience)),
            "patience_mean_s": self.patience_mean,
            "totals": {k: json_value(v) for k, v in self.totals.items()},
            "intervals": records, "notes": list(self.notes), "wall_s": round(self.wall_s, 3),
        }


def _t_interval(values: NDArray[np.float64], confidence: float) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan, math.nan
    half = (float(stats.t.ppf(0.5 + confidence / 2, values.size - 1))
            * float(values.std(ddof=1)) / math.sqrt(values.size))
    return mean, mean - half, mean + half


def _weighted(values: pd.Series, weights: NDArray[np.float64]) -> float:
    v = values.to_numpy(dtype=float)
    use = weights > 0
    if not use.any():
        return math.nan
    with np.errstate(invalid="ignore"):
        return float(np.sum(v[use] * weights[use]) / np.sum(weights[use]))


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None or not np.isfinite(value) else pattern.format(value)


def _cells(row: pd.Series, *, staffed_hours: bool = False) -> list[str]:
    sl = _fmt(row["service_level"], "{:.1%}")
    if np.isfinite(row.get("service_level_low", math.nan)):
        sl += f" [{row['service_level_low']:.1%}, {row['service_level_high']:.1%}]"
    staffed = (_fmt(row["staffed_hours"], "{:.1f} h") if staffed_hours
               else _fmt(row["staffed"], "{:.2f}"))
    return [_fmt(row["forecast_calls"], "{:.1f}"), staffed, sl,
            _fmt(row["erlang_a_service_level"], "{:.1%}"),
            _fmt(row["erlang_c_service_level"], "{:.1%}"),
            _fmt(row["asa_s"], "{:.1f}"), _fmt(row["erlang_a_asa_s"], "{:.1f}"),
            _fmt(row["abandon_rate"], "{:.1%}"), _fmt(row["erlang_a_abandon_rate"], "{:.1%}")]


# -- Erlang beside the simulation ------------------------------------------------------------


def _erlang(calls: NDArray[np.float64], aht: NDArray[np.float64],
            staffed: NDArray[np.float64], *, minutes: int, within: float,
            patience: float | None) -> dict[str, NDArray[np.float64]]:
    """Erlang figures at fractional staffing: the mix of floor and ceil weighted by the
    fraction of the interval (a mean of 13.5 agents: half the time 13, half 14)."""
    lo = np.floor(staffed + _EPS)
    frac = np.where(staffed - lo > _EPS, staffed - lo, 0.0)
    hi = lo + (frac > 0)

    def metrics(agents: NDArray[np.float64], pat: float | None) -> QueueMetrics:
        return queue_metrics(calls=calls, aht=aht, agents=agents, interval_minutes=minutes,
                             answer_within=within, patience=pat)

    def mix(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(invalid="ignore"):
            return np.where(frac > 0, (1 - frac) * a + frac * b, a)

    c_lo, c_hi = metrics(lo, None), metrics(hi, None)
    out = {"erlang_c_service_level": mix(c_lo.service_level, c_hi.service_level),
           "erlang_c_asa_s": mix(c_lo.asa, c_hi.asa)}
    if patience is None:
        nan = np.full(calls.shape, np.nan)
        out |= {"erlang_a_service_level": nan, "erlang_a_asa_s": nan,
                "erlang_a_abandon_rate": nan}
        return out
    a_lo, a_hi = metrics(lo, patience), metrics(hi, patience)
    out |= {"erlang_a_service_level": mix(a_lo.service_level, a_hi.service_level),
            "erlang_a_asa_s": mix(a_lo.asa, a_hi.asa),
            "erlang_a_abandon_rate": mix(a_lo.p_abandon, a_hi.p_abandon)}
    return out


# -- the check -----------------------------------------------------------------------------


def _write_events(path: Path, payloads: Sequence[Payload], at: datetime) -> str:
    events: list[Event[Payload]] = [make_event(p, occurred_at=at, source="wfm")
                                    for p in payloads]
    path.write_bytes(b"\n".join(encode_event(e) for e in events))
    return str(path)


def check_schedule(
    *,
    forecast: pd.DataFrame | ForecastPublished,
    schedule: SchedulePublished | pd.DataFrame,
    handle_time: Distribution | HandleTimeFit,
    patience: Distribution | PatienceFit | None = None,
    patience_mean: float | None = None,
    service_level_s: float = 20.0,
    replications: int = 10,
    seed: int = 0,
    interval_minutes: int | None = None,
    timezone: str = "UTC",
    confidence: float = 0.95,
    queue: str | None = None,
    drain_minutes: float = 120.0,
) -> ScheduleCheck:
    """Simulate ``schedule`` against ``forecast`` and set Erlang C and A beside the figures.

    ``forecast`` is a ``ForecastPublished`` or a DataFrame indexed by naive local interval
    start (or with a ``start`` column) with ``calls`` and optionally ``aht_s``;
    ``schedule`` a ``SchedulePublished`` or shift rows (a roster with ``agent_id``,
    ``start``, ``end``, ``activities``, or a shift frame with ``count``). ``handle_time``
    and ``patience`` are scenario distributions or fits from ``scheduling.fitting``;
    without ``patience`` callers never hang up. Erlang A uses ``patience_mean`` (default:
    the fit's exponential MLE, or the distribution's mean). Erlang uses the forecast's
    AHT where given, else the handle-time mean; the simulation always draws from
    ``handle_time``. Each replication runs the simulator with seed ``seed + i``.
    """
    if replications < 1:
        raise ScheduleCheckError(f"replications must be at least 1, got {replications}")
    if not 0 < confidence < 1:
        raise ScheduleCheckError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if not service_level_s > 0:
        raise ScheduleCheckError(f"service_level_s must be > 0 seconds, e.g. 20; got "
                                 f"{service_level_s!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleCheckError(f"timezone {timezone!r} is unknown; use an IANA name such as "
                                 "'Asia/Shanghai' or 'UTC'") from None
    frame, minutes, forecast_queue = _forecast_frame(forecast, zone=timezone,
                                                     interval_minutes=interval_minutes)
    queue = queue or forecast_queue or (
        schedule.queue if isinstance(schedule, SchedulePublished) else "queue")
    shifts = _shifts(schedule, zone=timezone)
    if not shifts:
        raise ScheduleCheckError("schedule has no shifts; publish or pass at least one")
    handle = _distribution(handle_time, "handle_time")
    pat = None if patience is None else _distribution(patience, "patience")
    if patience_mean is None and patience is not None:
        patience_mean = (patience.erlang_a_mean if isinstance(patience, PatienceFit)
                         else pat.mean_s if pat is not None else None)
    notes: list[str] = []
    aht = frame["aht_s"].to_numpy(dtype=float)
    missing = ~np.isfinite(aht)
    aht = np.where(missing, handle.mean_s, aht)
    off = np.abs(aht / handle.mean_s - 1) > 0.05
    if off.any():
        notes.append(f"the forecast AHT differs from the handle-time mean {handle.mean_s:.0f} s "
                     f"by more than 5 % in {int(off.sum())} intervals; Erlang uses the "
                     "forecast's, the simulation draws from the distribution")
    staffed = _staffed(shifts, frame.index, minutes)
    starts_utc = [_utc(t, timezone) for t in frame.index]
    step_ms = minutes * 60_000
    starts_ms = np.array([int(t.timestamp() * 1000) for t in starts_utc], dtype=np.int64)

    published = ForecastPublished(
        queue=queue, forecast_id="schedule-check", version=1, interval_minutes=minutes,
        start=starts_utc[0], end=_utc(frame.index[-1] + pd.Timedelta(minutes=minutes),
                                      timezone),
        model="input", published_by="schedule-check",
        intervals=[ForecastInterval(start=s, calls=float(c))
                   for s, c in zip(starts_utc, frame["calls"], strict=True)])
    roster = SchedulePublished(
        queue=queue, schedule_id="schedule-check", version=1,
        start=_utc(min(s.start for s in shifts), timezone),
        end=_utc(max(s.end for s in shifts), timezone), published_by="schedule-check",
        shifts=[ScheduledShift(agent_id=s.agent_id, start=_utc(s.start, timezone),
                               end=_utc(s.end, timezone),
                               activities=[ScheduledActivity(kind=k, start=_utc(a, timezone),
                                                             end=_utc(b, timezone))
                                           for a, b, k in s.activities])
                for s in shifts])
    first_day: date = frame.index[0].date()
    horizon_end = frame.index[-1] + pd.Timedelta(minutes=minutes)
    days = max(1, math.ceil((horizon_end - pd.Timestamp(first_day)) / pd.Timedelta(days=1)))
    agents = sorted({s.agent_id for s in shifts})
    queue_model: dict[str, Any] = {"handle_time": msgspec.to_builtins(handle)}
    if pat is not None:
        queue_model["patience"] = msgspec.to_builtins(pat)

    seeds = tuple(seed + i for i in range(replications))
    rows: list[NDArray[np.float64]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="schedule-check-") as folder:
        base = Path(folder)
        raw = {
            "name": "schedule-check", "start": first_day.isoformat(), "days": days,
            "timezone": timezone, "drain_minutes": drain_minutes,
            "center": {
                "queues": [{"name": queue, "after_call_work_s": 0,
                            "service_level_s": service_level_s}],
                "numbers": [{"number": _NUMBER, "entry": {"kind": "queue", "target": queue}}],
                "agents": [{"id": a, "skills": {queue: 1}} for a in agents]},
            "queue_defaults": queue_model,
            "arrivals": [{"number": _NUMBER, "forecast": _write_events(
                base / "forecast.jsonl", [published], starts_utc[0])}],
            "schedule_file": _write_events(base / "schedule.jsonl", [roster], starts_utc[0]),
            "unscheduled_agents": "absent",
        }
        scenario = load_scenario(raw, base=base)
        for replication, run_seed in enumerate(seeds):
            counts = _run(Simulation(scenario, seed=run_seed), starts_ms, step_ms,
                          service_level_s)
            rows.append(np.column_stack([np.full(len(starts_ms), replication), counts]))
    wall = time.perf_counter() - began

    counts = pd.DataFrame(np.vstack(rows), columns=["replication", *_COUNTS])
    counts["replication"] = counts["replication"].astype(np.int64)
    counts.insert(1, "start", np.tile(frame.index.to_numpy(), replications))
    intervals = _interval_frame(frame, aht, staffed, counts, replications, confidence)
    erlang = _erlang(frame["calls"].to_numpy(dtype=float), aht, staffed, minutes=minutes,
                     within=service_level_s, patience=patience_mean)
    for name, values in erlang.items():
        intervals[name] = values
    return ScheduleCheck(intervals, counts, minutes, service_level_s, replications, seeds,
                         confidence, handle, pat, patience_mean, wall, tuple(notes))


def _run(simulation: Simulation, starts_ms: NDArray[np.int64], step_ms: int,
         within_s: float) -> NDArray[np.float64]:
    """One replication: per interval (by queue arrival) offered, answered, abandoned,
    answered within ``within_s``, and the summed wait of answered calls."""
    queued: dict[str, int] = {}
    waits: dict[str, float] = {}
    abandoned: set[str] = set()

    def collect(batch: list[Event[Payload]]) -> None:
        for event in batch:
            kind = event.type
            payload: Any = event.payload
            if kind == "call.queued":
                if payload.call_id not in queued:
                    queued[payload.call_id] = int(event.occurred_at.timestamp() * 1000)
            elif kind == "call.answered":
                waits[payload.call_id] = payload.wait_s
            elif kind == "call.ended" and payload.disposition == "abandoned":
                abandoned.add(payload.call_id)

    simulation.run(on_events=collect)
    n = len(starts_ms)
    ids = list(queued)
    at = np.fromiter((queued[c] for c in ids), dtype=np.int64, count=len(ids))
    slot = np.searchsorted(starts_ms, at, side="right") - 1
    valid = (slot >= 0) & (at < starts_ms[np.maximum(slot, 0)] + step_ms)
    wait = np.array([waits.get(c, np.nan) for c in ids], dtype=float)
    answered = np.isfinite(wait)
    gone = np.array([c in abandoned for c in ids], dtype=bool)

    def per_slot(weights: NDArray[np.float64] | None, mask: NDArray[np.bool_]
                 ) -> NDArray[np.float64]:
        use = valid & mask
        w = None if weights is None else weights[use]
        return np.bincount(slot[use], weights=w, minlength=n).astype(np.float64)[:n]

    every = np.ones(len(ids), dtype=bool)
    return np.column_stack([
        per_slot(None, every), per_slot(None, answered), per_slot(None, gone),
        per_slot(None, answered & (np.nan_to_num(wait, nan=np.inf) <= within_s)),
        per_slot(np.nan_to_num(wait), answered)])


def _interval_frame(frame: pd.DataFrame, aht: NDArray[np.float64],
                    staffed: NDArray[np.float64], counts: pd.DataFrame, replications: int,
                    confidence: float) -> pd.DataFrame:
    n = len(frame)
    cube = {c: counts[c].to_numpy(dtype=float).reshape(replications, n) for c in _COUNTS}
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = {"service_level": cube["within"] / cube["offered"],
                 "asa_s": cube["wait_s"] / cube["answered"],
                 "abandon_rate": cube["abandoned"] / cube["offered"]}
    out = pd.DataFrame({"forecast_calls": frame["calls"].to_numpy(dtype=float), "aht_s": aht,
                        "staffed": staffed}, index=frame.index)
    for name in ("offered", "answered", "abandoned"):
        out[name] = cube[name].mean(axis=0)
    for name, values in rates.items():
        bounds = np.array([_t_interval(values[:, i], confidence) for i in range(n)])
        if name != "asa_s":  # a share's interval stays within [0, 1]
            bounds[:, 1:] = np.clip(bounds[:, 1:], 0.0, 1.0)
        out[name], out[f"{name}_low"], out[f"{name}_high"] = bounds.T
    return out


# -- staffing by Erlang A and the Anonymous Bank demonstration ---------------------------------


def staffing_schedule(agents: Sequence[int] | NDArray[np.int64], starts: pd.DatetimeIndex, *,
                      interval_minutes: int) -> pd.DataFrame:
    """A roster with exactly ``agents[i]`` on the phones in interval ``i``: agent ``k``
    works every maximal run of intervals needing more than ``k`` agents (no breaks)."""
    need = np.asarray(agents, dtype=np.int64)
    step = pd.Timedelta(minutes=interval_minutes)
    rows: list[dict[str, Any]] = []
    for k in range(int(need.max(initial=0))):
        working = np.concatenate(([False], need > k, [False]))
        edges = np.flatnonzero(np.diff(working.astype(np.int8)))
        for first, stop in zip(edges[::2], edges[1::2], strict=True):
            rows.append({"agent_id": f"agent-{k + 1:03d}", "start": starts[first],
                         "end": starts[stop - 1] + step, "activities": ()})
    return pd.DataFrame(rows, columns=["agent_id", "start", "end", "activities"])


@dataclass(frozen=True, slots=True)
class BankDemonstration:
    """The Anonymous Bank demonstration: the day, the fits, the staffing and the check."""

    day: date
    calls: int
    handle_time: HandleTimeFit
    patience: PatienceFit
    forecast: pd.DataFrame
    agents: NDArray[np.int64]
    check: ScheduleCheck
    observed: dict[str, float]
    """What the bank's own staffing achieved that day: service_level, asa_s,
    abandon_rate (for context; its staffing is not in the data)."""


def bank_demonstration(
    path: Path | str,
    *,
    day: date | str = "2010-08-02",
    interval_minutes: int = 30,
    service_level: float = 0.8,
    answer_within: float = 20.0,
    replications: int = 20,
    seed: int = 1,
    types: Sequence[str] | None = None,
) -> BankDemonstration:
    """Fit one day of the Anonymous Bank month, staff it by Erlang A and check by simulation.

    Handle time and patience are fitted from the day's calls that reached the agents
    (``types`` limits the service types); the forecast is the day's observed queue
    arrivals per interval with the fitted mean handle time; each interval gets the
    Erlang A required agents for ``service_level`` within ``answer_within`` seconds, with
    the exponential MLE of patience.
    """
    from ingest.importers.anonymous_bank import read_anonymous_bank

    day = date.fromisoformat(day) if isinstance(day, str) else day
    calls = read_anonymous_bank(path).calls
    mine = calls[calls["offered"] & (calls["arrival"].dt.date == day)]
    if types is not None:
        mine = mine[mine["type"].isin(list(types))]
    if mine.empty:
        raise ScheduleCheckError(f"no calls reached the agents on {day}; pick a day of "
                                 "the file (2010-08-01 .. 2010-08-31)")
    handle = fit_handle_time(mine.loc[mine["served"], "service_s"], resolution=1.0)
    patience = fit_patience(mine["wait_s"], mine["abandoned"],
                            groups=mine["arrival"].dt.hour)
    step = f"{interval_minutes}min"
    counts = mine.set_index("arrival").resample(step).size()
    starts = pd.date_range(counts.index[0], counts.index[-1], freq=step, name="start")
    offered = counts.reindex(starts, fill_value=0).astype(float)
    forecast = pd.DataFrame({"calls": offered.to_numpy(),
                             "aht_s": handle.distribution.mean_s}, index=starts)
    staffing = required_agents(calls=forecast["calls"].to_numpy(),
                               aht=forecast["aht_s"].to_numpy(),
                               interval_minutes=interval_minutes, service_level=service_level,
                               answer_within=answer_within, patience=patience.erlang_a_mean)
    agents = np.asarray(staffing.agents, dtype=np.int64)
    roster = staffing_schedule(agents, starts, interval_minutes=interval_minutes)
    check = check_schedule(forecast=forecast, schedule=roster, handle_time=handle,
                           patience=patience, service_level_s=answer_within,
                           replications=replications, seed=seed,
                           interval_minutes=interval_minutes, queue="bank")
    served = mine["served"].to_numpy()
    wait = mine["wait_s"].to_numpy()
    observed = {"service_level": float(np.mean(served & (wait <= answer_within))),
                "asa_s": float(wait[served].mean()),
                "abandon_rate": float(mine["abandoned"].mean())}
    return BankDemonstration(day, len(mine), handle, patience, forecast, agents, check,
                             observed)


def bank_variants(demo: BankDemonstration, *, replications: int = 20, seed: int = 1
                  ) -> pd.DataFrame:
    """The demonstration's schedule re-checked with exponential and fitted handle time and
    patience (same means for Erlang), to attribute the gap between simulation and Erlang A."""
    check = demo.check
    roster = staffing_schedule(demo.agents, demo.forecast.index,
                               interval_minutes=check.interval_minutes)
    handle = {"exponential": Exponential(mean=check.handle_time.mean_s),
              "fitted": demo.handle_time}
    patience = {"exponential": Exponential(mean=demo.patience.exponential_mean),
                "fitted": demo.patience}
    rows = []
    for h_name, h in handle.items():
        for p_name, p in patience.items():
            totals = check_schedule(
                forecast=demo.forecast, schedule=roster, handle_time=h, patience=p,
                patience_mean=demo.patience.exponential_mean,
                service_level_s=check.service_level_s, replications=replications, seed=seed,
                interval_minutes=check.interval_minutes, queue="bank").totals
            rows.append({"handle_time": h_name, "patience": p_name, **totals})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m queuecast.schedule_check --bank FILE [--day D] [--markdown]``."""
    parser = argparse.ArgumentParser(prog="python -m queuecast.schedule_check",
                                     description=bank_demonstration.__doc__)
    parser.add_argument("--bank", required=True, type=Path,
                        help="anonymous_bank_one_month_calls.csv")
    parser.add_argument("--day", default="2010-08-02")
    parser.add_argument("--interval-minutes", type=int, default=30)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--variants", action="store_true",
                        help="also check with exponential handle time and/or patience")
    args = parser.parse_args(argv)
    demo = bank_demonstration(args.bank, day=args.day, interval_minutes=args.interval_minutes,
                              replications=args.replications, seed=args.seed)
    h, p = demo.handle_time, demo.patience
    lines = [
        f"Anonymous Bank, {demo.day} ({demo.day:%A}): {demo.calls} calls reached the agents",
        f"handle time: n {h.n} (excluded {h.excluded}), mean {h.mean:.1f} s, median "
        f"{h.median:.0f} s, cv {h.cv:.2f}; KS lognormal {h.ks['lognormal']:.3f}, exponential "
        f"{h.ks['exponential']:.3f}; chosen {h.chosen} ({h.reason})",
        f"patience: {p.calls} calls, {p.abandoned} abandoned; KM median {p.median:.0f} s, "
        f"KM restricted mean {p.restricted_mean:.0f} s (to {p.km.last_time:.0f} s, tail mass "
        f"{p.tail_mass:.3f}), KM mean with tail {p.km_mean:.0f} s; exponential MLE "
        f"{p.exponential_mean:.0f} s [{p.exponential_ci[0]:.0f}, {p.exponential_ci[1]:.0f}]; "
        f"P(ab)/E[W] regression over hours "
        f"{p.regression.mean_patience if p.regression else math.nan:.0f} s",
        f"staffing: Erlang A for 80 % within 20 s, {int(demo.agents.sum())} agent-intervals, "
        f"peak {int(demo.agents.max())} agents; simulation {demo.check.replications} "
        f"replications in {demo.check.wall_s:.1f} s",
        f"observed that day with the bank's own staffing: SL {demo.observed['service_level']:.1%}"
        f", ASA {demo.observed['asa_s']:.0f} s, abandon rate {demo.observed['abandon_rate']:.1%}",
        *demo.check.notes,
    ]
    variants = (bank_variants(demo, replications=args.replications, seed=args.seed)
                if args.variants else None)
    if variants is not None:
        lines.append("| handle time | patience | SL sim [CI] | SL Erlang A | ASA sim s | "
                     "ASA Erlang A s | abandon sim | abandon Erlang A |\n" + "|---" * 8 + "|")
        for row in variants.to_dict("records"):
            lines[-1] += (
                f"\n| {row['handle_time']} | {row['patience']} | {row['service_level']:.1%} "
                f"[{row['service_level_low']:.1%}, {row['service_level_high']:.1%}] | "
                f"{row['erlang_a_service_level']:.1%} | {row['asa_s']:.1f} | "
                f"{row['erlang_a_asa_s']:.1f} | {row['abandon_rate']:.1%} | "
                f"{row['erlang_a_abandon_rate']:.1%} |")
    if args.markdown:
        print("\n\n".join(lines))
        print()
        print(demo.check.markdown())
    else:
        from rich.console import Console

        console = Console()
        for line in lines:
            console.print(line)
        console.print(demo.check.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
