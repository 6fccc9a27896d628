"""Entry and routing through the engine: IVR flows, business hours, blacklist, region."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import START, Harness, table

from callcore import ivr
from callcore.blacklist import Blacklist
from callcore.calendar import load_calendar
from callcore.center import load_center
from callcore.clock import VirtualClock
from callcore.engine import CommandRejectedError, Engine
from callcore.region import caller_region
from ingest.contract import encode_event

CALENDAR = load_calendar({"schedules": {
    "retail_hotline": {"weekly": {"mon_fri": ["08:00-12:00", "13:00-20:00"]}},
}})
FLOWS = ivr.load_flows(ivr.EXAMPLE_FLOWS_DIR / "main.yaml",
                       hooks={"verify_pin", "account_balance"}, schedules={"retail_hotline"})


def hooks(name: str, args: Mapping[str, str], secret: str | None) -> ivr.HookResult:
    """A bank back end stand-in: PIN 123456 opens account 12345678."""
    if name == "verify_pin":
        ok = args["account"] == "12345678" and secret == "123456"
        return ivr.HookResult(values={"customer_name": "Li Lei"} if ok else None)
    return ivr.HookResult(values={"balance": "1024.50", "currency": "CNY"})


def bank(*, blocked: Any = None, **overrides: Any) -> Harness:
    queues = ["retail", "retail_zh", "cards_urgent", "cards_urgent_zh", "private_banking"]
    raw: dict[str, Any] = {
        "numbers": [
            {"number": "95555", "entry": {"kind": "ivr", "target": "main"}},
            {"number": "4008200888", "entry": {"kind": "ivr", "target": "main"}},
            {"number": "95556", "entry": {"kind": "queue", "target": "retail"},
             "schedule": "retail_hotline", "closed": {"kind": "voicemail", "target": "retail"}},
        ],
        "queues": [{"name": q, "after_call_work_s": 0,
                    **({"survey": "survey"} if q == "retail" else {})} for q in queues],
        "agents": [{"id": "a1", "skills": dict.fromkeys(queues, 1)}],
        **overrides,
    }
    return Harness(load_center(raw), flows=FLOWS, calendar=CALENDAR.state, hooks=hooks,
                   region_lookup=caller_region, blocked=blocked)


def ivr_rows(h: Harness) -> list[tuple[Any, ...]]:
    return [row[1:] for row in table(h.events, "node", "outcome") if row[1] == "call.ivr_node"]


def test_self_service_balance_after_pin_ends_in_the_ivr() -> None:
    """IVR-01, IVR-03: menus, collect, PIN check through a hook, lookup, hang-up."""
    h = bank()
    call = h.engine.offer_call(caller="+8613800138000", dialed="95555")
    for keys in ("1", "1", "12345678#", "123456#", "#"):
        h.engine.press_digits(call, keys)
    h.take()
    assert ivr_rows(h) == [
        ("call.ivr_node", "by_number", "default"),
        ("call.ivr_node", "welcome", "played"),
        ("call.ivr_node", "language", "matched:1"),
        ("call.ivr_node", "main_en", "matched:1"),
        ("call.ivr_node", "account", "collected"),
        ("call.ivr_node", "pin", "pin_ok"),
        ("call.ivr_node", "balance", "found"),
        ("call.ivr_node", "say_balance", "played"),
        ("call.ivr_node", "after_balance", "matched:#"),
        ("call.ivr_node", "goodbye", "hangup"),
    ]
    assert h.events[-1].payload.disposition == "ivr_completed"  # type: ignore[attr-defined]
    assert not any(b"123456#" in encode_event(e) or b'"123456"' in encode_event(e)
                   for e in h.events), "the PIN leaked into an event"
    assert h.engine.calls == {}


def test_zero_out_in_hours_queues_and_the_survey_flow_follows_the_agent() -> None:
    """IVR-02 open branch, CC-10 survey flow after the agent hangs up."""
    h = bank()
    h.ready("a1")
    call = h.engine.offer_call(caller="+8613800138000", dialed="95555")
    h.engine.press_digits(call, "1")
    h.engine.press_digits(call, "0")
    assert h.engine.calls[call].stage == "ringing"
    h.engine.answer("a1")
    h.wait(60)
    h.engine.hang_up("a1")
    h.engine.press_digits(call, "1")
    h.take()
    survey = next(e.payload for e in h.events if e.type == "call.survey_answered")
    assert (survey.survey, survey.score, survey.scale_max, survey.agent_id) == (  # type: ignore[attr-defined]
        "retail_csat", 1, 3, "a1")
    ended = h.events[-1].payload
    assert (ended.disposition, ended.agent_id) == ("answered", "a1")  # type: ignore[attr-defined]
    left = [e.payload for e in h.events if e.type == "call.ivr_left"]
    assert [(x.flow, x.exit) for x in left] == [("main", "transfer"), ("survey", "survey")]  # type: ignore[attr-defined]


def test_a_silent_caller_times_out_into_the_queue() -> None:
    """IVR-01 timeouts and retries on the injected clock."""
    h = bank()
    call = h.engine.offer_call(caller="+8613800138000", dialed="95555")
    h.wait(120)
    assert h.engine.calls[call].stage == "queued"
    assert h.engine.calls[call].queue == "retail"
    assert ("call.ivr_node", "language", "timeout") in ivr_rows(h)


def test_after_hours_zero_out_leaves_a_voicemail() -> None:
    """IVR-02 closed branch to voicemail, CC-06."""
    h = bank()
    h.clock.advance_to(h.clock.now_ms() + 13 * 3600 * 1000)  # 22:00 UTC = 06:00 Shanghai
    call = h.engine.offer_call(caller="+8613800138000", dialed="95555")
    h.engine.press_digits(call, "1")
    h.engine.press_digits(call, "0")
    assert h.engine.calls[call].stage == "voicemail"
    h.engine.voicemail_recorded(call, duration_s=20, mailbox="retail")
    h.take()
    assert h.events[-1].payload.disposition == "voicemail"  # type: ignore[attr-defined]


def test_dialled_number_routes_and_priority() -> None:
    """CC-01/IVR-02: the private-banking number goes straight to its queue at priority 10."""
    h = bank()
    call = h.engine.offer_call(caller="+8613800138000", dialed="4008200888")
    queued = [e.payload for e in h.take() if e.type == "call.queued"]
    assert [(q.queue, q.priority) for q in queued] == [("private_banking", 10)]  # type: ignore[attr-defined]
    assert h.engine.calls[call].priority == 10


def test_hanging_up_in_the_ivr_is_recorded_as_such() -> None:
    h = bank()
    call = h.engine.offer_call(caller="+8613800138000", dialed="95555")
    h.engine.caller_hangs_up(call)
    assert [row[1:] for row in table(h.take(), "exit", "stage")][-3:] == [
        ("call.ivr_left", "caller_hangup", None),
        ("call.abandoned", None, "ivr"),
        ("call.ended", None, None),
    ]


def test_closed_number_goes_to_its_closed_target() -> None:
    """CC-05: outside the schedule (a Sunday) the number's closed target applies."""
    h = bank()
    h.clock.advance_to(h.clock.now_ms() + 6 * 24 * 3600 * 1000)  # Sunday 2026-03-08
    call = h.engine.offer_call(caller="+8613800138000", dialed="95556")
    events = h.take()
    assert [row[1:] for row in table(events, "kind", "prompt") if row[1] ==
            "call.announcement_played"] == [("call.announcement_played", "closed", "closed")]
    assert h.engine.calls[call].stage == "voicemail"


