"""The live boards (RT-01 queue board, RT-02 agent board) from golden traces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from traces import OTHERS, TRANSFERRED, interleave, parse_trace

from ingest.contract import Event
from streams.facts import FactsState, apply
from streams.views import Boards, ViewSettings, apply_boards

SKILLS = """
07:58:00  agent.logged_in      agent_id=a1 extension=1001
07:58:00  agent.skill_group_signed_in agent_id=a1 queue=support
07:58:00  agent.logged_in      agent_id=a2 extension=1002
07:58:00  agent.skill_group_signed_in agent_id=a2 queue=billing
07:58:00  agent.skill_group_signed_in agent_id=a2 queue=support
"""


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{clock}+00:00")


def run(events: list[Event], settings: ViewSettings | None = None) -> Boards:
    facts, boards = FactsState(), Boards(settings or ViewSettings())
    for event in events:
        facts, rows = apply(facts, event)
        apply_boards(boards, event, rows.calls)
    return boards


def queues(boards: Boards, now: datetime) -> dict[str, object]:
    return {q.queue: q for q in boards.snapshot(now)["queues"]}  # type: ignore[attr-defined]


def test_queue_board_after_the_traces() -> None:
    boards = run(parse_trace(SKILLS + TRANSFERRED + OTHERS))
    board = queues(boards, at("10:00:00"))
    support, billing, sales = board["support"], board["billing"], board["sales"]
    # support: c1 answered in 15 s (then transferred away), c5 answered in 5 s
    assert (support.offered, support.answered, support.abandoned) == (2, 2, 0)
    assert support.service_level == 1.0
    assert support.asa_s == 10.0
    assert support.aht_s == 180.0  # c5: 120 talk + 60 ACW; c1 counts in its last queue
    # billing: c1 answered in 30 s (> 20 s), c4 sent on to voicemail at once
    assert (billing.offered, billing.answered, billing.overflowed) == (2, 1, 1)
    assert billing.service_level == 0.0
    assert billing.aht_s == 225 + 30 + 245  # talk + hold + both agents' ACW
    # sales: c2 abandoned after 40 s
    assert (sales.offered, sales.abandoned, sales.abandon_rate) == (1, 1, 1.0)
    assert sales.service_level == 0.0
    assert sales.asa_s is None
    assert all(q.waiting == 0 for q in board.values())


def test_calls_waiting_and_longest_wait_mid_trace() -> None:
    events = [e for e in parse_trace(SKILLS + TRANSFERRED) if e.occurred_at < at("08:00:12")]
    board = queues(run(events), at("08:00:10.250"))
    assert (board["support"].waiting, board["support"].longest_wait_s) == (1, 10.0)
    assert board["support"].agents_by_state == {"ready": 2}
    # one call ahead, 2 agents working, no AHT yet: no estimate
    assert board["support"].estimated_wait_s is None


def test_agents_by_state_follow_their_queues() -> None:
    events = [e for e in parse_trace(SKILLS + TRANSFERRED) if e.occurred_at <= at("08:02:30.250")]
    board = queues(run(events), at("08:02:31"))
    assert board["support"].agents_by_state == {"after_call_work": 1, "talking": 1}
    assert board["billing"].agents_by_state == {"talking": 1}


def test_agent_board() -> None:
    boards = run(parse_trace(SKILLS + TRANSFERRED))
    agents = {a.agent_id: a for a in boards.snapshot(at("08:06:00"))["agents"]}
    a1, a2 = agents["a1"], agents["a2"]
    assert (a1.state, a1.time_in_state_s, a1.calls_today) == ("ready", 39.75, 1)
    assert a1.queues == ("support",)
    assert a1.talk_s == 105.0  # talking 45 + hold 30 + talking 30
    assert a1.ready_s == 72.25 + 39.75  # 07:59:00-08:00:12.25, then since 08:05:20.25
    assert (a2.state, a2.reason, a2.calls_today) == ("not_ready", "break", 1)
    assert a2.not_ready_s == pytest.approx(14.75)
    assert a2.queues == ("billing", "support")


def test_today_starts_at_local_midnight() -> None:
    late = """
15:59:00  call.offered  call_id=n1 direction=inbound caller=+8613800000009 dialed=4008001001
15:59:00  call.queued   call_id=n1 queue=sales
16:00:30  call.offered  call_id=n2 direction=inbound caller=+8613800000008 dialed=4008001001
16:00:30  call.queued   call_id=n2 queue=sales
"""  # 16:00 UTC is midnight in Shanghai
    boards = run(parse_trace(late), ViewSettings(time_zone="Asia/Shanghai"))
    sales = queues(boards, at("16:01:00"))["sales"]
    assert (sales.offered, sales.waiting, sales.longest_wait_s) == (1, 2, 120.0)
    utc = queues(run(parse_trace(late)), at("16:01:00"))["sales"]
    assert utc.offered == 2


def test_per_queue_threshold_and_variants() -> None:
    settings = ViewSettings(thresholds={"billing": 30.0}, sl_variant="offered")
    board = queues(run(parse_trace(TRANSFERRED + OTHERS), settings), at("10:00:00"))
    assert board["billing"].service_level == 0.5  # c1 within 30 s, over 2 offered


@pytest.mark.parametrize("seed", range(10))
def test_boards_do_not_depend_on_topic_interleaving(seed: int) -> None:
    events = parse_trace(SKILLS + TRANSFERRED + OTHERS)
    shuffled = interleave(events, seed=seed)
    now = datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert run(shuffled).snapshot(now) == run(events).snapshot(now)
