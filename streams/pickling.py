"""Fast pickling of slotted dataclasses for the Faust host's tables and internal topics.

A ``slots=True`` dataclass pickles through a ``__getstate__`` that calls ``fields()`` on
every object; the worker pickles every changed call, agent and queue state per batch, and
that call alone was a tenth of its time. ``by_fields`` pickles the values in field order
and rebuilds through the constructor.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

__all__ = ["by_fields"]

T = TypeVar("T", bound=type)


def by_fields(cls: T) -> T:
    """Class decorator: pickle a dataclass as ``cls(*field values)``; every field must be an
    ``__init__`` parameter, in order (no ``init=False`` or keyword-only fields)."""
    members = fields(cls)
    if any(not f.init or f.kw_only for f in members):
        raise TypeError(f"{cls.__name__}: by_fields needs every field positional in __init__")
    names = tuple(f.name for f in members)
    values = attrgetter(*names) if len(names) > 1 else (lambda obj: (getattr(obj, names[0]),))

    def reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = reduce  # type: ignore[method-assign]
    return cls
