"""Blacklist of inbound and outbound numbers, with agent requests and team-lead approval (CC-04).

``Blacklist`` is an immutable value: every change returns a new one, so the engine can keep it
in its state and rebuild it by replaying events. An agent ``request``s an entry (or its
removal); a team lead, manager or director other than the requester ``approve``s or
``reject``s it. ``check`` finds the entry that blocks a call, exact numbers before number
ranges (``400123*``), skipping expired entries.

Numbers are compared in one normal form: Chinese numbers as their national significant
number (``+86 138-0013-8000``, ``008613800138000`` and ``13800138000`` are all
``13800138000``; ``010-62345678`` and ``+86 10 6234 5678`` are ``1062345678``), other
countries' numbers as ``+`` and digits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Literal

import msgspec

from callcore.center import ROLE_RANK

__all__ = [
    "DEFAULT_REJECTION_PROMPT",
    "Blacklist",
    "BlacklistEntry",
    "BlacklistRequest",
    "CallDirection",
    "Direction",
    "RoleLookup",
    "normalize_number",
]

Direction = Literal["inbound", "outbound", "both"]
CallDirection = Literal["inbound", "outbound"]
RoleLookup = Callable[[str], str | None] | Mapping[str, str]
"""A user's role (``agent``, ``team_lead``, ``manager``, ``director``) by user id."""

DEFAULT_REJECTION_PROMPT = "您拨的号码为空号"
"""Played to a blocked caller unless the entry or the blacklist sets another prompt."""

_APPROVER_RANK = ROLE_RANK["team_lead"]
_MIN_PREFIX_DIGITS = 3
_SEPARATORS = str.maketrans("", "", " -.()\t\u00a0")


class BlacklistEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A blocked number or number range (``number`` ends with ``*``), in normal form."""

    number: str
    direction: Direction
    reason: str
    prompt: str | None = None
    """Rejection prompt for this entry; ``None`` uses the blacklist's default."""
    requested_by: str
    approved_by: str
    request_id: str
    added_at: datetime
    expires_at: datetime | None = None

    def blocks(self, direction: CallDirection, at: datetime) -> bool:
        """Whether this entry blocks a call in ``direction`` at ``at``."""
        return (self.direction in (direction, "both")
                and (self.expires_at is None or at < self.expires_at))


class BlacklistRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A pending request to add (or remove) an entry, awaiting a team lead's decision."""

    request_id: str
    action: Literal["add", "remove"]
    number: str
    direction: Direction = "both"
    reason: str
    prompt: str | None = None
    requested_by: str
    requested_at: datetime
    expires_at: datetime | None = None


def normalize_number(number: str) -> str | None:
    """``number`` in normal form (see the module docstring), keeping a trailing ``*`` of a
    range; ``None`` when it is not a phone number (empty, withheld, letters)."""
    text = number.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits and plus sign
    text = text.translate(_SEPARATORS)
    star = text.endswith("*")
    digits = text.removesuffix("*")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("+"):
        rest = digits[1:]
        return f"+{rest}{'*' if star else ''}" if rest.isdigit() else None
    elif len(digits) == 13 and digits.startswith("861") and digits[3] in "3456789":
        digits = digits[2:]  # 86 written without the plus before a mobile number
    if digits.startswith("0"):
        digits = digits[1:]  # the trunk prefix of a domestic area code
    if not digits.isdigit():
        return None
    return digits + ("*" if star else "")


def _aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name}={value.isoformat()} has no timezone; pass an aware datetime")


