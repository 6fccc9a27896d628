"""Every payload type of the contract, by its ``type`` name."""

from __future__ import annotations

from types import MappingProxyType

from ingest.contract import agents, alarms, calls, tickets, wfm
from ingest.contract.envelope import Payload

__all__ = ["PAYLOAD_TYPES", "payload_class"]


def _collect() -> dict[str, type[Payload]]:
    found: dict[str, type[Payload]] = {}
    for module in (calls, agents, tickets, wfm, alarms):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, Payload) and "TYPE" in cls.__dict__:
                if cls.TYPE in found:
                    raise RuntimeError(f"event type {cls.TYPE!r} is defined twice")
                found[cls.TYPE] = cls
    return found


PAYLOAD_TYPES: MappingProxyType[str, type[Payload]] = MappingProxyType(_collect())
"""Payload class of each event type name, e.g. ``"call.offered" -> CallOffered``."""


def payload_class(event_type: str) -> type[Payload]:
    """The payload class of ``event_type``; ``KeyError`` with the known names if unknown."""
    try:
        return PAYLOAD_TYPES[event_type]
    except KeyError:
        raise KeyError(
            f"unknown event type {event_type!r}; known types: {', '.join(sorted(PAYLOAD_TYPES))}"
        ) from None
