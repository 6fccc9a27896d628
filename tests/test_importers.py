"""History import: Asterisk queue_log and CDR CSV into contract events (issue 5).

Hand-checked fixtures pin every event and every error; the real files are checked line
for line and against per-day figures computed here with pandas, without the importers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pandas as pd
import pytest
from real_calls import BANK, ROTATED, SYNK, bank_calls, master_calls, per_day, queue_log_calls
from support import REAL_DATA
from typer.testing import CliRunner

from ingest.contract import Event, Payload
from ingest.importers.asterisk import QueueLogState, parse_queue_log
from ingest.importers.cdr import MAPPINGS, MappingError, load_mapping, parse_cdr
from ingest.importers.report import Converted, EventReport, LineError, NoEvent, Outcome
from queuecast.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "importers"


def _real(*names: str) -> list[Path]:
    paths = [REAL_DATA / name for name in names]
    if not all(p.exists() for p in paths):
        pytest.skip(f"real data absent: {REAL_DATA} lacks {', '.join(names)} "
                    "(set QUEUECAST_REAL_DATA to the shared/data/real folder)")
    return paths


def _run(outcomes: list[Outcome]) -> tuple[EventReport, list[tuple[int, Event[Payload]]]]:
    report = EventReport()
    events: list[tuple[int, Event[Payload]]] = []
    for outcome in outcomes:
        report.add(outcome)
        if isinstance(outcome, Converted):
            events += [(outcome.line, e) for e in outcome.events]
    return report, events


def _queue_logs(paths: list[Path]) -> tuple[EventReport, list[tuple[int, Event[Payload]]]]:
    state = QueueLogState()
    outcomes: list[Outcome] = []
    for path in paths:
        with path.open("rb") as handle:
            outcomes += parse_queue_log(handle, source=path.name, state=state)
    return _run(outcomes)


def _brief(event: Event[Payload]) -> tuple[str, str, dict[str, object]]:
    fields = msgspec.to_builtins(event.payload)
    fields.pop("call_id", None)
    fields.pop("agent_id", None)
    return event.type, event.key, fields


# -- queue_log: the hand-checked fixture ----------------------------------------------------

A = "asterisk:"
EXPECTED_QUEUE_LOG: list[tuple[int, str, str, dict[str, object]]] = [
    (3, "agent.skill_group_signed_in", "SIP/2001", {"queue": "sales"}),
    (4, "agent.state_changed", "Alice", {"state": "not_ready", "reason": "Lunch",
                                         "queue": "sales"}),
    (5, "agent.state_changed", "Alice", {"state": "ready", "queue": "sales"}),
    (6, "agent.state_changed", "Alice", {"state": "not_ready"}),
    (7, "agent.state_changed", "Alice", {"state": "ready"}),
    (9, "call.offered", A + "1700000019.1", {"direction": "inbound", "caller": "5550101",
                                             "dialed": "5551000"}),
    (9, "call.queued", A + "1700000019.1", {"queue": "sales"}),
    (10, "call.rona", A + "1700000019.1", {"queue": "sales", "ring_s": 15.0}),
    (11, "call.answered", A + "1700000019.1", {"queue": "sales", "wait_s": 20.0,
                                               "ring_s": 3.0}),
    (12, "call.ended", A + "1700000019.1", {"disposition": "answered", "ended_by": "caller",
                                            "queue": "sales"}),
    (13, "call.offered", A + "1700000199.2", {"direction": "inbound", "caller": "5550102",
                                              "dialed": "sales"}),
    (13, "call.queued", A + "1700000199.2", {"queue": "sales"}),
    (14, "call.abandoned", A + "1700000199.2", {"stage": "queue", "queue": "sales",
                                                "wait_s": 10.0}),
    (14, "call.ended", A + "1700000199.2", {"disposition": "abandoned", "ended_by": "caller",
                                            "queue": "sales"}),
    (15, "call.offered", A + "1700000299.3", {"direction": "inbound", "caller": "5550103",
                                              "dialed": "sales"}),
    (15, "call.queued", A + "1700000299.3", {"queue": "sales", "position": 2}),
    (16, "call.answered", A + "1700000299.3", {"queue": "sales", "wait_s": 10.0,
                                               "ring_s": 0.0}),
    (17, "call.transferred", A + "1700000299.3", {"kind": "blind", "target_kind": "external",
                                                  "target": "600@from-internal"}),
    (17, "call.ended", A + "1700000299.3", {"disposition": "transferred_external",
                                            "ended_by": "agent", "queue": "sales"}),
    (18, "call.offered", A + "1700000499.4", {"direction": "inbound", "caller": "anonymous",
                                              "dialed": "sales"}),
    (18, "call.queued", A + "1700000499.4", {"queue": "sales"}),
    (19, "call.ended", A + "1700000499.4", {"disposition": "no_agents", "ended_by": "system",
                                            "queue": "sales"}),
    (20, "call.offered", A + "1700000599.5", {"direction": "inbound", "caller": "5550105",
                                              "dialed": "support"}),
    (20, "call.queued", A + "1700000599.5", {"queue": "support"}),
    (21, "call.ended", A + "1700000599.5", {"disposition": "no_agents", "ended_by": "system",
                                            "queue": "support"}),
    (22, "call.offered", A + "1700000699.6", {"direction": "inbound", "caller": "5550106",
                                              "dialed": "support"}),
    (22, "call.queued", A + "1700000699.6", {"queue": "support"}),
    (23, "call.ended", A + "1700000699.6", {"disposition": "ivr_completed",
                                            "ended_by": "caller", "queue": "support"}),
    (24, "call.offered", A + "1700000799.7", {"direction": "inbound", "caller": "5550107",
                                              "dialed": "support"}),
    (24, "call.queued", A + "1700000799.7", {"queue": "support"}),
    (25, "call.answered", A + "1700000799.7", {"queue": "support", "wait_s": 5.0,
                                               "ring_s": 2.0}),
    (26, "call.transferred", A + "1700000799.7", {"kind": "consult", "target_kind": "external",
                                                  "target": "BRIDGE:abc123"}),
    (26, "call.ended", A + "1700000799.7", {"disposition": "transferred_external",
                                            "ended_by": "agent", "queue": "support"}),
    (27, "call.offered", A + "1700000899.8", {"direction": "inbound", "caller": "5550108",
                                              "dialed": "support"}),
    (27, "call.queued", A + "1700000899.8", {"queue": "support"}),
    (28, "call.answered", A + "1700000899.8", {"queue": "support", "wait_s": 5.0,
                                               "ring_s": 2.0}),
    (29, "call.transferred", A + "1700000899.8", {"kind": "blind", "target_kind": "external",
                                                  "target": "700@ext-local"}),
    (29, "call.ended", A + "1700000899.8", {"disposition": "transferred_external",
                                            "ended_by": "agent", "queue": "support"}),
    (30, "call.ended", A + "1700000949.9", {"disposition": "failed", "ended_by": "agent",
                                            "queue": "support"}),
    (31, "agent.logged_in", "Agent/3001", {"extension": "SIP/3001-0000000a"}),
    (32, "agent.logged_in", "Agent/3002", {"extension": "3002@from-internal"}),
    (33, "agent.logged_out", "Agent/3001", {}),
    (35, "call.ended", A + "1700000999.11", {"disposition": "answered", "ended_by": "agent",
                                             "queue": "sales"}),
    (36, "agent.skill_group_signed_out", "SIP/2001", {"queue": "sales"}),
    (45, "call.offered", A + "1700001999.1", {"direction": "inbound", "caller": "5550109",
                                              "dialed": "sales"}),
    (45, "call.queued", A + "1700001999.1", {"queue": "sales"}),
]

EXPECTED_QUEUE_LOG_ERRORS = [
    (37, "3 fields, a queue_log line has at least 5 (epoch|callid|queue|agent|event)"),
    (38, "epoch 'notanumber' is not a Unix time in seconds"),
    (39, "unknown queue_log event 'HOLDMUSIC'"),
    (40, "20 NUL bytes (an unclean write); the line is not imported; the bytes after them "
         "read ''"),
    (41, "not UTF-8 (byte 35 is 0xe7)"),
    (42, "empty line"),
    (43, "CONNECT holdtime 'abc' (data1) is not a number"),
    (44, "CONNECT without an agent (the 4th field is empty or NONE)"),
]


def test_queue_log_variants_give_exactly_the_hand_checked_events_and_errors() -> None:
    report, events = _queue_logs([FIXTURES / "queue_log_variants"])
    assert [(line, *_brief(e)) for line, e in events] == EXPECTED_QUEUE_LOG
    assert [(e.line, e.reason) for e in report.errors] == EXPECTED_QUEUE_LOG_ERRORS
    assert report.no_event == {
        "QUEUESTART": 1, "CONFIGRELOAD": 1, "RINGCANCELED (the contract has no ring-cancelled "
        "event)": 1, "DID (its number becomes the dialed number of the call's call.offered)": 1}
    assert (report.lines, report.converted, report.events, report.calls) == (45, 33, 46, 11)
    by_line = dict(events)
    assert by_line[11].occurred_at.isoformat() == "2023-11-14T22:14:00+00:00"  # 1700000040
    assert by_line[11].payload.agent_id == "Bob"  # type: ignore[attr-defined]


def test_event_ids_are_deterministic_and_unique() -> None:
    _, first = _queue_logs([FIXTURES / "queue_log_variants"])
    _, again = _queue_logs([FIXTURES / "queue_log_variants"])
    assert [e.id for _, e in first] == [e.id for _, e in again]
    assert len({e.id for _, e in first}) == len(first)


def test_a_call_split_across_rotated_files_is_offered_once_with_its_did() -> None:
    report, events = _queue_logs([FIXTURES / "queue_log-part1", FIXTURES / "queue_log-part2"])
    assert [_brief(e)[:2] for _, e in events] == [
        ("call.offered", A + "1700100040.1"), ("call.queued", A + "1700100040.1"),
        ("call.answered", A + "1700100040.1"), ("call.ended", A + "1700100040.1")]
    assert events[0][1].payload.dialed == "5551000"  # type: ignore[attr-defined]
    assert events[2][1].payload.wait_s == 30.0  # type: ignore[attr-defined]
    assert (report.lines, report.calls, report.no_event["QUEUESTART"]) == (5, 1, 1)


# -- CDR: the hand-checked Master.csv ----------------------------------------------------------


def test_master_csv_fixture_gives_exactly_the_hand_checked_events_and_errors() -> None:
    report, events = _run(list(parse_cdr((FIXTURES / "Master.csv").read_bytes())))
    got = [(line, *_brief(e), e.occurred_at.strftime("%H:%M:%S")) for line, e in events]
    assert got == [
        (1, "call.offered", A + "1700000000.1", {"direction": "inbound", "caller": "5550101",
                                                 "dialed": "500"}, "22:13:20"),
        (1, "call.queued", A + "1700000000.1", {"queue": "500"}, "22:13:20"),
        (1, "call.answered", A + "1700000000.1", {"queue": "500", "wait_s": 15.0}, "22:13:35"),
        (1, "call.ended", A + "1700000000.1", {"disposition": "answered", "ended_by": "system",
                                               "queue": "500"}, "22:15:35"),
        (2, "call.offered", A + "1700000400.2", {"direction": "inbound", "caller": "5550102",
                                                 "dialed": "500"}, "22:20:00"),
        (2, "call.queued", A + "1700000400.2", {"queue": "500"}, "22:20:00"),
        (2, "call.abandoned", A + "1700000400.2", {"stage": "queue", "queue": "500",
                                                   "wait_s": 30.0}, "22:20:30"),
        (2, "call.ended", A + "1700000400.2", {"disposition": "abandoned", "ended_by": "caller",
                                               "queue": "500"}, "22:20:30"),
        (3, "call.offered", A + "1700001000.3", {"direction": "internal", "caller": "1001",
                                                 "dialed": "1002"}, "22:30:00"),
        (3, "call.ended", A + "1700001000.3", {"disposition": "failed", "ended_by": "system"},
         "22:30:00"),
        (4, "call.offered", A + "1700001000.3#2", {"direction": "internal", "caller": "1001",
                                                   "dialed": "1002"}, "22:30:00"),
        (4, "call.ended", A + "1700001000.3#2", {"disposition": "failed", "ended_by": "system"},
         "22:30:00"),
        (5, "call.offered", A + "1700001600.4", {"direction": "internal", "caller": "1001",
                                                 "dialed": "*97"}, "22:40:00"),
        (5, "call.ended", A + "1700001600.4", {"disposition": "voicemail", "ended_by": "system"},
         "22:40:21"),
    ]
    assert events[2][1].payload.agent_id == "SIP/2001"  # type: ignore[attr-defined]
    assert [(e.line, e.reason) for e in report.errors] == [
        (6, "3 fields, the mapping expects 18"),
        (7, "offered_at: time data 'yesterday' does not match format '%Y-%m-%d %H:%M:%S'"),
        (8, "outcome 'MAYBE' (column disposition) is not listed in the mapping's outcome values"),
        (9, "not UTF-8"),
        (10, "empty row"),
    ]
    assert (report.lines, report.converted, report.events, report.calls) == (10, 5, 14, 5)


def test_a_bad_mapping_is_refused_with_the_key(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="columns"):
        load_mapping({"header": False, "call_id": "id", "offered_at": "start",
                      "outcome": {"column": "o"}})
    with pytest.raises(MappingError, match="is not an IANA zone"):
        load_mapping({"call_id": "id", "offered_at": "start", "outcome": {"column": "o"},
                      "timezone": "Mars/Olympus"})
    with pytest.raises(MappingError, match="wait_seconds"):
        load_mapping({"call_id": "id", "offered_at": "start", "outcome": {"column": "o"},
                      "wait_seconds": "q"})


def test_a_generic_csv_with_a_header_through_a_mapping(tmp_path: Path) -> None:
    mapping = load_mapping({
        "call_id": "id", "offered_at": {"column": "t0", "format": "%d/%m/%Y %H:%M"},
        "wait_s": "wait", "queue": {"const": "sales"}, "agent": "who",
        "outcome": {"column": "result", "answered": ["ok"], "abandoned": ["lost"],
                    "no_event": ["test"]},
        "timezone": "Europe/Paris"})
    data = (b"id;t0;wait;who;result\n"
            b"7;02/03/2026 09:00;12;ann;ok\n8;02/03/2026 09:01;40;;lost\n9;x;0;;test\n")
    report, events = _run(list(parse_cdr(data.replace(b";", b","), mapping=mapping)))
    assert [(line, e.type, e.occurred_at.isoformat()) for line, e in events] == [
        (2, "call.offered", "2026-03-02T08:00:00+00:00"),
        (2, "call.queued", "2026-03-02T08:00:00+00:00"),
        (2, "call.answered", "2026-03-02T08:00:12+00:00"),
        (2, "call.ended", "2026-03-02T08:00:12+00:00"),
        (3, "call.offered", "2026-03-02T08:01:00+00:00"),
        (3, "call.queued", "2026-03-02T08:01:00+00:00"),
        (3, "call.abandoned", "2026-03-02T08:01:40+00:00"),
        (3, "call.ended", "2026-03-02T08:01:40+00:00"),
    ]
    assert report.no_event == {"outcome test": 1}
    assert report.lines == 3  # the header is not a record


# -- the real files: every line accounted for, per-day figures equal pandas ----------------


def _per_day(events: list[tuple[int, Event[Payload]]], zone: ZoneInfo | None = None
             ) -> pd.DataFrame:
    """Per day of the call's offer: offered (queued or answered), answered, abandoned in
    the queue (or while ringing), and the mean wait of those answered or abandoned."""
    calls: dict[str, dict[str, object]] = defaultdict(dict)
    for _, event in events:
        call = calls[event.key]
        payload = event.payload
        if event.type == "call.offered":
            call["day"] = event.occurred_at.astimezone(zone or UTC).date().isoformat()
        elif event.type in ("call.queued", "call.answered"):
            call["offered"] = 1
        if event.type == "call.answered":
            call["answered"], call["wait"] = 1, payload.wait_s  # type: ignore[attr-defined]
        if event.type == "call.abandoned" and payload.stage != "ivr":  # type: ignore[attr-defined]
            call["abandoned"], call["wait"] = 1, payload.wait_s  # type: ignore[attr-defined]
    frame = pd.DataFrame(list(calls.values()))
    frame = frame[frame["offered"].fillna(0) == 1]
    return frame.groupby("day").agg(offered=("offered", "sum"), answered=("answered", "sum"),
                                    abandoned=("abandoned", "sum"), wait=("wait", "mean"))


def _same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    theirs = theirs.reindex(columns=["offered", "answered", "abandoned", "wait"])
    theirs.index = theirs.index.astype(str)
    pd.testing.assert_frame_equal(ours.astype(float), theirs.astype(float), check_names=False)


def test_real_queue_log_series_every_line_and_per_day_figures_match_pandas() -> None:
    paths = _real(*ROTATED)
    report, events = _queue_logs(paths)
    physical = sum(p.read_bytes().count(b"\n") for p in paths)
    assert report.lines == physical == 923
    assert report.lines == report.converted + sum(report.no_event.values()) + len(report.errors)
    nul_lines = [(p.name, n) for p in paths
                 for n, raw in enumerate(p.read_bytes().split(b"\n"), start=1) if b"\0" in raw]
    assert [(e.source, e.line) for e in report.errors] == nul_lines
    assert len(nul_lines) == 3
    assert all("NUL bytes" in e.reason for e in report.errors)

    theirs = per_day(queue_log_calls(paths))
    assert theirs[["offered", "answered", "abandoned"]].sum().tolist() == [33, 3, 30]
    ours = _per_day(events)
    ours[["answered", "abandoned"]] = ours[["answered", "abandoned"]].fillna(0)
    _same(ours, theirs)


def test_real_master_csv_every_row_and_per_day_figures_match_pandas() -> None:
    (path,) = _real(f"{SYNK}Master.csv")
    report, events = _run(list(parse_cdr(path.read_bytes(), source=path.name)))
    assert report.lines == 736 == report.converted + sum(report.no_event.values()) + len(
        report.errors)
    assert report.errors == []
    assert report.calls == 736

    theirs = per_day(master_calls(path))
    ours = _per_day(events)
    ours[["answered", "abandoned"]] = ours[["answered", "abandoned"]].fillna(0)
    _same(ours, theirs)
    assert int(theirs.answered.sum()) == 91
    assert int(theirs.offered.sum()) == 121


def test_real_anonymous_bank_month_through_the_mapping_matches_pandas() -> None:
    (path,) = _real(BANK)
    mapping = load_mapping(MAPPINGS / "anonymous_bank.yaml")
    report, events = _run(list(parse_cdr(path.read_bytes(), mapping=mapping, source=BANK)))
    assert report.lines == 42_078 == report.converted + sum(report.no_event.values()) + len(
        report.errors)
    assert report.errors == []
    assert report.no_event == {"outcome PHANTOM": 310}

    theirs = per_day(bank_calls(path))
    assert len(theirs) == 31
    _same(_per_day(events, ZoneInfo("Asia/Jerusalem")).fillna(0), theirs)


# -- the command, end to end through the embedded log -----------------------------------------


def test_cli_imports_queue_log_into_the_log_and_prints_the_json_report(home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["import", "asterisk-queue-log",
                                 str(FIXTURES / "queue_log_variants"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["lines"], report["events"], report["calls"]) == (45, 46, 11)
    assert (report["written"], report["dead_lettered"]) == (46, 0)
    assert [(e["line"], e["reason"]) for e in report["errors"]] == EXPECTED_QUEUE_LOG_ERRORS
    out = home.parent / "replayed.jsonl"
    replayed = runner.invoke(app, ["events", "replay", "--out", str(out), "--idle", "0.3"])
    assert replayed.exit_code == 0, replayed.output
    lines = out.read_bytes().splitlines()
    assert len(lines) == 46
    ids = {json.loads(line)["id"] for line in lines}
    _, events = _queue_logs([FIXTURES / "queue_log_variants"])
    assert ids == {e.id for _, e in events}
    strict = runner.invoke(app, ["import", "asterisk-queue-log",
                                 str(FIXTURES / "queue_log_variants"), "--dry-run", "--strict"])
    assert strict.exit_code == 1
    assert "nothing written (dry run)" in strict.stdout


def test_cli_cdr_with_a_bad_mapping_names_the_problem(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("call_id: id\noffered_at: start\noutcome: {column: o}\ntimezone: Nowhere\n")
    result = CliRunner().invoke(app, ["import", "cdr", str(FIXTURES / "Master.csv"),
                                      "--mapping", str(bad)])
    assert result.exit_code == 2
    assert "timezone 'Nowhere' is not an IANA zone" in result.output


def test_outcome_types_are_exhaustive() -> None:
    """Every outcome is one of the three kinds the report counts."""
    with (FIXTURES / "queue_log_variants").open("rb") as handle:
        kinds = {type(o) for o in parse_queue_log(handle)}
    assert kinds == {Converted, NoEvent, LineError}
