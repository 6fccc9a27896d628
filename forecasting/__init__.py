"""Interval forecasts of offered calls and handle time: a pure library over DataFrames.

History in (``read_history``), cleaned with a report of every change (``clean``, WF-01),
six models with calibrated prediction intervals (``MODELS``, WF-02), rolling-origin
backtests and the automatic choice per queue and horizon (``backtest``), manual
adjustment with an audit trail (``scale_day`` ..., WF-03) and the ``wfm.forecast_published``
event (``forecast_event``). ``workflow`` strings them together for the CLI and the planner.
"""

from __future__ import annotations

from forecasting.adjust import (
    AdjustedForecast,
    Adjustment,
    AdjustmentError,
    daily_totals,
    override_intervals,
    scale_day,
    scale_intervals,
)
from forecasting.aht import (
    forecast_aht,
)
from forecasting.backtest import (
    BacktestInputError,
    BacktestModelError,
    BacktestResult,
    BaselineComparison,
    ModelOverride,
    backtest,
    improvement_over_baselines,
    parse_horizon,
)
from forecasting.calendar import (
    DAY_TYPES,
    CalendarError,
    day_calendar,
    read_events,
)
from forecasting.cleaning import (
    Cleaned,
    CleaningError,
    clean,
)
from forecasting.models import (
    BASELINES,
    MODELS,
    Fitted,
    ForecastInputError,
    HoltWinters,
    Model,
    Mstl,
    Regression,
    SeasonalNaive,
    TwoStage,
    WeekdayAverage,
)
from forecasting.publish import (
    PublishError,
    forecast_event,
)
from forecasting.series import (
    SeriesError,
    read_history,
    series_frame,
)
from forecasting.workflow import (
    Prepared,
    choose_models,
    forecast_queues,
    prepare,
)

__all__ = [
    "BASELINES",
    "DAY_TYPES",
    "MODELS",
    "AdjustedForecast",
    "Adjustment",
    "AdjustmentError",
    "BacktestInputError",
    "BacktestModelError",
    "BacktestResult",
    "BaselineComparison",
    "CalendarError",
    "Cleaned",
    "CleaningError",
    "Fitted",
    "ForecastInputError",
    "HoltWinters",
    "Model",
    "ModelOverride",
    "Mstl",
    "Prepared",
    "PublishError",
    "Regression",
    "SeasonalNaive",
    "SeriesError",
    "TwoStage",
    "WeekdayAverage",
    "backtest",
    "choose_models",
    "clean",
    "daily_totals",
    "day_calendar",
    "forecast_aht",
    "forecast_event",
    "forecast_queues",
    "improvement_over_baselines",
    "override_intervals",
    "parse_horizon",
    "prepare",
    "read_events",
    "read_history",
    "scale_day",
    "scale_intervals",
    "series_frame",
]
