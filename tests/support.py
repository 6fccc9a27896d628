"""Small helpers shared by the tests."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["collect"]


def collect(consumer: Any, count: int, *, deadline_s: float = 60.0) -> list[Any]:
    """Poll until ``count`` items arrived (or fail after ``deadline_s``); return them."""
    items: list[Any] = []
    end = time.monotonic() + deadline_s
    while len(items) < count:
        if time.monotonic() > end:
            raise AssertionError(f"only {len(items)} of {count} items within {deadline_s} s")
        items.extend(consumer.poll(max_events=count - len(items), timeout=0.5))
    return items
