"""Call-detail records (any CSV, one row per call) into contract events via a column mapping.

A ``CdrMapping`` (loaded from YAML with ``load_mapping``) says which columns hold the call
id, the times (offered, answered, ended; a datetime column, or a date column plus the first
non-empty of several clock-time columns), wait and talk seconds, the outcome and its values,
the queue, agent, caller and dialed number. ``ASTERISK_MASTER`` is the mapping of Asterisk's
``cdr-csv`` Master.csv (18 columns, no header); ``mappings/anonymous_bank.yaml`` maps the
Anonymous Bank month.

Each row gives ``call.offered``, ``call.queued`` (when ``queued_when`` holds or is unset and
the row has a queue), then ``call.answered`` + ``call.ended`` (answered),
``call.abandoned`` + ``call.ended`` (abandoned), or ``call.ended`` (failed). Outcome values
listed under ``no_event`` are counted, not converted; unlisted values are errors.
A call id repeated in the file gets ``#2``, ``#3``... on its later rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml

from ingest.contract import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    Disposition,
    Event,
    Payload,
    make_event,
)
from ingest.importers.report import (
    Converted,
    LineError,
    NoEvent,
    Outcome,
    RecordError,
    checked,
    event_id,
)

__all__ = [
    "ASTERISK_MASTER",
    "MAPPINGS",
    "CdrMapping",
    "MappingError",
    "Moment",
    "Outcomes",
    "Value",
    "load_mapping",
    "parse_cdr",
]

MAPPINGS = Path(__file__).with_name("mappings")
"""The mapping files shipped with queuecast."""


class MappingError(ValueError):
    """The mapping file is not valid; the message names the key and the fix."""


class Value(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A text value of a row: a column, a ``{column}`` template or a constant.

    ``pattern`` keeps its first group (or whole match); ``map`` translates values;
    ``default`` stands in when the result is empty or a null value.
    """

    column: str | None = None
    template: str | None = None
    const: str | None = None
    pattern: str | None = None
    map: dict[str, str] = {}
    default: str | None = None


class Moment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An instant of a row: ``column`` with ``format``, or ``date`` plus the first
    non-null of the ``time`` columns (``date_format``, ``time_format``)."""

    column: str | None = None
    format: str = "%Y-%m-%d %H:%M:%S"
    date: str | None = None
    date_format: str = "%Y-%m-%d"
    time: list[str] = []
    time_format: str = "%H:%M:%S"


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """True when ``column``'s value is ``in`` the list, or not in ``not_in``."""

    column: str
    in_: list[str] | None = msgspec.field(default=None, name="in")
    not_in: list[str] | None = None


