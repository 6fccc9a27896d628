"""The call-control engine: golden traces, ACD rules, call controls, supervision, replay."""

from __future__ import annotations

import pytest
from harness import Harness, center, table

from callcore.engine import CommandRejectedError, Engine
from ingest.contract import encode_event


def test_golden_trace_of_a_queued_call_with_rona_and_after_call_work() -> None:
    """ACD-02/ACD-06/AG-02: higher skill rings first, RONA moves on and sets not-ready."""
    h = Harness()
    h.ready("a1", "a2")
    call = h.engine.offer_call(caller="+8613800138000", dialed="4001", call_id="c1")
    h.wait(10)
    h.engine.answer("a1")
    h.wait(120)
    h.engine.hang_up("a1")
    h.wait(6)
    assert call == "c1"
    assert table(h.events[6:], "agent_id", "state", "reason") == [
        (0.0, "call.offered", None, None, None),
        (0.0, "call.queued", None, None, None),
        (0.0, "call.ringing", "a2", None, None),
        (0.0, "agent.state_changed", "a2", "ringing", None),
        (10.0, "call.rona", "a2", None, None),
        (10.0, "agent.state_changed", "a2", "not_ready", "rona"),
        (10.0, "call.ringing", "a1", None, None),
        (10.0, "agent.state_changed", "a1", "ringing", None),
        (10.0, "call.answered", "a1", None, None),
        (10.0, "agent.state_changed", "a1", "talking", None),
        (130.0, "call.recording_stored", "a1", None, "forced"),
        (130.0, "call.ended", "a1", None, None),
        (130.0, "agent.state_changed", "a1", "after_call_work", None),
        (135.0, "agent.state_changed", "a1", "ready", None),
    ]
    answered = next(e.payload for e in h.events if e.type == "call.answered")
    assert answered.wait_s == 10.0  # type: ignore[attr-defined]
    assert answered.ring_s == 0.0  # type: ignore[attr-defined]
    ended = next(e.payload for e in h.events if e.type == "call.ended")
    assert (ended.disposition, ended.ended_by) == ("answered", "agent")  # type: ignore[attr-defined]
    assert h.engine.agents["a1"].state == "ready"
    assert h.engine.agents["a2"].state == "not_ready"
    assert h.engine.calls == {}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("linear", ["a1", "a1", "a1"]),
        ("round_robin", ["a1", "a2", "a3"]),
        ("fewest_calls", ["a1", "a2", "a3"]),
        ("least_recent", ["a1", "a2", "a3"]),
        ("longest_idle", ["a1", "a2", "a3"]),
    ],
)
def test_strategies_pick_the_expected_agent(strategy: str, expected: list[str]) -> None:
    """ACD-02: each strategy over three agents of equal skill, calls handled one at a time."""
    config = center(
        agents=[{"id": a, "skills": {"sales": 1}} for a in ("a1", "a2", "a3")],
        teams=[], managers={},
        queue_options={"sales": {"strategy": strategy, "after_call_work_s": 0}},
    )
    h = Harness(config)
    h.ready("a1", "a2", "a3")
    picked = []
    for n in range(3):
        h.engine.offer_call(caller=f"+86138000000{n}", dialed="4001")
        h.take()
        agent = next(a for a, r in h.engine.agents.items() if r.state == "ringing")
        picked.append(agent)
        h.engine.answer(agent)
        h.wait(30)
        h.engine.hang_up(agent)
        h.wait(1)
    assert picked == expected


def test_ring_all_rings_every_ready_agent_and_the_first_answer_wins() -> None:
    config = center(queue_options={"sales": {"strategy": "ring_all"}})
    h = Harness(config)
    h.ready("a1", "a3")
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    rung = [e.payload.agent_id for e in h.take() if e.type == "call.ringing"]  # type: ignore[attr-defined]
    assert rung == ["a1", "a3"]
    h.engine.answer("a3")
    h.take()
    assert h.engine.agents["a1"].state == "ready"
    assert h.engine.agents["a3"].state == "talking"


def test_random_strategy_is_deterministic_for_a_seed() -> None:
    def picks(seed: int) -> list[str]:
        config = center(agents=[{"id": f"r{i}", "skills": {"sales": 1}} for i in range(6)],
                        teams=[], managers={},
                        queue_options={"sales": {"strategy": "random", "after_call_work_s": 0}})
        h = Harness(config, seed=seed)
        h.ready(*(f"r{i}" for i in range(6)))
        out = []
        for n in range(8):
            h.engine.offer_call(caller=f"+8613800000{n:02d}", dialed="4001")
            agent = next(a for a, r in h.engine.agents.items() if r.state == "ringing")
            out.append(agent)
            h.engine.answer(agent)
            h.engine.hang_up(agent)
            h.wait(1)
        return out

    assert picks(3) == picks(3)
    assert len(set(picks(3))) > 1


