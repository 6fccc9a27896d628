"""Shared shapes of the scheduling library: activities and the shift frame.

The shift MIP (``scheduling.shifts``) produces a *shift frame*, rostering
(``scheduling.roster``) fills it with named agents and publishing
(``scheduling.publish``) turns the result into ``wfm.schedule_published`` events.
All times are naive local wall-clock ``pd.Timestamp`` s of the planning site.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

__all__ = ["SHIFT_COLUMNS", "Activity", "ShiftFrameError", "check_shift_frame", "time_zone"]

SHIFT_COLUMNS: tuple[str, ...] = (
    "template", "day", "start", "end", "count", "paid_minutes", "skill", "activities",
)
"""Columns of a shift frame, one row per distinct concrete shift:

``template`` (str), ``day`` (``datetime.date`` the shift starts on), ``start`` / ``end``
(``pd.Timestamp``), ``count`` (int >= 1, agents working exactly this shift),
``paid_minutes`` (int: length minus unpaid activities), ``skill`` (str or None: the skill
an agent needs to work it), ``activities`` (tuple of ``Activity``: breaks, lunch, ...,
in time order, inside the shift).
"""


@dataclass(frozen=True, slots=True)
class Activity:
    """Time off the phones inside a shift: a break, lunch, meeting or training."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    paid: bool = True

    @property
    def minutes(self) -> int:
        """Length in whole minutes."""
        return int((self.end - self.start) / pd.Timedelta(minutes=1))


class ShiftFrameError(ValueError):
    """A shift frame is missing columns or holds inconsistent rows."""


def check_shift_frame(shifts: pd.DataFrame, *, argument: str = "shifts") -> None:
    """Raise ``ShiftFrameError`` naming ``argument`` unless ``shifts`` is a valid shift frame."""
    missing = [c for c in SHIFT_COLUMNS if c not in shifts.columns]
    if missing:
        raise ShiftFrameError(
            f"{argument}: missing columns {missing}; a shift frame has {list(SHIFT_COLUMNS)} "
            "(see scheduling.model.SHIFT_COLUMNS)")
    for i, row in enumerate(shifts.itertuples(index=False)):
        if not row.start < row.end:
            raise ShiftFrameError(f"{argument}: row {i} ends at {row.end}, not after its "
                                  f"start {row.start}; give end > start")
        if int(row.count) < 1:
            raise ShiftFrameError(f"{argument}: row {i} has count {row.count}; drop rows "
                                  "with no agents or give count >= 1")
        for activity in row.activities:
            if not (row.start <= activity.start < activity.end <= row.end):
                raise ShiftFrameError(
                    f"{argument}: row {i} has {activity.kind} {activity.start}-{activity.end} "
                    f"outside the shift {row.start}-{row.end}; place activities inside it")


def time_zone(timezone: str, *, error: type[ValueError] = ValueError) -> ZoneInfo:
    """The IANA zone ``timezone``, or ``error`` saying how to name one."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise error(f"timezone {timezone!r} is not an IANA time zone; give one such as "
                    "'Europe/Berlin' or 'Asia/Shanghai'") from None
