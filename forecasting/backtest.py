"""Rolling-origin backtests of interval forecast models, their metrics and the model choice.

For each queue the test period is the last ``test_days`` local days of its history. For a
horizon of H days the origins tile that period: ``test_start``, ``test_start + H``, ... Each
origin fits a fresh model on ALL history before the origin (a model may itself use less,
e.g. the last four weeks) and forecasts ``min(H, days left)`` days of intervals. The metrics
of one (queue, horizon, model) pool every test interval of all its origins, so ``'1d'``
forecasts each test day from all data before it.

Metrics (``a`` offered calls, ``f`` forecast mean, sums over the test intervals):

* ``wape`` = sum|a - f| / sum a;
* ``mase`` = mean|a - f| / the in-sample mean absolute error of the weekly seasonal naive
  (same interval one week earlier) on the training history before the first origin, the same
  scale for every horizon and model of a queue;
* ``bias`` = sum(f - a) / sum a (positive: over-forecast);
* ``coverage_80`` / ``coverage_95`` = share of intervals with ``lower <= a <= upper``,
  counted only over intervals where the actual or the forecast mean is > 0: a center closed
  at night or on Sundays has many intervals with a = f = 0 that every interval covers, which
  would push any model's coverage towards 100%.

The automatic choice per queue and horizon is the model with the lowest criterion (WAPE by
default; the fewest absolute errors when the criterion is undefined, e.g. a queue without calls
in the test period); the planner can override it (``BacktestResult.override``), which returns a new
result and records the change.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

__all__ = [
    "BOUND_COLUMNS",
    "CRITERIA",
    "MIN_TRAINING_DAYS",
    "TABLE_COLUMNS",
    "BacktestInputError",
    "BacktestModelError",
    "BacktestResult",
    "BaselineComparison",
    "ModelOverride",
    "backtest",
    "improvement_over_baselines",
    "parse_horizon",
]

BOUND_COLUMNS: tuple[str, ...] = ("lower_80", "upper_80", "lower_95", "upper_95")
"""Prediction-interval columns every model's forecast frame carries beside ``mean``."""

MIN_TRAINING_DAYS = 14
"""Days of history needed before the first origin, unless a model declares more through a
``min_history_days`` attribute: one week of lag for the weekly seasonal naive plus one week of
its errors for the MASE scale."""

CRITERIA: tuple[str, ...] = ("wape", "mase", "abs_bias")
"""Criteria for the automatic choice: the lowest value wins (``abs_bias`` = |bias|)."""

TABLE_COLUMNS: tuple[str, ...] = (
    "queue", "horizon", "horizon_days", "model", "wape", "mase", "bias", "coverage_80",
    "coverage_95", "n_intervals", "n_coverage_intervals", "n_origins", "sum_actual",
    "sum_abs_error", "fit_seconds", "error", "automatic", "chosen",
)
"""Columns of ``BacktestResult.table``: one row per queue x horizon x model. ``sum_actual`` and
``sum_abs_error`` allow WAPE to be pooled over queues; ``fit_seconds`` is the wall time of
fitting and predicting at all origins; ``error`` is '' or the message of a
model that failed (``errors="record"``); ``automatic`` marks the criterion's pick and
``chosen`` the current choice (differs after an override)."""

_HORIZON = re.compile(r"^\s*(\d+)\s*([dw])\s*$", re.IGNORECASE)
_DAY = pd.Timedelta(days=1)
_WEEK = pd.Timedelta(days=7)


class BacktestInputError(ValueError):
    """Histories, calendar or options that a backtest cannot run on."""


class BacktestModelError(RuntimeError):
    """A model failed to fit or returned a forecast frame that breaks the model interface."""


class _Fitted(Protocol):
    def predict(self, periods: int) -> pd.DataFrame: ...


class _Model(Protocol):
    def fit(self, history: pd.Series, *, calendar: pd.DataFrame) -> _Fitted: ...


ModelFactory = Callable[[], _Model]


@dataclass(frozen=True, slots=True)
class _Horizon:
    label: str
    days: int