class Outcomes(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The outcome column and which of its values mean what."""

    column: str
    answered: list[str] = []
    abandoned: list[str] = []
    failed: list[str] = []
    no_event: list[str] = []


class CdrMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the columns of a CDR CSV become a call's events (see the module doc)."""

    call_id: Value
    offered_at: Moment
    outcome: Outcomes
    header: bool = True
    columns: list[str] | None = None
    delimiter: str = ","
    timezone: str = "UTC"
    null_values: list[str] = msgspec.field(default_factory=lambda: [""])
    system: str = "cdr"
    answered_at: Moment | None = None
    ended_at: Moment | None = None
    wait_s: Value | None = None
    talk_s: Value | None = None
    queue: Value | None = None
    agent: Value | None = None
    caller: Value | None = None
    customer_id: Value | None = None
    dialed: Value | None = None
    direction: Value | None = None
    queued_when: Condition | None = None
    answered_by_system: Value | None = None
    """The disposition of an answered row without an agent (the PBX itself answered: IVR,
    announcement, voicemail); unset, such a row is an error."""
    abandon_stage_outside_queue: Literal["ivr", "ringing", "queue"] = "ringing"


def _shorthand(node: object) -> object:
    """A plain string stands for ``{column: it}`` wherever a Value or Moment is expected."""
    if isinstance(node, dict):
        return {k: ({"column": v} if isinstance(v, str) and k in _VALUE_KEYS else _shorthand(v))
                for k, v in node.items()}
    return node


_VALUE_KEYS = frozenset({"call_id", "offered_at", "answered_at", "ended_at", "wait_s", "talk_s",
                         "queue", "agent", "caller", "customer_id", "dialed", "direction",
                         "answered_by_system"})


def load_mapping(source: Path | str | dict[str, object]) -> CdrMapping:
    """A mapping from a YAML file (or an already parsed dict), checked."""
    try:
        raw = source if isinstance(source, dict) else yaml.safe_load(Path(source).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{source}: cannot read the mapping: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: the mapping must be a YAML mapping of keys")
    try:
        mapping = msgspec.convert(_shorthand(raw), CdrMapping)
    except msgspec.ValidationError as exc:
        raise MappingError(f"{source}: {exc}") from None
    try:
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"{source}: timezone {mapping.timezone!r} is not an IANA zone "
                           "such as UTC or Europe/Paris") from None
    if not mapping.header and not mapping.columns:
        raise MappingError(f"{source}: header is false, so list the column names in columns")
    return mapping


ASTERISK_MASTER = load_mapping(MAPPINGS / "asterisk_master.yaml")
"""Asterisk cdr-csv Master.csv (classic 18 columns, no header, times in UTC)."""



class _Row:
    def __init__(self, mapping: CdrMapping, fields: dict[str, str], zone: ZoneInfo) -> None:
        self.mapping, self.fields, self.zone = mapping, fields, zone
        self.nulls = frozenset(mapping.null_values)

    def raw(self, column: str) -> str | None:
        if column not in self.fields:
            raise RecordError(f"no column {column!r} (the mapping names it; the file has "
                       f"{', '.join(list(self.fields)[:20])})")
        text = self.fields[column].strip()
        return None if text in self.nulls else text

    def text(self, spec: Value | None) -> str | None:
        if spec is None:
            return None
        if spec.const is not None:
            value: str | None = spec.const
        elif spec.template is not None:
            value = spec.template.format_map({k: (v or "") for k, v in self.fields.items()})
        elif spec.column is not None:
            value = self.raw(spec.column)
        else:
            value = None
        if value and spec.pattern:
            found = re.search(spec.pattern, value)
            value = (found.group(1) if found and found.groups() else
                     found.group(0) if found else None)
        if value is not None and spec.map:
            value = spec.map.get(value, value)
        if value is None or value in self.nulls:
            value = spec.default
        return value

    def seconds(self, spec: Value | None, name: str) -> float | None:
        text = self.text(spec)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise RecordError(f"{name} {text!r} is not a number of seconds") from None
        if value < 0:
            raise RecordError(f"{name} {text!r} is negative")
        return value

    def moment(self, spec: Moment | None, name: str) -> datetime | None:
        if spec is None:
            return None
        try:
            if spec.column is not None:
                text = self.raw(spec.column)
                return None if text is None else (
                    datetime.strptime(text, spec.format).replace(tzinfo=self.zone))
            clock = next((t for t in map(self.raw, spec.time) if t is not None), None)
            day = self.raw(spec.date) if spec.date else None
            if clock is None or day is None:
                return None
            date = datetime.strptime(day, spec.date_format)
            hms = datetime.strptime(clock, spec.time_format)
        except ValueError as exc:
            raise RecordError(f"{name}: {exc}") from None
        return date.replace(hour=hms.hour, minute=hms.minute, second=hms.second,
                            tzinfo=self.zone)


def _events(row: _Row, call: str, outcome: str) -> list[tuple[datetime, Payload]]:
    m = row.mapping
    offered = row.moment(m.offered_at, "offered_at")
    if offered is None:
        raise RecordError(f"offered_at is empty ({m.offered_at.column or m.offered_at.time})")
    answered_at, ended_at = row.moment(m.answered_at, "answered_at"), row.moment(m.ended_at,
                                                                                 "ended_at")
    wait = row.seconds(m.wait_s, "wait_s")
    talk = row.seconds(m.talk_s, "talk_s")
    queue = row.text(m.queue)
    queued = queue is not None and (m.queued_when is None or _holds(row, m.queued_when))
    direction = row.text(m.direction) or "inbound"
    if direction not in ("inbound", "outbound", "internal"):
        raise RecordError(f"direction {direction!r} is not inbound, outbound or internal")
    caller = (row.text(m.caller) or "anonymous")[:40]
    dialed = (row.text(m.dialed) or queue or "unknown")[:40]
    out: list[tuple[datetime, Payload]] = [(offered, CallOffered(
        call_id=call, direction=direction, caller=caller, dialed=dialed,
        customer_id=row.text(m.customer_id)))]  # type: ignore[arg-type]
    if queued:
        out.append((offered, CallQueued(call_id=call, queue=queue)))  # type: ignore[arg-type]
    in_queue = queue if queued else None
    if outcome == "answered":
        if wait is None:
            wait = (answered_at - offered).total_seconds() if answered_at else 0.0
        answered_at = answered_at or offered + timedelta(seconds=wait)
        agent = row.text(m.agent)
        if agent is None:
            return [*out, (ended_at or answered_at, _unattended(row, call, in_queue))]
        ended_at = ended_at or answered_at + timedelta(seconds=talk or 0.0)
        out += [(answered_at, CallAnswered(call_id=call, agent_id=agent, queue=in_queue,
                                           wait_s=max(wait, 0.0))),
                (ended_at, CallEnded(call_id=call, disposition="answered", ended_by="system",
                                     agent_id=agent, queue=in_queue))]
    elif outcome == "abandoned":
        if wait is None:
            wait = (ended_at - offered).total_seconds() if ended_at else 0.0
        gone = ended_at or offered + timedelta(seconds=wait)
        stage = "queue" if queued else m.abandon_stage_outside_queue
        out += [(gone, CallAbandoned(call_id=call, stage=stage, queue=in_queue,
                                     wait_s=max(wait, 0.0))),
                (gone, CallEnded(call_id=call, disposition="abandoned", ended_by="caller",
                                 queue=in_queue))]
    else:
        out.append((ended_at or offered, CallEnded(call_id=call, disposition="failed",
                                                   ended_by="system", queue=in_queue)))
    return out


def _unattended(row: _Row, call: str, queue: str | None) -> CallEnded:
    disposition = row.text(row.mapping.answered_by_system)
    if disposition is None:
        raise RecordError("answered without an agent (the agent column is empty) and the mapping "
                   "has no answered_by_system")
    if disposition not in get_args(Disposition):
        raise RecordError(f"answered_by_system gave {disposition!r}, not one of "
                   f"{', '.join(get_args(Disposition))}")
    return CallEnded(call_id=call, disposition=disposition, ended_by="system",  # type: ignore[arg-type]
                     queue=queue)


def _holds(row: _Row, condition: Condition) -> bool:
    value = row.fields.get(condition.column, "").strip()
    if condition.in_ is not None and value not in condition.in_:
        return False
    return condition.not_in is None or value not in condition.not_in


def _kind(mapping: Outcomes, value: str) -> str | None:
    for kind in ("answered", "abandoned", "failed", "no_event"):
        if value in getattr(mapping, kind):
            return kind
    return None


def _rows(lines: Iterable[str], mapping: CdrMapping) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines, delimiter=mapping.delimiter)
    for fields in reader:
        yield reader.line_num, fields


