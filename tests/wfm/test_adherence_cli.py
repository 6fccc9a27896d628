"""Adherence end to end: a pasted agent-state trace and a published schedule in the log,
``queuecast schedule adherence`` reading both (WF-10, AG-02)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.contract import encode_event, make_event
from ingest.contract.agents import AgentLoggedIn, AgentLoggedOut, AgentStateChanged
from queuecast.cli import app
from streams.agent_states import fold, state_spells

runner = CliRunner()

# time   agent  event          state / reason
TRACE = """
08:58  a1  logged_in
09:02  a1  state_changed  ready
09:40  a1  state_changed  talking
09:46  a1  state_changed  after_call_work
09:48  a1  state_changed  ready
10:00  a1  state_changed  not_ready  break
10:22  a1  state_changed  ready
11:00  a1  logged_out
09:00  b2  logged_in
09:00  b2  state_changed  ready
10:30  b2  logged_out
"""

ROSTER = [
    {"agent_id": "a1", "template": "2h", "day": "2026-03-02", "start": "2026-03-02T09:00:00",
     "end": "2026-03-02T11:00:00", "paid_minutes": 120, "skill": None,
     "activities": [{"kind": "break", "start": "2026-03-02T10:00:00",
                     "end": "2026-03-02T10:15:00", "paid": True}]},
    {"agent_id": "b2", "template": "2h", "day": "2026-03-02", "start": "2026-03-02T09:00:00",
     "end": "2026-03-02T11:00:00", "paid_minutes": 120, "skill": None, "activities": []},
]


def _events() -> list:
    out = []
    for line in TRACE.strip().splitlines():
        at, agent, kind, *rest = line.split()
        hour, minute = map(int, at.split(":"))
        when = datetime(2026, 3, 2, hour, minute, tzinfo=UTC)
        if kind == "logged_in":
            payload = AgentLoggedIn(agent_id=agent, extension="1001")
        elif kind == "logged_out":
            payload = AgentLoggedOut(agent_id=agent)
        else:
            payload = AgentStateChanged(agent_id=agent, state=rest[0],
                                        reason=rest[1] if len(rest) > 1 else None)
        out.append(make_event(payload, occurred_at=when, source="test"))
    return out


def test_spells_from_the_trace() -> None:
    spells = state_spells(_events())
    a1 = spells[spells["agent_id"] == "a1"]
    assert a1["state"].tolist() == ["ready", "talking", "after_call_work", "ready",
                                    "not_ready", "ready"]
    assert a1["reason"].tolist()[4] == "break"
    minutes = ((a1["end"] - a1["start"]).dt.total_seconds() / 60).tolist()
    assert minutes == [38, 6, 2, 12, 22, 38]
    b2 = spells[spells["agent_id"] == "b2"]
    assert ((b2["end"] - b2["start"]).dt.total_seconds() / 60).tolist() == [90]


def test_fold_is_pure() -> None:
    events = _events()
    before: dict = {}
    after, closed = fold(before, events[1])
    assert before == {}
    assert closed is None
    assert after["a1"].state == "ready"


def test_adherence_command(home: Path, tmp_path: Path) -> None:
    trace = tmp_path / "agents.jsonl"
    trace.write_bytes(b"\n".join(encode_event(e) for e in _events()) + b"\n")
    assert runner.invoke(app, ["events", "produce", str(trace)]).exit_code == 0
    roster = tmp_path / "roster.jsonl"
    roster.write_text("".join(json.dumps(r) + "\n" for r in ROSTER))
    published = runner.invoke(app, ["schedule", "publish", str(roster), "--schedule-id", "w10",
                                    "--queue", "support", "--by", "planner1"])
    assert published.exit_code == 0, published.output
    result = runner.invoke(app, ["schedule", "adherence", "--schedule-id", "w10",
                                 "--tolerance", "5", "--json"])
    assert result.exit_code == 0, result.output
    days = {d["agent_id"]: d for d in json.loads(result.stdout)["days"]}
    # a1: back from the break 7 minutes late, 5 of them forgiven; worked 105 - 7 minutes
    assert days["a1"]["scheduled"] == 120
    assert days["a1"]["out_of_adherence"] == pytest.approx(2)
    assert days["a1"]["in_adherence"] == pytest.approx(118)
    assert days["a1"]["worked"] == pytest.approx(96)
    # b2: logged out at 10:30, half an hour early (25 minutes after the tolerance)
    assert days["b2"]["out_of_adherence"] == pytest.approx(25)
    assert days["b2"]["worked"] == pytest.approx(90)
    assert days["b2"]["conformance"] == pytest.approx(90 / 120)
