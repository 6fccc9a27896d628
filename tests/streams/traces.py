"""Golden traces for the stream tests: events pasted as a table, one per line.

    08:00:15.000  call.answered  call_id=c1 agent_id=a1 queue=support ring_s=3

Time (UTC, on ``DAY``), the contract type, then the payload's fields as ``name=value``
(converted to the field types by the contract). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import msgspec

from ingest.contract import Event, make_event
from ingest.contract.registry import payload_class

__all__ = ["DAY", "parse_trace"]

DAY = date(2026, 3, 2)


def parse_trace(text: str, *, day: date = DAY, site: str = "main") -> list[Event]:
    """The events of a pasted trace, ids ``e1, e2, ...`` in line order."""
    events = []
    for line in text.strip().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        at, kind, *fields = line.split()
        values = dict(field.split("=", 1) for field in fields)
        payload = msgspec.convert(values, payload_class(kind), strict=False)
        when = datetime.combine(day, time.fromisoformat(at), tzinfo=UTC)
        events.append(make_event(payload, occurred_at=when, source="trace", site=site,
                                 event_id=f"e{len(events) + 1}"))
    return events