def parse_horizon(value: str | int, *, argument: str = "horizon") -> tuple[str, int]:
    """``'1d'``, ``'7d'``, ``'1w'``, ``'4w'``, ``'28d'`` or a number of days -> (label, days).

    The label is canonical: whole weeks as ``'<n>w'``, otherwise ``'<n>d'`` (``'7d'`` -> ``'1w'``).
    """
    if isinstance(value, bool):
        raise BacktestInputError(f"{argument}={value!r}: give a horizon like '1d', '1w' or '4w'")
    if isinstance(value, int | np.integer):
        days = int(value)
    else:
        match = _HORIZON.match(str(value))
        if match is None:
            raise BacktestInputError(
                f"{argument}={value!r} is not a horizon: give days or weeks like '1d', '1w', "
                "'4w' or '28d'")
        days = int(match.group(1)) * (7 if match.group(2).lower() == "w" else 1)
    if days < 1:
        raise BacktestInputError(f"{argument}={value!r}: a horizon is at least one day")
    label = f"{days // 7}w" if days % 7 == 0 else f"{days}d"
    return label, days


def _horizons(values: str | Iterable[str | int], argument: str) -> tuple[_Horizon, ...]:
    if isinstance(values, str | int):
        values = (values,)
    parsed: dict[str, _Horizon] = {}
    for value in values:
        label, days = parse_horizon(value, argument=argument)
        parsed.setdefault(label, _Horizon(label, days))
    if not parsed:
        raise BacktestInputError(f"{argument} is empty: give at least one horizon, e.g. ('1d',)")
    return tuple(parsed.values())


@dataclass(frozen=True, slots=True)
class ModelOverride:
    """The planner's replacement of the automatic model choice for one queue and horizon."""

    queue: str
    horizon: str
    automatic: str
    model: str
    reason: str


@dataclass(frozen=True)
class BacktestResult:
    """The outcome of ``backtest``: the metric table, the model choice and its overrides.

    Immutable: ``override`` returns a new result. ``forecasts`` (only with
    ``keep_forecasts=True``) maps (queue, horizon, model) to the per-interval frame of the test
    period: columns ``origin``, ``actual``, ``mean`` and the ``BOUND_COLUMNS``.
    """

    _table: pd.DataFrame = field(repr=False)
    test_days: int
    criterion: str
    overrides: tuple[ModelOverride, ...] = ()
    _forecasts: Mapping[tuple[str, str, str], pd.DataFrame] | None = field(
        default=None, repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """One row per queue x horizon x model with all metrics (a copy)."""
        return self._table.copy()

    @property
    def chosen(self) -> Mapping[tuple[str, str], str]:
        """(queue, horizon label) -> the chosen model name (after overrides)."""
        rows = self._table[self._table["chosen"]]
        return MappingProxyType(
            {(q, h): m for q, h, m in zip(rows["queue"], rows["horizon"], rows["model"],
                                          strict=True)})

    @property
    def forecasts(self) -> Mapping[tuple[str, str, str], pd.DataFrame] | None:
        """Per-interval actual vs forecast frames, or None unless ``keep_forecasts=True``."""
        return None if self._forecasts is None else MappingProxyType(dict(self._forecasts))

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._table["queue"]))

    @property
    def horizons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._table["horizon"]))

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._table["model"]))

    def override(self, *, queue: str, horizon: str | int, model: str,
                 reason: str = "") -> BacktestResult:
        """A new result with ``model`` chosen for ``queue`` at ``horizon``; the change is
        appended to ``overrides`` (the automatic pick stays visible in the ``automatic``
        column)."""
        label, _ = parse_horizon(horizon, argument="horizon")
        table = self._table
        if queue not in set(table["queue"]):
            raise BacktestInputError(
                f"queue={queue!r} is not in this backtest; queues: {list(self.queues)}")
        if label not in set(table["horizon"]):
            raise BacktestInputError(
                f"horizon={horizon!r} was not backtested; horizons: {list(self.horizons)}")
        rows = (table["queue"] == queue) & (table["horizon"] == label)
        candidates = table[rows & (table["model"] == model)]
        if candidates.empty:
            raise BacktestInputError(
                f"model={model!r} was not backtested; models: {list(self.models)}")
        if candidates["error"].iloc[0]:
            raise BacktestInputError(
                f"model={model!r} failed on queue {queue!r} at horizon {label}: "
                f"{candidates['error'].iloc[0]}; choose a model that ran")
        automatic = table.loc[rows & table["automatic"], "model"]
        new_table = table.copy()
        new_table.loc[rows, "chosen"] = new_table.loc[rows, "model"] == model
        record = ModelOverride(queue=queue, horizon=label,
                               automatic=str(automatic.iloc[0]) if len(automatic) else "",
                               model=model, reason=reason)
        return replace(self, _table=new_table, overrides=(*self.overrides, record))

    def summary(self) -> str:
        """A plain-text report: per queue and horizon each model's metrics, '*' = chosen."""
        table = self._table
        shown = pd.DataFrame({
            "queue": table["queue"],
            "horizon": table["horizon"],
            "model": table["model"],
            "chosen": np.where(table["chosen"], "*", ""),
            "WAPE": table["wape"].map(_percent),
            "MASE": table["mase"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}"),
            "bias": table["bias"].map(_percent),
            "cov80": table["coverage_80"].map(_percent),
            "cov95": table["coverage_95"].map(_percent),
            "intervals": table["n_intervals"],
            "fit s": table["fit_seconds"].map(lambda v: f"{v:.2f}"),
            "error": table["error"],
        })
        if not table["error"].astype(bool).any():
            shown = shown.drop(columns="error")
        lines = [
            f"Rolling-origin backtest: {len(self.queues)} queue(s), horizons "
            f"{', '.join(self.horizons)}, last {self.test_days} day(s), "
            f"choice by lowest {self.criterion}",
            shown.to_string(index=False),
        ]
        for item in self.overrides:
            lines.append(
                f"override: {item.queue} {item.horizon}: {item.automatic} -> {item.model}"
                + (f" ({item.reason})" if item.reason else ""))
        return "\n".join(lines)


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}%"


