"""IVR flows: loading and validation (IVR-04), the interpreter (IVR-01..IVR-03, CC-10)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcore.ivr import (
    EXAMPLE_FLOWS_DIR,
    AwaitDigits,
    CalendarState,
    CallHook,
    CollectNode,
    Digits,
    Directive,
    Flow,
    FlowEntered,
    FlowError,
    HangUp,
    HookResult,
    InputTimeout,
    IvrSession,
    LeaveVoicemail,
    Left,
    MenuNode,
    NodeVisited,
    PinCheckNode,
    PlayPrompt,
    Step,
    Stimulus,
    SurveyAnswer,
    SurveyNode,
    Transfer,
    caller_hung_up,
    load_flows,
    parse_flows,
    start,
    step,
)
from ingest.contract.calls import (
    AnnouncementPlayed,
    IvrEntered,
    IvrLeft,
    IvrNodeVisited,
    SurveyAnswered,
)

HOOKS = {"verify_pin", "account_balance", "find_patient"}
SCHEDULES = {"retail_hotline", "clinic_booking"}
AT = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
FLOWS = load_flows(EXAMPLE_FLOWS_DIR, hooks=HOOKS, schedules=SCHEDULES)
WAITS = (AwaitDigits, CallHook)
TERMINALS = (Transfer, LeaveVoicemail, HangUp)


class FakeCalendar:
    """Answers one state for every schedule and remembers what it was asked."""

    def __init__(self, state: CalendarState = "open") -> None:
        self.state: CalendarState = state
        self.asked: list[tuple[str, datetime]] = []

    def __call__(self, schedule: str, at: datetime, /) -> CalendarState:
        self.asked.append((schedule, at))
        return self.state


class Call:
    """Drive one call through a flow and keep every step."""

    def __init__(self, flow: Flow, *, dialed: str = "4008200100", state: CalendarState = "open"):
        self.flow = flow
        self.calendar = FakeCalendar(state)
        self.steps = [start(flow, dialed=dialed, caller="13800138000", at=AT,
                            calendar=self.calendar)]

    @property
    def session(self) -> IvrSession:
        return self.steps[-1].session

    @property
    def last(self) -> tuple[Directive, ...]:
        return self.steps[-1].directives

    def send(self, *stimuli: Stimulus | str) -> Call:
        for stimulus in stimuli:
            event = Digits(stimulus) if isinstance(stimulus, str) else stimulus
            self.steps.append(step(self.flow, self.session, event, calendar=self.calendar))
        return self

    def directives(self) -> list[Directive]:
        return [d for s in self.steps for d in s.directives]

    def visits(self) -> list[tuple[str, str | None, str]]:
        return [(d.node, d.digits, d.outcome) for d in self.directives()
                if isinstance(d, NodeVisited)]

    def left(self) -> Left:
        (left,) = [d for d in self.directives() if isinstance(d, Left)]
        return left


def flow_of(yaml_text: str, name: str = "f", **kwargs: object) -> Flow:
    return parse_flows(textwrap.dedent(yaml_text), **kwargs)[name]  # type: ignore[arg-type]


def problems_of(yaml_text: str, **kwargs: object) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse_flows(textwrap.dedent(yaml_text), source="t.yaml", **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def prompts(directives: tuple[Directive, ...] | list[Directive]) -> list[str]:
    return [d.prompt for d in directives if isinstance(d, PlayPrompt)]


MENU_FLOW = """
flows:
  f:
    start: top
    zero_out: human
    nodes:
      top:
        kind: menu
        prompt: Top menu.
        options: {"1": sub, "2": bye}
        max_retries: 2
        invalid: Wrong key.
        no_input: {file: no_input.wav}
        on_timeout: timed_out
        on_fail: failed
      sub:
        kind: menu
        prompt: Sub menu.
        options: {"1": leaf, "0": own_zero}
        on_fail: failed
      leaf:
        kind: menu
        prompt: Leaf menu.
        options: {"*": bye, "1": top}
        max_retries: 0
        on_fail: failed
      human: {kind: transfer, target_kind: queue, target: general}
      own_zero: {kind: transfer, target_kind: agent, target: "1001"}
      timed_out: {kind: hangup, reason: no_input}
      failed: {kind: hangup, reason: no_match}
      bye: {kind: hangup, prompt: Goodbye.}
