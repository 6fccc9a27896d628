"""What a history import did with each line: converted to events, no event, or an error.

Shared by the Asterisk ``queue_log`` and CDR importers. Every line read ends up in
exactly one of three places, so ``lines == converted + no_event + len(errors)`` always
holds: converted (it gave contract events), no event (a line with no call-center
meaning, counted by label), or an error (its line number and the reason).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from ingest.contract import Event, InvalidEventError, Payload, decode_event, encode_event

__all__ = [
    "Converted", "EventReport", "LineError", "NoEvent", "Outcome", "RecordError", "checked",
    "event_id",
]


class RecordError(ValueError):
    """A field of a record cannot be read; the message is the reason the report shows."""


@dataclass(frozen=True, slots=True)
class Converted:
    """A line that became contract events."""

    line: int
    events: tuple[Event[Payload], ...]


@dataclass(frozen=True, slots=True)
class NoEvent:
    """A line read correctly that has no call-center meaning (e.g. CONFIGRELOAD)."""

    line: int
    label: str


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that could not be converted: the file, its line number and why."""

    source: str
    line: int
    reason: str


Outcome = Converted | NoEvent | LineError


@dataclass(slots=True)
class EventReport:
    """Running totals of an import; ``add`` each outcome, then ``to_dict`` for ``--json``."""

    lines: int = 0
    converted: int = 0
    events: int = 0
    no_event: Counter[str] = field(default_factory=Counter)
    errors: list[LineError] = field(default_factory=list)
    call_ids: set[str] = field(default_factory=set)
    event_types: Counter[str] = field(default_factory=Counter)

    @property
    def calls(self) -> int:
        """Distinct calls that received at least one event."""
        return len(self.call_ids)

    def add(self, outcome: Outcome) -> None:
        """Count one line's outcome."""
        self.lines += 1
        if isinstance(outcome, LineError):
            self.errors.append(outcome)
        elif isinstance(outcome, NoEvent):
            self.no_event[outcome.label] += 1
        else:
            self.converted += 1
            self.events += len(outcome.events)
            for event in outcome.events:
                self.event_types[event.type] += 1
                if event.type.startswith("call."):
                    self.call_ids.add(event.key)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready builtins: lines, events, calls, errors and the breakdowns."""
        return {
            "lines": self.lines, "events": self.events, "calls": self.calls,
            "converted": self.converted, "no_event": dict(sorted(self.no_event.items())),
            "event_types": dict(sorted(self.event_types.items())),
            "errors": [{"source": e.source, "line": e.line, "reason": e.reason}
                       for e in self.errors],
        }


def event_id(*parts: object) -> str:
    """A deterministic event id from what identifies the event (re-imports give the same)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def checked(events: list[Event[Payload]]) -> str | None:
    """The first contract violation among ``events`` (a reason), or None if all are valid."""
    for event in events:
        try:
            decode_event(encode_event(event), expected_type=event.type)
        except InvalidEventError as exc:
            return f"{event.type} would break the contract: {exc.reason}"
    return None
