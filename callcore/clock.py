"""Clocks for the engine: the system clock for live traffic, a virtual one for simulation.

The engine reads time only through a ``Clock``; it never sleeps. Times are integer
milliseconds since the Unix epoch, which keeps timer arithmetic exact.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock", "from_ms", "to_ms"]


@runtime_checkable
class Clock(Protocol):
    """Where the engine reads the current instant."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


def to_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no timezone; pass an aware datetime")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


class SystemClock:
    """The real clock, for live traffic."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, from the system clock."""
        return time.time_ns() // 1_000_000


class VirtualClock:
    """A clock the driver moves forward explicitly (simulation, tests, replays)."""

    def __init__(self, start: datetime | int) -> None:
        self._ms = start if isinstance(start, int) else to_ms(start)

    def now_ms(self) -> int:
        """The current virtual instant."""
        return self._ms

    def advance_to(self, ms: int) -> None:
        """Move to ``ms``; time never goes backwards."""
        if ms < self._ms:
            raise ValueError(f"cannot move the clock back from {self._ms} to {ms}")
        self._ms = ms
