"""Erlang staffing, shift scheduling and rostering: a pure library over DataFrames."""

__all__: list[str] = []