def backtest(
    histories: Mapping[str, pd.Series],
    *,
    calendar: pd.DataFrame,
    models: Mapping[str, ModelFactory],
    horizons: str | Sequence[str | int] = ("1d",),
    test_days: int = 28,
    criterion: Literal["wape", "mase", "abs_bias"] = "wape",
    keep_forecasts: bool = False,
    errors: Literal["raise", "record"] = "raise",
    n_jobs: int = 1,
    progress: Callable[[int], object] | None = None,
    actuals: Mapping[str, pd.Series] | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of every model on every queue at every horizon.

    ``histories``: queue -> cleaned offered calls (no NaN) on a regular DatetimeIndex whose
    interval divides a day. ``calendar``: a ``day_calendar`` frame covering every history
    day. ``models``: name -> factory of a fresh model (called once per origin). ``horizons``:
    e.g. ``('1d', '1w', '4w')``. ``criterion``: what the automatic choice minimizes.
    ``errors='record'`` keeps a failing model's row (metrics NaN, message in ``error``)
    instead of raising. ``n_jobs > 1`` runs queues in parallel processes (joblib loky); each
    worker receives only its queue's series. ``progress`` is called with the number of
    (queue, horizon, model) units finished so far. ``actuals``: queue -> the recorded calls
    the forecasts are scored against (NaN where nothing was recorded: left out of the
    metrics), so repairs made by cleaning never flatter a model; default: the histories.
    """
    if not isinstance(test_days, int | np.integer) or isinstance(test_days, bool) \
            or test_days < 1:
        raise BacktestInputError(f"test_days={test_days!r}: give a whole number of days >= 1")
    test_days = int(test_days)
    if criterion not in CRITERIA:
        raise BacktestInputError(f"criterion={criterion!r}: choose one of {list(CRITERIA)}")
    if errors not in ("raise", "record"):
        raise BacktestInputError(f"errors={errors!r}: choose 'raise' or 'record'")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise BacktestInputError(f"n_jobs={n_jobs!r}: give 1 (serial), k > 1 or -1 (all cores)")
    if not models:
        raise BacktestInputError("models is empty: give name -> factory, e.g. forecasting.MODELS")
    for name, factory in models.items():
        if not callable(factory):
            raise BacktestInputError(
                f"models[{name!r}] is not callable: give a factory returning a fresh model")
    parsed = _horizons(horizons, "horizons")
    series = _validated_histories(histories)
    if not isinstance(calendar, pd.DataFrame) or not isinstance(calendar.index,
                                                                 pd.DatetimeIndex):
        raise BacktestInputError(
            "calendar must be a day_calendar frame (daily DatetimeIndex named 'date')")
    min_days = _min_training_days(models)
    tasks = []
    for queue, calls in series.items():
        _check_length(queue, calls, test_days, min_days)
        first, last = calls.index[0].normalize(), calls.index[-1].normalize()
        missing = pd.date_range(first, last, freq="D").difference(calendar.index.normalize())
        if len(missing):
            raise BacktestInputError(
                f"calendar does not cover {len(missing)} day(s) of queue {queue!r} "
                f"(first {missing[0].date()}): build it over the whole history")
        tasks.append((queue, calls, calendar.loc[first:last], _actual(actuals, queue, calls)))

    units_per_queue = len(parsed) * len(models)
    options: dict[str, Any] = {"models": dict(models), "horizons": parsed,
                               "test_days": test_days, "keep_forecasts": keep_forecasts,
                               "errors": errors}
    outcomes: dict[str, _QueueOutcome] = {}
    if n_jobs == 1 or len(tasks) == 1:
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done)

        for queue, calls, days, actual in tasks:
            outcomes[queue] = _backtest_queue(queue, calls, days, actual, tick=tick, **options)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        finished = 0
        for outcome in parallel(delayed(_backtest_queue)(queue, calls, days, actual, **options)
                                for queue, calls, days, actual in tasks):
            outcomes[outcome.queue] = outcome
            finished += units_per_queue
            if progress is not None:
                progress(finished)

    rows = [row for queue in series for row in outcomes[queue].rows]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS[:-2]))
    table["automatic"] = _automatic_choice(table, criterion)
    table["chosen"] = table["automatic"]
    forecasts = None
    if keep_forecasts:
        forecasts = {key: frame for queue in series
                     for key, frame in outcomes[queue].forecasts.items()}
    return BacktestResult(_table=table, test_days=test_days, criterion=criterion,
                          _forecasts=forecasts)


def _validated_histories(histories: Mapping[str, pd.Series]) -> dict[str, pd.Series]:
    if not isinstance(histories, Mapping) or not histories:
        raise BacktestInputError(
            "histories must be a non-empty mapping queue -> Series of cleaned offered calls")
    result: dict[str, pd.Series] = {}
    for queue, calls in histories.items():
        if isinstance(calls, pd.DataFrame) and "calls" in calls.columns:
            calls = calls["calls"]
        if not isinstance(calls, pd.Series) or not isinstance(calls.index, pd.DatetimeIndex):
            raise BacktestInputError(
                f"histories[{queue!r}] must be a Series of calls on a DatetimeIndex "
                "(e.g. Cleaned.frame['calls'])")
        if calls.index.tz is not None:
            raise BacktestInputError(
                f"histories[{queue!r}] has tz-aware times: give naive local wall-clock times")
        if len(calls) < 2 or not calls.index.is_monotonic_increasing \
                or calls.index.has_duplicates:
            raise BacktestInputError(
                f"histories[{queue!r}] needs at least two increasing, unique timestamps")
        step = calls.index.freq or pd.tseries.frequencies.to_offset(
            pd.infer_freq(calls.index) if len(calls) > 2 else None)
        if step is None:
            raise BacktestInputError(
                f"histories[{queue!r}] is not on a regular grid: fill missing intervals first "
                "(forecasting.series.read_history, forecasting.cleaning.clean)")
        delta = pd.Timedelta(step)
        if delta <= pd.Timedelta(0) or _DAY % delta != pd.Timedelta(0):
            raise BacktestInputError(
                f"histories[{queue!r}] has interval {delta}, which does not divide a day")
        values = calls.to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(values).any():
            raise BacktestInputError(
                f"histories[{queue!r}] has {int(np.isnan(values).sum())} missing value(s): "
                "backtest cleaned calls (forecasting.cleaning.clean)")
        if (values < 0).any():
            raise BacktestInputError(f"histories[{queue!r}] has negative calls")
        result[str(queue)] = pd.Series(values, index=pd.DatetimeIndex(calls.index, freq=step),
                                       name="calls")
    return result


def _actual(actuals: Mapping[str, pd.Series] | None, queue: str,
            calls: pd.Series) -> np.ndarray:
    """What ``calls`` is scored against, on its grid."""
    if actuals is None:
        return calls.to_numpy()
    if queue not in actuals:
        raise BacktestInputError(f"actuals has no series for queue {queue!r}: give one per "
                                 "history, or none")
    return actuals[queue].reindex(calls.index).to_numpy(dtype=float, na_value=np.nan)


def _min_training_days(models: Mapping[str, ModelFactory]) -> int:
    needed = MIN_TRAINING_DAYS
    for factory in models.values():
        declared = getattr(factory, "min_history_days", None)
        if declared is None:
            declared = getattr(factory(), "min_history_days", None)
        if declared is not None:
            needed = max(needed, math.ceil(declared))
    return needed


def _test_start(calls: pd.Series, test_days: int) -> pd.Timestamp:
    return calls.index[-1].normalize() - pd.Timedelta(days=test_days - 1)


def _check_length(queue: str, calls: pd.Series, test_days: int, min_days: int) -> None:
    before = (_test_start(calls, test_days) - calls.index[0]) / _DAY
    if before < min_days:
        span = (calls.index[-1] + calls.index.freq - calls.index[0]) / _DAY
        most = math.floor(span) - min_days
        fix = (f"lower test_days to at most {most} or supply a longer history" if most >= 1
               else f"supply at least {min_days + 1} days of history")
        raise BacktestInputError(
            f"test_days={test_days} leaves {max(before, 0):g} day(s) of queue {queue!r} before "
            f"the test period, but the models need {min_days}: the history spans {span:g} "
            f"day(s); {fix}")


def _origins(calls: pd.Series, test_days: int, days: int) -> Iterator[tuple[int, int]]:
    """(first, stop) positions of the test intervals each origin forecasts."""
    index = calls.index
    start = _test_start(calls, test_days)
    end = index[-1] + index.freq
    origin = start
    while origin < end:
        first = int(index.searchsorted(origin))
        stop = int(index.searchsorted(min(origin + pd.Timedelta(days=days), end)))
        if stop > first:
            yield first, stop
        origin += pd.Timedelta(days=days)


def _mase_scale(training: np.ndarray, season: int) -> float:
    if len(training) <= season:
        return math.nan
    return float(np.mean(np.abs(training[season:] - training[:-season])))


@dataclass(frozen=True, slots=True)
class _QueueOutcome:
    queue: str
    rows: list[dict[str, Any]]
    forecasts: dict[tuple[str, str, str], pd.DataFrame]


def _backtest_queue(queue: str, calls: pd.Series, calendar: pd.DataFrame,
                    actual: np.ndarray, *,
                    models: Mapping[str, ModelFactory], horizons: Sequence[_Horizon],
                    test_days: int, keep_forecasts: bool, errors: str,
                    tick: Callable[[], None] | None = None) -> _QueueOutcome:
    """Every model at every horizon on one queue (one worker task)."""
    first_origin = int(calls.index.searchsorted(_test_start(calls, test_days)))
    season = int(_WEEK / pd.Timedelta(calls.index.freq))
    scale = _mase_scale(calls.to_numpy()[:first_origin], season)
    rows: list[dict[str, Any]] = []
    forecasts: dict[tuple[str, str, str], pd.DataFrame] = {}
    for horizon in horizons:
        spans = list(_origins(calls, test_days, horizon.days))
        for name, factory in models.items():
            started = time.perf_counter()
            message = ""
            try:
                frame = _forecast_spans(calls, actual, calendar, factory, spans, name)
            except Exception as exc:
                if errors == "raise":
                    raise
                frame, message = None, f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
            metrics = _metrics(frame, scale) if frame is not None else _no_metrics(spans)
            rows.append({"queue": queue, "horizon": horizon.label, "horizon_days": horizon.days,
                         "model": name, **metrics, "n_origins": len(spans),
                         "fit_seconds": seconds, "error": message})
            if keep_forecasts and frame is not None:
                forecasts[(queue, horizon.label, name)] = frame
            if tick is not None:
                tick()
    return _QueueOutcome(queue, rows, forecasts)


def _forecast_spans(calls: pd.Series, actual: np.ndarray, calendar: pd.DataFrame,
                    factory: ModelFactory, spans: Sequence[tuple[int, int]],
                    name: str) -> pd.DataFrame:
    parts = []
    for first, stop in spans:
        training = calls.iloc[:first]
        target = calls.index[first:stop]
        forecast = factory().fit(training, calendar=calendar).predict(stop - first)
        _check_forecast(forecast, target, name)
        part = forecast.loc[:, ["mean", *BOUND_COLUMNS]].astype(float)
        part.insert(0, "actual", actual[first:stop])
        part.insert(0, "origin", target[0])
        parts.append(part)
    return pd.concat(parts)


def _check_forecast(forecast: object, expected: pd.DatetimeIndex, name: str) -> None:
    if not isinstance(forecast, pd.DataFrame):
        raise BacktestModelError(f"model {name!r} predict() returned {type(forecast).__name__}, "
                                 "not a DataFrame")
    missing = [c for c in ("mean", *BOUND_COLUMNS) if c not in forecast.columns]
    if missing:
        raise BacktestModelError(f"model {name!r} forecast lacks columns {missing}")
    if not forecast.index.equals(expected):
        raise BacktestModelError(
            f"model {name!r} forecast covers {len(forecast)} interval(s) from "
            f"{forecast.index[0] if len(forecast) else None}, expected {len(expected)} from "
            f"{expected[0]}: predict(periods) must forecast the intervals right after the "
            "history")


def _metrics(frame: pd.DataFrame, scale: float) -> dict[str, float | int]:
    frame = frame[frame["actual"].notna()]
    actual = frame["actual"].to_numpy()
    mean = frame["mean"].to_numpy()
    error = mean - actual
    sum_actual = float(actual.sum())
    sum_abs_error = float(np.abs(error).sum())
    open_ = (actual > 0) | (mean > 0)

    def coverage(level: int) -> float:
        if not open_.any():
            return math.nan
        lower = frame[f"lower_{level}"].to_numpy()[open_]
        upper = frame[f"upper_{level}"].to_numpy()[open_]
        inside = (lower <= actual[open_]) & (actual[open_] <= upper)
        return float(inside.mean())

    mae = sum_abs_error / len(actual) if len(actual) else math.nan
    return {
        "wape": sum_abs_error / sum_actual if sum_actual > 0 else math.nan,
        "mase": mae / scale if scale > 0 else math.nan,
        "bias": float(error.sum()) / sum_actual if sum_actual > 0 else math.nan,
        "coverage_80": coverage(80),
        "coverage_95": coverage(95),
        "n_intervals": len(actual),
        "n_coverage_intervals": int(open_.sum()),
        "sum_actual": sum_actual,
        "sum_abs_error": sum_abs_error,
    }


def _no_metrics(spans: Sequence[tuple[int, int]]) -> dict[str, float | int]:
    return {"wape": math.nan, "mase": math.nan, "bias": math.nan, "coverage_80": math.nan,
            "coverage_95": math.nan, "n_intervals": sum(stop - first for first, stop in spans),
            "n_coverage_intervals": 0, "sum_actual": math.nan, "sum_abs_error": math.nan}


def _automatic_choice(table: pd.DataFrame, criterion: str) -> pd.Series:
    score = table["bias"].abs() if criterion == "abs_bias" else table[criterion]
    chosen = pd.Series(False, index=table.index)
    for _, group in score.groupby([table["queue"], table["horizon"]], sort=False):
        valid = group.dropna()
        if not len(valid):
            # No calls in the test period (WAPE and bias undefined): the fewest calls wrongly
            # forecast; the models of a queue and horizon share the same test intervals.
            valid = table.loc[group.index, "sum_abs_error"].dropna()
        if len(valid):
            # idxmin keeps the first of equal scores: ties go to the earlier model in `models`
            chosen[valid.idxmin()] = True
    return chosen


@dataclass(frozen=True, slots=True)
class BaselineComparison:
    """The chosen model against the better baseline per queue, and pooled over queues.

    ``table``: index ``queue``; columns ``chosen``, ``chosen_wape``, ``best_baseline``,
    ``best_baseline_wape``, ``improvement`` (1 - chosen / best baseline; positive = better),
    ``coverage_80`` (of the chosen model). The pooled figures weight queues by their calls:
    pooled WAPE = sum of absolute errors / sum of actual calls over all queues, the baseline
    being each queue's better baseline.
    """

    horizon: str
    table: pd.DataFrame
    pooled_chosen_wape: float
    pooled_baseline_wape: float
    pooled_improvement: float
    pooled_coverage_80: float


def improvement_over_baselines(
    result: BacktestResult,
    *,
    horizon: str | int = "1d",
    baselines: Sequence[str] = ("seasonal_naive", "weekday_average"),
) -> BaselineComparison:
    """How much the chosen model beats the better of the ``baselines`` in WAPE at ``horizon``."""
    label, _ = parse_horizon(horizon, argument="horizon")
    table = result._table
    if label not in set(table["horizon"]):
        raise BacktestInputError(
            f"horizon={horizon!r} was not backtested; horizons: {list(result.horizons)}")
    if isinstance(baselines, str) or not baselines:
        raise BacktestInputError("baselines must be a non-empty sequence of model names")
    unknown = [b for b in baselines if b not in set(table["model"])]
    if unknown:
        raise BacktestInputError(
            f"baselines {unknown} were not backtested; models: {list(result.models)}")
    at = table[table["horizon"] == label]
    records = []
    errors = actual = base_errors = covered = open_ = 0.0
    for queue, rows in at.groupby("queue", sort=False):
        chosen = rows[rows["chosen"]]
        base = rows[rows["model"].isin(baselines)].dropna(subset=["sum_abs_error"])
        if chosen.empty or base.empty:
            raise BacktestInputError(
                f"queue {queue!r} at horizon {label} has no chosen model or no baseline that "
                "ran: rerun with errors='raise' to see why")
        pick = chosen.iloc[0]
        # Same test intervals for every model of a queue: the fewest absolute errors is the
        # lowest WAPE, and still defined when the test period had no calls.
        best = base.loc[base["sum_abs_error"].idxmin()]
        records.append({
            "queue": queue, "chosen": pick["model"], "chosen_wape": pick["wape"],
            "best_baseline": best["model"], "best_baseline_wape": best["wape"],
            "improvement": (1 - pick["sum_abs_error"] / best["sum_abs_error"]
                            if best["sum_abs_error"] > 0 else math.nan),
            "coverage_80": pick["coverage_80"],
        })
        errors += pick["sum_abs_error"]
        actual += pick["sum_actual"]
        base_errors += best["sum_abs_error"]
        if pick["n_coverage_intervals"] > 0:
            covered += pick["coverage_80"] * pick["n_coverage_intervals"]
            open_ += pick["n_coverage_intervals"]
    chosen_wape = errors / actual if actual > 0 else math.nan
    baseline_wape = base_errors / actual if actual > 0 else math.nan
    return BaselineComparison(
        horizon=label,
        table=pd.DataFrame(records).set_index("queue"),
        pooled_chosen_wape=chosen_wape,
        pooled_baseline_wape=baseline_wape,
        pooled_improvement=1 - chosen_wape / baseline_wape if baseline_wape > 0 else math.nan,
        pooled_coverage_80=covered / open_ if open_ > 0 else math.nan,
    )
