"""Ticket events (topic ``tickets``, keyed by ``ticket_id``): minimal work orders (TK-01)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ingest.contract.envelope import TicketPayload
from ingest.contract.types import AgentId, CallId, Label, Text

__all__ = [
    "TicketAssigned",
    "TicketClosed",
    "TicketCommented",
    "TicketCreated",
    "TicketPriority",
    "TicketStatus",
    "TicketStatusChanged",
]

TicketStatus = Literal["open", "in_progress", "pending", "resolved", "closed"]
TicketPriority = Literal["low", "normal", "high", "urgent"]


class TicketCreated(TicketPayload, frozen=True, kw_only=True):
    """A ticket was opened, usually from a call."""

    TYPE: ClassVar[str] = "ticket.created"
    subject: Label
    created_by: AgentId
    call_id: CallId | None = None
    customer_id: Label | None = None
    category: Label | None = None
    priority: TicketPriority = "normal"


class TicketAssigned(TicketPayload, frozen=True, kw_only=True):
    """The ticket was assigned to an agent or a team."""

    TYPE: ClassVar[str] = "ticket.assigned"
    assignee: Label
    assigned_by: AgentId


class TicketStatusChanged(TicketPayload, frozen=True, kw_only=True):
    """The ticket moved to another status."""

    TYPE: ClassVar[str] = "ticket.status_changed"
    status: TicketStatus
    previous: TicketStatus | None = None
    changed_by: AgentId


class TicketCommented(TicketPayload, frozen=True, kw_only=True):
    """Someone added a comment to the ticket."""

    TYPE: ClassVar[str] = "ticket.commented"
    author: AgentId
    body: Text


class TicketClosed(TicketPayload, frozen=True, kw_only=True):
    """The ticket was closed."""

    TYPE: ClassVar[str] = "ticket.closed"
    closed_by: AgentId
    resolution: Label | None = None