"""


# ---------------------------------------------------------------------------------------------
# Example flows
# ---------------------------------------------------------------------------------------------


def test_ivr04_example_flows_load_and_validate() -> None:
    assert set(FLOWS) == {"main", "survey", "clinic"}
    assert {f.source for f in FLOWS.values()} == {
        str(EXAMPLE_FLOWS_DIR / "main.yaml"), str(EXAMPLE_FLOWS_DIR / "clinic.yaml")
    }
    assert all(f.version.startswith("sha256:") for f in FLOWS.values())


def test_ivr03_bank_balance_after_pin_end_to_end() -> None:
    call = Call(FLOWS["main"]).send("1", "1", "12345678#", "123456#")
    (hook,) = call.last
    assert isinstance(hook, CallHook)
    assert hook.hook == "verify_pin"
    assert hook.args == {"account": "12345678"}
    call.send(HookResult(values={"customer_name": "Ann Lee"}))
    assert call.last == (
        NodeVisited(flow="main", node="pin", kind="pin_check", digits=None, outcome="pin_ok"),
        CallHook(hook="account_balance", args={"account": "12345678"}),
    )
    call.send(HookResult(values={"balance": "1,204.50", "currency": "CNY"}))
    texts = [d.text for d in call.last if isinstance(d, PlayPrompt)]
    assert texts[0] == "Dear Ann Lee, your available balance is 1,204.50 CNY."
    call.send("#")
    assert call.left() == Left(flow="main", node="goodbye", exit="hangup")
    assert isinstance(call.last[-1], HangUp)
    assert call.session.done


def test_clinic_booking_collects_patient_id_and_transfers_to_department_queue() -> None:
    call = Call(FLOWS["clinic"]).send("0012345#")
    assert call.last[-1] == CallHook(
        hook="find_patient", args={"patient_id": "0012345", "caller": "13800138000"}
    )
    last = call.send(HookResult(values={"patient_name": "Wang Fang"}), "4", "1").last[-1]
    assert last == Transfer(target_kind="queue", target="booking_expert_cardiology")
    assert "Welcome back, Wang Fang." in [
        d.text for d in call.directives() if isinstance(d, PlayPrompt)
    ]
    assert call.session.variables["patient_id"] == "0012345"


def test_clinic_new_patient_presses_hash_only() -> None:
    call = Call(FLOWS["clinic"]).send("#", HookResult(), "3")
    assert call.last[-1] == Transfer(target_kind="queue", target="booking_pediatrics", priority=3)
    assert ("patient_id", "", "collected") in call.visits()


# ---------------------------------------------------------------------------------------------
# Menus (IVR-01)
# ---------------------------------------------------------------------------------------------


def test_ivr01_menu_matches_an_option() -> None:
    call = Call(flow_of(MENU_FLOW))
    assert call.last == (
        FlowEntered(flow="f", flow_version=call.flow.version),
        PlayPrompt(prompt="top.prompt", file=None, text="Top menu."),
        AwaitDigits(max_digits=1, timeout_s=5.0, terminator=None),
    )
    call.send("1")
    assert call.visits() == [("top", "1", "matched:1")]
    assert call.session.node == "sub"
    assert call.session.menus == ("top", "sub")


def test_ivr01_menu_invalid_key_replays_with_invalid_prompt() -> None:
    call = Call(flow_of(MENU_FLOW)).send("7")
    assert prompts(call.last) == ["top.invalid", "top.prompt"]
    assert isinstance(call.last[-1], AwaitDigits)
    assert call.session.retries == 1
    assert call.visits() == [("top", "7", "invalid")]


def test_ivr01_menu_takes_one_key_only() -> None:
    call = Call(flow_of(MENU_FLOW)).send("12")
    assert call.visits() == [("top", "12", "invalid")]
    assert call.session.node == "top"


def test_ivr01_menu_timeout_replays_no_input_prompt_then_goes_to_on_timeout() -> None:
    call = Call(flow_of(MENU_FLOW)).send(InputTimeout())
    assert prompts(call.last) == ["no_input.wav", "top.prompt"]
    call.send(InputTimeout(), InputTimeout())
    assert [v[2] for v in call.visits()] == ["timeout", "timeout", "timeout", "hangup"]
    assert call.last[-1] == HangUp(reason="no_input")


def test_ivr01_menu_last_failure_invalid_goes_to_on_fail() -> None:
    call = Call(flow_of(MENU_FLOW)).send(InputTimeout(), InputTimeout(), "9")
    assert call.left().node == "failed"


def test_ivr01_menu_retries_reset_on_a_new_node() -> None:
    call = Call(flow_of(MENU_FLOW)).send("9", "1")
    assert call.session.retries == 0
    call.send("9")
    assert call.session.retries == 1


def test_ivr01_star_returns_to_previous_menu() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1", "*")
    assert call.session.node == "top"
    assert call.session.menus == ("top",)
    assert call.visits()[-1] == ("sub", "*", "back")
    assert prompts(call.last) == ["top.prompt"]


def test_ivr01_star_at_the_top_menu_is_invalid() -> None:
    call = Call(flow_of(MENU_FLOW)).send("*")
    assert call.visits() == [("top", "*", "invalid")]


def test_ivr01_star_as_an_option_overrides_back() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1", "1", "*")
    assert call.visits()[-2] == ("leaf", "*", "matched:*")
    assert call.left().node == "bye"


def test_ivr01_jump_back_to_an_ancestor_menu_trims_the_stack() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1", "1")
    assert call.session.menus == ("top", "sub", "leaf")
    assert call.send("1").session.menus == ("top",)


def test_ivr01_zero_out_to_a_human_from_any_menu() -> None:
    call = Call(flow_of(MENU_FLOW)).send("0")
    assert call.visits()[0] == ("top", "0", "zero_out")
    assert call.last[-2:] == (
        Left(flow="f", node="human", exit="transfer", target_kind="queue", target="general"),
        Transfer(target_kind="queue", target="general"),
    )


def test_ivr01_menu_option_zero_overrides_the_flow_zero_out() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1", "0")
    assert call.last[-1] == Transfer(target_kind="agent", target="1001")


def test_ivr01_bank_zero_out_after_hours_goes_to_voicemail() -> None:
    call = Call(FLOWS["main"], state="closed").send("1", "0")
    assert call.left() == Left(flow="main", node="after_hours", exit="voicemail",
                               target_kind="voicemail", target="retail")
    assert call.last[-1] == LeaveVoicemail(mailbox="retail")


def test_ivr01_bank_chinese_menu_has_its_own_zero() -> None:
    call = Call(FLOWS["main"]).send("2", "0")
    assert call.last[-1] == Transfer(target_kind="queue", target="retail_zh")


# ---------------------------------------------------------------------------------------------
# Prompts, collect, PIN, lookup (IVR-03)
# ---------------------------------------------------------------------------------------------

NODES_FLOW = """
flows:
  f:
    start: hello
    nodes:
      hello:
        kind: prompt
        prompt: {file: hello.wav, text: "Hello {caller}, {{not a variable}}."}
        next: number
      number:
        kind: collect
        prompt: Enter the number.
        variable: number
        min_digits: 3
        max_digits: 5
        terminator: "#"
        max_retries: 1
        invalid: Too short.
        next: pin
        on_fail: bye
      pin:
        kind: pin_check
        prompt: PIN please.
        hook: check
        args: {number: "{number}"}
        store: [name]
        min_digits: 4
        max_digits: 4
        max_retries: 1
        invalid: Wrong PIN.
        next: look
        on_fail: locked
        on_error: down
      look:
        kind: lookup
        hook: fetch
        args: {who: "{name}"}
        store: [amount]
        prompt: One moment.
        on_found: say
        on_missing: none
      say: {kind: prompt, prompt: "{name} owes {amount}.", next: bye}
      locked: {kind: hangup, reason: locked}
      down: {kind: hangup, reason: down}
      none: {kind: hangup, reason: none}
      bye: {kind: hangup}
