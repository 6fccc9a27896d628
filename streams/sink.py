"""The warehouse sink: fact rows batched by size and time, written idempotently.

Rows are buffered until ``batch_rows`` rows or ``batch_seconds`` have gathered, then each
table is written with :func:`warehouse.load.insert_new`, which skips keys already stored:
a replay or a redelivery after a crash never duplicates a fact (nor double counts the
rollups the materialized views keep). :meth:`WarehouseSink.write` raises on failure and
keeps the batch, so the host commits offsets only after a write returned and retries a
failed one (see ``streams.runner``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ingest.contract import Event
from streams.facts import FACT_KEYS, FACT_TABLES, FactRows, Row, fold_events
from warehouse.client import Warehouse
from warehouse.load import insert_new

__all__ = ["WarehouseSink", "fact_frame", "write_events"]

_MS_COLUMNS: Mapping[str, Mapping[str, str]] = {
    "calls": {"offered_at": "offered_ms", "answered_at": "answered_ms", "ended_at": "ended_ms"},
    "call_segments": {"start_at": "start_ms", "end_at": "end_ms"},
    "agent_state_intervals": {"start": "start_ms", "end": "end_ms"},
    "surveys": {},
    "ticket_events": {"occurred_at": "occurred_ms"},
    "schedules": {},
    "forecasts": {},
}
_TIME_COLUMNS: Mapping[str, Sequence[str]] = {
    "calls": ("offered_at", "queued_at", "answered_at", "ended_at"),
    "call_segments": ("start_at", "end_at"),
    "agent_state_intervals": ("start", "end"),
    "surveys": ("answered_at",),
    "ticket_events": ("occurred_at",),
    "schedules": ("start_utc", "end_utc", "published_at"),
    "forecasts": ("interval_start", "published_at"),
}

_UINT8_COLUMNS: Mapping[str, Sequence[str]] = {"calls": ("survey_score", "survey_max"),
                                               "schedules": ("paid",)}

_NULLABLE_FLOATS: Mapping[str, Sequence[str]] = {"forecasts": ("aht", "calls_low", "calls_high")}


def fact_frame(table: str, rows: Sequence[Row]) -> pd.DataFrame:
    """Rows of ``table`` as the warehouse stores them: UTC seconds plus a ``*_ms`` column."""
    frame = pd.DataFrame.from_records(list(rows))
    for column in _TIME_COLUMNS[table]:
        moments = pd.to_datetime(frame[column], utc=True)
        ms_column = _MS_COLUMNS[table].get(column)
        if ms_column is not None:
            frame[ms_column] = (moments.dt.microsecond // 1000).fillna(0).astype("uint16")
        frame[column] = moments.dt.floor("s")
    for column in _UINT8_COLUMNS.get(table, ()):
        frame[column] = frame[column].astype("UInt8")
    for column in _NULLABLE_FLOATS.get(table, ()):
        frame[column] = frame[column].astype("Float64")  # None stays NULL, not NaN
    return frame


@dataclass(frozen=True, slots=True)
class _Pending:
    rows: FactRows
    since: float


class WarehouseSink:
    """Buffers fact rows and writes them to ``warehouse`` in idempotent batches."""

    def __init__(self, warehouse: Warehouse, *, batch_rows: int = 10_000,
                 batch_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        if batch_seconds < 0:
            raise ValueError(f"batch_seconds must be >= 0, got {batch_seconds}")
        self.warehouse = warehouse
        self.batch_rows, self.batch_seconds = batch_rows, batch_seconds
        self._clock = clock
        self._pending = _Pending(FactRows(), clock())
        self.written: dict[str, int] = dict.fromkeys(FACT_TABLES, 0)
        """Rows added per table since the sink was created (duplicates skipped)."""

    def add(self, rows: FactRows) -> None:
        """Buffer ``rows``."""
        if not len(self._pending.rows):
            self._pending = _Pending(FactRows(), self._clock())
        self._pending.rows.extend(rows)

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return len(self._pending.rows)

    def due(self) -> bool:
        """Whether the buffer is full or its oldest row waited ``batch_seconds``."""
        size = len(self._pending.rows)
        return size >= self.batch_rows or (
            size > 0 and self._clock() - self._pending.since >= self.batch_seconds)

    def write(self) -> dict[str, int]:
        """Write the buffer; returns rows added per table. On an error the buffer is kept
        (tables already written are skipped on the retry by their keys)."""
        added: dict[str, int] = {}
        for table, rows in self._pending.rows.tables().items():
            key, scope = FACT_KEYS[table]
            added[table] = insert_new(self.warehouse, table, fact_frame(table, rows),
                                      key=key, scope=scope)
            self.written[table] += added[table]
        self._pending = _Pending(FactRows(), self._clock())
        return added


def write_events(warehouse: Warehouse, events: Iterable[Event]) -> dict[str, int]:
    """Fold a finite list of events (a simulation, an import) and write its facts in one
    go; returns rows added per table."""
    sink = WarehouseSink(warehouse)
    sink.add(fold_events(events)[1])
    return sink.write()
