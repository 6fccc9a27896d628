"""The queuecast application: settings, logging and the ``queuecast`` command."""

from queuecast.config import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
