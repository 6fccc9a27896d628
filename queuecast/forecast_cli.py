"""``queuecast forecast``: backtest models and make forecasts from a CSV or the warehouse.

The maths is ``forecasting`` (pure); this module reads the history (a CSV with
``timestamp,calls[,queue,aht]`` or the warehouse's offered calls per interval), prints the
backtest, and writes forecasts as CSV and as ``wfm.forecast_published`` events.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from queuecast.cli import err, open_event_log, progress, settings
from queuecast.jsonable import json_value

if TYPE_CHECKING:
    from warehouse.client import Warehouse

__all__ = ["forecast_app", "warehouse_history"]

forecast_app = typer.Typer(help="Forecast offered calls and handle time (WF-01..WF-03).",
                           no_args_is_help=True)

CsvOption = Annotated[Path | None, typer.Option(
    "--csv", help="History CSV: timestamp,calls and optional queue,aht.", exists=True,
    dir_okay=False)]
WarehouseOption = Annotated[bool, typer.Option(
    "--warehouse", help="Read the history from the warehouse (offered calls per interval).")]
SinceOption = Annotated[datetime | None, typer.Option(
    formats=["%Y-%m-%d"], help="With --warehouse: first day of history (default: 26 weeks "
    "back).")]
TimezoneOption = Annotated[str, typer.Option(
    help="IANA zone of the center's local time (warehouse history, published events).")]
IntervalOption = Annotated[int | None, typer.Option(
    "--interval", help="Interval minutes: 5, 15, 30 or 60 (default: inferred).")]
CountryOption = Annotated[str, typer.Option(help="Holiday calendar country code.")]
EventsOption = Annotated[Path | None, typer.Option(
    help="CSV of special days: date,name[,end] (campaigns, outages).", exists=True,
    dir_okay=False)]
QueueOption = Annotated[list[str] | None, typer.Option(
    "--queue", help="Only this queue (repeat for more).")]
ModelsOption = Annotated[str | None, typer.Option(
    help="Comma-separated models (default: all).")]
JobsOption = Annotated[int, typer.Option("--jobs", help="Parallel processes over queues.")]
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


def warehouse_history(wh: Warehouse, *, since: date, until: date, timezone: str,
                      interval: int) -> pd.DataFrame:
    """Offered calls and AHT per queue and local interval from an open warehouse.

    Rows ``timestamp`` (naive local wall-clock interval start in ``timezone``), ``queue``,
    ``calls`` (offered: calls with a queue leg, placed by their offered time) and ``aht``
    (seconds per answered call, NaN without answers), for the local days ``since`` up to
    ``until`` (exclusive). Intervals without offered calls are absent. On a daylight-saving
    fall-back night the repeated hour shares its wall-clock intervals: their calls are added
    up and AHT is weighted by answered calls.
    """
    from warehouse.reports import interval_traffic

    grain = {15: "15m", 30: "30m", 60: "1h"}.get(interval)
    if grain is None:
        raise ValueError(f"interval={interval}: the warehouse groups by 15, 30 or 60 minutes; "
                         "pass one of those")
    frame = interval_traffic(wh, start=since.isoformat(), end=until.isoformat(), grain=grain,
                             time_zone=timezone)
    rows = pd.DataFrame({
        "timestamp": frame["interval_start"].dt.tz_localize(None),
        "queue": frame["queue"].astype(str),
        "calls": frame["offered"].astype(float),
        "answered": frame["answered"].astype(float),
        "handled": (frame["aht_s"].astype(float) * frame["answered"]).fillna(0.0)})
    rows = rows.groupby(["queue", "timestamp"], as_index=False, sort=True).sum()
    aht = (rows["handled"] / rows["answered"]).where(rows["answered"] > 0)
    found = pd.DataFrame({"timestamp": rows["timestamp"], "queue": rows["queue"],
                          "calls": rows["calls"], "aht": aht.astype(float)})
    return pd.concat([found, _quiet_days(found, since=since, until=until)],
                     ignore_index=True).sort_values(["queue", "timestamp"], ignore_index=True)


def _quiet_days(found: pd.DataFrame, *, since: date, until: date) -> pd.DataFrame:
    """A zero row at midnight of each day without offered calls after a queue's first call:
    the warehouse holds every call, so such a day had none (not missing data)."""
    days = pd.date_range(since, until, freq="D", inclusive="left")
    rows = []
    for queue, group in found.groupby("queue", sort=False):
        seen = set(group["timestamp"].dt.normalize())
        first = group["timestamp"].min().normalize()
        rows += [(day, queue) for day in days[days >= first] if day not in seen]
    return pd.DataFrame({"timestamp": pd.DatetimeIndex([r[0] for r in rows]),
                         "queue": [r[1] for r in rows], "calls": 0.0, "aht": float("nan")})


def _history(csv: Path | None, from_warehouse: bool, since: datetime | None,
             timezone: str, interval: int | None) -> pd.DataFrame:
    from queuecast.warehouse_cli import open_cli_warehouse
    from warehouse.client import WarehouseError

    if (csv is None) == (not from_warehouse):
        err.print("[red]give the history:[/red] either --csv FILE or --warehouse")
        raise typer.Exit(2)
    if csv is not None:
        try:
            return pd.read_csv(csv)
        except (ValueError, OSError) as exc:
            err.print(f"[red]cannot read {csv}:[/red] {exc}")
            raise typer.Exit(2) from None
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err.print(f"[red]--timezone {timezone!r} is not an IANA zone;[/red] pass e.g. "
                  "Asia/Shanghai")
        raise typer.Exit(2) from None
    # Up to the start of today in the center's zone: a partial day would read as quiet.
    until = datetime.now(zone).date()
    first = since.date() if since else until - timedelta(weeks=26)
    try:
        with open_cli_warehouse(None) as wh:
            return warehouse_history(wh, since=first, until=until, timezone=timezone,
                                     interval=interval or 15)
    except (ValueError, OSError, WarehouseError) as exc:
        err.print(f"[red]cannot read the history from the warehouse:[/red] {exc}")
        raise typer.Exit(1) from None


def _prepare(frame: pd.DataFrame, *, interval: int | None, country: str,
             events: Path | None, queues: list[str] | None, horizon_days: int) -> Any:
    from forecasting.workflow import prepare

    try:
        special = pd.read_csv(events) if events is not None else None
        return prepare(frame, interval_minutes=interval, country=country, events=special,
                       queues=queues, horizon_days=horizon_days)
    except ValueError as exc:
        err.print(f"[red]history error:[/red] {exc}")
        raise typer.Exit(2) from None


def _models(text: str | None) -> list[str] | None:
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def _backtest(prepared: Any, *, models: list[str] | None, horizons: list[str], test_days: int,
              jobs: int) -> Any:
    from forecasting.workflow import choose_models

    units = len(prepared.queues) * len(horizons) * len(models or _all_models())
    try:
        with progress("backtest (queue x horizon x model)", total=units) as (bar, task):
            result = choose_models(prepared, models=models, horizons=horizons,
                                   test_days=test_days, n_jobs=jobs, errors="record",
                                   progress=lambda done: bar.update(task, completed=done))
    except ValueError as exc:
        err.print(f"[red]backtest error:[/red] {exc}")
        raise typer.Exit(2) from None
    failed = result.table[result.table["error"] != ""]
    for row in failed.itertuples():
        err.print(f"[yellow]{row.queue} {row.horizon} {row.model}:[/yellow] {row.error}")
    return result


def _all_models() -> list[str]:
    from forecasting.models import MODELS

    return list(MODELS)


@forecast_app.command("backtest")
def backtest_command(
    csv: CsvOption = None, from_warehouse: WarehouseOption = False, since: SinceOption = None,
    timezone: TimezoneOption = "Asia/Shanghai", interval: IntervalOption = None,
    country: CountryOption = "CN", events: EventsOption = None, queue: QueueOption = None,
    horizon: Annotated[list[str] | None, typer.Option(
        help="Horizon: 1d, 1w or 4w (repeat for more; default 1d).")] = None,
    test_days: Annotated[int, typer.Option(
        help="Test period: the last N days, each forecast from all data before it.")] = 28,
    models: ModelsOption = None, jobs: JobsOption = DEFAULT_JOBS,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    table_out: Annotated[Path | None, typer.Option(
        "--table", help="Also write the full table (every queue, horizon and model) as CSV "
        "for the planner to review and override.", dir_okay=False)] = None,
) -> None:
    """Backtest every model (WAPE, MASE, bias, 80%/95% coverage) and choose one per queue."""
    from forecasting.backtest import improvement_over_baselines
    from forecasting.models import BASELINES

    horizons = horizon or ["1d"]
    interval = interval or (15 if from_warehouse else None)  # the grain the query used
    prepared = _prepare(_history(csv, from_warehouse, since, timezone, interval),
                        interval=interval, country=country, events=events, queues=queue,
                        horizon_days=0)
    result = _backtest(prepared, models=_models(models), horizons=horizons,
                       test_days=test_days, jobs=jobs)
    comparisons = {}
    if set(BASELINES) <= set(result.models):
        for label in result.horizons:
            c = improvement_over_baselines(result, horizon=label)
            comparisons[label] = {
                "chosen_wape": c.pooled_chosen_wape, "best_baseline_wape": c.pooled_baseline_wape,
                "improvement": c.pooled_improvement, "coverage_80": c.pooled_coverage_80}
    cleaning = {q: len(c.report) for q, c in prepared.cleaned.items()}
    if table_out is not None:
        try:
            result.table.to_csv(table_out, index=False)
        except OSError as exc:
            err.print(f"[red]cannot write {table_out}:[/red] {exc}")
            raise typer.Exit(2) from None
    if as_json:
        rows = [{k: json_value(v) for k, v in row.items()}
                for row in result.table.to_dict("records")]
        chosen = [{"queue": q, "horizon": h, "model": m} for (q, h), m in result.chosen.items()]
        print(json.dumps({"test_days": test_days, "interval_minutes": prepared.interval_minutes,
                          "results": rows, "chosen": chosen, "cleaning_changes": cleaning,
                          "against_baselines": {h: {k: json_value(v) for k, v in c.items()}
                                                for h, c in comparisons.items()},
                          "against_baselines_note": "chosen and scored on the same test days"},
                         indent=2))
        return
    table = Table("queue", "horizon", "model", "WAPE", "MASE", "bias", "cov 80%", "cov 95%",
                  "chosen", title=f"backtest over the last {test_days} days")
    for row in result.table.itertuples():
        table.add_row(row.queue, row.horizon, row.model, _pct(row.wape), f"{row.mase:.3f}",
                      _pct(row.bias), _pct(row.coverage_80), _pct(row.coverage_95),
                      "*" if row.chosen else "")
    Console().print(table)
    for label, c in comparisons.items():
        Console().print(f"{label}: chosen WAPE {_pct(c['chosen_wape'])} vs best baseline "
                        f"{_pct(c['best_baseline_wape'])} ({_pct(c['improvement'])} better; "
                        "chosen on these same days, so optimistic: `python -m bench "
                        "forecasting` judges on days the choice did not see)")


def _assignment(text: str, option: str) -> tuple[str, float]:
    when, sep, value = text.rpartition("=")
    try:
        if not sep:
            raise ValueError
        return when.strip(), float(value)
    except ValueError:
        raise ValueError(f"{option} {text!r}: write WHEN=NUMBER, e.g. 2026-05-01=1.2") from None


def _adjusted(forecasts: dict[str, pd.DataFrame], scales: list[str], overrides: list[str],
              reason: str) -> dict[str, pd.DataFrame]:
    """The planner's WF-03 adjustments applied to every queue's forecast, each one printed
    (the audit trail)."""
    from forecasting.adjust import override_intervals, scale_day

    if not scales and not overrides:
        return forecasts
    parsed_scales = [_assignment(text, "--scale-day") for text in scales]
    values = dict(_assignment(text, "--override") for text in overrides)
    result = {}
    for queue, frame in forecasts.items():
        adjusted: Any = frame
        for day, factor in parsed_scales:
            adjusted = scale_day(adjusted, day, factor, reason=reason)
        if values:
            adjusted = override_intervals(adjusted, {pd.Timestamp(k): v for k, v in
                                                     values.items()}, reason=reason)
        for change in adjusted.adjustments:
            err.print(f"{queue}: {change.kind} {change.start} .. {change.end}: "
                      f"{change.calls_before:,.1f} -> {change.calls_after:,.1f} calls "
                      f"({change.reason})")
        result[queue] = adjusted.frame
    return result


def _pct(value: float) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


@forecast_app.command("make")
def make_command(
    days: Annotated[int, typer.Option(help="Days to forecast after the history.")],
    out: Annotated[Path, typer.Option(help="Forecast CSV to write.", dir_okay=False)],
    csv: CsvOption = None, from_warehouse: WarehouseOption = False, since: SinceOption = None,
    timezone: TimezoneOption = "Asia/Shanghai", interval: IntervalOption = None,
    country: CountryOption = "CN", events: EventsOption = None, queue: QueueOption = None,
    model: Annotated[str, typer.Option(
        help="A model name, or 'auto': each queue's best at 1 day ahead in a backtest.")]
    = "auto",
    test_days: Annotated[int, typer.Option(help="Backtest days for --model auto.")] = 28,
    jobs: JobsOption = DEFAULT_JOBS,
    event_file: Annotated[Path | None, typer.Option(
        "--event-file", help="Also write wfm.forecast_published events (JSON lines) for "
        "the planner.", dir_okay=False)] = None,
    publish: Annotated[bool, typer.Option(
        help="Also append the wfm.forecast_published events to the event log.")] = False,
    forecast_id: Annotated[str | None, typer.Option(
        help="Forecast name (default: fc-<first day>).")] = None,
    by: Annotated[str, typer.Option("--by", help="Who publishes (planner id).")] = "planner",
    scale_day: Annotated[list[str] | None, typer.Option(
        help="WF-03: scale a day, DATE=FACTOR, e.g. 2026-05-01=1.2 (repeat for more).")] = None,
    override: Annotated[list[str] | None, typer.Option(
        help="WF-03: set an interval, 'YYYY-MM-DD HH:MM=CALLS' (repeat for more).")] = None,
    reason: Annotated[str, typer.Option(help="Why the forecast was adjusted (audit).")]
    = "planner adjustment",
) -> None:
    """Forecast offered calls per interval with 80%/95% intervals and AHT; write the CSV."""
    from forecasting.publish import forecast_event
    from forecasting.workflow import forecast_queues

    interval = interval or (15 if from_warehouse else None)  # the grain the query used
    prepared = _prepare(_history(csv, from_warehouse, since, timezone, interval),
                        interval=interval, country=country, events=events, queues=queue,
                        horizon_days=days + 7)
    if model == "auto":
        result = _backtest(prepared, models=None, horizons=["1d"], test_days=test_days,
                           jobs=jobs)
        names: str | dict[str, str] = {q: m for (q, _), m in result.chosen.items()}
        for name in prepared.queues:
            if name not in names:  # e.g. a new queue with too short a history to test
                names[name] = "seasonal_naive"
                err.print(f"[yellow]{name}: no model could be backtested over {test_days} "
                          "days; forecasting it with seasonal_naive[/yellow]")
    else:
        names = model
    try:
        forecasts = _adjusted(forecast_queues(prepared, days=days, model=names),
                              scale_day or [], override or [], reason)
    except ValueError as exc:
        err.print(f"[red]forecast error:[/red] {exc}")
        raise typer.Exit(2) from None
    parts = []
    for name, frame in forecasts.items():
        used = names if isinstance(names, str) else names[name]
        parts.append(frame.rename_axis("timestamp").reset_index()
                     .assign(queue=name, model=used))
    table = pd.concat(parts, ignore_index=True)
    columns = ["timestamp", "queue", "model", "mean", "lower_80", "upper_80", "lower_95",
               "upper_95"] + (["aht"] if "aht" in table.columns else [])
    try:
        table[columns].rename(columns={"mean": "calls"}).to_csv(
            out, index=False, float_format="%.4f", date_format="%Y-%m-%d %H:%M:%S")
    except OSError as exc:
        err.print(f"[red]cannot write {out}:[/red] {exc}")
        raise typer.Exit(2) from None
    err.print(f"wrote {out}: {len(table):,} intervals, {len(forecasts)} queues, "
              f"{table['mean'].sum():,.0f} calls")
    if event_file is None and not publish:
        return
    now = datetime.now(UTC)
    try:
        published = [forecast_event(
            frame, queue=name, timezone=timezone,
            forecast_id=forecast_id or f"fc-{frame.index[0]:%Y%m%d}",
            model=names if isinstance(names, str) else names[name], published_by=by, now=now)
            for name, frame in forecasts.items()]
    except ValueError as exc:
        err.print(f"[red]cannot publish:[/red] {exc}")
        raise typer.Exit(2) from None
    if event_file is not None:
        from ingest.contract import encode_event

        event_file.write_bytes(b"".join(encode_event(e) + b"\n" for e in published))
        err.print(f"wrote {event_file}: {len(published)} wfm.forecast_published events")
    if publish:
        with open_event_log(settings()) as log:
            report = log.produce(published)
        if report.dead_lettered:
            err.print(f"[red]the log refused the forecast events:[/red] {report}")
            raise typer.Exit(1)
        err.print(f"published {len(published)} forecasts to the event log")