"""


def nodes_call() -> Call:
    return Call(flow_of(NODES_FLOW))


def test_ivr03_prompt_plays_file_with_rendered_text() -> None:
    call = nodes_call()
    assert call.last[1:3] == (
        NodeVisited(flow="f", node="hello", kind="prompt", digits=None, outcome="played"),
        PlayPrompt(prompt="hello.wav", file="hello.wav",
                   text="Hello 13800138000, {not a variable}."),
    )


def test_ivr03_collect_strips_the_terminator_and_stores_the_variable() -> None:
    call = nodes_call()
    assert call.last[-1] == AwaitDigits(max_digits=5, timeout_s=10.0, terminator="#")
    call.send("4711#")
    assert call.session.variables["number"] == "4711"
    assert call.visits()[-1] == ("number", "4711", "collected")
    assert call.session.node == "pin"


def test_ivr03_collect_accepts_digits_without_terminator() -> None:
    call = nodes_call().send("12345")
    assert call.session.variables["number"] == "12345"


@pytest.mark.parametrize("text", ["12#", "123456", "12a4", "", "#"])
def test_ivr03_collect_rejects_wrong_length_or_non_digits(text: str) -> None:
    call = nodes_call().send(text)
    assert call.visits()[-1][2] == "invalid"
    assert prompts(call.last) == ["number.invalid", "number.prompt"]
    assert "number" not in call.session.variables


def test_ivr03_collect_keeps_non_keypad_input_out_of_the_log() -> None:
    call = nodes_call().send("12a4")
    assert call.visits()[-1] == ("number", None, "invalid")


def test_ivr03_secret_collect_keeps_digits_out_of_the_log() -> None:
    flow = flow_of(NODES_FLOW.replace("        invalid: Too short.\n",
                                      "        invalid: Too short.\n        secret: true\n"))
    call = Call(flow)
    assert call.last[-1] == AwaitDigits(max_digits=5, timeout_s=10.0, terminator="#", secret=True)
    call.send("12#", "4111#")
    assert call.visits()[-2:] == [("number", None, "invalid"), ("number", None, "collected")]
    assert call.session.variables["number"] == "4111"


def test_ivr03_collect_gives_up_after_retries() -> None:
    call = nodes_call().send(InputTimeout(), "1")
    assert call.left().node == "bye"


def test_ivr03_pin_success_never_exposes_the_digits() -> None:
    call = nodes_call().send("4711#")
    assert call.last[-1] == AwaitDigits(max_digits=4, timeout_s=10.0, terminator="#", secret=True)
    call.send("9876#")
    (hook,) = call.last
    assert hook == CallHook(hook="check", args={"number": "4711"}, secret="9876")
    assert "9876" not in repr(hook)
    call.send(HookResult(values={"name": "Ann", "extra": 1}))
    assert call.visits()[-1] == ("pin", None, "pin_ok")
    assert call.session.variables == {
        "caller": "13800138000", "dialed": "4008200100", "number": "4711", "name": "Ann"
    }
    assert call.session.node == "look"
    assert_pin_hidden(call, "9876")


def assert_pin_hidden(call: Call, pin: str) -> None:
    for directive in call.directives():
        if isinstance(directive, CallHook):
            assert pin not in msgspec.json.encode(directive.args).decode()
        else:
            assert pin not in msgspec.json.encode(directive).decode()
    assert pin not in msgspec.json.encode(call.session).decode()


def test_ivr03_pin_lockout_after_max_retries() -> None:
    call = nodes_call().send("4711#", "1111#", HookResult())
    assert prompts(call.last) == ["pin.invalid", "pin.prompt"]
    assert call.session.retries == 1
    call.send("2222#", HookResult())
    assert [v[2] for v in call.visits() if v[0] == "pin"] == ["pin_failed", "pin_failed"]
    assert all(v[1] is None for v in call.visits() if v[0] == "pin")
    assert call.left().node == "locked"
    assert_pin_hidden(call, "1111")
    assert_pin_hidden(call, "2222")


def test_ivr03_pin_of_wrong_length_is_invalid_without_calling_the_hook() -> None:
    call = nodes_call().send("4711#", "12#")
    assert not any(isinstance(d, CallHook) for d in call.last)
    assert call.visits()[-1] == ("pin", None, "invalid")


def test_ivr03_pin_hook_error_goes_to_on_error() -> None:
    call = nodes_call().send("4711#", "1234#", HookResult(error="timeout"))
    assert call.visits()[-2] == ("pin", None, "error")
    assert call.left().node == "down"


def test_ivr03_lookup_found_stores_results_for_prompts() -> None:
    call = nodes_call().send("4711#", "1234#", HookResult(values={"name": "Ann"}))
    assert prompts(call.last) == ["look.prompt"]
    assert call.last[-1] == CallHook(hook="fetch", args={"who": "Ann"})
    call.send(HookResult(values={"amount": 12.5}))
    said = [d.text for d in call.last if isinstance(d, PlayPrompt)]
    assert said == ["Ann owes 12.5."]


@pytest.mark.parametrize(("result", "outcome"), [
    (HookResult(), "missing"),
    (HookResult(error="database down"), "error"),  # no on_error: falls back to on_missing
])
def test_ivr03_lookup_missing_and_error_branches(result: HookResult, outcome: str) -> None:
    call = nodes_call().send("4711#", "1234#", HookResult(values={"name": "Ann"}), result)
    assert call.visits()[-2:] == [("look", None, outcome), ("none", None, "hangup")]


def test_ivr03_lookup_result_without_a_stored_name_is_an_error() -> None:
    call = nodes_call().send("4711#", "1234#", HookResult(values={"name": "Ann"}),
                             HookResult(values={"other": 1}))
    assert call.visits()[-2] == ("look", None, "error")


def test_ivr03_transfer_renders_target_and_leaves_before_transferring() -> None:
    flow = flow_of("""
        flows:
          f:
            start: who
            nodes:
              who: {kind: collect, prompt: Extension, variable: ext, max_digits: 4,
                    next: to, on_fail: to}
              to: {kind: transfer, target_kind: agent, target: "{ext}", priority: 2,
                   prompt: Connecting.}
        """)
    call = Call(flow).send("1001#")
    assert call.last[1:] == (
        NodeVisited(flow="f", node="to", kind="transfer", digits=None, outcome="transfer"),
        PlayPrompt(prompt="to.prompt", file=None, text="Connecting."),
        Left(flow="f", node="to", exit="transfer", target_kind="agent", target="1001"),
        Transfer(target_kind="agent", target="1001", priority=2),
    )
    empty = Call(flow).send(InputTimeout(), InputTimeout(), InputTimeout())
    assert empty.left().exit == "error"
    assert empty.last[-1] == HangUp(reason="ivr_error",
                                    detail="transfer target rendered to 0 characters")


# ---------------------------------------------------------------------------------------------
# Branches (IVR-02)
# ---------------------------------------------------------------------------------------------

BRANCH_FLOW = """
flows:
  f:
    start: hours
    nodes:
      hours:
        kind: time_branch
        schedule: office
        open: by_number
        closed: closed
        holiday: holiday
      by_number:
        kind: dnis_branch
        routes: {"400-820-0888": vip, "+86 10 1234 5678": beijing}
        default: general
      vip: {kind: transfer, target_kind: queue, target: vip}
      beijing: {kind: transfer, target_kind: queue, target: beijing}
      general: {kind: transfer, target_kind: queue, target: general}
      closed: {kind: voicemail, mailbox: office}
      holiday: {kind: hangup, reason: holiday}
