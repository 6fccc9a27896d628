"""Hypothesis strategies that build valid contract events from the payload type info.

Every payload type is covered without hand-written examples, so a new event type is
tested the day it is added.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from ingest.contract import PAYLOAD_TYPES, Event, Payload, make_event

__all__ = ["events", "payloads", "utc_datetimes"]

utc_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_text = st.characters(blacklist_categories=("Cs",))


def _values(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.StrType):
        if t.pattern:
            return st.from_regex(t.pattern, fullmatch=True).filter(
                lambda s: len(s) <= (t.max_length or 64)
            )
        return st.text(_text, min_size=t.min_length or 0, max_size=min(t.max_length or 24, 24))
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(10**6))
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 10**6)
        return st.integers(low, high)
    if isinstance(t, mi.FloatType):
        return st.floats(min_value=t.ge if t.ge is not None else -1e6, max_value=1e6,
                         allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.DateTimeType):
        return utc_datetimes.map(lambda d: d.isoformat())
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.UnionType):
        return st.one_of([_values(option) for option in t.types])
    if isinstance(t, mi.ListType):
        return st.lists(_values(t.item_type), max_size=3)
    if isinstance(t, mi.StructType):
        return _struct(t)
    raise TypeError(f"no strategy for {t!r}; extend tests/strategies.py")


def _struct(info: mi.StructType) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {f.encode_name: _values(f.type) for f in info.fields if f.required},
        optional={f.encode_name: _values(f.type) for f in info.fields if not f.required},
    )


def payloads(cls: type[Payload]) -> st.SearchStrategy[Payload]:
    """Valid payloads of ``cls``."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _struct(info).map(lambda raw: msgspec.convert(raw, cls))


def events(types: list[str] | None = None) -> st.SearchStrategy[Event[Payload]]:
    """Valid events of the given types (all types by default)."""
    names = sorted(types or PAYLOAD_TYPES)
    return st.sampled_from(names).flatmap(
        lambda name: st.builds(
            lambda payload, at, source: make_event(payload, occurred_at=at, source=source),
            payloads(PAYLOAD_TYPES[name]), utc_datetimes,
            st.text(_text, min_size=1, max_size=16),
        )
    )