def test_caller_priority_and_queue_priority_order_the_waiting_calls() -> None:
    """ACD-03: a priority caller jumps the queue; an agent in two queues takes the
    higher-priority queue first."""
    h = Harness()
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="normal")
    h.engine.offer_call(caller="+8613800000002", dialed="4001", call_id="vip", priority=9)
    h.engine.offer_call(caller="+8613800000003", dialed="4002", call_id="support")
    assert h.engine.waiting("sales") == ["vip", "normal"]
    queued = {e.payload.call_id: e.payload.position for e in h.take()  # type: ignore[attr-defined]
              if e.type == "call.queued"}
    assert queued == {"normal": 1, "vip": 1, "support": 1}
    h.ready("a1")  # in sales and support; support has queue priority 1
    ringing = h.engine.agents["a1"].call_id
    assert ringing == "support"


def test_sticky_agent_gets_the_returning_caller() -> None:
    config = center(queue_options={"sales": {"sticky_agent": True, "after_call_work_s": 0,
                                             "strategy": "linear"}})
    h = Harness(config)
    h.ready("a1", "a3")
    h.engine.offer_call(caller="+8613811112222", dialed="4001")
    h.engine.answer("a1")
    h.engine.hang_up("a1")
    h.engine.offer_call(caller="+8613800000009", dialed="4001")  # someone else
    h.engine.answer("a1")
    h.engine.offer_call(caller="+8613811112222", dialed="4001")  # a1 busy: a3
    assert h.engine.agents["a3"].state == "ringing"
    h.engine.answer("a3")
    h.engine.hang_up("a3")
    h.engine.hang_up("a1")
    h.wait(1)
    h.engine.offer_call(caller="+8613811112222", dialed="4001")  # last agent is a3 now
    assert h.engine.agents["a3"].state == "ringing"


def test_overflow_after_max_wait_and_with_nobody_logged_in() -> None:
    """ACD-06: max wait -> another queue; no agents -> callback (CC-08)."""
    config = center(queue_options={
        "sales": {"max_wait_s": 60, "overflow": {"kind": "queue", "target": "support"}},
        "support": {"no_agents": {"kind": "callback"}},
    })
    h = Harness(config)
    h.ready("a3")
    h.engine.set_not_ready("a3", reason="meeting")
    h.take()
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.take()
    events = h.wait(61)
    assert table(events, "queue", "reason", "target")[:2] == [
        (60.0, "call.overflowed", "sales", "max_wait", "support"),
        (60.0, "call.queued", "support", None, None),
    ]
    h.engine.log_out("a3")
    h.take()
    h.engine.offer_call(caller="+8613800000002", dialed="4002", call_id="c2")
    events = h.take()
    assert [e.type for e in events if e.payload.call_id == "c2"] == [  # type: ignore[attr-defined]
        "call.offered", "call.overflowed", "call.callback_requested", "call.ended"
    ]
    assert events[-1].payload.disposition == "callback"  # type: ignore[attr-defined]


def test_overflow_to_voicemail_and_a_message_left() -> None:
    """ACD-06, CC-06."""
    config = center(queue_options={"sales": {"max_wait_s": 30,
                                             "overflow": {"kind": "voicemail", "target": "sales"}}})
    h = Harness(config)
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.wait(31)
    h.engine.voicemail_recorded("c1", duration_s=12.5, mailbox="sales")
    types = [e.type for e in h.take()]
    assert types == ["call.voicemail_left", "call.ended"]
    assert h.events[-1].payload.disposition == "voicemail"  # type: ignore[attr-defined]


def test_position_announcements_repeat_while_waiting() -> None:
    """ACD-04: entry position and periodic position and estimated wait."""
    config = center(queue_options={"sales": {"announce_every_s": 30}})
    h = Harness(config)
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="first")
    h.engine.offer_call(caller="+8613800000002", dialed="4001", call_id="second")
    h.take()
    announced = table([e for e in h.wait(65) if e.type == "call.announcement_played"],
                      "call_id", "position")
    assert announced == [
        (30.0, "call.announcement_played", "first", 1),
        (30.0, "call.announcement_played", "second", 2),
        (60.0, "call.announcement_played", "first", 1),
        (60.0, "call.announcement_played", "second", 2),
    ]