"""


@pytest.mark.parametrize(("state", "node"), [
    ("open", "general"), ("closed", "closed"), ("holiday", "holiday"), ("lunch", "closed"),
])
def test_ivr02_time_branch_by_calendar_state(state: CalendarState, node: str) -> None:
    call = Call(flow_of(BRANCH_FLOW), state=state)
    assert call.visits()[0] == ("hours", None, state)
    assert call.left().node == node
    assert call.calendar.asked == [("office", AT)]


def test_ivr02_bank_lunch_and_holiday_branches() -> None:
    lunch = Call(FLOWS["main"], state="lunch").send("1", "0")
    assert [v[0] for v in lunch.visits()][-3:] == ["to_agent", "lunch_notice", "agent"]
    holiday = Call(FLOWS["main"], state="holiday").send("1", "0")
    assert [v[0] for v in holiday.visits()][-3:] == ["to_agent", "holiday_notice", "after_hours"]
    assert "holiday.wav" in prompts(holiday.directives())
    assert holiday.left().exit == "voicemail"


def test_ivr02_time_branch_uses_the_latest_instant() -> None:
    flow = FLOWS["main"]
    calendar = FakeCalendar("open")
    first = start(flow, dialed="4008200100", caller="1", at=AT, calendar=calendar)
    later = AT + timedelta(minutes=3)
    second = step(flow, first.session, Digits("1"), at=later, calendar=calendar)
    third = step(flow, second.session, Digits("0"), calendar=calendar)
    assert calendar.asked == [("retail_hotline", later)]
    assert third.session.at == later


def test_ivr02_time_branch_needs_a_calendar_and_a_valid_state() -> None:
    flow = flow_of(BRANCH_FLOW)
    with pytest.raises(ValueError, match="pass calendar="):
        start(flow, dialed="1", caller="2", at=AT)
    with pytest.raises(ValueError, match="pass at="):
        start(flow, dialed="1", caller="2", calendar=FakeCalendar())
    with pytest.raises(ValueError, match="calendar returned 'shut'"):
        start(flow, dialed="1", caller="2", at=AT,
              calendar=lambda schedule, at: "shut")  # type: ignore[arg-type]


@pytest.mark.parametrize(("dialed", "target", "outcome"), [
    ("4008200888", "vip", "route:400-820-0888"),
    ("400 820 0888", "vip", "route:400-820-0888"),
    ("+861012345678", "beijing", "route:+86 10 1234 5678"),
    ("4008200100", "general", "default"),
    ("", "general", "default"),
])
def test_ivr02_dnis_branch_by_dialled_number(dialed: str, target: str, outcome: str) -> None:
    call = Call(flow_of(BRANCH_FLOW), dialed=dialed)
    assert call.visits()[1] == ("by_number", None, outcome)
    assert call.last[-1] == Transfer(target_kind="queue", target=target)


def test_ivr02_bank_private_banking_number_skips_the_menus() -> None:
    call = Call(FLOWS["main"], dialed="4008200888")
    assert call.visits()[0] == ("by_number", None, "route:4008200888")
    assert call.last[-1] == Transfer(target_kind="queue", target="private_banking", priority=10)


# ---------------------------------------------------------------------------------------------
# Survey (CC-10), hang-up, voicemail
# ---------------------------------------------------------------------------------------------


def test_cc10_survey_records_the_score_and_hangs_up() -> None:
    call = Call(FLOWS["survey"])
    assert call.last[-1] == AwaitDigits(max_digits=1, timeout_s=8.0, terminator=None)
    call.send("2")
    assert call.last == (
        NodeVisited(flow="survey", node="rate", kind="survey", digits="2", outcome="score:2"),
        SurveyAnswer(survey="retail_csat", score=2, scale_max=3),
        PlayPrompt(prompt="rate.thanks", file=None, text="Thank you for your feedback. Goodbye."),
        Left(flow="survey", node="rate", exit="survey"),
        HangUp(reason="survey_completed"),
    )


@pytest.mark.parametrize("key", ["0", "4", "*", "#", "12"])
def test_cc10_survey_rejects_keys_outside_the_scale(key: str) -> None:
    call = Call(FLOWS["survey"]).send(key)
    assert call.visits()[-1][2] == "invalid"
    assert prompts(call.last) == ["rate.invalid", "rate.prompt"]


def test_cc10_survey_unanswered_hangs_up_without_a_score() -> None:
    call = Call(FLOWS["survey"]).send(InputTimeout(), "9")
    assert not any(isinstance(d, SurveyAnswer) for d in call.directives())
    assert call.left().exit == "survey"
    assert call.last[-1] == HangUp(reason="survey_unanswered")


def test_ivr03_hangup_plays_goodbye_before_leaving() -> None:
    call = Call(flow_of(MENU_FLOW)).send("2")
    assert call.last[-4:] == (
        NodeVisited(flow="f", node="bye", kind="hangup", digits=None, outcome="hangup"),
        PlayPrompt(prompt="bye.prompt", file=None, text="Goodbye."),
        Left(flow="f", node="bye", exit="hangup"),
        HangUp(reason="completed"),
    )


# ---------------------------------------------------------------------------------------------
# Session protocol
# ---------------------------------------------------------------------------------------------


def test_stimuli_that_do_not_fit_are_not_accepted() -> None:
    call = nodes_call().send("4711#", "1234#")
    waiting = call.session
    ignored = step(call.flow, waiting, Digits("5"))
    assert ignored == Step(waiting, (), accepted=False)
    assert step(call.flow, waiting, InputTimeout()).accepted is False
    call.send(HookResult(), InputTimeout())
    assert call.session.done
    assert step(call.flow, call.session, Digits("1")).accepted is False
    assert step(call.flow, call.session, HookResult()).accepted is False


def test_caller_hanging_up_records_where() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1")
    hung = caller_hung_up(call.flow, call.session)
    assert hung.directives == (Left(flow="f", node="sub", exit="caller_hangup"),)
    assert hung.session.done
    assert caller_hung_up(call.flow, hung.session).accepted is False


def test_a_session_from_another_flow_is_refused() -> None:
    call = Call(flow_of(MENU_FLOW))
    with pytest.raises(ValueError, match="session is in flow 'f', not 'survey'"):
        step(FLOWS["survey"], call.session, Digits("1"))


def test_a_flow_reloaded_without_the_current_node_ends_the_call() -> None:
    call = Call(flow_of(MENU_FLOW)).send("1")
    reloaded = flow_of(MENU_FLOW.replace("sub:", "subb:").replace('"1": sub', '"1": subb'))
    result = step(reloaded, call.session, Digits("1"))
    assert result.directives == (
        Left(flow="f", node="sub", exit="error"),
        HangUp(reason="ivr_error", detail="node 'sub' no longer waits for this input"),
    )


def test_steps_are_pure_and_deterministic() -> None:
    flow = FLOWS["main"]
    calendar = FakeCalendar()
    first = start(flow, dialed="4008200100", caller="1", at=AT, calendar=calendar)
    snapshot = msgspec.json.encode(first.session)
    a = step(flow, first.session, Digits("1"), calendar=calendar)
    b = step(flow, first.session, Digits("1"), calendar=calendar)
    assert a == b
    assert msgspec.json.encode(first.session) == snapshot
    restored = msgspec.json.decode(msgspec.json.encode(a.session), type=IvrSession)
    assert restored == a.session


def to_contract(call_id: str, directive: Directive) -> msgspec.Struct | None:
    """The engine's translation of record directives into contract payloads."""
    fields = msgspec.structs.asdict(directive)
    payload: msgspec.Struct | None = None
    match directive:
        case FlowEntered():
            payload = IvrEntered(call_id=call_id, **fields)
        case NodeVisited():
            payload = IvrNodeVisited(call_id=call_id, **fields)
        case Left():
            payload = IvrLeft(call_id=call_id, **fields)
        case SurveyAnswer():
            payload = SurveyAnswered(call_id=call_id, **fields)
        case PlayPrompt():
            payload = AnnouncementPlayed(call_id=call_id, kind="prompt", prompt=directive.prompt)
    if payload is None:
        return None
    # Constructors do not check constraints; a round trip does.
    return msgspec.convert(msgspec.to_builtins(payload), type(payload))


