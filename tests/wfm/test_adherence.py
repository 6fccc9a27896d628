"""Adherence, conformance (WF-10) and staffed vs required (WF-09) on hand-made traces."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scheduling.adherence import (
    AdherenceInputError,
    AdherenceRules,
    measure_adherence,
    staffed_vs_required,
)
from scheduling.model import Activity
from scheduling.publish import ScheduleBook


def table(text: str, *, day: str = "2024-06-03", tz: str = "UTC") -> pd.DataFrame:
    """A pasted ``|`` table; ``start``/``end`` are HH:MM on ``day`` (``+1`` = next day)."""
    frame = pd.read_csv(io.StringIO(text.strip()), sep=r"\s*\|\s*", engine="python",
                        dtype=str, keep_default_na=False).replace({"": None})
    for column in ("start", "end"):
        def stamp(v: str) -> pd.Timestamp:
            clock, _, plus = v.partition("+")
            return pd.Timestamp(f"{day} {clock}") + pd.Timedelta(days=int(plus or 0))
        frame[column] = pd.DatetimeIndex([stamp(v) for v in frame[column]]).tz_localize(
            tz).tz_convert("UTC")
    return frame


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def row(frame: pd.DataFrame, **where: Any) -> pd.Series:
    hit = frame
    for column, value in where.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, hit
    return hit.iloc[0]


BREAK_SCHEDULE = table("""
agent_id | activity | start | end
a1       | work     | 09:00 | 10:00
a1       | break    | 10:00 | 10:15
a1       | work     | 10:15 | 11:00
""")
# logs in 3 minutes late (no row before 09:03 = logged out), back from break 7 minutes late
BREAK_STATES = table("""
agent_id | state     | reason | start | end
a1       | ready     |        | 09:03 | 10:00
a1       | not_ready | break  | 10:00 | 10:22
a1       | talking   |        | 10:22 | 11:00
""")


def test_late_from_break_with_tolerance_5() -> None:
    r = measure_adherence(BREAK_STATES, BREAK_SCHEDULE, rules=AdherenceRules(tolerance_minutes=5))
    day = row(r.days, agent_id="a1")
    # 10:15-10:20 is within 5 minutes of the break, which not_ready:break keeps: in;
    # 10:20-10:22 is out; the 3 late minutes at 09:00 are within 5 minutes of shift start
    assert day[["scheduled", "scheduled_work", "in_adherence", "out_of_adherence", "worked"]
               ].tolist() == [120.0, 105.0, 118.0, 2.0, 95.0]
    assert day["adherence"] == pytest.approx(118 / 120)
    assert day["conformance"] == pytest.approx(95 / 105)
    late = row(r.intervals, interval_start=utc("2024-06-03 10:15"))
    assert late[["scheduled", "in_adherence", "out_of_adherence", "worked"]].tolist() == [
        15.0, 13.0, 2.0, 8.0]
    first = row(r.intervals, interval_start=utc("2024-06-03 09:00"))
    assert first[["in_adherence", "worked", "conformance"]].tolist() == [15.0, 12.0, 0.8]
    on_break = row(r.intervals, interval_start=utc("2024-06-03 10:00"))
    assert on_break["scheduled_work"] == 0
    assert np.isnan(on_break["conformance"])
    assert len(r.intervals) == 8
    # the raw 7-minute deviation is longer than the tolerance: one exception, costing 2 minutes
    assert r.exceptions.to_dict("records") == [{
        "agent_id": "a1", "start": utc("2024-06-03 10:15"), "end": utc("2024-06-03 10:22"),
        "minutes": 7.0, "out_of_adherence": 2.0, "scheduled": "work",
        "actual": "not_ready:break"}]


def test_same_trace_without_tolerance() -> None:
    r = measure_adherence(BREAK_STATES, BREAK_SCHEDULE, rules=AdherenceRules(tolerance_minutes=0))
    day = row(r.days, agent_id="a1")
    assert day[["in_adherence", "out_of_adherence"]].tolist() == [110.0, 10.0]
    assert r.exceptions[["start", "end", "minutes", "out_of_adherence", "actual"]
                        ].values.tolist() == [
        [utc("2024-06-03 09:00"), utc("2024-06-03 09:03"), 3.0, 3.0, "logged_out"],
        [utc("2024-06-03 10:15"), utc("2024-06-03 10:22"), 7.0, 7.0, "not_ready:break"]]


def test_out_of_adherence_split_at_interval_boundaries() -> None:
    schedule = table("""
