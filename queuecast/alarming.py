"""The ``[alarms]`` settings as alarm rules and notifiers (RT-03): the composition root reads
configuration; ``streams.alarms`` and ``streams.notify`` take plain objects."""

from __future__ import annotations

from queuecast.config import AlarmRuleSettings, AlarmSettings
from streams.alarms import AlarmRule
from streams.notify import EmailNotifier, Notifier, WebhookNotifier

__all__ = ["notifiers_from_settings", "rule_from_settings", "rules_from_settings"]

_SHARES = frozenset({"service_level", "not_ready_share"})


def rule_from_settings(rule: AlarmRuleSettings) -> AlarmRule:
    """The rule of one ``[[alarms.rules]]`` table; errors name the setting to fix."""
    where = f"[[alarms.rules]] {rule.name!r}"
    if rule.kind == "service_level":
        takes, clears, other = "target", "clear_above", ("threshold", "clear_below")
    else:
        takes, clears, other = "threshold", "clear_below", ("target", "clear_above")
    if wrong := [k for k in other if getattr(rule, k) is not None]:
        raise ValueError(f"{where}: kind {rule.kind} takes {takes} and optionally "
                         f"{clears}, not {' or '.join(wrong)}")
    threshold, clear = getattr(rule, takes), getattr(rule, clears)
    if threshold is None:
        example = " (a share such as 0.8)" if rule.kind in _SHARES else ""
        raise ValueError(f"{where}: kind {rule.kind} needs {takes}{example}")
    try:
        return AlarmRule(name=rule.name, kind=rule.kind, threshold=threshold, clear=clear,
                   window_minutes=rule.window_minutes, min_calls=rule.min_calls,
                   queues=None if rule.queues is None else frozenset(rule.queues))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def rules_from_settings(settings: AlarmSettings) -> tuple[AlarmRule, ...]:
    """The rules of the ``[alarms]`` section, in order; names must be unique."""
    rules = tuple(rule_from_settings(r) for r in settings.rules)
    names = [r.name for r in rules]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"[[alarms.rules]]: names {dupes} are used more than once; "
                         "an alarm is known by its rule name, so give each rule its own")
    return rules


def notifiers_from_settings(settings: AlarmSettings) -> list[Notifier]:
    """The notifiers the ``[alarms]`` section configures (web hook, email), possibly none."""
    notifiers: list[Notifier] = []
    if settings.webhook_url:
        notifiers.append(WebhookNotifier(settings.webhook_url,
                                         timeout_s=settings.webhook_timeout_s,
                                         headers=dict(settings.webhook_headers)))
    if (email := settings.email) is not None:
        notifiers.append(EmailNotifier(email.host, email.port, email.sender,
                                       tuple(email.recipients), security=email.security,
                                       user=email.user, password=email.password,
                                       timeout_s=email.timeout_s))
    return notifiers