def test_record_directives_map_one_to_one_onto_contract_events() -> None:
    call = Call(FLOWS["main"]).send("9", "1", "1", "12345678#", "123456#",
                                    HookResult(values={"customer_name": "Ann"}),
                                    HookResult(values={"balance": 3, "currency": "CNY"}), "#")
    survey = Call(FLOWS["survey"]).send("1")
    payloads = [to_contract("c-1", d) for d in call.directives() + survey.directives()]
    kinds = {type(p).__name__ for p in payloads if p is not None}
    assert kinds == {"IvrEntered", "IvrNodeVisited", "IvrLeft", "SurveyAnswered",
                     "AnnouncementPlayed"}


# ---------------------------------------------------------------------------------------------
# Validation (IVR-04)
# ---------------------------------------------------------------------------------------------


def test_ivr04_unknown_start_node() -> None:
    assert problems_of("""
        flows:
          f:
            start: welcom
            nodes:
              welcome: {kind: hangup}
        """) == [
        "t.yaml, flow 'f': `start` names 'welcom', which is not a node of this flow; add a "
        "node 'welcom' or point it at an existing node (did you mean 'welcome'?)"
    ]


def test_ivr04_target_naming_a_missing_node() -> None:
    assert problems_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Hi, options: {"1": balanse}, on_fail: balance}
              balance: {kind: hangup}
        """) == [
        "t.yaml, flow 'f', node 'm': `options['1']` points to 'balanse', which is not a node "
        "of this flow; add a node 'balanse' or point it at an existing node (did you mean "
        "'balance'?)"
    ]


def test_ivr04_unreachable_node() -> None:
    assert problems_of("""
        flows:
          f:
            start: a
            nodes:
              a: {kind: hangup}
              orphan: {kind: hangup}
        """) == [
        "t.yaml, flow 'f', node 'orphan': unreachable from start 'a'; link to it from another "
        "node or delete it"
    ]


def test_ivr04_loop_without_input_is_an_infinite_loop() -> None:
    assert problems_of("""
        flows:
          f:
            start: a
            nodes:
              a: {kind: prompt, prompt: A, next: b}
              b: {kind: lookup, hook: h, on_found: a, on_missing: a}
        """) == [
        "t.yaml, flow 'f', node 'a': infinite loop with no node waiting for the caller: "
        "a (next) -> b (on_found) -> a; point one of these elsewhere or put a menu on the loop"
    ]


def test_ivr04_loop_a_silent_caller_cannot_leave() -> None:
    assert problems_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Menu, options: {"1": bye}, on_fail: sorry}
              sorry: {kind: prompt, prompt: Sorry, next: m}
              bye: {kind: hangup}
        """) == [
        "t.yaml, flow 'f', node 'm': a caller who never presses a valid key loops forever: "
        "m (on_fail) -> sorry (next) -> m; point one of these at a node that ends the call "
        "(hangup, transfer or voicemail)"
    ]


