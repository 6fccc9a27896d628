"""Alarm events (topic ``alarms``, keyed by ``queue``): threshold rules on the live queue board.

The alarms topic is the alert log: an alarm is raised once when its rule's measure crosses
the threshold and cleared once when the measure goes back past the clear threshold.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from ingest.contract.envelope import Payload
from ingest.contract.topics import Topic
from ingest.contract.types import Label, NonNegativeInt, UtcTime

__all__ = ["AlarmCleared", "AlarmKind", "AlarmPayload", "AlarmRaised"]

AlarmKind = Literal["queue_length", "longest_wait", "service_level", "not_ready_share"]
"""What a rule measures: calls waiting, the longest wait (seconds), the service level over a
window (a share), the share of the queue's agents in not-ready."""

WindowMinutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]


class AlarmPayload(Payload, frozen=True, kw_only=True):
    """Base of alarm events (topic ``alarms``, keyed by ``queue``)."""

    TOPIC: ClassVar[Topic] = Topic.ALARMS
    KEY: ClassVar[str] = "queue"
    queue: Label
    rule: Label
    kind: AlarmKind
    threshold: float
    """The rule's threshold (for ``service_level``: the target share)."""
    window_minutes: WindowMinutes | None = None
    """The service-level window; absent for the other kinds."""
    calls: NonNegativeInt | None = None
    """Calls in the service level's denominator over the window; absent for other kinds."""


class AlarmRaised(AlarmPayload, frozen=True, kw_only=True):
    """A queue crossed an alarm rule's threshold (RT-03); ``value`` is the measure then."""

    TYPE: ClassVar[str] = "alarm.raised"
    value: float


class AlarmCleared(AlarmPayload, frozen=True, kw_only=True):
    """A raised alarm cleared: the measure went back past the rule's clear threshold (RT-03)."""

    TYPE: ClassVar[str] = "alarm.cleared"
    value: float | None = None
    """The measure when it cleared; absent when it is no longer defined (no calls in the
    window, no agents in the queue)."""
    clear_threshold: float
    """Where the alarm clears (hysteresis); equals ``threshold`` unless the rule sets one."""
    raised_at: UtcTime
    raised_value: float
    peak: float
    """The worst value seen while raised: the highest, or the lowest service level."""
