"""Importers of third-party call records into typed per-call DataFrames.

Each importer returns the calls and an ``ImportReport``: rows read, rows rejected with
the reason and line of each, and rows kept but flagged (an inconsistency worth knowing,
not worth losing the call for). Nothing is dropped silently.

* ``ingest.importers.anonymous_bank``: the Anonymous Bank month (Technion, Brown et al.
  2005), ``read_anonymous_bank(path)``.

The history importers turn records into contract events instead (``queuecast import``),
reporting each line as converted, no event, or an error (``ingest.importers.report``):

* ``ingest.importers.asterisk``: Asterisk ``queue_log``, ``parse_queue_log(lines)``.
* ``ingest.importers.cdr``: any per-call CSV through a column mapping (``mappings/*.yaml``),
  ``parse_cdr(data, mapping=...)``; Asterisk Master.csv by default.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ImportFormatError", "ImportReport", "RejectedRow"]


class ImportFormatError(ValueError):
    """The file is not in the importer's format (e.g. another header); nothing was read."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row left out of the DataFrame: its line in the file, why, and its text."""

    line: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import read, kept, rejected and flagged."""

    source: str
    rows_read: int
    rows_kept: int
    rejected: tuple[RejectedRow, ...] = ()
    flagged: dict[str, int] = field(default_factory=dict)
    """Kept rows with an inconsistency, by issue (a row may have several)."""

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected rows counted by reason."""
        return dict(Counter(r.reason for r in self.rejected))

    def summary(self) -> str:
        """A few lines of plain text."""
        lines = [f"{self.source}: {self.rows_read:,} rows read, {self.rows_kept:,} kept, "
                 f"{len(self.rejected):,} rejected"]
        lines += [f"  rejected: {reason}: {n:,}" for reason, n in
                  sorted(self.rejected_by_reason().items())]
        lines += [f"  flagged:  {issue}: {n:,}" for issue, n in sorted(self.flagged.items())]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready builtins."""
        return {"source": self.source, "rows_read": self.rows_read,
                "rows_kept": self.rows_kept, "rejected": self.rejected_by_reason(),
                "rejected_lines": [r.line for r in self.rejected],
                "flagged": dict(self.flagged)}