def parse_cdr(
    data: bytes, *, mapping: CdrMapping = ASTERISK_MASTER, source: str = "cdr",
) -> Iterator[Outcome]:
    """One ``Converted``, ``NoEvent`` or ``LineError`` per record of the CSV ``data``.

    Records are counted by physical line of their start (a quoted field spanning lines is
    one record); the header, when the mapping says there is one, is not a record.
    """
    zone = ZoneInfo(mapping.timezone)
    text = data.decode("utf-8-sig", "surrogateescape")
    names = list(mapping.columns or [])
    seen: Counter[str] = Counter()
    rows = _rows(io.StringIO(text, newline=""), mapping)
    if mapping.header:
        header = next(rows, None)
        if header is None:
            return
        names = [h.strip() for h in header[1]]
        missing = set(mapping.columns or ()) - set(names)
        if missing:
            raise MappingError(f"{source}: the header lacks {', '.join(sorted(missing))}")
    for number, fields in rows:
        joined = mapping.delimiter.join(fields)
        if any("\udc80" <= ch <= "\udcff" for ch in joined):
            yield LineError(source, number, "not UTF-8")
            continue
        if "\x00" in joined:
            yield LineError(source, number, f"{joined.count(chr(0))} NUL bytes (an unclean write)")
            continue
        if not any(f.strip() for f in fields):
            yield LineError(source, number, "empty row")
            continue
        if len(fields) != len(names):
            yield LineError(source, number, f"{len(fields)} fields, the mapping expects "
                            f"{len(names)}")
            continue
        row = _Row(mapping, dict(zip(names, fields, strict=True)), zone)
        try:
            value = row.raw(mapping.outcome.column) or ""
            kind = _kind(mapping.outcome, value)
            if kind is None:
                raise RecordError(f"outcome {value!r} (column {mapping.outcome.column}) is not "
                                  "listed in the mapping's outcome values")
            if kind == "no_event":
                yield NoEvent(number, f"outcome {value}")
                continue
            base = row.text(mapping.call_id)
            if base is None:
                raise RecordError("the call id is empty")
            seen[base] += 1
            call = f"{mapping.system}:{base}" + (f"#{seen[base]}" if seen[base] > 1 else "")
            built = _events(row, call, kind)
        except RecordError as exc:
            yield LineError(source, number, str(exc))
            continue
        events: list[Event[Payload]] = [
            make_event(payload, occurred_at=at, source=f"{mapping.system}.cdr",
                       event_id=event_id(mapping.system, call, joined, k))
            for k, (at, payload) in enumerate(built)
        ]
        problem = checked(events)
        yield LineError(source, number, problem) if problem else Converted(number, tuple(events))