agent_id | activity | start | end
a1       | work     | 09:00 | 11:00
""")
    states = table("""
agent_id | state     | reason   | start | end
a1       | ready     |          | 09:00 | 09:10
a1       | not_ready | personal | 09:10 | 09:40
a1       | ready     |          | 09:40 | 11:00
""")
    r = measure_adherence(states, schedule, rules=AdherenceRules(tolerance_minutes=5))
    out = r.intervals.set_index("interval_start")["out_of_adherence"]
    assert out.loc[utc("2024-06-03 09:00"):utc("2024-06-03 09:45")].tolist() == [
        5.0, 15.0, 10.0, 0.0]
    assert r.exceptions[["minutes", "out_of_adherence", "scheduled", "actual"]
                        ].values.tolist() == [[30.0, 30.0, "work", "not_ready:personal"]]
    thirty = measure_adherence(states, schedule, interval_minutes=30)
    assert thirty.intervals["out_of_adherence"].tolist() == [20.0, 10.0, 0.0, 0.0]


def test_early_to_lunch_and_logged_out_during_lunch() -> None:
    schedule = table("""
agent_id | activity | start | end
a2       | work     | 12:00 | 13:00
a2       | lunch    | 13:00 | 13:30
a2       | work     | 13:30 | 14:00
""")
    states = table("""
agent_id | state      | reason | start | end
a2       | talking    |        | 12:00 | 12:52
a2       | logged_out |        | 12:52 | 13:27
a2       | ready      |        | 13:27 | 14:00
""")
    r = measure_adherence(states, schedule, rules=AdherenceRules(tolerance_minutes=5))
    # 8 minutes early to lunch: 12:52-12:55 out, 12:55-13:00 within tolerance;
    # 3 minutes early back (13:27) within tolerance of the work after lunch
    day = row(r.days, agent_id="a2")
    assert day[["scheduled", "scheduled_work", "in_adherence", "out_of_adherence", "worked"]
               ].tolist() == [120.0, 90.0, 117.0, 3.0, 85.0]
    assert r.exceptions[["start", "end", "out_of_adherence", "actual"]].values.tolist() == [
        [utc("2024-06-03 12:52"), utc("2024-06-03 13:00"), 3.0, "logged_out"]]
    by_start = r.intervals.set_index("interval_start")
    assert by_start.loc[utc("2024-06-03 12:45"), ["in_adherence", "worked"]].tolist() == [
        12.0, 7.0]
    assert by_start.loc[utc("2024-06-03 13:15"), "worked"] == 3.0


def test_conformance_counts_overtime_and_can_exceed_one() -> None:
    schedule = table("""
agent_id | activity | start | end
a3       | work     | 09:00 | 10:00
""")
    states = table("""
agent_id | state | reason | start | end
a3       | ready |        | 08:30 | 10:30
""")
    r = measure_adherence(states, schedule, rules=AdherenceRules(tolerance_minutes=0))
    day = row(r.days, agent_id="a3")
    assert day[["scheduled", "in_adherence", "worked", "adherence", "conformance"]].tolist() == [
        60.0, 60.0, 120.0, 1.0, 2.0]
    early = row(r.intervals, interval_start=utc("2024-06-03 08:30"))
    assert early["scheduled"] == 0
    assert early["worked"] == 15
    assert np.isnan(early["adherence"])
    assert r.exceptions.empty


def test_rules_can_accept_any_not_ready_for_a_break() -> None:
    schedule = table("""
agent_id | activity | start | end
a4       | work     | 09:00 | 09:30
a4       | break    | 09:30 | 09:45
a4       | work     | 09:45 | 10:00
""")
    states = table("""
