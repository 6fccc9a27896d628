"""A small center and a virtual-clock driver for engine tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from callcore.center import CenterConfig, load_center
from callcore.clock import VirtualClock
from callcore.engine import Engine
from ingest.contract import Event, Payload

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def center(**overrides: Any) -> CenterConfig:
    """Two queues, a team per queue, leads, a manager and a director."""
    raw: dict[str, Any] = {
        "numbers": [
            {"number": "4001", "entry": {"kind": "queue", "target": "sales"}},
            {"number": "4002", "entry": {"kind": "queue", "target": "support"}, "priority": 5},
        ],
        "queues": [
            {"name": "sales", "ring_timeout_s": 10, "after_call_work_s": 5},
            {"name": "support", "ring_timeout_s": 10, "after_call_work_s": 0, "priority": 1},
        ],
        "teams": [{"name": "red", "group": "east"}, {"name": "blue", "group": "west"}],
        "managers": {"boss": ["east"]},
        "agents": [
            {"id": "a1", "team": "red", "skills": {"sales": 1, "support": 1}},
            {"id": "a2", "team": "red", "skills": {"sales": 2}},
            {"id": "a3", "team": "blue", "skills": {"sales": 1, "support": 2},
             "external_transfer": True},
            {"id": "lead-red", "team": "red", "role": "team_lead"},
            {"id": "lead-blue", "team": "blue", "role": "team_lead"},
            {"id": "boss", "role": "manager"},
            {"id": "ceo", "role": "director"},
        ],
    }
    for key, value in overrides.items():
        if key == "queue_options":
            raw["queues"] = [{**q, **value.get(q["name"], {})} for q in raw["queues"]]
        else:
            raw[key] = value
    return load_center(raw)


class Harness:
    """An engine on a virtual clock, stepped through its timers like a simulation."""

    def __init__(self, config: CenterConfig | None = None, *, seed: int = 1,
                 **options: Any) -> None:
        self.clock = VirtualClock(START)
        self.engine = Engine(config or center(), clock=self.clock, seed=seed, **options)
        self.events: list[Event[Payload]] = []

    def ready(self, *agents: str) -> None:
        """Log agents in and make them ready."""
        for agent in agents:
            self.engine.log_in(agent, extension=f"8{agent}")
            self.engine.set_ready(agent)
        self.take()

    def wait(self, seconds: float) -> list[Event[Payload]]:
        """Advance the clock, firing every timer at its own due instant."""
        end = self.clock.now_ms() + int(seconds * 1000)
        while (due := self.engine.next_timer_ms()) is not None and due <= end:
            self.clock.advance_to(max(due, self.clock.now_ms()))
            self.engine.advance()
        self.clock.advance_to(end)
        return self.take()

    def take(self) -> list[Event[Payload]]:
        """Events emitted since the last take."""
        new = self.engine.drain()
        self.events += new
        return new


def table(events: list[Event[Payload]], *fields: str) -> list[tuple[Any, ...]]:
    """Events as rows: seconds since START, type, then the named payload fields."""
    rows = []
    for event in events:
        payload = msgspec.structs.asdict(event.payload)
        at = (event.occurred_at - START).total_seconds()
        rows.append((at, event.type, *(payload.get(f) for f in fields)))
    return rows
