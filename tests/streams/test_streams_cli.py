"""``queuecast streams``: bad settings and an unreachable warehouse end the command with
their message, before anything is read or committed."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from queuecast.cli import app

runner = CliRunner()


def test_a_bad_alarm_rule_is_named(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "queuecast.toml"
    config.write_text('[alarms]\n[[alarms.rules]]\nname = "x"\nkind = "queue_length"\n')
    result = runner.invoke(app, ["--config", str(config), "streams", "run", "--until-idle"])
    assert result.exit_code == 2
    assert "[[alarms.rules]] 'x': kind queue_length needs threshold" in result.output


def test_an_unreachable_warehouse_is_a_clear_error(home: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["streams", "rebuild", "--url",
                                 f"clickhouse://default@127.0.0.1:{port}/default"])
    assert result.exit_code == 1
    assert "warehouse error" in result.output
    assert "Connection refused" in result.output
    assert "Traceback" not in result.output