agent_id | state     | reason | start | end
a4       | ready     |        | 09:00 | 09:30
a4       | not_ready |        | 09:30 | 09:45
a4       | ready     |        | 09:45 | 10:00
""")
    strict = measure_adherence(states, schedule)
    assert row(strict.days, agent_id="a4")["out_of_adherence"] == 15.0
    lenient = measure_adherence(states, schedule, rules=AdherenceRules(
        activity_states={"break": frozenset({"not_ready", "logged_out"})}))
    assert row(lenient.days, agent_id="a4")["out_of_adherence"] == 0.0
    with pytest.raises(AdherenceInputError, match="unknown states"):
        AdherenceRules(activity_states={"break": frozenset({"coffee"})})


def test_dst_day_has_25_hours_and_local_intervals() -> None:
    book = ScheduleBook(timezone="Europe/Berlin")
    ts = pd.Timestamp
    roster = pd.DataFrame({
        "agent_id": ["n1"], "start": [ts("2024-10-27 00:00")], "end": [ts("2024-10-27 04:00")],
        "activities": [(Activity("break", ts("2024-10-27 03:00"), ts("2024-10-27 03:15")),)]})
    book = book.publish(roster, schedule_id="night", published_by="planner", queue="q",
                        now=datetime(2024, 10, 20, tzinfo=UTC)).book
    states = table("""
agent_id | state     | reason | start | end
n1       | ready     |        | 22:00 | 02:00+1
n1       | not_ready | break  | 02:00+1 | 02:15+1
n1       | ready     |        | 02:15+1 | 03:00+1
""", day="2024-10-26")
    r = measure_adherence(states, book.segments("night"), timezone="Europe/Berlin",
                          rules=AdherenceRules(tolerance_minutes=0))
    day = row(r.days, agent_id="n1")
    assert day["day"].isoformat() == "2024-10-27"
    assert day[["scheduled", "scheduled_work", "in_adherence", "worked"]].tolist() == [
        300.0, 285.0, 300.0, 285.0]
    assert len(r.intervals) == 20
    assert (r.intervals["interval_local"] == ts("2024-10-27 02:00")).sum() == 2
    hourly = measure_adherence(states, book.segments("night"), timezone="Europe/Berlin",
                               interval_minutes=60)
    assert [t.hour for t in hourly.intervals["interval_local"]] == [0, 1, 2, 2, 3]
    assert hourly.intervals["scheduled"].tolist() == [60.0] * 5


def test_intervals_follow_the_local_clock_and_days_split_at_local_midnight() -> None:
    # India is UTC+5:30: local hours start at :30 UTC; 22:00-02:00 local spans two days
    schedule = table("""
agent_id | activity | start | end
k1       | work     | 22:00 | 02:00+1
""", tz="Asia/Kolkata")
    states = table("""
agent_id | state | reason | start | end
k1       | ready |        | 22:00 | 02:00+1
""", tz="Asia/Kolkata")
    r = measure_adherence(states, schedule, interval_minutes=60, timezone="Asia/Kolkata")
    assert [t.hour for t in r.intervals["interval_local"]] == [22, 23, 0, 1]
    assert r.intervals["interval_start"].iloc[0] == utc("2024-06-03 16:30")
    assert r.days[["day", "scheduled"]].values.tolist() == [
        [pd.Timestamp("2024-06-03").date(), 120.0], [pd.Timestamp("2024-06-04").date(), 120.0]]


def test_bad_inputs_are_refused_with_the_fix() -> None:
    overlapping = table("""
