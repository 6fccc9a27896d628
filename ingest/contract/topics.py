"""Topic names and partition keys, defined once for every producer and consumer."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DATA_TOPICS", "DEFAULT_PARTITIONS", "Topic"]


class Topic(StrEnum):
    """Logical topics; the event log prefixes them with its namespace (``queuecast.calls``)."""

    CALLS = "calls"
    """Call events, keyed by call id so one call's events stay in order."""
    AGENTS = "agents"
    """Agent events, keyed by agent id."""
    TICKETS = "tickets"
    """Ticket events, keyed by ticket id."""
    WFM = "wfm"
    """Forecast and schedule events, keyed by queue."""
    ALARMS = "alarms"
    """Alarm raised and cleared events of the live queue board (RT-03), keyed by queue."""
    DEADLETTER = "deadletter"
    """Records that failed validation: the original bytes, the reason in headers."""


DATA_TOPICS: tuple[Topic, ...] = (
    Topic.CALLS, Topic.AGENTS, Topic.TICKETS, Topic.WFM, Topic.ALARMS
)

DEFAULT_PARTITIONS: dict[Topic, int] = {
    Topic.CALLS: 6,
    Topic.AGENTS: 3,
    Topic.TICKETS: 3,
    Topic.WFM: 1,
    Topic.ALARMS: 1,
    Topic.DEADLETTER: 1,
}