class Blacklist:
    """The blacklist: active entries and pending requests (CC-04). Immutable."""

    __slots__ = ("_default_prompt", "_entries", "_pending", "_prefixes", "_sequence")

    def __init__(
        self,
        entries: Iterable[BlacklistEntry] = (),
        *,
        pending: Iterable[BlacklistRequest] = (),
        default_prompt: str = DEFAULT_REJECTION_PROMPT,
        sequence: int = 0,
    ) -> None:
        """Build from existing entries (a snapshot or an import) and pending requests.
        ``sequence`` is the number of requests made so far; new ids continue from it."""
        if not default_prompt.strip():
            raise ValueError("default_prompt is empty; give the text or file to play to a "
                             "blocked caller")
        normal = [msgspec.structs.replace(e, number=_key(e.number)) for e in entries]
        requests = {r.request_id: r for r in pending}
        for request_id in requests:
            number = request_id.removeprefix("blr-")
            if number.isdigit() and int(number) > sequence:
                raise ValueError(f"sequence={sequence} is below pending request {request_id}; "
                                 "pass the sequence saved with the snapshot")
        self._set({e.number: e for e in normal}, requests, default_prompt, sequence)

    def _set(
        self,
        entries: dict[str, BlacklistEntry],
        pending: dict[str, BlacklistRequest],
        default_prompt: str,
        sequence: int,
    ) -> None:
        self._entries = entries
        self._prefixes = {k.removesuffix("*"): e for k, e in entries.items() if k.endswith("*")}
        self._pending = pending
        self._default_prompt = default_prompt
        self._sequence = sequence

    @property
    def entries(self) -> Mapping[str, BlacklistEntry]:
        """Entries by normal-form number (ranges end with ``*``), expired ones included
        until ``expire`` drops them."""
        return MappingProxyType(self._entries)

    @property
    def pending(self) -> Mapping[str, BlacklistRequest]:
        """Requests awaiting a decision, by request id."""
        return MappingProxyType(self._pending)

    @property
    def default_prompt(self) -> str:
        """The rejection prompt of entries that set none."""
        return self._default_prompt

    @property
    def sequence(self) -> int:
        """How many requests were made; the next id is ``blr-{sequence + 1}``."""
        return self._sequence

    def __repr__(self) -> str:
        return f"Blacklist({len(self._entries)} entries, {len(self._pending)} pending)"

    def check(self, number: str, direction: CallDirection, at: datetime) -> BlacklistEntry | None:
        """The entry blocking a call with ``number`` in ``direction`` at ``at``: the exact
        number first, then the longest matching range. ``None`` if allowed; a number that
        cannot be normalized (withheld, garbage) is never blocked."""
        _aware(at, "at")
        key = normalize_number(number) if isinstance(number, str) else None
        if key is None or key.endswith("*"):
            return None
        exact = self._entries.get(key)
        if exact is not None and exact.blocks(direction, at):
            return exact
        for length in range(len(key), _MIN_PREFIX_DIGITS - 1, -1):
            entry = self._prefixes.get(key[:length])
            if entry is not None and entry.blocks(direction, at):
                return entry
        return None

    def blocked(self, number: str, direction: CallDirection, at: datetime) -> str | None:
        """The rejection prompt if ``number`` is blocked in ``direction`` at ``at``, else None.

        This is the engine's ``blocked`` check (CC-04).
        """
        entry = self.check(number, direction, at)
        return None if entry is None else self.prompt_for(entry)

    def prompt_for(self, entry: BlacklistEntry) -> str:
        """The rejection prompt to play for ``entry``."""
        return entry.prompt or self._default_prompt

    def with_default_prompt(self, prompt: str) -> Blacklist:
        """The same blacklist with another default rejection prompt."""
        if not prompt.strip():
            raise ValueError("prompt is empty; give the text or file to play to a blocked caller")
        return self._replace(default_prompt=prompt)

    def request(
        self,
        number: str,
        *,
        reason: str,
        requested_by: str,
        at: datetime,
        direction: Direction = "both",
        prompt: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[Blacklist, str]:
        """Ask to block ``number`` (or a range ``400123*``); returns the new state and the
        request id. Anyone may ask; a team lead or above decides."""
        key = _key(number)
        if direction not in ("inbound", "outbound", "both"):
            raise ValueError(f"direction={direction!r}; use 'inbound', 'outbound' or 'both'")
        _aware(at, "at")
        _aware(expires_at, "expires_at")
        if expires_at is not None and expires_at <= at:
            raise ValueError(f"expires_at={expires_at.isoformat()} is not after "
                             f"at={at.isoformat()}; give a later expiry or none")
        return self._add_request(BlacklistRequest(
            request_id=self._next_id(), action="add", number=key, direction=direction,
            reason=_reason(reason), prompt=prompt or None, requested_by=requested_by,
            requested_at=at, expires_at=expires_at,
        ))

    def request_removal(
        self, number: str, *, reason: str, requested_by: str, at: datetime
    ) -> tuple[Blacklist, str]:
        """Ask to unblock ``number`` (the exact entry, or a range written with ``*``)."""
        key = _key(number)
        _aware(at, "at")
        if key not in self._entries:
            raise KeyError(f"{number!r} ({key}) is not on the blacklist; nothing to remove")
        return self._add_request(BlacklistRequest(
            request_id=self._next_id(), action="remove", number=key, reason=_reason(reason),
            requested_by=requested_by, requested_at=at,
        ))

    def approve(self, request_id: str, *, by: str, at: datetime, role_of: RoleLookup) -> Blacklist:
        """Carry out a pending request. ``by`` must be a team lead, manager or director and
        not the requester, else ``PermissionError``."""
        request = self._decide(request_id, by, at, role_of)
        pending = {k: v for k, v in self._pending.items() if k != request_id}
        entries = dict(self._entries)
        if request.action == "remove":
            if request.number not in entries:
                raise ValueError(f"{request.number} is no longer on the blacklist; reject "
                                 f"request {request_id} instead")
            del entries[request.number]
        else:
            if request.expires_at is not None and request.expires_at <= at:
                raise ValueError(f"request {request_id} expired at "
                                 f"{request.expires_at.isoformat()}; reject it and ask again")
            entries[request.number] = BlacklistEntry(
                number=request.number, direction=request.direction, reason=request.reason,
                prompt=request.prompt, requested_by=request.requested_by, approved_by=by,
                request_id=request_id, added_at=at, expires_at=request.expires_at,
            )
        return self._replace(entries=entries, pending=pending)

    def reject(self, request_id: str, *, by: str, at: datetime, role_of: RoleLookup) -> Blacklist:
        """Drop a pending request unchanged; same permission rule as ``approve``."""
        self._decide(request_id, by, at, role_of)
        return self._replace(pending={k: r for k, r in self._pending.items() if k != request_id})

    def expire(self, at: datetime) -> Blacklist:
        """Drop entries expired at ``at`` (``check`` already ignores them)."""
        _aware(at, "at")
        live = {k: e for k, e in self._entries.items() if e.expires_at is None or at < e.expires_at}
        return self if len(live) == len(self._entries) else self._replace(entries=live)

    def _add_request(self, request: BlacklistRequest) -> tuple[Blacklist, str]:
        for other in self._pending.values():
            if other.number == request.number and other.action == request.action:
                raise ValueError(f"{request.number} already has pending request "
                                 f"{other.request_id}; wait for its decision")
        pending = {**self._pending, request.request_id: request}
        return self._replace(pending=pending, sequence=self._sequence + 1), request.request_id

    def _next_id(self) -> str:
        return f"blr-{self._sequence + 1}"

    def _decide(
        self, request_id: str, by: str, at: datetime, role_of: RoleLookup
    ) -> BlacklistRequest:
        _aware(at, "at")
        request = self._pending.get(request_id)
        if request is None:
            raise KeyError(f"no pending blacklist request {request_id!r}; pending: "
                           f"{', '.join(self._pending) or '(none)'}")
        if by == request.requested_by:
            raise PermissionError(f"{by} made request {request_id} and cannot decide it too; "
                                  "another team lead, manager or director must")
        try:
            role = role_of.get(by) if isinstance(role_of, Mapping) else role_of(by)
        except KeyError:
            role = None
        if role not in ROLE_RANK:
            raise PermissionError(f"{by} has no known role ({role!r}); only a team lead, "
                                  "manager or director can decide blacklist requests")
        if ROLE_RANK[role] < _APPROVER_RANK:
            raise PermissionError(f"{by} is an {role}; only a team lead, manager or director "
                                  f"can decide blacklist request {request_id}")
        return request

    def _replace(
        self,
        *,
        entries: dict[str, BlacklistEntry] | None = None,
        pending: dict[str, BlacklistRequest] | None = None,
        default_prompt: str | None = None,
        sequence: int | None = None,
    ) -> Blacklist:
        state = object.__new__(Blacklist)
        state._set(
            self._entries if entries is None else entries,
            self._pending if pending is None else pending,
            self._default_prompt if default_prompt is None else default_prompt,
            self._sequence if sequence is None else sequence,
        )
        return state


def _key(number: str) -> str:
    key = normalize_number(number)
    if key is None:
        raise ValueError(f"number={number!r} is not a phone number; give digits, optionally "
                         "with +country code, or a range ending in * such as 400123*")
    if key.endswith("*") and len(key.strip("+*")) < _MIN_PREFIX_DIGITS:
        raise ValueError(f"number={number!r} is too wide a range; give at least "
                         f"{_MIN_PREFIX_DIGITS} digits before the *")
    return key


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValueError("reason is empty; say why the number is (un)blocked, e.g. harassment")
    return reason.strip()