agent_id | state | reason | start | end
a1       | ready |        | 09:00 | 09:30
a1       | hold  |        | 09:20 | 09:40
""")
    with pytest.raises(AdherenceInputError, match="agent a1 has overlapping rows"):
        measure_adherence(overlapping, BREAK_SCHEDULE)
    naive = BREAK_STATES.assign(start=BREAK_STATES["start"].dt.tz_localize(None))
    with pytest.raises(AdherenceInputError, match=r"states.start must hold tz-aware"):
        measure_adherence(naive, BREAK_SCHEDULE)
    with pytest.raises(AdherenceInputError, match="unknown values"):
        measure_adherence(BREAK_STATES.assign(state="lunch"), BREAK_SCHEDULE)
    with pytest.raises(AdherenceInputError, match="interval_minutes must divide a day"):
        measure_adherence(BREAK_STATES, BREAK_SCHEDULE, interval_minutes=7)
    shift_frame = pd.DataFrame({"agent_id": ["a1"], "activities": [()],
                                "start": [utc("2024-06-03 09:00")],
                                "end": [utc("2024-06-03 10:00")]})
    with pytest.raises(AdherenceInputError, match="segments"):
        measure_adherence(BREAK_STATES, shift_frame)


# -- staffed vs required (WF-09) -------------------------------------------------------

STAFF_STATES = table("""
agent_id | state     | reason | start | end
a        | ready     |        | 09:00 | 09:10
a        | talking   |        | 09:10 | 09:30
b        | not_ready | lunch  | 09:00 | 09:05
b        | ready     |        | 09:05 | 09:20
c        | talking   |        | 08:50 | 09:02
""")


def test_staffed_vs_required_by_hand() -> None:
    required = pd.Series([2.0, 1.0], index=pd.DatetimeIndex(
        [utc("2024-06-03 09:00"), utc("2024-06-03 09:15")]))
    schedule = table("""
agent_id | activity | start | end
a        | work     | 09:00 | 09:30
b        | work     | 09:00 | 09:15
b        | break    | 09:15 | 09:30
""")
    out = staffed_vs_required(STAFF_STATES, required, schedule=schedule)
    # 09:00: a 15 + b 10 + c 2 agent-minutes = 27 / 15; 09:15: a 15 + b 5 = 20 / 15
    np.testing.assert_allclose(out["staffed"], [27 / 15, 20 / 15])
    np.testing.assert_allclose(out["variance"], [27 / 15 - 2, 20 / 15 - 1])
    assert out["scheduled"].tolist() == [2.0, 1.0]
    assert out["scheduled_variance"].tolist() == [0.0, 0.0]
    assert out["under"].tolist() == [True, False]
    assert out["over"].tolist() == [False, True]
    lenient = staffed_vs_required(STAFF_STATES, required, margin=0.25)
    assert lenient["under"].tolist() == [False, False]
    assert lenient["over"].tolist() == [False, True]
    assert lenient["scheduled"].isna().all()
    hourly = staffed_vs_required(STAFF_STATES, pd.Series(
        [1.0], index=pd.DatetimeIndex([utc("2024-06-03 09:00")])), interval_minutes=60)
    assert hourly["staffed"].iloc[0] == pytest.approx(47 / 60)


def test_required_on_a_naive_local_grid_over_the_fall_back_hour() -> None:
    local = pd.DatetimeIndex([f"2024-10-27 {t}" for t in (
        "01:45", "02:00", "02:15", "02:30", "02:45", "02:00", "02:15", "02:30", "02:45",
        "03:00")])
    # one agent ready 00:00-01:00 UTC = the first (summer-time) 02:00-03:00 local
    states = table("""
