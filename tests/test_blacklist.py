"""Blacklist (CC-04): requests, approval by team leads, normalization, ranges, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcore.blacklist import (
    DEFAULT_REJECTION_PROMPT,
    Blacklist,
    BlacklistEntry,
    normalize_number,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ROLES = {"ann": "agent", "bob": "agent", "lee": "team_lead", "max": "manager",
         "dan": "director"}


def listed(number: str, *, direction: str = "both", requested_by: str = "ann",
           approver: str = "lee", expires_at: datetime | None = None,
           state: Blacklist | None = None, prompt: str | None = None) -> Blacklist:
    """``state`` (or an empty blacklist) with ``number`` requested and approved."""
    state = state or Blacklist()
    state, request_id = state.request(
        number, reason="harassment", requested_by=requested_by, at=T0,
        direction=direction,  # type: ignore[arg-type]
        expires_at=expires_at, prompt=prompt,
    )
    return state.approve(request_id, by=approver, at=T0 + timedelta(minutes=5), role_of=ROLES)


def test_cc04_request_then_approve_blocks_the_number() -> None:
    empty = Blacklist()
    requested, request_id = empty.request(
        "+86 138-0013-8000", reason="abusive caller", requested_by="ann", at=T0,
        direction="inbound",
    )
    assert request_id == "blr-1"
    assert requested.check("13800138000", "inbound", T0) is None  # not before approval
    assert list(requested.pending) == ["blr-1"]
    assert requested.pending["blr-1"].number == "13800138000"

    approved = requested.approve(request_id, by="lee", at=T0 + timedelta(hours=1),
                                 role_of=ROLES)
    entry = approved.check("13800138000", "inbound", T0 + timedelta(hours=2))
    assert entry == BlacklistEntry(
        number="13800138000", direction="inbound", reason="abusive caller",
        requested_by="ann", approved_by="lee", request_id="blr-1",
        added_at=T0 + timedelta(hours=1),
    )
    assert dict(approved.pending) == {}
    assert approved.prompt_for(entry) == DEFAULT_REJECTION_PROMPT
    # Every step returned a new state; the old ones are unchanged.
    assert dict(empty.entries) == {}
    assert dict(empty.pending) == {}
    assert dict(requested.entries) == {}
    assert approved.sequence == 1


def test_cc04_reject_drops_the_request() -> None:
    state, request_id = Blacklist().request("13800138000", reason="spam", requested_by="ann",
                                            at=T0)
    rejected = state.reject(request_id, by="max", at=T0, role_of=ROLES)
    assert dict(rejected.pending) == {}
    assert rejected.check("13800138000", "inbound", T0) is None
    with pytest.raises(KeyError, match="no pending blacklist request 'blr-1'"):
        rejected.approve(request_id, by="lee", at=T0, role_of=ROLES)
    # Ids keep counting, so a rejected id is never reused.
    _, next_id = rejected.request("13800138000", reason="spam", requested_by="ann", at=T0)
    assert next_id == "blr-2"


def test_cc04_removal_needs_approval_too() -> None:
    state = listed("13800138000")
    state, request_id = state.request_removal("+86 13800138000", reason="resolved",
                                              requested_by="bob", at=T0)
    assert state.check("13800138000", "inbound", T0) is not None  # still blocked
    assert state.pending[request_id].action == "remove"
    with pytest.raises(PermissionError):
        state.approve(request_id, by="bob", at=T0, role_of=ROLES)
    removed = state.approve(request_id, by="dan", at=T0, role_of=ROLES)
    assert removed.check("13800138000", "inbound", T0) is None
    assert dict(removed.entries) == {}
    with pytest.raises(KeyError, match="not on the blacklist"):
        removed.request_removal("13800138000", reason="again", requested_by="bob", at=T0)


def test_cc04_removal_of_an_entry_gone_meanwhile_is_refused() -> None:
    state = listed("13800138000", expires_at=T0 + timedelta(days=1))
    state, request_id = state.request_removal("13800138000", reason="resolved",
                                              requested_by="ann", at=T0)
    state = state.expire(T0 + timedelta(days=2))
    with pytest.raises(ValueError, match="no longer on the blacklist; reject request blr-2"):
        state.approve(request_id, by="lee", at=T0 + timedelta(days=2), role_of=ROLES)
    assert dict(state.reject(request_id, by="lee", at=T0, role_of=ROLES).pending) == {}


def test_cc04_one_pending_request_per_number_and_action() -> None:
    state, first = Blacklist().request("13900000000", reason="x", requested_by="ann", at=T0)
    with pytest.raises(ValueError, match=f"already has pending request {first}"):
        state.request("+86 139 0000 0000", reason="y", requested_by="bob", at=T0)


@pytest.mark.parametrize(("approver", "message"), [
    ("ann", "ann made request blr-1 and cannot decide it too"),
    ("bob", "bob is an agent; only a team lead, manager or director"),
    ("eve", "eve has no known role"),
])
def test_cc04_permission_errors(approver: str, message: str) -> None:
    state, request_id = Blacklist().request("13800138000", reason="spam", requested_by="ann",
                                            at=T0)
    with pytest.raises(PermissionError, match=message):
        state.approve(request_id, by=approver, at=T0, role_of=ROLES)
    with pytest.raises(PermissionError, match=message):
        state.reject(request_id, by=approver, at=T0, role_of=ROLES)


def test_cc04_role_lookup_may_be_a_callable_and_team_leads_may_request() -> None:
    state = listed("13800138000", requested_by="lee", approver="max")
    assert state.entries["13800138000"].approved_by == "max"
    calls: list[str] = []

    def role_of(user: str) -> str | None:
        calls.append(user)
        return ROLES.get(user)

    state, request_id = state.request("400123*", reason="spam", requested_by="max", at=T0)
    state = state.approve(request_id, by="lee", at=T0, role_of=role_of)
    assert calls == ["lee"]
    state, request_id = state.request("13900000000", reason="spam", requested_by="ann", at=T0)
    with pytest.raises(PermissionError, match="no known role"):
        state.approve(request_id, by="zed", at=T0, role_of=ROLES.__getitem__)


@pytest.mark.parametrize(("raw", "normal"), [
    ("13800138000", "13800138000"),
    ("+86 138-0013-8000", "13800138000"),
    ("+8613800138000", "13800138000"),
    ("0086 138 0013 8000", "13800138000"),
    ("8613800138000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),
    ("010-6234-5678", "1062345678"),
    ("+86 10 6234 5678", "1062345678"),
    ("+86 (0)10 6234 5678", "1062345678"),
    ("0755 1234 5678", "75512345678"),
    ("400-123-4567", "4001234567"),
    ("+1 202-555-0123", "+12025550123"),
    ("001 202 555 0123", "+12025550123"),
    ("400123*", "400123*"),
    ("0755*", "755*"),
    ("+1 202*", "+1202*"),
    ("", None),
    ("anonymous", None),
    ("138*0013", None),
    ("*", None),
    ("+", None),
])
def test_cc04_normalization(raw: str, normal: str | None) -> None:
    assert normalize_number(raw) == normal


def test_cc04_formats_of_one_number_match_each_other() -> None:
    state = listed("+86 138-0013-8000")
    for form in ("13800138000", "+8613800138000", "0086-138-0013-8000", "138 0013 8000"):
        assert state.check(form, "inbound", T0) is not None
    state = listed("010-62345678")
    assert state.check("+86 10 6234 5678", "outbound", T0) is not None
    assert state.check("01062345679", "outbound", T0) is None


def test_cc04_prefix_entries_block_a_range_and_exact_entries_win() -> None:
    state = listed("400123*", prompt="本号码段已被限制")
    state = listed("4001234567", state=state, direction="outbound")
    state = listed("0755 8888*", state=state)
    inbound = state.check("400-123-9999", "inbound", T0)
    assert inbound is not None
    assert inbound.number == "400123*"
    assert state.prompt_for(inbound) == "本号码段已被限制"
    # Outbound, the exact entry is the more specific one.
    exact = state.check("4001234567", "outbound", T0)
    assert exact is not None
    assert exact.number == "4001234567"
    # Inbound, the exact entry (outbound only) does not apply but the range does.
    fallback = state.check("4001234567", "inbound", T0)
    assert fallback is not None
    assert fallback.number == "400123*"
    assert state.check("4001224567", "inbound", T0) is None
    assert state.check("+86 755 8888 1234", "inbound", T0) is not None
    assert state.check("075588881234", "inbound", T0) is not None
    assert state.check("075598881234", "inbound", T0) is None
    # The longest matching range wins.
    state = listed("400*", state=state, direction="outbound")
    longest = state.check("4001239999", "outbound", T0)
    assert longest is not None
    assert longest.number == "400123*"


def test_cc04_directions() -> None:
    state = listed("13800000001", direction="inbound")
    state = listed("13800000002", direction="outbound", state=state)
    state = listed("13800000003", direction="both", state=state)
    assert state.check("13800000001", "inbound", T0) is not None
    assert state.check("13800000001", "outbound", T0) is None
    assert state.check("13800000002", "inbound", T0) is None
    assert state.check("13800000002", "outbound", T0) is not None
    assert state.check("13800000003", "inbound", T0) is not None
    assert state.check("13800000003", "outbound", T0) is not None
    with pytest.raises(ValueError, match="direction='sideways'"):
        Blacklist().request("13800000004", reason="x", requested_by="ann", at=T0,
                            direction="sideways")  # type: ignore[arg-type]


def test_cc04_expiry() -> None:
    ends = T0 + timedelta(days=7)
    state = listed("13800138000", expires_at=ends)
    assert state.check("13800138000", "inbound", ends - timedelta(seconds=1)) is not None
    assert state.check("13800138000", "inbound", ends) is None
    assert "13800138000" in state.entries
    assert state.expire(ends - timedelta(seconds=1)) is state
    assert dict(state.expire(ends).entries) == {}
    with pytest.raises(ValueError, match=r"expires_at=.*is not after"):
        Blacklist().request("13800138000", reason="x", requested_by="ann", at=T0,
                            expires_at=T0)
    state, request_id = Blacklist().request("13800138000", reason="x", requested_by="ann",
                                            at=T0, expires_at=T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="expired at"):
        state.approve(request_id, by="lee", at=T0 + timedelta(hours=2), role_of=ROLES)


def test_cc04_rejection_prompts() -> None:
    state = Blacklist(default_prompt="blocked.wav")
    state = listed("13800138000", state=state)
    entry = state.check("13800138000", "inbound", T0)
    assert entry is not None
    assert state.prompt_for(entry) == "blocked.wav"
    assert state.with_default_prompt("其他提示").prompt_for(entry) == "其他提示"
    with pytest.raises(ValueError, match="default_prompt is empty"):
        Blacklist(default_prompt=" ")
    with pytest.raises(ValueError, match="prompt is empty"):
        state.with_default_prompt("")


def test_cc04_bad_caller_numbers_are_never_blocked_nor_raise() -> None:
    state = listed("13800138000")
    for number in ("", "anonymous", "unknown", "+", "400123*"):
        assert state.check(number, "inbound", T0) is None
    with pytest.raises(ValueError, match="no timezone"):
        state.check("13800138000", "inbound", datetime(2026, 3, 2))


def test_cc04_bad_requests_name_the_argument() -> None:
    empty = Blacklist()
    with pytest.raises(ValueError, match="number='call me' is not a phone number"):
        empty.request("call me", reason="x", requested_by="ann", at=T0)
    with pytest.raises(ValueError, match="number='13\\*' is too wide a range"):
        empty.request("13*", reason="x", requested_by="ann", at=T0)
    with pytest.raises(ValueError, match="reason is empty"):
        empty.request("13800138000", reason="  ", requested_by="ann", at=T0)
    with pytest.raises(ValueError, match=r"at=.*no timezone"):
        empty.request("13800138000", reason="x", requested_by="ann", at=datetime(2026, 3, 2))


def test_cc04_state_is_read_only_and_rebuilds_from_a_snapshot() -> None:
    state = listed("400123*")
    with pytest.raises(TypeError):
        state.entries["x"] = state.entries["400123*"]  # type: ignore[index]
    state, request_id = state.request("+86 010 6234 5678", reason="x", requested_by="bob",
                                      at=T0)
    copy = Blacklist(state.entries.values(), pending=state.pending.values(),
                     default_prompt=state.default_prompt, sequence=state.sequence)
    assert copy.check("4001230000", "inbound", T0) == state.check("4001230000", "inbound", T0)
    assert copy.request("13800138000", reason="x", requested_by="ann", at=T0)[1] == "blr-3"
    with pytest.raises(ValueError, match="sequence=0 is below pending request blr-2"):
        Blacklist(pending=state.pending.values())
    assert copy.approve(request_id, by="lee", at=T0, role_of=ROLES).check(
        "01062345678", "inbound", T0) is not None
    # Imported entries are normalized.
    imported = Blacklist([BlacklistEntry(
        number="+86 138-0013-8000", direction="both", reason="import", requested_by="ann",
        approved_by="lee", request_id="legacy-1", added_at=T0,
    )])
    assert list(imported.entries) == ["13800138000"]
    assert repr(imported) == "Blacklist(1 entries, 0 pending)"
