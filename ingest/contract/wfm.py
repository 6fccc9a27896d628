"""Workforce-management events (topic ``wfm``, keyed by ``queue``): forecasts and schedules."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from ingest.contract.envelope import WfmPayload
from ingest.contract.types import AgentId, Label, Seconds, Text, UtcTime

__all__ = [
    "ForecastInterval",
    "ForecastPublished",
    "ScheduleChanged",
    "SchedulePublished",
    "ScheduledActivity",
    "ScheduledShift",
]

Version = Annotated[int, msgspec.Meta(ge=1)]
IntervalMinutes = Annotated[int, msgspec.Meta(ge=1, le=1440)]
Calls = Annotated[float, msgspec.Meta(ge=0)]


class ForecastInterval(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Forecast for one interval: offered calls and handle time, with an optional range."""

    start: UtcTime
    calls: Calls
    aht_s: Seconds | None = None
    calls_low: Calls | None = None
    calls_high: Calls | None = None


class ForecastPublished(WfmPayload, frozen=True, kw_only=True):
    """A planner published a forecast version for a queue (WF-02, WF-03)."""

    TYPE: ClassVar[str] = "wfm.forecast_published"
    forecast_id: Label
    version: Version
    interval_minutes: IntervalMinutes
    start: UtcTime
    end: UtcTime
    model: Label
    published_by: AgentId
    intervals: list[ForecastInterval]


class ScheduledActivity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A part of a shift that is not on the phones: break, lunch, meeting, training."""

    kind: Label
    start: UtcTime
    end: UtcTime
    paid: bool = True


class ScheduledShift(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One agent's shift with its activities."""

    agent_id: AgentId
    start: UtcTime
    end: UtcTime
    template: Label | None = None
    activities: list[ScheduledActivity] = msgspec.field(default_factory=list)


class SchedulePublished(WfmPayload, frozen=True, kw_only=True):
    """A schedule version was published for a planning unit (WF-05..WF-08)."""

    TYPE: ClassVar[str] = "wfm.schedule_published"
    schedule_id: Label
    version: Version
    start: UtcTime
    end: UtcTime
    published_by: AgentId
    shifts: list[ScheduledShift]


class ScheduleChanged(WfmPayload, frozen=True, kw_only=True):
    """A published schedule was edited: the listed agents' shifts in the window are replaced."""

    TYPE: ClassVar[str] = "wfm.schedule_changed"
    schedule_id: Label
    version: Version
    previous_version: Version
    changed_by: AgentId
    reason: Text | None = None
    agent_ids: list[AgentId]
    start: UtcTime
    end: UtcTime
    shifts: list[ScheduledShift]
