"""Settings: defaults, file, environment, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from queuecast.config import ConfigError, load_settings


def test_defaults_without_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert settings.home == str(tmp_path / "data" / "queuecast")
    assert settings.event_log.url == "embedded"
    assert settings.logging.format == "json"
    assert settings.source is None


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "queuecast.toml").write_text(
        'home = "/srv/qc"\n[event_log]\nurl = "kafka://k1:9092"\n'
        "[event_log.kafka]\nsession_timeout_ms = 6000\n[event_log.partitions]\ncalls = 12\n"
    )
    settings = load_settings(env={
        "QUEUECAST_HOME": str(tmp_path / "home"),
        "QUEUECAST_EVENT_LOG__KAFKA__SESSION_TIMEOUT_MS": "10000",
        "QUEUECAST_LOG_LEVEL": "DEBUG",
        "UNRELATED": "x",
    })
    assert settings.source == "queuecast.toml"
    assert settings.home == str(tmp_path / "home")
    assert settings.event_log.url == "kafka://k1:9092"
    assert settings.event_log.transport_options() == {"session_timeout_ms": 10000}
    assert settings.event_log.partitions.counts() == {"calls": 12}
    assert settings.logging.level == "DEBUG"
    assert settings.home_path.is_dir()


def test_config_file_from_home_and_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "queuecast.toml").write_text('[logging]\nformat = "console"\n')
    assert load_settings(env={"QUEUECAST_HOME": str(home)}).logging.format == "console"
    explicit = tmp_path / "other.toml"
    explicit.write_text('[logging]\nlevel = "ERROR"\n')
    assert load_settings(explicit, env={}).logging.level == "ERROR"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[event_log]\nurll = "embedded"\n', {}, "Object contains unknown field `urll`"),
        ('[logging]\nlevel = "LOUD"\n', {}, "`$.logging.level`"),
        ("home = [", {}, "not valid TOML"),
        ("", {"QUEUECAST_EVENT_LOG__PARTITIONS__CALLS": "many"}, "`$.event_log.partitions.calls`"),
    ],
)
def test_bad_settings_name_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "queuecast.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert message in str(caught.value)


def test_missing_named_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"QUEUECAST_CONFIG": str(tmp_path / "nope.toml")})