agent_id | state | reason | start | end
a        | ready |        | 00:00 | 01:00
""", day="2024-10-27")
    out = staffed_vs_required(states, pd.Series(1.0, index=local), timezone="Europe/Berlin")
    assert out["staffed"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(AdherenceInputError, match="pass timezone="):
        staffed_vs_required(states, pd.Series(1.0, index=local))


# -- the vectorized sweep against a per-minute reference --------------------------------


def _reference(states: pd.DataFrame, schedule: pd.DataFrame, rules: AdherenceRules
               ) -> tuple[dict[str, list[float]], list[tuple[str, int, int]]]:
    """Per agent [scheduled, in, out, worked] minutes and raw exception spans, minute by
    minute straight from the definitions (times on whole minutes)."""
    tol = int(rules.tolerance_minutes)

    def minute(t: pd.Timestamp) -> int:
        return int((t - utc("2024-06-03")) / pd.Timedelta(minutes=1))

    totals: dict[str, list[float]] = {}
    spans: list[tuple[str, int, int]] = []
    for agent in sorted(set(states["agent_id"]) | set(schedule["agent_id"])):
        segs = [(minute(r.start), minute(r.end), r.activity)
                for r in schedule[schedule["agent_id"] == agent].itertuples()]
        spells = [(minute(r.start), minute(r.end),
                   r.state + (f":{r.reason}" if r.state == "not_ready" and r.reason else ""))
                  for r in states[states["agent_id"] == agent].itertuples()]
        segs.sort()
        runs: list[list[int]] = []
        for s, e, _ in segs:
            if runs and runs[-1][1] == s:
                runs[-1][1] = e
            else:
                runs.append([s, e])

        def ok(token: str, kind: str) -> bool:
            accepted = rules.accepts(kind)
            return token in accepted or (token.startswith("not_ready:")
                                         and "not_ready" in accepted)

        total = [0.0, 0.0, 0.0, 0.0]
        raw_run: list[int] | None = None
        for m in range(-60, 24 * 60 + 60):
            token = next((t for s, e, t in spells if s <= m < e), "logged_out")
            kind = next((k for s, e, k in segs if s <= m < e), None)
            total[3] += token in rules.productive_states
            bad = kind is not None and not ok(token, kind)
            if bad and raw_run and raw_run[1] == m:
                raw_run[1] = m + 1
            elif bad:
                if raw_run:
                    spans.append((agent, *raw_run))
                raw_run = [m, m + 1]
            if kind is None:
                continue
            near = {k for s, e, k in segs if s - tol <= m < e + tol}
            edge = not any(s + tol <= m < e - tol for s, e in runs)
            adheres = ok(token, kind) or edge or any(ok(token, k) for k in near)
            total[0] += 1
            total[1 if adheres else 2] += 1
        if raw_run:
            spans.append((agent, *raw_run))
        totals[agent] = total
    return totals, [s for s in spans if s[2] - s[1] > tol]


def _random_trace(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    day = utc("2024-06-03")
    kinds = ["work", "work", "break", "lunch", "meeting"]
    tokens = [("ready", None), ("talking", None), ("hold", None), ("after_call_work", None),
              ("not_ready", "break"), ("not_ready", "lunch"), ("not_ready", None),
              ("not_ready", "meeting"), ("logged_out", None)]
    segs, spells = [], []
    for agent in ("x", "y", "z"):
        t = int(rng.integers(0, 120))
        for _ in range(int(rng.integers(1, 3))):  # one or two shifts
            for _ in range(int(rng.integers(1, 6))):
                length = int(rng.integers(1, 40))
                segs.append((agent, kinds[rng.integers(len(kinds))], t, t + length))
                t += length
            t += int(rng.integers(1, 60))
        t = int(rng.integers(0, 150))
        while t < 700:
            length = int(rng.integers(1, 25))
            if rng.random() < 0.85:
                state, reason = tokens[rng.integers(len(tokens))]
                spells.append((agent, state, reason, t, t + length))
            t += length

    def frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
        f = pd.DataFrame(rows, columns=[*columns, "s", "e"])
        f["start"] = day + pd.to_timedelta(f.pop("s"), unit="min")
        f["end"] = day + pd.to_timedelta(f.pop("e"), unit="min")
        return f

    return (frame(spells, ["agent_id", "state", "reason"]),
            frame(segs, ["agent_id", "activity"]))


@pytest.mark.parametrize("seed", range(25))
def test_sweep_matches_a_per_minute_reference(seed: int) -> None:
    states, schedule = _random_trace(seed)
    rules = AdherenceRules(tolerance_minutes=seed % 7)
    r = measure_adherence(states, schedule, rules=rules)
    expected, spans = _reference(states, schedule, rules)
    got = r.agents().set_index("agent_id")
    for agent, (scheduled, inside, outside, worked) in expected.items():
        assert got.loc[agent, ["scheduled", "in_adherence", "out_of_adherence", "worked"]
                       ].tolist() == [scheduled, inside, outside, worked], agent
    minute = (r.exceptions["start"] - utc("2024-06-03")) / pd.Timedelta(minutes=1)
    stop = (r.exceptions["end"] - utc("2024-06-03")) / pd.Timedelta(minutes=1)
    assert sorted(zip(r.exceptions["agent_id"], minute.astype(int), stop.astype(int),
                      strict=True)) == sorted(spans)
    # intervals add up to the days
    sums = r.intervals.groupby("agent_id")[["scheduled", "in_adherence", "worked"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), got[["scheduled", "in_adherence", "worked"]
                                                    ].loc[sums.index].to_numpy())


# -- scale -----------------------------------------------------------------------------


def _synthetic_week(n_agents: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_agents`` x 7 days: 8.5-hour shifts with two breaks and lunch; a state change
    about every minute (exponential spells), from ~5 minutes before to after the shift."""
    rng = np.random.default_rng(seed)
    agents = np.array([f"a{i:04d}" for i in range(n_agents)], dtype=object)
    base = utc("2024-06-03").value // 10**6
    offset = rng.integers(0, 8, n_agents) * 1_800_000
    plan = [("work", 0, 120), ("break", 120, 135), ("work", 135, 240), ("lunch", 240, 270),
            ("work", 270, 390), ("break", 390, 405), ("work", 405, 510)]
    segs, spells = [], []
    names = np.array(["ready", "ringing", "talking", "hold", "after_call_work", "not_ready"],
                     dtype=object)
    per = 700
    for d in range(7):
        day0 = base + d * 86_400_000 + 8 * 3_600_000 + offset
        for kind, a, b in plan:
            segs.append(pd.DataFrame({"agent_id": agents, "activity": kind,
                                      "start": day0 + a * 60_000, "end": day0 + b * 60_000}))
        first = day0 - 300_000 + rng.integers(-300_000, 300_000, n_agents)
        lengths = rng.exponential(60_000, (n_agents, per)).astype(np.int64) + 1_000
        ends = first[:, None] + np.cumsum(lengths, axis=1)
        keep = ends < (day0 + 520 * 60_000)[:, None]
        codes = rng.choice(6, size=(n_agents, per), p=[.3, .05, .4, .05, .15, .05])
        spells.append(pd.DataFrame({
            "agent_id": np.repeat(agents, per)[keep.ravel()], "state": names[codes][keep],
            "reason": np.where(codes == 5, "break", None).astype(object)[keep],
            "start": (ends - lengths)[keep], "end": ends[keep]}))
    out = []
    for f in (pd.concat(spells, ignore_index=True), pd.concat(segs, ignore_index=True)):
        f["start"] = pd.to_datetime(f["start"], unit="ms", utc=True)
        f["end"] = pd.to_datetime(f["end"], unit="ms", utc=True)
        out.append(f)
    return out[0], out[1]


