"""The operator command on the embedded log, end to end through the real log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.contract import encode_event
from ingest.sample import sample_traffic
from queuecast.cli import app

runner = CliRunner()


@pytest.fixture
def lines(tmp_path: Path) -> Path:
    """Six events, the third and fifth lines broken."""
    traffic = list(sample_traffic(start=datetime(2026, 3, 2, tzinfo=UTC), hours=0.1))
    calls = [e for e in traffic if e.type.startswith("call.")]
    events = traffic[:2] + calls[:2]
    rows = [encode_event(e).decode() for e in events]
    rows.insert(2, '{"type": "call.offered"}')
    rows.insert(4, "garbage")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(rows) + "\n\n")
    return path


def test_validate_reports_line_numbers_and_reasons(lines: Path) -> None:
    result = runner.invoke(app, ["events", "validate", str(lines)])
    assert result.exit_code == 1
    assert f"{lines}:3: envelope: Object missing required field `schema_version`" in result.output
    assert f"{lines}:5: not valid JSON" in result.output
    assert result.output.strip().endswith("4 valid, 2 invalid")
    as_json = json.loads(runner.invoke(app, ["events", "validate", str(lines), "--json"]).output)
    assert as_json["valid"] == 4
    assert [e["line"] for e in as_json["errors"]] == [3, 5]


def test_validate_accepts_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\n".join(encode_event(e) for e in sample_traffic(hours=0.05)))
    result = runner.invoke(app, ["events", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "0 invalid" in result.output


def test_produce_replay_tail_and_dead_letters(home: Path, lines: Path, tmp_path: Path) -> None:
    produced = runner.invoke(app, ["events", "produce", str(lines), "--origin", "test"])
    assert produced.exit_code == 0, produced.output
    assert "4 appended, 2 dead-lettered" in produced.output
    assert (home / "eventlog" / "events.sqlite3").is_file()

    out = tmp_path / "replayed.jsonl"
    replayed = runner.invoke(app, ["events", "replay", "--out", str(out), "--idle", "0.3"])
    assert replayed.exit_code == 0, replayed.output
    originals = [json.loads(x) for x in lines.read_text().splitlines() if x.startswith("{")]
    expected_ids = sorted(e["id"] for e in originals if "id" in e)
    assert sorted(json.loads(x)["id"] for x in out.read_text().splitlines()) == expected_ids

    tail = runner.invoke(app, ["events", "tail", "agents", "--from-beginning", "--idle", "0.3"])
    assert tail.exit_code == 0, tail.output
    agent_ids = [e["id"] for e in originals if e["type"].startswith("agent.")]
    assert agent_ids
    assert [json.loads(x)["id"] for x in tail.output.splitlines()] == agent_ids

    dead = runner.invoke(app, ["events", "dead-letters", "--idle", "0.3"])
    letters = [json.loads(x) for x in dead.output.splitlines()]
    assert [(d["original"], d["origin"], d["stage"]) for d in letters] == [
        ('{"type": "call.offered"}', "test", "produce"), ("garbage", "test", "produce")
    ]
    assert letters[1]["reason"].startswith("not valid JSON")


def test_unknown_topic_and_bad_event_log_url(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["events", "tail", "cals"])
    assert result.exit_code == 2
    assert "unknown topic 'cals'" in result.output
    monkeypatch.setenv("QUEUECAST_EVENT_LOG", "rabbitmq://x")
    result = runner.invoke(app, ["events", "replay"])
    assert result.exit_code == 2
    assert "is not understood; use 'embedded'" in result.output


def test_schema_check_finds_stale_files(tmp_path: Path) -> None:
    check = ["events", "schema", "--check", "--out", str(tmp_path)]
    stale = runner.invoke(app, check)
    assert stale.exit_code == 1
    assert "stale or missing" in stale.output
    assert runner.invoke(app, ["events", "schema", "--out", str(tmp_path)]).exit_code == 0
    checked = runner.invoke(app, check)
    assert checked.exit_code == 0
    assert "up to date" in checked.output


def test_demo_counts_equal_the_simulators_own_summary(home: Path) -> None:
    """The live counts read back from the log equal the simulator's figures for the seed."""
    from callcore.scenario import load_scenario
    from callcore.simulator import Simulation

    result = runner.invoke(app, ["demo", "--speed", "200000", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    direct = Simulation(load_scenario("demo"), seed=5).run()
    assert set(summary["queues"]) == {q.name for q in direct.queues.values()}
    for queue in direct.queues.values():
        live = summary["queues"][queue.name]
        assert (live["offered"], live["answered"], live["abandoned"], live["other"]) == (
            queue.offered, queue.answered, queue.abandoned, sum(queue.other.values())), queue.name
    assert summary["events"] == direct.events


def test_retention_from_the_config_file(home: Path, tmp_path: Path) -> None:
    (tmp_path / "queuecast.toml").write_text(
        "[event_log.embedded.retention.calls]\nmax_records = 1\n"
    )
    path = tmp_path / "calls.jsonl"
    traffic = list(sample_traffic(hours=0.2, seed=3))
    path.write_bytes(b"\n".join(encode_event(e) for e in traffic))
    assert runner.invoke(app, ["events", "produce", str(path)]).exit_code == 0
    result = runner.invoke(app, ["events", "retention"])
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.output)
    calls = sum(1 for e in traffic if e.type.startswith("call."))
    assert deleted == {"queuecast.calls": calls - 6}  # one record kept in each of 6 partitions
    replayed = runner.invoke(app, ["events", "replay", "--topic", "calls", "--idle", "0.3"])
    assert len(replayed.stdout.splitlines()) == 6