def test_abandon_in_queue_becomes_a_callback_task() -> None:
    """CC-08."""
    config = center(queue_options={"sales": {"callback_on_abandon": True}})
    h = Harness(config)
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.wait(42)
    h.engine.caller_hangs_up("c1")
    assert table(h.take(), "stage", "wait_s", "reason", "disposition") == [
        (42.0, "call.abandoned", "queue", 42.0, None, None),
        (42.0, "call.callback_requested", None, None, "abandoned", None),
        (42.0, "call.ended", None, None, None, "abandoned"),
    ]
    assert h.engine.waiting("sales") == []


def test_hold_mute_and_the_survey_after_the_call() -> None:
    """AG-02, AG-04, CC-10, CC-11."""
    config = center(queue_options={"sales": {"survey": "csat", "announce_agent_id": True}})
    h = Harness(config)
    h.ready("a2")
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.engine.answer("a2")
    h.engine.hold("a2")
    assert h.engine.agents["a2"].state == "hold"
    with pytest.raises(CommandRejectedError, match="is held"):
        h.engine.hold("a2")
    h.engine.resume("a2")
    h.engine.mute("a2")
    h.engine.unmute("a2")
    h.engine.hang_up("a2")
    h.engine.press_digits("c1", "4")
    types = [e.type for e in h.take()]
    assert "call.announcement_played" in types
    assert types[-5:] == ["call.recording_stored", "call.ivr_entered", "agent.state_changed",
                          "call.survey_answered", "call.ended"]
    survey = next(e.payload for e in h.events if e.type == "call.survey_answered")
    assert (survey.score, survey.agent_id) == (4, "a2")  # type: ignore[attr-defined]


def test_transfers_blind_consult_and_conference() -> None:
    """AG-04: external transfer needs a permission; consult then conference."""
    h = Harness()
    h.ready("a1", "a2", "a3")
    h.engine.offer_call(caller="+8613800000001", dialed="4002", call_id="c1")  # a3: level 2
    h.engine.answer("a3")
    with pytest.raises(CommandRejectedError) as denied:
        h.engine.transfer("a3", target_kind="queue", target="nowhere")
    assert denied.value.code == "unknown"
    h.engine.transfer("a3", target_kind="queue", target="sales")
    assert h.engine.calls["c1"].stage == "ringing"
    agent = h.engine.calls["c1"].ringing[0]
    h.engine.answer(agent)
    with pytest.raises(CommandRejectedError) as forbidden:
        h.engine.transfer(agent, target_kind="external", target="+8613912345678")
    assert forbidden.value.code == "forbidden"
    h.take()
    h.wait(6)
    h.engine.consult(agent, target_kind="agent", target="a3")
    h.engine.conference(agent)
    events = table(h.take(), "kind", "target")
    assert [row[1] for row in events] == [
        "call.consulted", "agent.state_changed", "call.conferenced", "call.resumed",
        "agent.state_changed",
    ]


def test_pick_up_a_call_ringing_elsewhere_and_outbound_dial() -> None:
    """ACD-07, AG-04."""
    h = Harness()
    h.ready("a2")
    h.engine.log_in("a1", extension="801")
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.engine.pick_up("a1", "c1")
    assert h.engine.calls["c1"].agent_id == "a1"
    assert h.engine.agents["a2"].state == "ready"
    h.engine.hang_up("a1")
    h.wait(6)
    call = h.engine.dial("a2", "+8613912345678")
    h.engine.remote_answered(call)
    h.engine.hang_up("a2")
    offered = [e.payload for e in h.take() if e.type == "call.offered"]
    assert offered[-1].direction == "outbound"  # type: ignore[attr-defined]
    assert h.engine.calls == {}


@pytest.mark.parametrize(
    ("supervisor", "agent", "allowed"),
    [
        ("lead-red", "a1", True), ("lead-red", "a3", False), ("lead-blue", "a3", True),
        ("boss", "a2", True), ("boss", "a3", False), ("ceo", "a3", True),
        ("a1", "a2", False), ("lead-red", "lead-blue", False),
    ],
)
def test_supervisors_act_only_inside_their_scope(supervisor: str, agent: str,
                                                 allowed: bool) -> None:
    """SV-02, SV-03: director > manager (own groups) > team lead (own team) > agent."""
    h = Harness()
    for user in ("a1", "a2", "a3", "lead-blue"):
        h.engine.log_in(user, extension=f"8{user}", queues=[])
    h.take()
    if allowed:
        h.engine.force(supervisor, agent, "ready")
        assert h.engine.agents[agent].state == "ready"
        assert h.take()[0].type == "agent.action_forced"
    else:
        with pytest.raises(CommandRejectedError) as caught:
            h.engine.force(supervisor, agent, "ready")
        assert caught.value.code == "forbidden"
        assert h.take() == []