def test_ivr04_loops_through_keypresses_are_fine() -> None:
    flow = flow_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Menu, options: {"1": info, "2": bye}, on_fail: bye}
              info: {kind: prompt, prompt: Info, next: m}
              bye: {kind: hangup}
        """)
    assert set(flow.nodes) == {"m", "info", "bye"}


@pytest.mark.parametrize("key", ["10", "a", "", "**"])
def test_ivr04_menu_keys_must_be_single_keypad_keys(key: str) -> None:
    assert problems_of(f"""
        flows:
          f:
            start: m
            nodes:
              m: {{kind: menu, prompt: Menu, options: {{"{key}": bye}}, on_fail: bye}}
              bye: {{kind: hangup}}
        """) == [
        f"t.yaml, flow 'f', node 'm': option key '{key}' is not a single keypad key; use one of "
        "0-9, * or #"
    ]


def test_ivr04_unquoted_menu_keys_are_read_as_written() -> None:
    flow = flow_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Menu, options: {1: bye, 0: bye}, on_fail: bye}
              bye: {kind: hangup}
        """)
    assert set(flow.nodes["m"].options) == {"1", "0"}  # type: ignore[union-attr]


def test_ivr04_missing_required_field() -> None:
    problems = problems_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Menu, options: {"1": bye}}
              bye: {kind: prompt, prompt: Bye}
        """)
    assert problems == [
        "t.yaml, flow 'f', node 'm': missing required field `on_fail`; add it (fields of a menu "
        "node: prompt, options, on_fail, on_timeout, timeout_s, max_retries, invalid, no_input)",
        "t.yaml, flow 'f', node 'bye': missing required field `next`; add it (fields of a prompt "
        "node: prompt, next)",
    ]


def test_ivr04_unknown_field_suggests_the_spelling() -> None:
    (problem,) = problems_of("""
        flows:
          f:
            start: bye
            nodes:
              bye: {kind: hangup, promt: Bye}
        """)
    assert problem == (
        "t.yaml, flow 'f', node 'bye': unknown field `promt`; remove it or fix the spelling "
        "(did you mean 'prompt'?) (fields of a hangup node: prompt, reason)"
    )


def test_ivr04_unknown_or_missing_kind() -> None:
    problems = problems_of("""
        flows:
          f:
            start: a
            nodes:
              a: {kind: menuu, prompt: Hi}
              b: {prompt: Hi}
        """)
    kinds = ("collect, dnis_branch, hangup, lookup, menu, pin_check, prompt, survey, "
             "time_branch, transfer, voicemail")
    assert problems == [
        f"t.yaml, flow 'f', node 'a': unknown kind 'menuu'; use one of: {kinds} (did you mean "
        "'menu'?)",
        f"t.yaml, flow 'f', node 'b': missing `kind`; set it to one of: {kinds}",
    ]


def test_ivr04_type_errors_name_the_path() -> None:
    problems = problems_of("""
        flows:
          f:
            start: m
            nodes:
              m: {kind: menu, prompt: Hi, options: {"1": x}, on_fail: x, timeout_s: soon}
              x: {kind: transfer, target_kind: external, target: 13800138000}
              y: {kind: survey, survey: s, prompt: {file: a.wav, txt: Rate}}
              z: {kind: collect, prompt: P, variable: v, next: x, on_fail: x, max_retries: -1}
        """)
    assert problems == [
        "t.yaml, flow 'f', node 'm': `timeout_s`: Expected `float`, got `str`",
        "t.yaml, flow 'f', node 'x': `target`: Expected `str`, got `int`; quote the value so "
        "YAML keeps it as text",
        "t.yaml, flow 'f', node 'y': unknown field `txt` in `prompt`; remove it or fix the "
        "spelling (did you mean 'text'?) (fields of a prompt: file, text)",
        "t.yaml, flow 'f', node 'z': `max_retries`: Expected `int` >= 0",
    ]


def test_ivr04_unknown_hook_and_schedule() -> None:
    text = """
        flows:
          f:
            start: t
            nodes:
              t: {kind: time_branch, schedule: ofice, open: l, closed: l}
              l: {kind: lookup, hook: balanse, on_found: b, on_missing: b}
              b: {kind: hangup}
        """
    assert problems_of(text, hooks={"balance", "verify_pin"}, schedules={"office"}) == [
        "t.yaml, flow 'f', node 't': schedule 'ofice' is not a known schedule; use one of: "
        "office (did you mean 'office'?), or add it to the business calendar",
        "t.yaml, flow 'f', node 'l': hook 'balanse' is not a known hook; use one of: balance, "
        "verify_pin (did you mean 'balance'?), or register it with the engine",
    ]
    assert flow_of(text).name == "f"  # names are only checked when the loader is told them


def test_ivr04_duplicate_flow_names_across_files(tmp_path: Path) -> None:
    flow = "flows:\n  main:\n    start: a\n    nodes:\n      a: {kind: hangup}\n"
    (tmp_path / "a.yaml").write_text(flow)
    (tmp_path / "b.yml").write_text(flow)
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'b.yml'}, flow 'main': flow name is also defined in "
        f"{tmp_path / 'a.yaml'}; flow names must be unique across files, so rename one of them"
    ]


def test_ivr04_duplicate_keys_in_one_file() -> None:
    (problem,) = problems_of("""
        flows:
          f:
            start: a
            nodes:
              a: {kind: hangup}
              a: {kind: hangup, reason: other}
        """)
    assert problem == (
        "t.yaml: line 7: key 'a' appears twice in one mapping (YAML keeps only the last); "
        "rename or delete one"
    )


def test_ivr04_undefined_variables_and_stray_braces() -> None:
    assert problems_of("""
        flows:
          f:
            start: c
            nodes:
              c: {kind: collect, prompt: P, variable: balance, next: s, on_fail: s}
              s: {kind: prompt, prompt: "You owe {balanse} {", next: t}
              t: {kind: transfer, target_kind: agent, target: "{owner}"}
        """) == [
        "t.yaml, flow 'f', node 's': `prompt` has a stray '{' or '}'; write {name} for a "
        "variable and {{ or }} for a literal brace",
        "t.yaml, flow 'f', node 's': `prompt` uses {balanse}, which no node sets; set it with a "
        "collect `variable` or a lookup/pin_check `store`, or fix the name (did you mean "
        "'balance'?)",
        "t.yaml, flow 'f', node 't': `target` uses {owner}, which no node sets; set it with a "
        "collect `variable` or a lookup/pin_check `store`, or fix the name",
    ]


def test_ivr04_digit_limits_variable_names_routes_and_prompts() -> None:
    assert problems_of("""
        flows:
          f:
            start: c
            zero_out: human
            nodes:
              c: {kind: collect, prompt: {}, variable: caller, min_digits: 6, max_digits: 4,
                  next: d, on_fail: d}
              d: {kind: dnis_branch, routes: {"400-x": e, "4008": e, "400 8": e}, default: e}
              e: {kind: lookup, hook: h, store: [2x], on_found: z, on_missing: z}
              z: {kind: hangup}
        """) == [
        "t.yaml, flow 'f': `zero_out` names 'human', which is not a node of this flow; add a "
        "node 'human' or point it at an existing node",
        "t.yaml, flow 'f', node 'c': min_digits 6 is greater than max_digits 4; lower "
        "min_digits or raise max_digits",
        "t.yaml, flow 'f', node 'c': `variable` 'caller' is set by the interpreter; choose "
        "another name",
        "t.yaml, flow 'f', node 'c': `prompt` needs a `file` or a `text`",
        "t.yaml, flow 'f', node 'd': route '400-x' is not a phone number; use digits, "
        "optionally with a leading '+' and '-' or spaces",
        "t.yaml, flow 'f', node 'd': routes '4008' and '400 8' are the same number; keep one",
        "t.yaml, flow 'f', node 'e': `store` '2x' is not a variable name; use letters, digits "
        "and '_', not starting with a digit",
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("flows: [a, b]", "the file must be a mapping with a non-empty `flows:` mapping"),
    ("nodes: {}", "the file must be a mapping with a non-empty `flows:` mapping"),
    ("flows:\n  f: {start: a, nodes: {a: {kind: hangup}}}\nextra: 1",
     "unknown top-level key 'extra'; only `flows:` is allowed"),
    ("flows:\n  f: {start: a, nodes: {a: [1]}}", "a node must be a mapping with a `kind:`"),
    ("flows:\n  f: {start: a, nodes: {}}", "`nodes` is empty"),
    ("flows:\n  f: [1]", "a flow must be a mapping with `start:` and `nodes:`"),
    ("flows:\n  f: {nodes: {a: {kind: hangup}}}", "missing required field `start`"),
    ("flows:\n  f: {start: a\n", "not valid YAML: while parsing a flow mapping"),
    ("flows:\n  'bad name': {start: a, nodes: {a: {kind: hangup}}}",
     "flow names are 1-64 letters"),
])
def test_ivr04_file_shape_errors(text: str, message: str) -> None:
    (problem,) = problems_of(text)
    assert message in problem


def test_ivr04_all_problems_are_collected_into_one_error() -> None:
    with pytest.raises(FlowError) as caught:
        parse_flows(textwrap.dedent("""
            flows:
              one:
                start: nowhere
                nodes:
                  a: {kind: hangup}
              two:
                start: m
                nodes:
                  m: {kind: menu, prompt: M, options: {"12": m2}, on_fail: m2}
            """), source="t.yaml")
    error = caught.value
    assert isinstance(error, ValueError)
    assert len(error.problems) == 4
    assert str(error).splitlines()[0] == "4 problems in IVR flows:"
    assert {p.flow for p in error.problems} == {"one", "two"}
    assert all(f"  - {p}" in str(error) for p in error.problems)


def test_load_flows_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs at least one path"):
        load_flows()
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_flows(tmp_path / "missing.yaml")


def test_ivr04_the_documented_example_is_valid() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "ivr.md").read_text(encoding="utf-8")
    example = doc.rsplit("```yaml", 1)[1].split("```", 1)[0]
    flow = parse_flows(example, hooks={"verify_pin", "account_balance"}, schedules={"office"})
    assert set(flow["hotline"].nodes) >= {"menu", "pin", "balance", "bye"}


def test_ivr04_explicit_version_is_kept() -> None:
    flow = flow_of("flows:\n  f: {start: a, version: '2025-03', nodes: {a: {kind: hangup}}}")
    assert flow.version == "2025-03"
    assert Call(flow).last[0] == FlowEntered(flow="f", flow_version="2025-03")


# ---------------------------------------------------------------------------------------------
# Property tests over the example flows
# ---------------------------------------------------------------------------------------------

keypad = st.text(alphabet="0123456789*#", max_size=14)
noise = st.one_of(keypad, st.text(max_size=4)).map(Digits)
hook_values = st.dictionaries(
    st.sampled_from(["customer_name", "balance", "currency", "patient_name", "x"]),
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
)
complete_values = st.just(
    {"customer_name": "Ann", "balance": 12, "currency": "CNY", "patient_name": "Li"}
)
hook_results = complete_values.map(lambda v: HookResult(values=v)) | st.builds(
    HookResult,
    values=st.none() | hook_values | complete_values,
    error=st.none() | st.just("hook failed"),
)
stimuli = st.one_of(noise, st.just(InputTimeout()), hook_results)
states = st.sampled_from(["open", "closed", "holiday", "lunch"])
dialled = st.sampled_from(["4008200100", "4008200888", "", "0"]) | keypad


def plausible_keys(flow: Flow, session: IvrSession) -> st.SearchStrategy[str]:
    """Keys a caller might press at the current node: its options, or digits near its limits."""
    node = flow.nodes[session.node]
    if isinstance(node, MenuNode):
        return st.sampled_from([*node.options, "0", "*", "#", "5"])
    if isinstance(node, SurveyNode):
        return st.sampled_from([str(k) for k in range(node.scale_max + 2)])
    if isinstance(node, CollectNode | PinCheckNode):
        valid = st.integers(node.min_digits, node.max_digits)
        lengths = valid | st.integers(max(node.min_digits - 1, 0), node.max_digits + 1)
        digits = lengths.flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n))
        return st.builds(lambda d, end: d + end, digits, st.sampled_from(["#", ""]))
    return st.just("")


def fitting(flow: Flow, session: IvrSession) -> st.SearchStrategy[Stimulus]:
    """Mostly what the session waits for, sometimes anything (which must then be refused)."""
    if session.waiting == "hook":
        expected: st.SearchStrategy[Stimulus] = hook_results
    else:
        expected = plausible_keys(flow, session).map(Digits) | st.just(InputTimeout())
    return st.one_of(expected, expected, expected, stimuli)


def check_step(flow: Flow, result: Step) -> None:
    assert result.session.node in flow.nodes
    if result.accepted and result.directives:
        last = result.directives[-1]
        assert isinstance(last, WAITS + TERMINALS)
        assert all(not isinstance(d, WAITS + TERMINALS) for d in result.directives[:-1])
        assert result.session.done == isinstance(last, TERMINALS)
    for directive in result.directives:
        to_contract("c-1", directive)
        if isinstance(directive, NodeVisited) and directive.kind == "pin_check":
            assert directive.digits is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FLOWS)), state=states, dialed=dialled, data=st.data())
def test_random_input_never_breaks_the_example_flows(
    name: str, state: CalendarState, dialed: str, data: st.DataObject
) -> None:
    flow = FLOWS[name]
    calendar = FakeCalendar(state)
    result = start(flow, dialed=dialed, caller="13800138000", at=AT, calendar=calendar)
    check_step(flow, result)
    for _ in range(40):
        before = result.session
        result = step(flow, before, data.draw(fitting(flow, before)), calendar=calendar)
        check_step(flow, result)
        if not result.accepted:
            assert result.session == before
        if result.session.done:
            late = step(flow, result.session, data.draw(stimuli), calendar=calendar)
            assert late == Step(result.session, (), accepted=False)
            break


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(FLOWS)), state=states, dialed=dialled, data=st.data())
def test_a_caller_who_keeps_timing_out_always_leaves(
    name: str, state: CalendarState, dialed: str, data: st.DataObject
) -> None:
    flow = FLOWS[name]
    calendar = FakeCalendar(state)
    result = start(flow, dialed=dialed, caller="1", at=AT, calendar=calendar)
    directives = list(result.directives)
    bound = sum(getattr(n, "max_retries", 0) + 1 for n in flow.nodes.values())
    for _ in range(bound):
        if result.session.done:
            break
        if result.session.waiting == "hook":
            stimulus: Stimulus = data.draw(hook_results)
        else:
            stimulus = InputTimeout()
        result = step(flow, result.session, stimulus, calendar=calendar)
        check_step(flow, result)
        directives += result.directives
    assert result.session.done
    (left,) = [d for d in directives if isinstance(d, Left)]
    assert left.exit in {"transfer", "voicemail", "hangup", "survey"}
