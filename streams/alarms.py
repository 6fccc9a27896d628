"""Alarms on the live queue board (RT-03): threshold rules folded into raised / cleared events.

A rule measures one queue's board (:class:`~streams.views.QueueState`) at ``now``:

- ``queue_length``: calls waiting; raises at ``threshold`` or more;
- ``longest_wait``: seconds the oldest waiting call has waited; raises at ``threshold`` or more;
- ``service_level``: the service level over the last ``window_minutes`` (the board's
  intervals that lie fully inside the window, plus the current one); raises below the
  target once at least ``min_calls`` calls are in its denominator;
- ``not_ready_share``: the share of the queue's agents in ``not_ready``; raises at
  ``threshold`` or more, with at least one agent.

:func:`evaluate` is a pure fold over the active alarms: an alarm is raised once when its
measure crosses the threshold and cleared once when the measure goes back past the clear
threshold (hysteresis), so a measure hovering at the threshold does not flap. Event ids are
derived from the rule, the queue and the time, so a replay gives the same events. The
``alarms`` topic is the alert log; :func:`alarm_log` tabulates it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args

import pandas as pd

from ingest.contract import Event, Payload, make_event, to_utc_ms
from ingest.contract.alarms import AlarmCleared, AlarmKind, AlarmPayload, AlarmRaised
from streams.views import Counts, QueueState, ViewSettings, queue_snapshot

__all__ = [
    "ALARM_LOG_COLUMNS",
    "ActiveAlarm",
    "AlarmKey",
    "AlarmRule",
    "Measure",
    "alarm_log",
    "evaluate",
    "measure",
    "restore_active",
]

AlarmKey = tuple[str, str]
"""An active alarm's key: (rule name, queue)."""

SOURCE = "streams.alarms"
_IDS = uuid.UUID("5b0d7c52-6f0e-4a53-9d4e-2f3a1c9e8b71")
_KINDS: tuple[str, ...] = get_args(AlarmKind)
_SHARES = frozenset({"service_level", "not_ready_share"})


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """One threshold rule. ``threshold`` is the target for ``service_level`` (a share);
    ``clear`` is where a raised alarm clears (default: ``threshold``): below it for the
    rising kinds, at or above it for ``service_level``."""

    name: str
    kind: AlarmKind
    threshold: float
    clear: float | None = None
    window_minutes: int = 60
    min_calls: int = 10
    queues: frozenset[str] | None = None
    """Only these queues; every queue when ``None``."""

    def __post_init__(self) -> None:
        where = f"alarm rule {self.name!r}"
        if not self.name:
            raise ValueError("alarm rule name is empty; give every rule a unique name")
        if self.kind not in _KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is unknown; use one of "
                             f"{', '.join(_KINDS)}")
        if self.kind in _SHARES and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"{where}: {self.kind} threshold {self.threshold} is not a share; "
                             "give it between 0 and 1, e.g. 0.8")
        if self.threshold < 0:
            raise ValueError(f"{where}: threshold {self.threshold} is negative")
        if self.clear is not None and (self.clear > self.threshold if self.rising
                                       else self.clear < self.threshold):
            side = "above" if self.rising else "below"
            raise ValueError(f"{where}: clear threshold {self.clear} is {side} the threshold "
                             f"{self.threshold}; hysteresis clears on the safe side of it")
        if self.window_minutes < 1:
            raise ValueError(f"{where}: window_minutes must be at least 1, "
                             f"got {self.window_minutes}")
        if self.min_calls < 1:
            raise ValueError(f"{where}: min_calls must be at least 1, got {self.min_calls}")

    @property
    def rising(self) -> bool:
        """Whether a high measure is bad (every kind but ``service_level``)."""
        return self.kind != "service_level"

    @property
    def clear_threshold(self) -> float:
        """Where a raised alarm clears."""
        return self.threshold if self.clear is None else self.clear

    def applies_to(self, queue: str) -> bool:
        """Whether the rule watches ``queue``."""
        return self.queues is None or queue in self.queues

    def breached(self, value: float) -> bool:
        """Whether ``value`` raises the alarm."""
        return value >= self.threshold if self.rising else value < self.threshold

    def recovered(self, value: float) -> bool:
        """Whether ``value`` clears a raised alarm."""
        clear = self.clear_threshold
        return value < clear if self.rising else value >= clear

    def worse(self, a: float, b: float) -> float:
        """The worse of two values: the higher, or the lower service level."""
        return max(a, b) if self.rising else min(a, b)


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """A raised alarm: its event and the worst value seen since."""

    raised: Event[AlarmRaised]
    peak: float


@dataclass(frozen=True, slots=True)
class Measure:
    """A rule's measure of one queue. ``value`` is ``None`` when it is not defined (no
    calls in the window, no agents); ``calls`` is the service level's denominator."""

    value: float | None
    calls: int | None = None
    enough: bool = True
    """Whether the measure may raise or clear (``service_level``: ``min_calls`` reached)."""


def measure(rule: AlarmRule, state: QueueState, now: datetime,
            settings: ViewSettings) -> Measure:
    """What ``rule`` measures on the board ``state`` at ``now``."""
    if rule.kind == "service_level":
        counts = _window_counts(state, now, rule.window_minutes, settings)
        calls = counts.sl_denominator(settings.sl_variant)
        level = counts.service_level(settings.sl_variant)
        return Measure(level, calls, enough=calls >= rule.min_calls)
    snapshot = queue_snapshot(state, now, settings)
    if rule.kind == "queue_length":
        return Measure(float(snapshot.waiting))
    if rule.kind == "longest_wait":
        return Measure(snapshot.longest_wait_s)
    agents = sum(snapshot.agents_by_state.values())
    not_ready = snapshot.agents_by_state.get("not_ready", 0)
    return Measure(not_ready / agents if agents else None)


