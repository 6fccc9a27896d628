"""Settings from a TOML file plus ``QUEUECAST_*`` environment variables.

Precedence, lowest first: built-in defaults, the config file, environment variables.
The file is ``--config``, else ``$QUEUECAST_CONFIG``, else ``./queuecast.toml``, else
``$QUEUECAST_HOME/queuecast.toml`` (the first that exists). Any setting can come from
the environment as ``QUEUECAST_SECTION__KEY`` (e.g. ``QUEUECAST_EVENT_LOG__URL``);
``QUEUECAST_HOME``, ``QUEUECAST_EVENT_LOG`` and ``QUEUECAST_LOG_LEVEL`` are short forms.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

__all__ = [
    "AlarmRuleSettings",
    "AlarmSettings",
    "ConfigError",
    "EmailSettings",
    "EventLogSettings",
    "LoggingSettings",
    "PartitionSettings",
    "Settings",
    "StreamsSettings",
    "WarehouseSettings",
    "load_settings",
]

_PREFIX = "QUEUECAST_"
_SHORT_FORMS = {
    "QUEUECAST_HOME": ("home",),
    "QUEUECAST_EVENT_LOG": ("event_log", "url"),
    "QUEUECAST_WAREHOUSE": ("warehouse", "url"),
    "QUEUECAST_LOG_LEVEL": ("logging", "level"),
    "QUEUECAST_LOG_FORMAT": ("logging", "format"),
}


class ConfigError(ValueError):
    """A setting is missing, misspelt or of the wrong type; the message names it."""


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class PartitionSettings(_Section, frozen=True, kw_only=True):
    """Partition counts used when topics are created (existing topics keep theirs)."""

    calls: int | None = None
    agents: int | None = None
    tickets: int | None = None
    wfm: int | None = None
    alarms: int | None = None
    deadletter: int | None = None

    def counts(self) -> dict[str, int]:
        """The counts that were set, by logical topic name."""
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class EventLogSettings(_Section, frozen=True, kw_only=True):
    """Where events are stored: ``embedded`` (default) or ``kafka://host:port``."""

    url: str = "embedded"
    namespace: str = "queuecast"
    partitions: PartitionSettings = msgspec.field(default_factory=PartitionSettings)
    embedded: dict[str, Any] = msgspec.field(default_factory=dict)
    """Options of the embedded transport, e.g. ``durability = "power"``."""
    kafka: dict[str, Any] = msgspec.field(default_factory=dict)
    """Options of the Kafka transport, e.g. ``session_timeout_ms = 10000``."""

    def transport_options(self) -> dict[str, Any]:
        """The options section that matches ``url``."""
        return dict(self.kafka if self.url.startswith("kafka://") else self.embedded)


class WarehouseSettings(_Section, frozen=True, kw_only=True):
    """Where facts live: ``chdb`` (embedded, under home; default), ``chdb:///abs/path`` or
    ``clickhouse://user:password@host:9000/database?secure=1&compression=lz4``."""

    url: str = "chdb"


class StreamsSettings(_Section, frozen=True, kw_only=True):
    """The stream hosts: consumer group, sink batches, and how long a call's row waits for
    the after-call work of its agents before it is written without it."""

    group: str = "queuecast-streams"
    batch_rows: int = 10_000
    batch_seconds: float = 1.0
    acw_grace_s: float = 1800.0
    time_zone: str = "UTC"
    """The center's clock: "today" and intervals of the live boards."""
    interval_minutes: int = 15
    sl_threshold_s: float = 20.0
    sl_variant: Literal["abandoned_in", "offered", "answered", "short_excluded"] = "abandoned_in"
    short_abandon_s: float = 5.0
    sl_thresholds: dict[str, float] = msgspec.field(default_factory=dict)
    """Per-queue service-level thresholds (seconds) overriding ``sl_threshold_s``."""


class AlarmRuleSettings(_Section, frozen=True, kw_only=True):
    """One alarm rule of the live queue board (RT-03); see docs/streams.md.

    ``queue_length``, ``longest_wait`` and ``not_ready_share`` raise when the measure is at or
    above ``threshold`` and clear below ``clear_below`` (default: ``threshold``);
    ``service_level`` raises when the level over ``window_minutes`` is below ``target``
    (with at least ``min_calls`` in its denominator) and clears at ``clear_above`` or more.
    """

    name: str
    kind: Literal["queue_length", "longest_wait", "service_level", "not_ready_share"]
    threshold: float | None = None
    clear_below: float | None = None
    target: float | None = None
    clear_above: float | None = None
    window_minutes: int = 60
    min_calls: int = 10
    queues: list[str] | None = None
    """Only these queues; every queue when absent."""


class EmailSettings(_Section, frozen=True, kw_only=True):
    """The SMTP server and addresses that alarm emails go through; ``security`` is
    ``starttls`` (default), ``ssl`` (implicit TLS, usually port 465) or ``none``."""

    host: str
    port: int = 587
    sender: str
    recipients: list[str]
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


class AlarmSettings(_Section, frozen=True, kw_only=True):
    """Alarm rules and where raised and cleared alarms are notified (web hook, email).
    Secrets come best from the environment, e.g. ``QUEUECAST_ALARMS__EMAIL__PASSWORD``."""

    rules: list[AlarmRuleSettings] = msgspec.field(default_factory=list)
    webhook_url: str | None = None
    webhook_headers: dict[str, str] = msgspec.field(default_factory=dict)
    webhook_timeout_s: float = 5.0
    email: EmailSettings | None = None
    attempts: int = 3
    """Tries per notification before it is given up (and logged)."""
    backoff_s: float = 1.0
    """The wait before the second try; it doubles for each further try."""


class LoggingSettings(_Section, frozen=True, kw_only=True):
    """Structured logging: JSON lines by default, or coloured key=value for a console."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"


def _default_home(env: Mapping[str, str]) -> str:
    data = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data) / "queuecast")


class Settings(_Section, frozen=True, kw_only=True):
    """All of queuecast's settings; every piece of local state lives under ``home``."""

    home: str
    event_log: EventLogSettings = msgspec.field(default_factory=EventLogSettings)
    warehouse: WarehouseSettings = msgspec.field(default_factory=WarehouseSettings)
    streams: StreamsSettings = msgspec.field(default_factory=StreamsSettings)
    alarms: AlarmSettings = msgspec.field(default_factory=AlarmSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    source: str | None = None
    """The config file these settings were read from, if any."""

    @property
    def home_path(self) -> Path:
        """``home`` as an absolute path, created if missing."""
        path = Path(self.home).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


def _config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    if named := env.get("QUEUECAST_CONFIG"):
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"QUEUECAST_CONFIG names {path}, which does not exist")
        return path
    candidates = [Path("queuecast.toml")]
    if home := env.get("QUEUECAST_HOME"):
        candidates.append(Path(home).expanduser() / "queuecast.toml")
    return next((p for p in candidates if p.is_file()), None)


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = tree.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is a value, not a section")
        tree = node
    tree[path[-1]] = value


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_settings(
    config: Path | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from the config file and the environment (``os.environ`` by default)."""
    env = os.environ if env is None else env
    path = _config_file(config, env)
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        tree["source"] = str(path)
    for name, value in env.items():
        if name in _SHORT_FORMS:
            _set(tree, _SHORT_FORMS[name], value)
        elif name.startswith(_PREFIX) and "__" in name:
            keys = tuple(k.lower() for k in name.removeprefix(_PREFIX).split("__"))
            _set(tree, keys, _env_value(value))
    tree.setdefault("home", _default_home(env))
    try:
        return msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid setting{where} or QUEUECAST_* variable: {exc}") from None