@pytest.mark.slow
def test_500_agents_for_a_week_adds_up() -> None:
    states, schedule = _synthetic_week(500)
    assert len(states) > 1_500_000
    r = measure_adherence(states, schedule, timezone="Europe/Berlin")
    required = pd.Series(300.0, index=pd.date_range("2024-06-03", "2024-06-10", freq="15min",
                                                    tz="UTC", inclusive="left"))
    staffing = staffed_vs_required(states, required, schedule=schedule)
    assert len(r.days) == 3500
    assert (r.days["scheduled"] == 510).all()
    np.testing.assert_allclose(r.intervals["in_adherence"] + r.intervals["out_of_adherence"],
                               r.intervals["scheduled"])
    assert (r.exceptions["minutes"] > 5).all()
    productive = states["state"] != "not_ready"
    worked = ((states["end"] - states["start"])[productive].sum() / pd.Timedelta(minutes=1))
    assert r.days["worked"].sum() == pytest.approx(worked)
    assert staffing["staffed"].sum() * 15 == pytest.approx(worked)
    work = schedule[schedule["activity"] == "work"]
    scheduled = (work["end"] - work["start"]).sum() / pd.Timedelta(minutes=1)
    assert staffing["scheduled"].sum() * 15 == pytest.approx(scheduled)
