"""Golden traces through the fact fold (streams.facts): pasted events in, call records,
legs, agent-state intervals, surveys and ticket rows out (RP-01, RP-03, RP-05, RP-06)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import demo_events
from traces import OTHERS, TRANSFERRED, interleave, parse_trace

from ingest.contract import Event
from streams.facts import FactRows, FactsState, advance, apply, flush, fold_events

TICKETS = """
10:00:00  ticket.created         ticket_id=t1 subject=refund created_by=a1 call_id=c1 category=billing priority=high
10:05:00  ticket.assigned        ticket_id=t1 assignee=a2 assigned_by=a1
10:06:00  ticket.status_changed  ticket_id=t1 status=in_progress changed_by=a2
10:30:00  ticket.closed          ticket_id=t1 closed_by=a2 resolution=refunded
"""


def fold_all(events: list[Event], *, end: bool = True) -> tuple[FactsState, FactRows]:
    return fold_events(events, finish=end)


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{clock}+00:00")


def test_transferred_call_record() -> None:
    state, out = fold_all(parse_trace(TRANSFERRED), end=False)
    assert state.calls == {}  # written by the fold itself once a2 left after-call work
    [call] = out.calls
    assert call["call_id"] == "c1"
    assert call["event_id"] == "e20"  # the call.ended event
    assert (call["queue"], call["first_queue"], call["queues"]) == (
        "billing", "support", ["support", "billing"])
    assert (call["agent_id"], call["agents"]) == ("a1", ["a1", "a2"])
    assert call["offered_at"] == at("08:00:00.250")
    assert call["answered_at"] == at("08:00:15.250")
    assert call["ended_at"] == at("08:05:00.250")
    assert call["wait_s"] == 15 + 30
    assert call["ring_s"] == 3 + 2
    assert call["hold_s"] == 30
    assert call["holds"] == 1
    assert call["talk_s"] == (105 + 150) - 30  # two agent legs, hold excluded
    assert call["acw_s"] == 200 + 45  # a1 08:02:00-08:05:20, a2 08:05:00-08:05:45
    assert (call["transfers"], call["overflows"]) == (1, 0)
    assert (call["outcome"], call["disposition"], call["ended_by"]) == (
        "answered", "answered", "caller")


def test_transferred_call_legs() -> None:
    _, out = fold_all(parse_trace(TRANSFERRED))
    legs = [(s["segment_no"], s["kind"], s["queue"], s["agent_id"], s["duration_s"],
             s["outcome"]) for s in out.call_segments]
    assert legs == [
        (1, "queue", "support", "", 15.0, "answered"),
        (2, "agent", "support", "a1", 105.0, "transferred"),
        (3, "queue", "billing", "", 30.0, "answered"),
        (4, "agent", "billing", "a2", 150.0, "ended"),
    ]
    assert [s["segment_id"] for s in out.call_segments] == ["e4", "e7", "e15", "e18"]


def test_agent_state_intervals_of_the_transfer() -> None:
    _, out = fold_all(parse_trace(TRANSFERRED))
    a1 = [(s["state"], s["call_id"], s["duration_s"]) for s in out.agent_state_intervals
          if s["agent_id"] == "a1"]
    assert a1 == [("ready", "", 72.25), ("ringing", "c1", 3.0), ("talking", "c1", 45.0),
                  ("hold", "c1", 30.0), ("talking", "c1", 30.0),
                  ("after_call_work", "c1", 200.0)]
    # a2's break is still open: an open spell is not a fact yet
    assert [s["state"] for s in out.agent_state_intervals if s["agent_id"] == "a2"] == [
        "ready", "ringing", "talking", "after_call_work"]


@pytest.mark.parametrize("seed", range(25))
def test_any_interleaving_of_the_topics_gives_the_same_rows(seed: int) -> None:
    """Calls and agents are different topics: only per-key order is guaranteed."""
    events = parse_trace(TRANSFERRED) + parse_trace(OTHERS)
    shuffled = interleave(events, seed=seed)
    _, want = fold_all(events)
    _, got = fold_all(shuffled)
    for table in ("calls", "call_segments", "agent_state_intervals", "surveys"):
        def key(row: dict) -> str:
            return str(sorted(row.items()))
        assert sorted(map(key, getattr(got, table))) == sorted(map(key, getattr(want, table)))


def test_abandoned_ivr_voicemail_and_survey_calls() -> None:
    _, out = fold_all(parse_trace(OTHERS))
    calls = {c["call_id"]: c for c in out.calls}
    assert set(calls) == {"c2", "c3", "c4", "c5"}
    c2, c3, c4, c5 = (calls[k] for k in ("c2", "c3", "c4", "c5"))
    assert (c2["outcome"], c2["abandon_stage"], c2["queue"], c2["wait_s"]) == (
        "abandoned", "queue", "sales", 40.0)
    assert c2["answered_at"] is None
    assert c2["agent_id"] == ""
    assert (c3["outcome"], c3["queue"], c3["ivr_s"], c3["wait_s"]) == (
        "ivr_abandoned", "", 9.0, 0.0)
    # offered to billing (no agents) and sent to voicemail: counted in billing, unanswered
    assert (c4["outcome"], c4["queue"], c4["queued_at"], c4["overflows"], c4["disposition"]) \
        == ("unanswered", "billing", None, 1, "voicemail")
    assert (c5["talk_s"], c5["acw_s"], c5["ivr_s"]) == (120.0, 60.0, 16.0)
    assert (c5["survey_score"], c5["survey_max"]) == (4, 5)
    [survey] = out.surveys
    assert (survey["call_id"], survey["agent_id"], survey["score"], survey["survey"]) == (
        "c5", "a3", 4, "csat")


def test_ticket_rows_carry_status_and_priority() -> None:
    _, out = fold_all(parse_trace(TICKETS))
    assert [(t["kind"], t["agent_id"], t["status"], t["priority"], t["category"])
            for t in out.ticket_events] == [
        ("created", "a1", "open", "high", "billing"),
        ("assigned", "a2", "open", "high", ""),
        ("status_changed", "a2", "in_progress", "high", ""),
        ("closed", "a2", "closed", "high", ""),
    ]


def test_call_without_agent_events_waits_for_the_grace_period() -> None:
    """Imported history has no agent events: the row is written once the watermark passes
    the end of the call by the grace period, not before, and only once."""
    calls_only = [e for e in parse_trace(TRANSFERRED) if e.type.startswith("call.")]
    state, out = fold_all(calls_only, end=False)
    assert out.calls == []
    grace = timedelta(minutes=30)
    state, early = advance(state, at("08:35:00"), grace=grace)
    assert early.calls == []
    state, due = advance(state, at("08:35:00.250"), grace=grace)
    assert [c["call_id"] for c in due.calls] == ["c1"]
    assert due.calls[0]["acw_s"] == 0.0
    assert advance(state, at("09:35:00"), grace=grace)[1].calls == []
    assert flush(state)[1].calls == []


def test_late_agent_report_after_grace_is_forgotten() -> None:
    events = parse_trace(TRANSFERRED)
    state, _ = fold_all([e for e in events if e.type.startswith("call.")], end=False)
    state, _ = advance(state, at("09:00:00"), grace=timedelta(minutes=30))
    state, out = fold_all_from(state, [e for e in events if e.type.startswith("agent.")])
    assert out.calls == []
    assert set(state.calls) == {"c1"}  # the late reports wait under the call's key ...
    state, _ = advance(state, at("10:00:00"), grace=timedelta(minutes=30))
    assert state.calls == {}  # ... and are forgotten a grace period later
    assert all(a.binding is None for a in state.agents.values())


def fold_all_from(state: FactsState, events: list[Event]) -> tuple[FactsState, FactRows]:
    out = FactRows()
    for event in events:
        state, rows = apply(state, event)
        out.extend(rows)
    return state, out


def test_simulated_day_every_call_written_once() -> None:
    events = list(demo_events(seed=3))
    state, out = fold_all(events, end=False)
    offered = {e.payload.call_id for e in events if e.type == "call.offered"}
    assert sorted(c["call_id"] for c in out.calls) == sorted(offered)  # no flush needed
    assert state.calls == {}
    assert state.agents == {}  # every agent logged out: nothing left open
    answered = {e.payload.call_id for e in events if e.type == "call.answered"}
    assert {c["call_id"] for c in out.calls if c["outcome"] == "answered"} == answered
    acw = {}
    for spell in out.agent_state_intervals:
        if spell["state"] == "after_call_work":
            acw[spell["call_id"]] = acw.get(spell["call_id"], 0.0) + spell["duration_s"]
    for call in out.calls:
        assert call["acw_s"] == pytest.approx(acw.get(call["call_id"], 0.0), abs=1e-9)
    assert datetime(2026, 1, 1, tzinfo=UTC) < min(c["offered_at"] for c in out.calls)
