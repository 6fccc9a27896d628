"""The planner's forecasting workflow over a history frame: read and clean it (WF-01),
backtest and choose models (WF-02), forecast calls with intervals and handle time.

The CLI (``queuecast forecast``) and the planner UI call these; they only read and write
files or the warehouse around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from forecasting.aht import forecast_aht
from forecasting.backtest import BacktestResult, backtest
from forecasting.calendar import day_calendar
from forecasting.cleaning import Cleaned, clean
from forecasting.models import MODELS, ForecastInputError
from forecasting.series import read_history

__all__ = ["Prepared", "choose_models", "forecast_queues", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """Cleaned history per queue on one grid, and the day calendar covering it and the days
    that may be forecast after it."""

    interval_minutes: int
    calendar: pd.DataFrame
    cleaned: Mapping[str, Cleaned]

    def calls(self) -> dict[str, pd.Series]:
        """Cleaned offered calls per queue, ready for a model's ``fit``."""
        return {queue: result.calls for queue, result in self.cleaned.items()}

    def recorded(self) -> dict[str, pd.Series]:
        """Offered calls per queue as recorded (NaN where nothing was): what a backtest
        scores forecasts against."""
        return {queue: result.frame["calls_original"] for queue, result in self.cleaned.items()}

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues, in the history's order."""
        return tuple(self.cleaned)


def prepare(frame: pd.DataFrame, *, interval_minutes: int | None = None, country: str = "CN",
            events: pd.DataFrame | None = None, queues: Sequence[str] | None = None,
            horizon_days: int = 56) -> Prepared:
    """Read a ``timestamp, calls[, queue, aht]`` frame, build the calendar (holidays of
    ``country``, user ``events``) to ``horizon_days`` after the history, and clean each
    queue's series."""
    histories = read_history(frame, interval_minutes=interval_minutes)
    if queues:
        unknown = sorted(set(queues) - set(histories))
        if unknown:
            raise ForecastInputError(f"queues: {unknown} are not in the history; it has "
                                     f"{sorted(histories)}")
        histories = {q: histories[q] for q in queues}
    first = min(h.index[0] for h in histories.values()).normalize()
    last = max(h.index[-1] for h in histories.values()).normalize()
    calendar = day_calendar(first, last + pd.Timedelta(days=horizon_days), country=country,
                            events=events)
    cleaned = {queue: clean(history, calendar=calendar) for queue, history in histories.items()}
    step = next(iter(histories.values())).index.freq
    return Prepared(interval_minutes=int(pd.Timedelta(step) / pd.Timedelta(minutes=1)),
                    calendar=calendar, cleaned=cleaned)


def choose_models(prepared: Prepared, *,
                  models: Sequence[str] | Mapping[str, Callable[[], object]] | None = None,
                  horizons: Sequence[str] = ("1d",), test_days: int = 28, n_jobs: int = 1,
                  errors: Literal["raise", "record"] = "raise",
                  progress: Callable[[int], object] | None = None) -> BacktestResult:
    """Rolling-origin backtest of ``models`` (names of ``MODELS``, or name -> factory;
    default: all) on every queue; the result holds the full table and the automatic choice
    per queue and horizon. Models train on the cleaned history and are scored against the
    recorded calls. ``errors='record'`` keeps going past a queue a model cannot fit (too
    short a history), with the message in the table."""
    chosen = dict(models) if isinstance(models, Mapping) else _factories(models)
    return backtest(prepared.calls(), calendar=prepared.calendar, models=chosen,
                    horizons=tuple(horizons), test_days=test_days, n_jobs=n_jobs,
                    errors=errors, progress=progress, actuals=prepared.recorded())


def forecast_queues(prepared: Prepared, *, days: int, model: str | Mapping[str, str],
                    aht_weeks: int = 8) -> dict[str, pd.DataFrame]:
    """Forecast ``days`` days after each queue's history with ``model`` (one name, or a
    name per queue): columns ``mean``, ``lower_80``, ``upper_80``, ``lower_95``,
    ``upper_95`` and, where the history has handle times, ``aht``."""
    if days < 1:
        raise ForecastInputError(f"days={days}: forecast at least one day")
    slots = 1440 // prepared.interval_minutes
    result = {}
    for queue, cleaned in prepared.cleaned.items():
        name = model if isinstance(model, str) else model.get(queue)
        if name is None:
            raise ForecastInputError(f"model: no model named for queue {queue!r}")
        factory = _factories([name])[name]
        frame = factory().fit(cleaned.calls, calendar=prepared.calendar).predict(days * slots)
        history = cleaned.frame
        if history["aht"].notna().any():
            try:
                frame["aht"] = forecast_aht(history[["calls", "aht"]], days * slots,
                                            calendar=prepared.calendar, weeks=aht_weeks)
            except ForecastInputError:  # no handle time in the last weeks: none to forecast
                frame["aht"] = float("nan")
        result[queue] = frame
    return result


def _factories(names: Sequence[str] | None) -> dict[str, Callable[[], object]]:
    if names is None:
        return dict(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ForecastInputError(f"models: unknown {unknown}; choose from {sorted(MODELS)}")
    return {name: MODELS[name] for name in names}
