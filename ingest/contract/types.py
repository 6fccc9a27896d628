"""Constrained field types shared by every payload of the event contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

__all__ = [
    "AgentId",
    "CallId",
    "Digits",
    "Label",
    "NonNegativeInt",
    "PhoneNumber",
    "Seconds",
    "Text",
    "TicketId",
    "UtcTime",
]

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
"""A short identifier or name: queue, site, flow, node, reason code."""

CallId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
AgentId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
TicketId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
PhoneNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Digits = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9*#]*$")]
Text = Annotated[str, msgspec.Meta(max_length=20_000)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
"""A timezone-aware instant; the codec normalizes it to UTC with millisecond precision."""