def test_blacklisted_callers_hear_the_rejection_prompt() -> None:
    """CC-04: an approved entry blocks inbound calls with its prompt."""
    at = START - timedelta(days=1)
    listed, request = Blacklist().request("13900001111", reason="abuse", requested_by="a1",
                                          at=at, direction="inbound")
    listed = listed.approve(request, by="lead", at=at, role_of={"lead": "team_lead"})
    listed, request = listed.request("13700002222", reason="do not call", requested_by="a1",
                                     at=at, direction="outbound")
    listed = listed.approve(request, by="lead", at=at, role_of={"lead": "team_lead"})
    h = bank(blocked=listed.blocked)
    call = h.engine.offer_call(caller="+86 139-0000-1111", dialed="95556")
    rows = [row[1:] for row in table(h.take(), "kind", "disposition")]
    assert rows[-2:] == [("call.announcement_played", "rejection", None),
                         ("call.ended", None, "blacklisted")]
    assert call not in h.engine.calls
    h.ready("a1")
    with pytest.raises(CommandRejectedError, match="blacklisted for outbound"):
        h.engine.dial("a1", "13700002222")
    allowed = h.engine.dial("a1", "13900001111")  # listed for inbound calls only
    assert h.engine.calls[allowed].stage == "outbound"


@pytest.mark.parametrize(("caller", "province"), [("+8613800138000", "北京市"),
                                                  ("02012345678", "广东省")])
def test_caller_region_is_on_the_offer_and_can_route(caller: str, province: str) -> None:
    """CC-03 lookup on offer, CC-02 routing by region."""
    h = bank(region_routes={"广东省": "retail_zh"})
    h.engine.offer_call(caller=caller, dialed="95556")
    offered = next(e.payload for e in h.take() if e.type == "call.offered")
    assert offered.caller_region.province == province  # type: ignore[attr-defined]
    queued = [e.payload.queue for e in h.events if e.type == "call.queued"]  # type: ignore[attr-defined]
    assert queued == (["retail_zh"] if province == "广东省" else ["retail"])


def test_numbers_entering_an_unloaded_flow_are_refused_at_start() -> None:
    center = load_center({"numbers": [{"number": "1", "entry": {"kind": "ivr", "target": "x"}}]})
    with pytest.raises(ValueError, match=r"flows \['x'\] that were not loaded"):
        Engine(center, clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)))
