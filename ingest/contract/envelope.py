"""The versioned envelope around every payload, and the payload base classes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, Generic, TypeVar

import msgspec

from ingest.contract.topics import Topic
from ingest.contract.types import AgentId, CallId, Label, TicketId, UtcTime

__all__ = [
    "AgentPayload",
    "CallPayload",
    "Event",
    "Payload",
    "TicketPayload",
    "WfmPayload",
    "make_event",
    "to_utc_ms",
]


class Payload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Base of every event payload: a past-tense fact.

    Subclasses set ``TYPE`` (the envelope's ``type``), ``VERSION`` (major, minor) and,
    through their domain base, ``TOPIC`` and ``KEY`` (the field whose value is the
    partition key). Unknown fields are ignored on decode, so a consumer reads newer
    minor versions of a type; missing or mistyped fields are errors.
    """

    TYPE: ClassVar[str]
    VERSION: ClassVar[tuple[int, int]] = (1, 0)
    TOPIC: ClassVar[Topic]
    KEY: ClassVar[str]

    def partition_key(self) -> str:
        """The value that orders this event: call id, agent id, ticket id or queue."""
        return str(getattr(self, self.KEY))


class CallPayload(Payload, frozen=True, kw_only=True):
    """Base of call events (topic ``calls``, keyed by ``call_id``)."""

    TOPIC: ClassVar[Topic] = Topic.CALLS
    KEY: ClassVar[str] = "call_id"
    call_id: CallId


class AgentPayload(Payload, frozen=True, kw_only=True):
    """Base of agent events (topic ``agents``, keyed by ``agent_id``)."""

    TOPIC: ClassVar[Topic] = Topic.AGENTS
    KEY: ClassVar[str] = "agent_id"
    agent_id: AgentId


class TicketPayload(Payload, frozen=True, kw_only=True):
    """Base of ticket events (topic ``tickets``, keyed by ``ticket_id``)."""

    TOPIC: ClassVar[Topic] = Topic.TICKETS
    KEY: ClassVar[str] = "ticket_id"
    ticket_id: TicketId


class WfmPayload(Payload, frozen=True, kw_only=True):
    """Base of workforce-management events (topic ``wfm``, keyed by ``queue``)."""

    TOPIC: ClassVar[Topic] = Topic.WFM
    KEY: ClassVar[str] = "queue"
    queue: Label


P = TypeVar("P", bound=Payload)


class Event(msgspec.Struct, Generic[P], frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The envelope: identity, type and schema version, times, origin and the payload.

    ``occurred_at`` is when it happened (UTC, milliseconds); ``recorded_at`` is stamped
    by the event log when the event is appended. ``key`` is the partition key and
    always equals the payload's key field.
    """

    id: Label
    type: Label
    schema_version: Label
    occurred_at: UtcTime
    recorded_at: UtcTime | None = None
    source: Label
    site: Label = "main"
    key: Label
    payload: P


def to_utc_ms(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to whole milliseconds; naive datetimes are refused."""
    if moment.tzinfo is UTC and not moment.microsecond % 1000:
        return moment
    if moment.tzinfo is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()} has no timezone; pass an aware datetime "
            "such as datetime.now(UTC)"
        )
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def make_event(
    payload: P,
    *,
    occurred_at: datetime,
    source: str,
    site: str = "main",
    event_id: str | None = None,
) -> Event[P]:
    """Wrap ``payload`` in an envelope, deriving type, version and key from it.

    ``event_id`` defaults to a random UUID; deterministic producers (the simulator)
    pass ids derived from their seed.
    """
    major, minor = payload.VERSION
    return Event(
        id=event_id or uuid.uuid4().hex,
        type=payload.TYPE,
        schema_version=f"{major}.{minor}",
        occurred_at=to_utc_ms(occurred_at),
        source=source,
        site=site,
        key=payload.partition_key(),
        payload=payload,
    )
