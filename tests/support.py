"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["REAL_DATA", "collect", "demo_events"]


def _real_data() -> Path:
    """Other people's call-center data (``../shared/data/real`` beside the checkout, or the
    folder ``QUEUECAST_REAL_DATA`` names; CI clones elsewhere and sets it)."""
    if os.environ.get("QUEUECAST_REAL_DATA"):
        return Path(os.environ["QUEUECAST_REAL_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


REAL_DATA = _real_data()


def collect(consumer: Any, count: int, *, deadline_s: float = 60.0) -> list[Any]:
    """Poll until ``count`` items arrived (or fail after ``deadline_s``); return them."""
    items: list[Any] = []
    end = time.monotonic() + deadline_s
    while len(items) < count:
        if time.monotonic() > end:
            raise AssertionError(f"only {len(items)} of {count} items within {deadline_s} s")
        items.extend(consumer.poll(max_events=count - len(items), timeout=0.5))
    return items


@cache
def demo_events(*, seed: int, days: int = 1) -> tuple[Any, ...]:
    """The events of the bundled demo center simulated for ``days`` (once per session)."""
    from callcore.simulator import Simulation

    events: list[Any] = []
    Simulation("demo", seed=seed, days=days).run(on_events=events.extend)
    return tuple(events)
