"""One JSON-ready value from what pandas and numpy hand the commands' ``--json`` output."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

__all__ = ["json_value"]


def json_value(value: Any) -> Any:
    """``value`` as JSON accepts it: numpy scalars as Python ones, NaN / infinity / NA as
    null, dates and timestamps as ISO text, anything else unknown as its text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, dt.date):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value if isinstance(value, int | str | bool | list) else str(value)
