"""Notification of raised and cleared alarms (RT-03): web hook and email, behind one seam.

The alarm events go to the ``alarms`` topic first (:func:`publish`), so the alert log
keeps every alarm whatever happens to its notifications. Each notification is then tried
a few times with a doubling wait; failures are logged and reported as :class:`Delivery`
results, never raised.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol

import structlog

from ingest.contract import Event, encode_event
from ingest.contract.alarms import AlarmCleared, AlarmPayload
from ingest.log import EventLog

__all__ = [
    "Delivery",
    "EmailNotifier",
    "Notifier",
    "WebhookNotifier",
    "deliver",
    "describe_alarm",
    "publish",
]

_UNITS = {"queue_length": " calls", "longest_wait": " s"}
_MEASURES = {
    "queue_length": "calls waiting",
    "longest_wait": "longest wait",
    "service_level": "service level",
    "not_ready_share": "share of agents not ready",
}


class Notifier(Protocol):
    """Sends one alarm event somewhere; raises when it could not."""

    @property
    def name(self) -> str:
        """A label for logs: ``webhook``, ``email``."""
        ...

    def send(self, event: Event[AlarmPayload]) -> None:
        """Deliver ``event`` or raise."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    """POSTs the alarm event, as the contract's JSON, to ``url``."""

    url: str
    timeout_s: float = 5.0
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = "webhook"

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"webhook url {self.url!r} is not http(s); give a URL such as "
                             "https://hooks.example.com/queuecast")

    def send(self, event: Event[AlarmPayload]) -> None:
        """POST ``event``; any answer but 2xx, or no answer in ``timeout_s``, raises."""
        headers = {"Content-Type": "application/json", "User-Agent": "queuecast-alarms",
                   **self.headers}
        request = urllib.request.Request(self.url, data=encode_event(event), headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()


@dataclass(frozen=True, slots=True)
class EmailNotifier:
    """Sends a plain-text email per alarm event through an SMTP server."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    name: str = "email"

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("email recipients is empty; list at least one address")
        if self.user is not None and self.password is None:
            raise ValueError(f"email user {self.user!r} has no password; set "
                             "QUEUECAST_ALARMS__EMAIL__PASSWORD")

    def message(self, event: Event[AlarmPayload]) -> EmailMessage:
        """The email of ``event``."""
        subject, body = describe_alarm(event)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(body)
        return message

    def send(self, event: Event[AlarmPayload]) -> None:
        """Connect, secure the connection as configured, log in if a user is set, send."""
        context = ssl.create_default_context()
        smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
                if self.security == "ssl"
                else smtplib.SMTP(self.host, self.port, timeout=self.timeout_s))
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user is not None:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(event))


def _amount(kind: str, value: float) -> str:
    if kind in ("service_level", "not_ready_share"):
        return f"{value:.1%}"
    return f"{value:g}{_UNITS.get(kind, '')}"


def describe_alarm(event: Event[AlarmPayload]) -> tuple[str, str]:
    """The subject and plain-text body that name the queue, rule, value, threshold and
    time of an alarm event."""
    alarm = event.payload
    cleared = isinstance(alarm, AlarmCleared)
    verb = "cleared" if cleared else "raised"
    at = f"{event.occurred_at:%Y-%m-%d %H:%M:%S} UTC"
    value = getattr(alarm, "value", None)
    shown = "no longer measured" if value is None else _amount(alarm.kind, value)
    window = (f" over the last {alarm.window_minutes} min" if alarm.window_minutes else "")
    lines = [
        f"Alarm {verb}: {alarm.rule}",
        f"Queue: {alarm.queue}",
        f"Rule: {alarm.rule} ({alarm.kind}: {_MEASURES[alarm.kind]}{window})",
        f"Value: {shown}",
        f"Threshold: {_amount(alarm.kind, alarm.threshold)}",
    ]
    if alarm.calls is not None:
        lines.append(f"Calls in the service level: {alarm.calls}")
    if isinstance(alarm, AlarmCleared):
        lines += [
            f"Clears at: {_amount(alarm.kind, alarm.clear_threshold)}",
            f"Raised at: {alarm.raised_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({_amount(alarm.kind, alarm.raised_value)})",
            f"Peak: {_amount(alarm.kind, alarm.peak)}",
            f"Lasted: {(event.occurred_at - alarm.raised_at).total_seconds():g} s",
        ]
    lines.append(f"Time: {at}")
    subject = f"[queuecast] alarm {verb}: {alarm.rule} on {alarm.queue} ({shown})"
    return subject, "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one notification: delivered or given up after ``attempts`` tries."""

    notifier: str
    event_id: str
    attempts: int
    delivered: bool
    error: str | None = None


def deliver(
    events: Iterable[Event[AlarmPayload]],
    notifiers: Sequence[Notifier],
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send each event through each notifier, trying up to ``attempts`` times and waiting
    ``backoff_s``, then twice that, ... between tries. Never raises: each failed try is
    logged as a warning, a notification given up as an error."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    log = structlog.get_logger("queuecast.alarms")
    results: list[Delivery] = []
    for event in events:
        for notifier in notifiers:
            error: str | None = None
            for attempt in range(1, attempts + 1):
                try:
                    notifier.send(event)
                except Exception as exc:  # a notification never stops the fold
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt == attempts:
                        log.error("alarm notification given up", notifier=notifier.name,
                                  event_id=event.id, rule=event.payload.rule,
                                  queue=event.payload.queue, attempts=attempt, error=error)
                        results.append(Delivery(notifier.name, event.id, attempt, False, error))
                    else:
                        wait = backoff_s * 2 ** (attempt - 1)
                        log.warning("alarm notification failed; retrying",
                                    notifier=notifier.name, event_id=event.id,
                                    attempt=attempt, retry_in_s=wait, error=error)
                        sleep(wait)
                else:
                    results.append(Delivery(notifier.name, event.id, attempt, True))
                    break
    return results


def publish(
    log: EventLog,
    events: Sequence[Event[AlarmPayload]],
    notifiers: Sequence[Notifier],
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Append ``events`` to the alarms topic (durable when this returns), then notify the
    ones the log accepted. Notification failures are logged and returned, never raised."""
    if not events:
        return []
    report = log.produce(events)
    refused = {r.index for r in report.rejected}
    for rejection in report.rejected:
        structlog.get_logger("queuecast.alarms").error(
            "alarm event dead-lettered", event_id=events[rejection.index].id,
            reason=rejection.reason)
    accepted = [e for i, e in enumerate(events) if i not in refused]
    return deliver(accepted, notifiers, attempts=attempts, backoff_s=backoff_s, sleep=sleep)