def _window_counts(state: QueueState, now: datetime, window_minutes: int,
                   settings: ViewSettings) -> Counts:
    """The board's counts of the intervals fully inside ``(now - window, now]`` plus the
    current interval. The board keeps today's intervals only (center's clock)."""
    current = settings.interval_of(now)
    start = now - timedelta(minutes=window_minutes)
    length = timedelta(minutes=settings.interval_minutes)
    chosen = [c for at, c in state.intervals.items()
              if at == current or (at >= start and at + length <= now)]
    return Counts.total(chosen)


def _event_id(kind: str, rule: str, queue: str, at: datetime) -> str:
    return uuid.uuid5(_IDS, f"{kind}|{rule}|{queue}|{to_utc_ms(at).isoformat()}").hex


def evaluate(
    active: Mapping[AlarmKey, ActiveAlarm],
    state: QueueState,
    now: datetime,
    rules: Sequence[AlarmRule],
    settings: ViewSettings,
) -> tuple[dict[AlarmKey, ActiveAlarm], list[Event[AlarmPayload]]]:
    """Fold one queue's board at ``now`` into the active alarms (keyed by rule name and
    queue): returns the new active alarms and the raised / cleared events, in rule order.

    An alarm is raised when its measure is defined, enough (``min_calls``) and breaches the
    threshold; it clears when the measure recovers past the clear threshold or is no longer
    defined. Between the two, only its peak moves. ``active`` is not modified.
    """
    after = dict(active)
    events: list[Event[AlarmPayload]] = []
    queue = state.queue
    for rule in rules:
        if not rule.applies_to(queue):
            continue
        key = (rule.name, queue)
        seen = measure(rule, state, now, settings)
        window = rule.window_minutes if rule.kind == "service_level" else None
        current = after.get(key)
        if current is None:
            if seen.value is not None and seen.enough and rule.breached(seen.value):
                payload = AlarmRaised(queue=queue, rule=rule.name, kind=rule.kind,
                                      threshold=rule.threshold, window_minutes=window,
                                      calls=seen.calls, value=seen.value)
                raised = make_event(payload, occurred_at=now, source=SOURCE,
                                    event_id=_event_id(payload.TYPE, rule.name, queue, now))
                after[key] = ActiveAlarm(raised, seen.value)
                events.append(raised)
            continue
        if seen.value is not None and not (seen.enough and rule.recovered(seen.value)):
            if seen.enough:
                after[key] = ActiveAlarm(current.raised, rule.worse(current.peak, seen.value))
            continue
        first = current.raised.payload
        cleared = AlarmCleared(queue=queue, rule=rule.name, kind=rule.kind,
                               threshold=rule.threshold, window_minutes=window,
                               calls=seen.calls, value=seen.value,
                               clear_threshold=rule.clear_threshold,
                               raised_at=current.raised.occurred_at,
                               raised_value=first.value, peak=current.peak)
        events.append(make_event(cleared, occurred_at=now, source=SOURCE,
                                 event_id=_event_id(cleared.TYPE, rule.name, queue, now)))
        del after[key]
    return after, events


ALARM_LOG_COLUMNS = ("rule", "kind", "queue", "raised_at", "cleared_at", "duration_s",
                     "threshold", "clear_threshold", "raised_value", "peak", "cleared_value")


def alarm_log(events: Iterable[Event[Payload]]) -> pd.DataFrame:
    """The alert log: one row per alarm of the alarm events (other events are skipped),
    ordered by ``raised_at``, rule and queue. Alarms still raised have no ``cleared_at``,
    ``duration_s``, ``peak`` or ``clear_threshold``; a cleared event whose raised event
    is not among ``events`` still gives its row (it carries the raise)."""
    rows: dict[tuple[str, str, datetime], dict[str, object]] = {}
    for event in events:
        payload = event.payload
        if isinstance(payload, AlarmRaised):
            key = (payload.rule, payload.queue, event.occurred_at)
            rows.setdefault(key, {}).update(
                rule=payload.rule, kind=payload.kind, queue=payload.queue,
                raised_at=event.occurred_at, threshold=payload.threshold,
                raised_value=payload.value)
        elif isinstance(payload, AlarmCleared):
            key = (payload.rule, payload.queue, payload.raised_at)
            rows.setdefault(key, {}).update(
                rule=payload.rule, kind=payload.kind, queue=payload.queue,
                raised_at=payload.raised_at, cleared_at=event.occurred_at,
                duration_s=(event.occurred_at - payload.raised_at).total_seconds(),
                threshold=payload.threshold, clear_threshold=payload.clear_threshold,
                raised_value=payload.raised_value, peak=payload.peak,
                cleared_value=payload.value)
    frame = pd.DataFrame([rows[k] for k in sorted(rows, key=lambda k: (k[2], k[0], k[1]))],
                         columns=list(ALARM_LOG_COLUMNS))
    for column in ("raised_at", "cleared_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("duration_s", "threshold", "clear_threshold", "raised_value", "peak",
                   "cleared_value"):
        frame[column] = frame[column].astype("float64")
    return frame


def restore_active(events: Iterable[Event[Payload]]) -> dict[AlarmKey, ActiveAlarm]:
    """The alarms still raised after ``events`` (the alarms topic, in order): a host that
    restarts picks them up instead of raising them again."""
    active: dict[AlarmKey, ActiveAlarm] = {}
    for event in events:
        payload = event.payload
        if isinstance(payload, AlarmRaised):
            active[(payload.rule, payload.queue)] = ActiveAlarm(event, payload.value)
        elif isinstance(payload, AlarmCleared):
            active.pop((payload.rule, payload.queue), None)
    return active
