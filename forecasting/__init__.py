"""Interval forecasts of offered calls and handle time: a pure library over DataFrames."""

__all__: list[str] = []
