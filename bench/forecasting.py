"""Forecasting benchmarks (issue 6): accuracy against the baselines and backtest speed.

- Accuracy, simulated: the ``large`` scenario's offered calls over 26 weeks (CN holidays,
  trend, day-level noise; 10 queues, 15-minute intervals). The model is chosen per queue
  on the 28 days before the last 28 (a 1-day-ahead backtest on the history up to then) and
  judged on the last 28 days, each day forecast from all data before it; so the choice
  never sees the days it is judged on.
- Accuracy, real: the Anonymous Bank month (Israel; offered calls per service type, 30-minute
  intervals), the same protocol on its 31 days (choice on days 17-23, judged on 24-31).
- Speed: the full backtest (1 day, 1 week and 4 weeks ahead; all six models; the last 28
  days) of 20 queues x 52 weeks of 15-minute data on 2 processes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.report import append_results
from forecasting.backtest import improvement_over_baselines
from forecasting.models import BASELINES, MODELS, WeekdayAverage
from forecasting.workflow import Prepared, choose_models, prepare

__all__ = ["bank_history", "judge", "run"]

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
BANK = REAL / "anonymous_bank_one_month_calls.csv"


def bank_history(path: Path = BANK, *, interval_minutes: int = 30) -> pd.DataFrame:
    """Offered calls and AHT per service type and interval of the Anonymous Bank month: a
    call is offered when it queued (``q_start``) or reached an agent directly
    (``ser_start``); phantom calls are not calls."""
    bank = pd.read_csv(path, dtype=str)
    queued = ~bank.q_start.isin(["0:00:00", "00:00:00"])
    served = bank.outcome == "AGENT"
    keep = (queued | served) & (bank.outcome != "PHANTOM")
    clock = bank.q_start.where(queued, bank.ser_start)[keep]
    stamp = pd.to_datetime(bank.date[keep] + " " + clock, format="%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame({"timestamp": stamp.dt.floor(f"{interval_minutes}min"),
                          "queue": bank.type[keep],
                          "seconds": bank.ser_time[keep].astype(float).where(served[keep]),
                          "served": served[keep].astype(int)})
    grouped = frame.groupby(["queue", "timestamp"]).agg(
        calls=("served", "size"), served=("served", "sum"), seconds=("seconds", "sum"))
    grouped["aht"] = (grouped.seconds / grouped.served).where(grouped.served > 0)
    return grouped.reset_index()[["timestamp", "queue", "calls", "aht"]]


def _cut(prepared: Prepared, days: int) -> Prepared:
    """``prepared`` without its last ``days`` days (the choice must not see them)."""
    cleaned = {}
    for queue, result in prepared.cleaned.items():
        end = result.frame.index[-1].normalize() - pd.Timedelta(days=days - 1)
        frame = result.frame[result.frame.index < end]
        frame.index.freq = result.frame.index.freq
        cleaned[queue] = type(result)(frame=frame, report=result.report,
                                      dispersion=result.dispersion, threshold=result.threshold)
    return Prepared(interval_minutes=prepared.interval_minutes, calendar=prepared.calendar,
                    cleaned=cleaned)


def judge(prepared: Prepared, *, test_days: int, choice_days: int, n_jobs: int = 2,
          models: Mapping[str, Callable[[], object]] = MODELS,
          baselines: tuple[str, ...] = BASELINES) -> dict[str, float | str]:
    """Choose per queue on the ``choice_days`` before the last ``test_days``, then compare
    the chosen models with the better baseline on the last ``test_days`` (1 day ahead)."""
    choice = choose_models(_cut(prepared, test_days), models=models, test_days=choice_days,
                           n_jobs=n_jobs)
    chosen = {q: m for (q, _), m in choice.chosen.items()}
    judged = choose_models(prepared, models=models, test_days=test_days, n_jobs=n_jobs)
    for queue, model in chosen.items():
        judged = judged.override(queue=queue, horizon="1d", model=model,
                                 reason="chosen on the earlier window")
    table = judged.table[judged.table.horizon == "1d"]
    comparison = improvement_over_baselines(judged, horizon="1d", baselines=baselines)
    picked = table[table.chosen]
    open_intervals = picked.n_coverage_intervals.sum()
    return {
        "chosen": ", ".join(f"{m} x{n}" for m, n in pd.Series(chosen).value_counts().items()),
        "chosen_wape": comparison.pooled_chosen_wape,
        "baseline_wape": comparison.pooled_baseline_wape,
        "improvement": comparison.pooled_improvement,
        "coverage_80": comparison.pooled_coverage_80,
        "coverage_95": float((picked.coverage_95 * picked.n_coverage_intervals).sum()
                             / open_intervals) if open_intervals else math.nan,
        "worst_queue_improvement": float(comparison.table.improvement.min()),
        "best_single_model": table.groupby("model").sum_abs_error.sum().idxmin(),
    }


def _simulated(weeks: int, seeds: tuple[int, ...]) -> pd.DataFrame:
    from callcore.simulator import arrival_history

    parts = []
    for seed in seeds:
        part = arrival_history("large", seed=seed, start=pd.Timestamp("2026-01-05").date(),
                               days=weeks * 7, interval_minutes=15)
        parts.append(part.assign(queue=part.queue if seed == seeds[0]
                                 else f"s{seed}-" + part.queue))
    return pd.concat(parts, ignore_index=True)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def run() -> str:
    """Run the forecasting benchmarks and append the results; return the Markdown."""
    rows: list[list[str]] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=True) as progress:
        task = progress.add_task("simulated 26 weeks: choose and judge")
        simulated = prepare(_simulated(26, (11,)), country="CN", horizon_days=0)
        accuracy = [("large scenario, 26 weeks, 10 queues, 15 min",
                     judge(simulated, test_days=28, choice_days=28))]
        if BANK.exists():
            progress.update(task, description="bank month: choose and judge")
            bank = prepare(bank_history(), country="IL", horizon_days=0)
            # a month cannot feed a 4-week average through the test days: 2 weeks instead
            short = {**{k: v for k, v in MODELS.items() if k != "weekday_average"},
                     "weekday_average_2w": lambda: WeekdayAverage(weeks=2)}
            accuracy.append((f"Anonymous Bank month, {len(bank.queues)} service types, 30 min",
                             judge(bank, test_days=8, choice_days=7, models=short,
                                   baselines=("seasonal_naive", "weekday_average_2w"))))
        for name, figures in accuracy:
            rows.append([f"accuracy 1 day ahead: {name}", f"chosen {figures['chosen']}",
                         f"WAPE {_pct(figures['chosen_wape'])} vs best baseline "
                         f"{_pct(figures['baseline_wape'])}: {_pct(figures['improvement'])} "
                         f"better (worst queue {_pct(figures['worst_queue_improvement'])}); "
                         f"coverage 80% {_pct(figures['coverage_80'])}, 95% "
                         f"{_pct(figures['coverage_95'])}",
                         ">= 10% better, 80% coverage 75-85%"])
        progress.update(task, description="20 queues x 52 weeks: full backtest")
        frame = _simulated(52, (11, 12))
        started = time.perf_counter()
        large = prepare(frame, country="CN", horizon_days=0)
        cleaning = time.perf_counter() - started
        started = time.perf_counter()
        result = choose_models(large, horizons=("1d", "1w", "4w"), test_days=28, n_jobs=2)
        seconds = time.perf_counter() - started
        fits = result.table.n_origins.sum()
        rows.append(["full backtest: 20 queues x 52 weeks x 96 intervals/day, 3 horizons, "
                     f"{len(MODELS)} models, last 28 days, 2 processes",
                     f"{fits:,} fits", f"{seconds:.1f} s (+ {cleaning:.1f} s reading and "
                     "cleaning)", "<= 120 s"])
        by_model = result.table.groupby("model")
        per_model = by_model.fit_seconds.sum() / by_model.n_origins.sum()
        notes = ("Mean fit + predict per origin (one queue): " + ", ".join(
            f"{m} {1000 * s:.0f} ms" for m, s in per_model.items()) + ". Baselines: "
            f"{', '.join(BASELINES)} (4 weeks). " + __doc__.split("\n\n", 1)[1])
    return append_results("Forecasting: accuracy against the baselines, backtest speed",
                          ["case", "model", "result", "target"], rows, notes)