def test_supervisor_join_modes_and_intercept() -> None:
    """SV-01."""
    h = Harness()
    h.ready("a1")
    h.engine.offer_call(caller="+8613800000001", dialed="4001", call_id="c1")
    h.engine.answer("a1")
    for mode in ("monitor", "whisper", "barge"):
        h.engine.supervise("lead-red", "a1", mode)  # type: ignore[arg-type]
    h.engine.supervise("lead-red", "a1", "intercept")
    assert h.engine.calls["c1"].agent_id == "lead-red"
    assert h.engine.agents["a1"].state == "after_call_work"
    h.engine.caller_hangs_up("c1")
    assert h.engine.calls == {}


def test_rejected_commands_change_nothing() -> None:
    h = Harness()
    h.ready("a1")
    before = (dict(h.engine.agents), dict(h.engine.calls))
    for command in (
        lambda: h.engine.answer("a1"),
        lambda: h.engine.hang_up("a1"),
        lambda: h.engine.log_in("a1", extension="x"),
        lambda: h.engine.sign_in("a2", "sales"),
        lambda: h.engine.sign_in("a1", "sales"),
        lambda: h.engine.set_not_ready("a1", reason=""),
        lambda: h.engine.offer_call(caller="1", dialed="999"),
        lambda: h.engine.caller_hangs_up("nope"),
        lambda: h.engine.force("lead-red", "a1", "sign_in"),
    ):
        with pytest.raises(CommandRejectedError):
            command()
    assert h.take() == []
    assert (h.engine.agents, h.engine.calls) == before


def test_tickets_from_a_call() -> None:
    """TK-01."""
    h = Harness()
    ticket = h.engine.create_ticket("a1", subject="card lost", call_id="c9", category="card")
    h.engine.assign_ticket("lead-red", ticket, assignee="a2")
    h.engine.change_ticket_status("a2", ticket, status="in_progress")
    h.engine.comment_ticket("a2", ticket, body="blocked the card")
    h.engine.close_ticket("a2", ticket, resolution="replaced")
    assert [e.type for e in h.take()] == [
        "ticket.created", "ticket.assigned", "ticket.status_changed", "ticket.commented",
        "ticket.closed",
    ]
    assert {e.key for e in h.events} == {ticket}
    with pytest.raises(CommandRejectedError, match="closed"):
        h.engine.comment_ticket("a2", ticket, body="again")


def _busy_day(seed: int) -> Harness:
    h = Harness(seed=seed)
    h.ready("a1", "a2", "a3")
    for n in range(30):
        h.engine.offer_call(caller=f"+86138000{n:05d}", dialed="4001" if n % 3 else "4002")
        h.wait(7)
        for agent, record in list(h.engine.agents.items()):
            if record.state == "ringing" and n % 4:
                h.engine.answer(agent)
            elif record.state == "talking" and n % 2:
                h.engine.hang_up(agent)
            elif record.state == "not_ready":
                h.engine.set_ready(agent)
    h.wait(600)
    return h


def test_same_commands_and_seed_give_byte_identical_events() -> None:
    first = [encode_event(e) for e in _busy_day(5).events]
    second = [encode_event(e) for e in _busy_day(5).events]
    assert first == second
    assert len(first) > 150


def test_replaying_the_events_rebuilds_the_state() -> None:
    h = _busy_day(6)
    rebuilt = Engine(center(), clock=h.clock, seed=6)
    rebuilt.replay(h.events)
    assert rebuilt.agents == h.engine.agents
    assert rebuilt.calls == h.engine.calls
    assert {q: rebuilt.waiting(q) for q in ("sales", "support")} == {
        q: h.engine.waiting(q) for q in ("sales", "support")
    }


def test_only_the_creator_assignee_or_a_supervisor_in_scope_changes_a_ticket() -> None:
    """TK-01 with SV-03 scope."""
    h = Harness()
    ticket = h.engine.create_ticket("a1", subject="refund")
    for outsider in ("a2", "a3", "lead-blue"):
        with pytest.raises(CommandRejectedError) as caught:
            h.engine.close_ticket(outsider, ticket)
        assert caught.value.code == "forbidden"
    h.engine.assign_ticket("lead-red", ticket, assignee="a3")
    h.engine.comment_ticket("a3", ticket, body="called back")
    h.engine.close_ticket("a1", ticket)
    assert h.engine.tickets[ticket].status == "closed"


def test_customer_id_travels_with_the_offer() -> None:
    h = Harness()
    h.engine.offer_call(caller="+8613800000001", dialed="4001", customer_id="cust-42")
    offered = next(e.payload for e in h.take() if e.type == "call.offered")
    assert offered.customer_id == "cust-42"  # type: ignore[attr-defined]
