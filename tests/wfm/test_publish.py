"""Publishing schedules as versioned events with an audit trail (WF-06, WF-09)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from ingest.contract import (
    ScheduleChanged,
    SchedulePublished,
    decode_event,
    encode_event,
)
from scheduling.model import Activity
from scheduling.publish import (
    SCHEDULE_ROW_COLUMNS,
    LocalTimeError,
    ScheduleBook,
    ScheduleCommandError,
    UnknownScheduleError,
    VersionConflictError,
    apply,
    replay,
    schedule_rows,
)

T = pd.Timestamp
ZONE = "Europe/Berlin"  # UTC+2 in June
NOW = datetime(2024, 5, 30, 8, 0, tzinfo=UTC)


def shifts(*rows: tuple[str, str, str, str | None, tuple[Activity, ...]]) -> pd.DataFrame:
    """Roster rows (agent, start, end, template, activities), naive local times."""
    return pd.DataFrame({
        "agent_id": [r[0] for r in rows], "template": [r[3] for r in rows],
        "day": [T(r[1]).date() for r in rows], "start": [T(r[1]) for r in rows],
        "end": [T(r[2]) for r in rows], "paid_minutes": 0, "skill": None,
        "activities": [r[4] for r in rows]})


def act(kind: str, start: str, end: str, paid: bool = True) -> Activity:
    return Activity(kind, T(f"2024-06-03 {start}"), T(f"2024-06-03 {end}"), paid)


ROSTER = shifts(
    ("ana", "2024-06-03 09:00", "2024-06-03 17:30", "E8",
     (act("break", "11:00", "11:15"), act("lunch", "13:00", "13:30", paid=False))),
    ("ben", "2024-06-03 12:00", "2024-06-03 20:30", "L8", (act("lunch", "16:00", "16:30"),)),
    ("ana", "2024-06-04 09:00", "2024-06-04 17:30", "E8", ()),
)


def published() -> tuple[ScheduleBook, list]:
    decision = ScheduleBook(timezone=ZONE).publish(
        ROSTER, schedule_id="w23", published_by="planner", queue="sales", now=NOW,
        start=T("2024-06-03"), end=T("2024-06-10"))
    return decision.book, list(decision.events)


def test_publish_emits_a_contract_event_in_utc() -> None:
    book, events = published()
    (event,) = events
    payload = event.payload
    assert isinstance(payload, SchedulePublished)
    assert (event.type, event.key, payload.version, payload.published_by) == (
        "wfm.schedule_published", "sales", 1, "planner")
    assert (payload.start, payload.end) == (datetime(2024, 6, 2, 22, tzinfo=UTC),
                                            datetime(2024, 6, 9, 22, tzinfo=UTC))
    first = payload.shifts[0]
    assert (first.agent_id, first.start, first.end, first.template) == (
        "ana", datetime(2024, 6, 3, 7, tzinfo=UTC), datetime(2024, 6, 3, 15, 30, tzinfo=UTC),
        "E8")
    assert [(a.kind, a.start.hour, a.paid) for a in first.activities] == [
        ("break", 9, True), ("lunch", 11, False)]
    assert decode_event(encode_event(event)) == event
    assert book.version("w23") == 1


def test_current_and_segments() -> None:
    book, _ = published()
    current = book.current("w23")
    assert current[["agent_id", "start", "start_utc", "paid_minutes"]].values.tolist() == [
        ["ana", T("2024-06-03 09:00"), T("2024-06-03 07:00", tz="UTC"), 480],
        ["ana", T("2024-06-04 09:00"), T("2024-06-04 07:00", tz="UTC"), 510],
        ["ben", T("2024-06-03 12:00"), T("2024-06-03 10:00", tz="UTC"), 510]]
    assert current["activities"].iloc[0][1] == act("lunch", "13:00", "13:30", paid=False)
    segments = book.segments("w23")
    ana = segments[segments["start"] < T("2024-06-04", tz="UTC")].query("agent_id == 'ana'")
    assert [(r.activity, r.start.strftime("%H:%M"), r.end.strftime("%H:%M"), r.paid)
            for r in ana.itertuples()] == [
        ("work", "07:00", "09:00", True), ("break", "09:00", "09:15", True),
        ("work", "09:15", "11:00", True), ("lunch", "11:00", "11:30", False),
        ("work", "11:30", "15:30", True)]


def edited() -> tuple[ScheduleBook, list]:
    book, events = published()
    # ana starts an hour later on Monday with her break moved; ben's Monday shift is dropped
    new = shifts(("ana", "2024-06-03 10:00", "2024-06-03 18:30", "E8",
                  (act("break", "12:00", "12:15"), act("lunch", "13:00", "13:30", False))))
    decision = book.edit(["ana", "ben"], new, schedule_id="w23", start=T("2024-06-03"),
                         end=T("2024-06-04"), changed_by="supervisor", reason="ben sick",
                         now=datetime(2024, 6, 1, 9, tzinfo=UTC), expected_version=1)
    return decision.book, [*events, *decision.events]


def test_edit_creates_a_version_with_an_audit_trail() -> None:
    book, events = edited()
    change = events[-1].payload
    assert isinstance(change, ScheduleChanged)
    assert (change.version, change.previous_version, change.agent_ids, change.reason) == (
        2, 1, ["ana", "ben"], "ben sick")
    assert decode_event(encode_event(events[-1])) == events[-1]
    history = book.history("w23")
    assert history[["version", "action", "by", "agent_id"]].values.tolist() == [
        [1, "published", "planner", "ana"], [1, "published", "planner", "ben"],
        [2, "changed", "supervisor", "ana"], [2, "changed", "supervisor", "ben"]]
    v2 = history[history["version"] == 2].set_index("agent_id")
    assert v2.loc["ana", "added"] == (
        "2024-06-03 10:00-18:30 E8 [break 12:00-12:15, lunch 13:00-13:30]",)
    assert v2.loc["ana", "removed"] == (
        "2024-06-03 09:00-17:30 E8 [break 11:00-11:15, lunch 13:00-13:30]",)
    assert v2.loc["ben", "added"] == ()
    assert v2.loc["ben", "removed"] == ("2024-06-03 12:00-20:30 L8 [lunch 16:00-16:30]",)
    assert v2.loc["ana", "at"] == T("2024-06-01 09:00", tz="UTC")
    assert v2.loc["ana", "reason"] == "ben sick"
    # ana's Tuesday shift is outside the window and stays
    current = book.current("w23")
    assert current[["agent_id", "start"]].values.tolist() == [
        ["ana", T("2024-06-03 10:00")], ["ana", T("2024-06-04 09:00")]]


def test_replay_rebuilds_the_book_and_ignores_redelivery() -> None:
    book, events = edited()
    assert replay(events, timezone=ZONE) == book
    decoded = [decode_event(encode_event(e)) for e in events]
    assert replay([decoded[0], decoded[0], decoded[1], decoded[0]], timezone=ZONE) == book
    assert apply(book, events[0]) is book


def test_stale_expected_version_is_rejected() -> None:
    book, _ = edited()  # now at version 2
    with pytest.raises(VersionConflictError, match="at version 2, not 1") as caught:
        book.edit(["ana"], None, schedule_id="w23", start=T("2024-06-04"),
                  end=T("2024-06-05"), changed_by="other", now=NOW, expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    with pytest.raises(VersionConflictError, match="already published"):
        book.publish(ROSTER, schedule_id="w23", published_by="planner", queue="sales", now=NOW)
    assert book.version("w23") == 2


def test_republish_replaces_the_whole_schedule() -> None:
    book, _ = edited()
    decision = book.publish(ROSTER.iloc[:1], schedule_id="w23", published_by="planner",
                            queue="sales", now=NOW, expected_version=2)
    assert decision.book.version("w23") == 3
    assert len(decision.book.current("w23")) == 1
    v3 = decision.book.history("w23").query("version == 3").set_index("agent_id")
    assert len(v3.loc["ana", "added"]) == 1
    assert len(v3.loc["ana", "removed"]) == 2


def test_commands_refuse_invalid_input() -> None:
    book, _ = published()
    with pytest.raises(ScheduleCommandError, match="published_by must be given"):
        ScheduleBook(timezone=ZONE).publish(ROSTER, schedule_id="x", published_by="",
                                            queue="sales", now=NOW)
    with pytest.raises(UnknownScheduleError, match="'nope' was never published"):
        book.edit(["ana"], None, schedule_id="nope", start=T("2024-06-03"),
                  end=T("2024-06-04"), changed_by="s", now=NOW)
    overlap = shifts(("ana", "2024-06-03 09:00", "2024-06-03 17:00", None, ()),
                     ("ana", "2024-06-03 16:00", "2024-06-03 22:00", None, ()))
    with pytest.raises(ScheduleCommandError, match="agent ana has overlapping shifts"):
        ScheduleBook(timezone=ZONE).publish(overlap, schedule_id="x", published_by="p",
                                            queue="sales", now=NOW)
    outside = shifts(("ana", "2024-06-03 09:00", "2024-06-03 17:00", None,
                      (act("break", "17:00", "17:15"),)))
    with pytest.raises(ScheduleCommandError, match="outside the shift"):
        ScheduleBook(timezone=ZONE).publish(outside, schedule_id="x", published_by="p",
                                            queue="sales", now=NOW)
    clash = shifts(("ana", "2024-06-03 09:00", "2024-06-03 17:00", None,
                    (act("break", "11:00", "11:30"), act("meeting", "11:15", "12:00"))))
    with pytest.raises(ScheduleCommandError, match="break and meeting overlap"):
        ScheduleBook(timezone=ZONE).publish(clash, schedule_id="x", published_by="p",
                                            queue="sales", now=NOW)
    stranger = shifts(("cy", "2024-06-03 09:00", "2024-06-03 17:00", None, ()))
    with pytest.raises(ScheduleCommandError, match="not in agent_ids"):
        book.edit(["ana"], stranger, schedule_id="w23", start=T("2024-06-03"),
                  end=T("2024-06-04"), changed_by="s", now=NOW)
    late = shifts(("ana", "2024-06-05 09:00", "2024-06-05 17:00", None, ()))
    with pytest.raises(ScheduleCommandError, match="outside the window"):
        book.edit(["ana"], late, schedule_id="w23", start=T("2024-06-03"),
                  end=T("2024-06-04"), changed_by="s", now=NOW)
    onto_tuesday = shifts(("ana", "2024-06-03 20:00", "2024-06-04 10:00", None, ()))
    with pytest.raises(ScheduleCommandError, match="overlapping shifts"):
        book.edit(["ana"], onto_tuesday, schedule_id="w23", start=T("2024-06-03"),
                  end=T("2024-06-04"), changed_by="s", now=NOW)
    with pytest.raises(ScheduleCommandError, match="changes nothing"):
        book.edit(["ana"], book.current("w23").iloc[[0]], schedule_id="w23",
                  start=T("2024-06-03"), end=T("2024-06-04"), changed_by="s", now=NOW)
    with pytest.raises(ScheduleCommandError, match="event contract"):
        ScheduleBook(timezone=ZONE).publish(ROSTER, schedule_id="x", published_by="p" * 65,
                                            queue="sales", now=NOW)
    with pytest.raises(ScheduleCommandError, match="not an IANA time zone"):
        ScheduleBook(timezone="Mars/Olympus")


def test_dst_changes_in_local_time() -> None:
    book = ScheduleBook(timezone=ZONE)
    spring = shifts(("ana", "2024-03-31 01:00", "2024-03-31 05:00", None, ()))
    current = book.publish(spring, schedule_id="s", published_by="p", queue="q",
                           now=NOW).book.current("s")
    # 01:00 CET = 00:00Z, 05:00 CEST = 03:00Z: the shift lasts three hours
    assert current[["start_utc", "end_utc", "paid_minutes"]].values.tolist() == [
        [T("2024-03-31 00:00", tz="UTC"), T("2024-03-31 03:00", tz="UTC"), 180]]
    gap = shifts(("ana", "2024-03-31 02:30", "2024-03-31 08:00", None, ()))
    with pytest.raises(LocalTimeError, match=r"agent ana.*starts at 2024-03-31 02:30:00, "
                                             r"which does not exist"):
        book.publish(gap, schedule_id="s", published_by="p", queue="q", now=NOW)
    twice = shifts(("ben", "2024-10-27 02:30", "2024-10-27 08:00", None, ()))
    with pytest.raises(LocalTimeError, match=r"agent ben.*which is ambiguous"):
        book.publish(twice, schedule_id="f", published_by="p", queue="q", now=NOW)
    # the escape hatch: a tz-aware time says which 02:30 is meant
    aware = twice.assign(start=[T("2024-10-27 02:30").tz_localize(ZONE, ambiguous=False)],
                         end=[T("2024-10-27 08:00").tz_localize(ZONE)])
    current = book.publish(aware, schedule_id="f", published_by="p", queue="q",
                           now=NOW).book.current("f")
    assert current["start_utc"].iloc[0] == T("2024-10-27 01:30", tz="UTC")


def test_schedule_rows_for_the_warehouse() -> None:
    book, events = edited()
    rows = schedule_rows(book)
    assert list(rows.columns) == list(SCHEDULE_ROW_COLUMNS)
    # v1: 3 shifts + 3 activities; v2: 2 shifts (ana Mon, ana Tue) + 2 activities
    assert rows.groupby("version").size().to_dict() == {1: 6, 2: 4}
    v2 = rows[rows["version"] == 2]
    assert set(v2["published_by"]) == {"supervisor"}
    assert sorted(v2["kind"]) == ["break", "lunch", "shift", "shift"]
    lunch = v2[v2["kind"] == "lunch"].iloc[0]
    assert (lunch["start_utc"], lunch["paid"]) == (T("2024-06-03 11:00", tz="UTC"), False)
    assert schedule_rows(events).equals(rows)
    assert schedule_rows(book, versions="current").equals(
        rows[rows["version"] == 2].reset_index(drop=True))
