"""Analyst reports RP-01..RP-07 on both engines: hand-checked figures, pandas cross-checks.

The hand-built day (2024-03-04, UTC; a Monday) has 14 calls, two queues (sales, support),
two agents (a1, a2) with state spells from 08:55 to 10:05, five surveys and four QA scores.
Every expected figure is a literal with its derivation in a comment.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from warehouse import reports
from warehouse.client import Warehouse
from warehouse.migrations import migrate
from warehouse.reports import ReportError

DAY = "2024-03-04"
DAY_START, DAY_END = pd.Timestamp("2024-03-04", tz="UTC"), pd.Timestamp("2024-03-05", tz="UTC")
HOUR_START = pd.Timestamp("2024-03-04 09:00", tz="UTC")
HOUR_END = pd.Timestamp("2024-03-04 10:00", tz="UTC")

BEIJING = ("Beijing", "Beijing", "China Mobile")
SHENZHEN = ("Guangdong", "Shenzhen", "China Unicom")
GUANGZHOU = ("Guangdong", "Guangzhou", "China Unicom")
# id, direction, queue, outcome, offered (UTC), wait, talk, hold, acw, agent, caller, dialed,
# customer, origin
HAND_CALLS = [
    ("c01", "inbound", "sales", "answered", "09:00:10.250", 5, 100, 10, 20, "a1",
     "+8613800000001", "4000", "k1", BEIJING),
    ("c02", "inbound", "sales", "answered", "09:05:00", 15, 200, 0, 30, "a2",
     "+8613800000002", "4000", "k2", BEIJING),
    ("c03", "inbound", "sales", "answered", "09:10:00", 25, 60, 0, 0, "a1",
     "+8613800000003", "4000", "k3", BEIJING),
    ("c04", "inbound", "sales", "abandoned", "09:12:00", 3, 0, 0, 0, "",
     "+8613800000004", "4000", "k4", BEIJING),
    ("c05", "inbound", "sales", "abandoned", "09:20:00", 40, 0, 0, 0, "",
     "+8613800000005", "4000", "k5", BEIJING),
    ("c06", "inbound", "sales", "answered", "09:35:00", 20, 120, 30, 10, "a2",
     "+8613800000005", "4000", "k5", BEIJING),
    ("c07", "inbound", "sales", "unanswered", "09:40:00", 60, 0, 0, 0, "",
     "+8613800000001", "4000", "k1", BEIJING),
    ("c08", "inbound", "support", "answered", "09:02:00", 0, 300, 0, 60, "a1",
     "+8613800000008", "4001", "O'Brien \\ 100%_off", SHENZHEN),
    ("c09", "inbound", "support", "abandoned", "09:16:00", 5, 0, 0, 0, "",
     "+8613800000009", "4001", "k9", SHENZHEN),
    ("c10", "inbound", "support", "answered", "09:50:00", 30, 90, 0, 30, "a2",
     "+8613800000010", "4001", "100% sure", SHENZHEN),
    ("c11", "inbound", "", "ivr_abandoned", "09:01:00", 0, 0, 0, 0, "",
     "+8613800000011", "4000", "", BEIJING),
    ("c12", "outbound", "", "answered", "09:58:00", 0, 50, 0, 10, "a1",
     "", "+8613800000004", "k4", BEIJING),
    ("c13", "inbound", "sales", "answered", "23:30:00", 10, 60, 0, 0, "a2",
     "+8613800000013", "4000", "k13", GUANGZHOU),
    ("c14", "inbound", "sales", "abandoned", "09:45:00", 2, 0, 0, 0, "",
     "", "4000", "", BEIJING),
]

# agent, state, reason, call, start, end (UTC, 2024-03-04)
HAND_SPELLS = [
    ("a1", "ready", None, "", "08:55:00", "09:02:00"),
    ("a1", "ringing", None, "c08", "09:02:00", "09:02:10"),
    ("a1", "talking", None, "c08", "09:02:10", "09:07:10"),
    ("a1", "after_call_work", None, "c08", "09:07:10", "09:08:10"),
    ("a1", "ready", None, "", "09:08:10", "09:10:00"),
    ("a1", "ringing", None, "c03", "09:10:00", "09:10:20"),
    ("a1", "talking", None, "c03", "09:10:20", "09:11:20"),
    ("a1", "not_ready", "break", "", "09:11:20", "09:20:00"),
    ("a1", "ringing", None, "c05", "09:20:00", "09:20:30"),
    ("a1", "ready", None, "", "09:20:30", "09:30:00"),
    ("a1", "not_ready", "training", "", "09:30:00", "09:45:00"),
    ("a1", "ready", None, "", "09:45:00", "10:05:00"),
    ("a2", "ready", None, "", "09:00:00.500", "09:05:00"),
    ("a2", "ringing", None, "c02", "09:05:00", "09:05:15"),
    ("a2", "talking", None, "c02", "09:05:15", "09:08:35"),
    ("a2", "after_call_work", None, "c02", "09:08:35", "09:09:05"),
    ("a2", "not_ready", None, "", "09:09:05", "09:35:00"),
    ("a2", "ringing", None, "c06", "09:35:00", "09:35:20"),
    ("a2", "talking", None, "c06", "09:35:20", "09:37:20"),
    ("a2", "hold", None, "c06", "09:37:20", "09:37:50"),
    ("a2", "after_call_work", None, "c06", "09:37:50", "09:38:00"),
    ("a2", "ready", None, "", "09:38:00", "09:50:00"),
    ("a2", "ringing", None, "c10", "09:50:00", "09:50:30"),
    ("a2", "talking", None, "c10", "09:50:30", "09:52:00"),
    ("a2", "after_call_work", None, "c10", "09:52:00", "09:52:30"),
]


def at(clock: str) -> pd.Timestamp:
    return pd.Timestamp(f"{DAY} {clock}", tz="UTC")


def split_ms(stamps: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A tz-aware series as whole seconds (DateTime column) and milliseconds (UInt16)."""
    whole = stamps.dt.floor("s")
    return whole, ((stamps - whole) // pd.Timedelta(milliseconds=1)).astype("uint16")


def calls_frame(rows: list[tuple]) -> pd.DataFrame:
    """Fact rows of ``calls`` from (id, direction, queue, outcome, offered, wait, talk, hold,
    acw, agent, caller, dialed, customer, (region, city, carrier))."""
    frame = pd.DataFrame(rows, columns=[
        "call_id", "direction", "queue", "outcome", "offered", "wait_s", "talk_s", "hold_s",
        "acw_s", "agent_id", "caller", "dialed", "customer_id", "origin"])
    offered = pd.Series(frame["offered"].tolist()).map(
        lambda v: v if isinstance(v, pd.Timestamp) else at(v))
    offered_at, offered_ms = split_ms(pd.to_datetime(offered, utc=True))
    for column in ("wait_s", "talk_s", "hold_s", "acw_s"):
        frame[column] = frame[column].astype("float64")
    answered = frame["outcome"] == "answered"
    answered_at = (offered_at + pd.to_timedelta(frame["wait_s"], unit="s")).where(answered)
    ended_at = offered_at + pd.to_timedelta(frame["wait_s"] + frame["talk_s"] + frame["hold_s"],
                                            unit="s")
    return pd.DataFrame({
        "call_id": frame["call_id"], "event_id": "e-" + frame["call_id"],
        "direction": frame["direction"], "caller": frame["caller"], "dialed": frame["dialed"],
        "customer_id": frame["customer_id"],
        "region": [o[0] for o in frame["origin"]], "city": [o[1] for o in frame["origin"]],
        "carrier": [o[2] for o in frame["origin"]],
        "queue": frame["queue"], "first_queue": frame["queue"], "agent_id": frame["agent_id"],
        "offered_at": offered_at, "offered_ms": offered_ms, "answered_at": answered_at,
        "ended_at": ended_at, "wait_s": frame["wait_s"], "talk_s": frame["talk_s"],
        "hold_s": frame["hold_s"], "acw_s": frame["acw_s"], "outcome": frame["outcome"],
        "abandon_stage": np.where(frame["outcome"] == "abandoned", "queue", ""),
        "disposition": "", "transfers": np.zeros(len(frame), dtype="uint8"),
    })


def spells_frame(rows: list[tuple]) -> pd.DataFrame:
    """Fact rows of ``agent_state_intervals`` from (agent, state, reason, call, start, end)."""
    frame = pd.DataFrame(rows, columns=["agent_id", "state", "reason", "call_id", "s", "e"])
    start = pd.to_datetime(pd.Series([v if isinstance(v, pd.Timestamp) else at(v)
                                      for v in frame["s"]]), utc=True)
    end = pd.to_datetime(pd.Series([v if isinstance(v, pd.Timestamp) else at(v)
                                    for v in frame["e"]]), utc=True)
    start_s, start_ms = split_ms(start)
    end_s, end_ms = split_ms(end)
    return pd.DataFrame({
        "spell_id": [f"sp{i:05d}" for i in range(len(frame))], "agent_id": frame["agent_id"],
        "state": frame["state"], "reason": frame["reason"].astype(object), "call_id":
        frame["call_id"], "queue": "", "start": start_s, "start_ms": start_ms, "end": end_s,
        "end_ms": end_ms, "duration_s": (end - start).dt.total_seconds(),
    })


def load_hand(wh: Warehouse) -> None:
    migrate(wh)
    wh.insert("calls", calls_frame(HAND_CALLS))
    wh.insert("agent_state_intervals", spells_frame(HAND_SPELLS))
    wh.insert("surveys", pd.DataFrame({
        "survey_id": ["s1", "s2", "s3", "s4", "s5"],
        "call_id": ["c01", "c02", "c08", "c10", ""],
        "ticket_id": ["", "", "", "", "t1"],
        "agent_id": ["a1", "a2", "a1", "a2", "a1"],
        "answered_at": [at("10:10"), at("10:11"), at("10:12"), at("10:13"), at("10:14")],
        "score": np.array([5, 3, 4, 9, 2], dtype="uint8"),
        "max_score": np.array([5, 5, 5, 10, 5], dtype="uint8"),
        "comment": "", "event_id": ["es1", "es2", "es3", "es4", "es5"]}))
    wh.insert("qa_scores", pd.DataFrame({
        "evaluation_id": ["q1", "q2", "q3", "q4"], "call_id": ["c01", "c03", "c02", "c06"],
        "agent_id": ["a1", "a1", "a2", "a2"], "evaluator": "lead",
        "form": ["voice", "voice", "voice", "email"],
        "scored_at": [at("12:00"), at("12:01"), at("12:02"), at("12:03")],
        "score": [80.0, 90.0, 45.0, 7.0], "max_score": [100.0, 100.0, 50.0, 10.0],
        "event_id": ["eq1", "eq2", "eq3", "eq4"]}))


def rows(frame: pd.DataFrame, columns: list[str]) -> list[list]:
    return frame[columns].astype(object).values.tolist()


def close(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-12)


def assert_close(got: pd.Series, want: list[float]) -> None:
    values = [float(v) for v in got]
    assert len(values) == len(want), (values, want)
    assert all(map(close, values, want)), (values, want)


# --- hand-checked ----------------------------------------------------------------------

def test_queue_report_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    got = reports.queue_report(warehouse, start=DAY_START, end=DAY_END)
    assert got["queue"].tolist() == ["sales", "support"]  # c11, c12 have no queue leg
    # sales: c01..c07, c13, c14 = 9 offered; answered c01 c02 c03 c06 c13; abandoned c04 c05
    # c14 (c04 wait 3, c14 wait 2 are short); within 20 s: c01 5, c02 15, c06 20, c13 10.
    # support: c08 (ans 0 s), c09 (abandoned 5 s: short), c10 (ans 30 s).
    assert rows(got, ["offered", "answered", "abandoned", "short_abandoned",
                      "answered_within"]) == [[9, 5, 3, 2, 4], [3, 2, 1, 1, 1]]
    # abandoned_in: sales 4 / (5 + 3), support 1 / (2 + 1)
    assert_close(got["service_level"], [0.5, 1 / 3])
    # ASA: sales (5 + 15 + 25 + 20 + 10) / 5 = 15; support (0 + 30) / 2 = 15
    assert_close(got["asa_s"], [15.0, 15.0])
    # average wait of offered: sales (5+15+25+3+40+20+60+10+2) / 9 = 180 / 9; support 35 / 3
    assert_close(got["avg_wait_s"], [20.0, 35 / 3])
    # AHT: sales (130 + 230 + 60 + 160 + 60) / 5 = 128; support (360 + 120) / 2 = 240
    assert_close(got["aht_s"], [128.0, 240.0])
    assert_close(got["abandon_rate"], [3 / 9, 1 / 3])
    variants = {  # answered within / the variant's denominator
        "answered": [4 / 5, 1 / 2], "offered": [4 / 9, 1 / 3],
        "abandoned_in": [4 / 8, 1 / 3], "short_excluded": [4 / 7, 1 / 2]}
    for variant, want in variants.items():
        other = reports.queue_report(warehouse, start=DAY_START, end=DAY_END,
                                     sl_variant=variant)
        assert_close(other["service_level"], want)
    # T = 10 s: within sales c01 5, c13 10 -> 2; short abandons at 2 s: only c14
    tight = reports.queue_report(warehouse, start=DAY_START, end=DAY_END, queues=["sales"],
                                 sl_threshold_s=10, short_abandon_s=2.0)
    assert rows(tight, ["queue", "answered_within", "short_abandoned"]) == [["sales", 2, 1]]


def test_interval_traffic_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    got = reports.interval_traffic(warehouse, start=DAY_START, end=DAY_END, grain="15m")
    assert [(q, t.strftime("%H:%M")) for q, t in zip(got["queue"], got["interval_start"],
                                                     strict=True)] == [
        ("sales", "09:00"), ("sales", "09:15"), ("sales", "09:30"), ("sales", "09:45"),
        ("sales", "23:30"), ("support", "09:00"), ("support", "09:15"), ("support", "09:45")]
    assert str(got["interval_start"].dt.tz) == "UTC"
    # sales 09:00: c01 c02 c03 answered, c04 short abandon; 09:15 c05; 09:30 c06 + c07
    # (unanswered); 09:45 c14 (short); 23:30 c13
    assert rows(got, ["offered", "answered", "abandoned", "short_abandoned",
                      "answered_within"]) == [
        [4, 3, 1, 1, 2], [1, 0, 1, 0, 0], [2, 1, 0, 0, 1], [1, 0, 1, 1, 0], [1, 1, 0, 0, 1],
        [1, 1, 0, 0, 1], [1, 0, 1, 1, 0], [1, 1, 0, 0, 0]]
    # SL 09:00 = 2 / (3 + 1); 09:15 = 0 / 1; 09:30 = 1 / 1 (the unanswered c07 is not in
    # answered + abandoned); 09:45 = 0 / 1; 23:30 = 1 / 1
    assert_close(got["service_level"], [0.5, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    # ASA with no answered call is NaN (09:15), never a division error
    assert_close(got["asa_s"], [15.0, math.nan, 20.0, math.nan, 10.0, 0.0, math.nan, 30.0])
    # 09:00 wait (5 + 15 + 25 + 3) / 4 = 12; 09:30 (20 + 60) / 2 = 40
    assert_close(got["avg_wait_s"], [12.0, 40.0, 40.0, 2.0, 10.0, 0.0, 5.0, 30.0])
    # 09:00 AHT (130 + 230 + 60) / 3 = 140
    assert_close(got["aht_s"], [140.0, math.nan, 160.0, math.nan, 60.0, 360.0, math.nan, 120.0])
    hourly = reports.interval_traffic(warehouse, start=DAY_START, end=DAY_END, grain="1h",
                                      queues=["sales"])
    assert [t.hour for t in hourly["interval_start"]] == [9, 23]
    assert hourly["offered"].tolist() == [8, 1]
    monthly = reports.interval_traffic(warehouse, start=DAY_START, end=DAY_END, grain="1mo")
    assert rows(monthly, ["queue", "offered"]) == [["sales", 9], ["support", 3]]
    assert monthly["interval_start"].tolist() == [pd.Timestamp("2024-03-01", tz="UTC")] * 2


def test_time_zone_moves_late_call_to_next_local_day(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    # naive bounds are local: 2024-03-04 00:00 to 2024-03-06 00:00 in Shanghai (UTC+8)
    got = reports.interval_traffic(warehouse, start="2024-03-04", end="2024-03-06", grain="1d",
                                   time_zone="Asia/Shanghai")
    tz = "Asia/Shanghai"
    # c13 at 23:30 UTC on the 4th is 07:30 on the 5th in Shanghai; all others are 17:xx on 4th
    assert rows(got, ["queue", "interval_start", "offered"]) == [
        ["sales", pd.Timestamp("2024-03-04", tz=tz), 8],
        ["sales", pd.Timestamp("2024-03-05", tz=tz), 1],
        ["support", pd.Timestamp("2024-03-04", tz=tz), 3]]
    assert str(got["interval_start"].dt.tz) == tz
    utc_days = reports.interval_traffic(warehouse, start=DAY_START, end=DAY_END, grain="1d")
    assert utc_days["offered"].tolist() == [9, 3]
    # 30-minute grain on a half-hour zone: 09:00 UTC = 14:30 IST, so c01..c07 (09:00-09:40
    # UTC) split at 09:30 UTC = 15:00 IST
    india = reports.interval_traffic(warehouse, start=DAY_START, end=DAY_END, grain="30m",
                                     queues=["sales"], time_zone="Asia/Kolkata")
    assert [t.strftime("%H:%M") for t in india["interval_start"]] == ["14:30", "15:00", "05:00"]
    assert india["offered"].tolist() == [5, 3, 1]
    hours = reports.calling_time(warehouse, start="2024-03-04", end="2024-03-06", by="hour",
                                 time_zone=tz)
    # inbound calls only (c12 is outbound): 12 at 17:xx local, c13 at 07:30 local
    assert len(hours) == 24
    assert hours["calls"].sum() == 13
    assert hours.set_index("hour").loc[[7, 17], "calls"].tolist() == [1, 12]
    days = reports.calling_time(warehouse, start="2024-03-04", end="2024-03-06", by="weekday",
                                time_zone=tz)
    assert days["weekday"].tolist() == list(range(1, 8))
    assert days["calls"].tolist() == [12, 1, 0, 0, 0, 0, 0]  # Monday, Tuesday local
    assert_close(days["share"], [12 / 13, 1 / 13, 0, 0, 0, 0, 0])
    assert days["service_level"].isna().tolist() == [False, False, True, True, True, True, True]


def test_agent_performance_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    got = reports.agent_performance(warehouse, start=HOUR_START, end=HOUR_END)
    assert got["agent_id"].tolist() == ["a1", "a2"]
    # a1 handled c01 c03 c08 and the outbound c12: talk 100+60+300+50, hold 10, acw 20+60+10
    # a2 handled c02 c06 c10 (c13 is at 23:30): talk 200+120+90, hold 30, acw 30+10+30
    assert rows(got, ["handled", "outbound", "talk_s", "hold_s", "acw_s"]) == [
        [4, 1, 510.0, 10.0, 90.0], [3, 0, 410.0, 30.0, 70.0]]
    assert_close(got["aht_s"], [610 / 4, 510 / 3])
    # rings: a1 c08 c03 answered, c05 not (the caller hung up); a2 c02 c06 c10 all answered
    assert rows(got, ["rung", "rung_answered"]) == [[3, 2], [3, 3]]
    assert_close(got["answer_rate"], [2 / 3, 1.0])
    # a1 clipped to 09:00-10:00: ready 120 (08:55-09:02 clipped) + 110 + 570 + 900 (09:45-
    # 10:05 clipped) = 1700; not ready 520 + 900 = 1420; busy: rings 10+20+30, talk 300+60,
    # acw 60 = 480; logged in 3600. a2: ready 299.5 (from 09:00:00.500) + 720 = 1019.5,
    # not ready 1555, busy 15+200+30+20+120+30+10+30+90+30 = 575, logged in 3149.5
    assert rows(got, ["logged_in_s", "ready_s", "not_ready_s", "busy_s"]) == [
        [3600.0, 1700.0, 1420.0, 480.0], [3149.5, 1019.5, 1555.0, 575.0]]
    assert_close(got["occupancy"], [480 / 2180, 575 / 1594.5])
    assert_close(got["not_ready_share"], [1420 / 3600, 1555 / 3149.5])
    only = reports.agent_performance(warehouse, start=HOUR_START, end=HOUR_END, agents=["a2"])
    assert only["agent_id"].tolist() == ["a2"]
    shrink = reports.shrinkage_by_reason(warehouse, start=HOUR_START, end=HOUR_END)
    # logged in 3600 + 3149.5 = 6749.5; '' (no reason) 1555, training 900, break 520
    assert rows(shrink, ["reason", "not_ready_s"]) == [["", 1555.0], ["training", 900.0],
                                                       ["break", 520.0]]
    assert_close(shrink["share"], [1555 / 6749.5, 900 / 6749.5, 520 / 6749.5])


def test_agent_state_detail_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    got = reports.agent_state_detail(warehouse, agent_id="a1", start=at("09:05"),
                                     end=at("09:25"), time_zone="Asia/Shanghai")
    # spells overlapping 09:05-09:25 UTC: talking c08 (from 09:02:10) .. ready until 09:30
    assert got["state"].tolist() == ["talking", "after_call_work", "ready", "ringing",
                                     "talking", "not_ready", "ringing", "ready"]
    assert got["call_id"].tolist() == ["c08", "c08", "", "c03", "c03", "", "c05", ""]
    assert got["reason"].tolist() == [None, None, None, None, None, "break", None, None]
    assert got["start"].iloc[0] == pd.Timestamp("2024-03-04 17:02:10", tz="Asia/Shanghai")
    assert got["end"].iloc[-1] == pd.Timestamp("2024-03-04 17:30:00", tz="Asia/Shanghai")
    assert got["duration_s"].tolist() == [300.0, 60.0, 110.0, 20.0, 60.0, 520.0, 30.0, 570.0]
    a2 = reports.agent_state_detail(warehouse, agent_id="a2", start=HOUR_START,
                                    end=at("09:00:01"))
    assert a2["start"].tolist() == [pd.Timestamp("2024-03-04 09:00:00.500", tz="UTC")]


def test_call_detail_and_hostile_search(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    everything = reports.call_detail(warehouse, start=DAY_START, end=DAY_END)
    assert len(everything) == 14
    assert everything["call_id"].tolist()[:3] == ["c01", "c11", "c08"]  # by offered time
    assert everything["offered_at"].iloc[0] == pd.Timestamp("2024-03-04 09:00:10.250", tz="UTC")
    assert everything["answered_at"].iloc[1] is pd.NaT  # c11 never answered
    assert everything.columns.tolist() == list(reports.CDR_COLUMNS)

    def ids(search: str, **options: object) -> list[str]:
        found = reports.call_detail(warehouse, start=DAY_START, end=DAY_END, search=search,
                                    **options)
        return sorted(found["call_id"])

    assert ids("o'BRIEN") == ["c08"]  # case-insensitive, quote bound safely
    assert ids("'") == ["c08"]
    assert ids("\\") == ["c08"]
    assert ids("%") == ["c08", "c10"]  # % and _ are plain characters, not LIKE wildcards
    assert ids("_") == ["c08"]
    assert ids("%_") == ["c08"]
    assert ids("8613800000005") == ["c05", "c06"]
    assert ids("+8613800000004") == ["c04", "c12"]  # caller of c04, dialed by c12
    assert ids("A2") == ["c02", "c06", "c10", "c13"]  # agent_id
    assert ids("C1") == ["c10", "c11", "c12", "c13", "c14"]  # call_id
    assert ids("'; DROP TABLE calls; --") == []
    assert ids("%(start)s") == []
    assert ids("") == sorted(everything["call_id"])
    assert ids("a", queue="support") == ["c08", "c10"]  # agents a1, a2; c09 has no 'a'
    assert ids("86138", agent_id="a2") == ["c02", "c06", "c10", "c13"]
    assert len(reports.call_detail(warehouse, start=DAY_START, end=DAY_END, limit=2)) == 2
    # to the millisecond: c01 is at 09:00:10.250
    late = reports.call_detail(warehouse, start=at("09:00:10.300"), end=at("09:01:30"))
    early = reports.call_detail(warehouse, start=at("09:00:10.200"), end=at("09:01:30"))
    assert late["call_id"].tolist() == ["c11"]
    assert early["call_id"].tolist() == ["c01", "c11"]
    assert warehouse.query("SELECT count() AS n FROM calls")["n"].tolist() == [14]


def test_lost_calls_and_wait_distribution_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    lost = reports.lost_calls(warehouse, start=DAY_START, end=DAY_END)
    # c04 called back by the outbound c12 (09:58); c05 called again, answered as c06
    # (09:35); c07's number was answered before (c01 at 09:00), not after; c14 anonymous
    assert rows(lost, ["call_id", "outcome", "called_back"]) == [
        ["c04", "abandoned", True], ["c09", "abandoned", False], ["c05", "abandoned", True],
        ["c07", "unanswered", False], ["c14", "abandoned", False]]
    assert lost["called_back_at"].tolist() == [at("09:58"), pd.NaT, at("09:35"), pd.NaT,
                                               pd.NaT]
    assert reports.lost_calls(warehouse, start=DAY_START, end=DAY_END,
                              queues=["support"])["call_id"].tolist() == ["c09"]
    waits = reports.wait_distribution(warehouse, start=DAY_START, end=DAY_END)
    assert waits["bin_low"].tolist() == [0, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300]
    assert waits["bin_high"].iloc[-1] == math.inf
    # waits: [0,5) c04 3, c14 2, c08 0; [5,10) c01, c09; [10,20) c02 15, c13 10;
    # [20,30) c03 25, c06 20; [30,45) c05 40, c10 30; [60,90) c07 60
    assert waits["offered"].tolist() == [3, 2, 2, 2, 2, 0, 1, 0, 0, 0, 0]
    assert waits["answered"].tolist() == [1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0]
    assert waits["abandoned"].tolist() == [2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert_close(waits["cumulative_share"],
                 [3 / 12, 5 / 12, 7 / 12, 9 / 12, 11 / 12, 11 / 12, 1, 1, 1, 1, 1])


def test_satisfaction_qa_and_origin_by_hand(warehouse: Warehouse) -> None:
    load_hand(warehouse)
    agents = reports.satisfaction(warehouse, start=DAY_START, end=DAY_END, by="agent")
    # a1: 5/5, 4/5, 2/5 (ticket) -> mean 11/3, ratio (1 + .8 + .4) / 3, satisfied 2 of 3
    # a2: 3/5, 9/10 -> mean 6, ratio (.6 + .9) / 2, satisfied 1 of 2
    assert rows(agents, ["agent_id", "responses"]) == [["a1", 3], ["a2", 2]]
    assert_close(agents["mean_score"], [11 / 3, 6.0])
    assert_close(agents["mean_ratio"], [2.2 / 3, 0.75])
    assert_close(agents["satisfied_share"], [2 / 3, 0.5])
    queues = reports.satisfaction(warehouse, start=DAY_START, end=DAY_END, by="queue")
    # '' = the ticket survey; sales c01 5/5 + c02 3/5; support c08 4/5 + c10 9/10
    assert rows(queues, ["queue", "responses"]) == [["", 1], ["sales", 2], ["support", 2]]
    assert_close(queues["mean_score"], [2.0, 4.0, 6.5])
    assert_close(queues["mean_ratio"], [0.4, 0.8, 0.85])
    assert_close(queues["satisfied_share"], [0.0, 0.5, 1.0])
    qa = reports.qa_report(warehouse, start=DAY_START, end=DAY_END)
    # a1 voice 80/100 + 90/100; a2 email 7/10; a2 voice 45/50
    assert rows(qa, ["agent_id", "form", "evaluations"]) == [
        ["a1", "voice", 2], ["a2", "email", 1], ["a2", "voice", 1]]
    assert_close(qa["mean_score"], [85.0, 7.0, 45.0])
    assert_close(qa["mean_ratio"], [0.85, 0.7, 0.9])
    assert_close(qa["min_ratio"], [0.8, 0.7, 0.9])
    assert_close(qa["max_ratio"], [0.9, 0.7, 0.9])
    region = reports.origin_analysis(warehouse, start=DAY_START, end=DAY_END, level="region")
    # inbound: Beijing c01-c07, c11 (IVR, not offered), c14 = 9 calls, 8 offered;
    # Guangdong c08-c10, c13 = 4. Beijing within 20 s: c01 c02 c06 of 4 answered + 3 abandoned
    assert rows(region, ["region", "calls", "offered", "answered", "abandoned",
                         "answered_within"]) == [["Beijing", 9, 8, 4, 3, 3],
                                                 ["Guangdong", 4, 4, 3, 1, 2]]
    assert_close(region["share"], [9 / 13, 4 / 13])
    assert_close(region["service_level"], [3 / 7, 2 / 4])
    city = reports.origin_analysis(warehouse, start=DAY_START, end=DAY_END, level="city")
    assert rows(city, ["region", "city", "calls"]) == [
        ["Beijing", "Beijing", 9], ["Guangdong", "Guangzhou", 1], ["Guangdong", "Shenzhen", 3]]
    every = reports.origin_analysis(warehouse, start=DAY_START, end=DAY_END, level="carrier",
                                    direction=None)
    assert rows(every, ["carrier", "calls"]) == [["China Mobile", 10], ["China Unicom", 4]]


def test_bad_options_name_the_argument(warehouse: Warehouse) -> None:
    migrate(warehouse)
    cases = [
        ({"grain": "5m"}, "grain"), ({"sl_variant": "x"}, "sl_variant"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"), ({"queues": []}, "queues"),
        ({"queues": "sales"}, "queues"), ({"sl_threshold_s": -1}, "sl_threshold_s"),
        ({"end": DAY_START}, "end"),
    ]
    for options, name in cases:
        kwargs = {"start": DAY_START, "end": DAY_END, **options}
        with pytest.raises(ReportError, match=name):
            reports.interval_traffic(warehouse, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="level"):
        reports.origin_analysis(warehouse, start=DAY_START, end=DAY_END, level="street")
    with pytest.raises(ReportError, match="bins"):
        reports.wait_distribution(warehouse, start=DAY_START, end=DAY_END, bins=[5, 1])
    with pytest.raises(ReportError, match="limit"):
        reports.call_detail(warehouse, start=DAY_START, end=DAY_END, limit=0)
    empty = reports.queue_report(warehouse, start=DAY_START, end=DAY_END)
    assert empty.empty
    assert empty.columns.tolist() == ["queue", *reports.KPI_COLUMNS]


# --- randomized, recomputed in pandas ---------------------------------------------------

RANDOM_TZ = "America/New_York"  # the range crosses the DST change of 2024-03-10


def random_facts(seed: int = 11, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2024-03-09 00:00", tz=RANDOM_TZ).tz_convert("UTC")
    offered = base + pd.to_timedelta(rng.integers(0, 3 * 86400 * 1000, n), unit="ms")
    outcome = rng.choice(["answered", "abandoned", "unanswered", "ivr_abandoned"], n,
                         p=[0.6, 0.25, 0.1, 0.05])
    queue = np.where(outcome == "ivr_abandoned", "", rng.choice(["q1", "q2", "q3"], n))
    answered = outcome == "answered"
    wait = np.round(rng.exponential(15, n), 3)
    wait[outcome == "ivr_abandoned"] = 0.0
    agent = np.where(answered, rng.choice(["r1", "r2", "r3"], n), "")
    rows_ = [(f"x{i:04d}", "inbound", queue[i], outcome[i], offered[i], wait[i],
              float(rng.integers(20, 600)) if answered[i] else 0.0,
              float(rng.integers(0, 60)) if answered[i] else 0.0,
              float(rng.integers(0, 90)) if answered[i] else 0.0, agent[i],
              f"+86{rng.integers(0, 40):04d}", "4000", "", BEIJING) for i in range(n)]
    calls = calls_frame(rows_)
    calls["offered_at"] = calls["offered_at"] + pd.to_timedelta(calls["offered_ms"], unit="ms")
    spells = []
    for agent_id in ("r1", "r2", "r3"):
        t = base + pd.Timedelta(hours=6)
        for k in range(120):
            state = rng.choice(["ready", "not_ready", "ringing", "talking", "hold",
                                "after_call_work"])
            length = pd.Timedelta(milliseconds=int(rng.integers(5_000, 1_800_000)))
            reason = str(rng.choice(["break", "lunch"])) if state == "not_ready" else None
            call = f"x{rng.integers(0, 40):04d}" if state in {"ringing", "talking"} else ""
            if k % 30 != 29:  # every 30th gap is a logged-out stretch
                spells.append((agent_id, str(state), reason, call, t, t + length))
            t = t + length
    return calls, spells_frame(spells)


def pandas_kpis(frame: pd.DataFrame, keys: list[str], threshold: float, short: float,
                variant: str) -> pd.DataFrame:
    """The Report KPIs of docs/metrics.md, recomputed with pandas."""
    offered = frame[frame["queue"] != ""].copy()
    offered["ans"] = offered["outcome"] == "answered"
    offered["abd"] = offered["outcome"] == "abandoned"
    offered["short"] = offered["abd"] & (offered["wait_s"] <= short)
    offered["within"] = offered["ans"] & (offered["wait_s"] <= threshold)
    offered["ans_wait"] = offered["wait_s"].where(offered["ans"], 0.0)
    offered["handle"] = (offered["talk_s"] + offered["hold_s"] + offered["acw_s"]).where(
        offered["ans"], 0.0)
    g = offered.groupby(keys, sort=True)
    out = pd.DataFrame({
        "offered": g.size(), "answered": g["ans"].sum(), "abandoned": g["abd"].sum(),
        "short_abandoned": g["short"].sum(), "answered_within": g["within"].sum(),
        "ans_wait": g["ans_wait"].sum(), "wait": g["wait_s"].sum(), "handle": g["handle"].sum(),
    }).reset_index()
    den = {"answered": out["answered"], "offered": out["offered"],
           "abandoned_in": out["answered"] + out["abandoned"],
           "short_excluded": out["offered"] - out["short_abandoned"]}[variant]
    nan_div = lambda a, b: a / b.where(b != 0)  # noqa: E731
    out["service_level"] = nan_div(out["answered_within"], den)
    out["asa_s"] = nan_div(out["ans_wait"], out["answered"])
    out["avg_wait_s"] = nan_div(out["wait"], out["offered"])
    out["aht_s"] = nan_div(out["handle"], out["answered"])
    out["abandon_rate"] = nan_div(out["abandoned"], out["offered"])
    return out


def assert_frames(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    assert rows(got, keys) == rows(want, keys)
    for column in ("offered", "answered", "abandoned", "short_abandoned", "answered_within"):
        assert got[column].tolist() == want[column].astype(int).tolist(), column
    for column in ("service_level", "asa_s", "avg_wait_s", "aht_s", "abandon_rate"):
        g, w = got[column].to_numpy(float), want[column].to_numpy(float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), column
        ok = ~np.isnan(w)
        assert np.allclose(g[ok], w[ok], rtol=1e-9, atol=0), column


def test_random_facts_match_pandas(warehouse: Warehouse) -> None:
    migrate(warehouse)
    calls, spells = random_facts()
    warehouse.insert("calls", calls.assign(offered_at=calls["offered_at"].dt.floor("s")))
    warehouse.insert("agent_state_intervals", spells)
    start = pd.Timestamp("2024-03-09 07:30:00.400", tz="UTC")
    end = pd.Timestamp("2024-03-11 20:00", tz="UTC")
    inside = calls[(calls["offered_at"] >= start) & (calls["offered_at"] < end)].copy()
    local = inside["offered_at"].dt.tz_convert(RANDOM_TZ)
    inside["interval_start"] = local.dt.floor("15min")
    inside["day_start"] = local.dt.normalize()
    inside["hour"] = local.dt.hour
    for variant in reports.SL_VARIANTS:
        got = reports.queue_report(warehouse, start=start, end=end, sl_variant=variant,
                                   sl_threshold_s=15.5, short_abandon_s=4.0)
        assert_frames(got, pandas_kpis(inside, ["queue"], 15.5, 4.0, variant), ["queue"])
    for grain, column in (("15m", "interval_start"), ("1d", "day_start")):
        got = reports.interval_traffic(warehouse, start=start, end=end, grain=grain,
                                       time_zone=RANDOM_TZ)
        want = pandas_kpis(inside, ["queue", column], 20.0, 5.0, "abandoned_in")
        assert_frames(got, want.rename(columns={column: "interval_start"}),
                      ["queue", "interval_start"])
    # the DST day 2024-03-10 starts at 05:00 UTC, the next day at 04:00 UTC
    days = reports.interval_traffic(warehouse, start=start, end=end, grain="1d",
                                    time_zone=RANDOM_TZ)
    assert {t.tz_convert("UTC").hour for t in days["interval_start"]} == {4, 5}
    hours = reports.calling_time(warehouse, start=start, end=end, by="hour",
                                 time_zone=RANDOM_TZ)
    per_hour = inside.groupby("hour").size().reindex(range(24), fill_value=0)
    assert hours["calls"].tolist() == per_hour.tolist()
    waits = reports.wait_distribution(warehouse, start=start, end=end, bins=[0, 10, 30])
    offered = inside[inside["queue"] != ""]
    counts = pd.cut(offered["wait_s"], [0, 10, 30, np.inf], right=False).value_counts(
        sort=False)
    assert waits["offered"].tolist() == counts.tolist()

    # agents: spells clipped to the range, rings and answers, calls handled
    agents = reports.agent_performance(warehouse, start=start, end=end)
    s_ms = spells["start"] + pd.to_timedelta(spells["start_ms"], unit="ms")
    e_ms = spells["end"] + pd.to_timedelta(spells["end_ms"], unit="ms")
    clipped = ((e_ms.clip(upper=end) - s_ms.clip(lower=start)).dt.total_seconds()).clip(
        lower=0)
    spell = spells.assign(d=clipped)
    busy = spell["state"].isin(["ringing", "talking", "hold", "after_call_work"])
    by = spell.groupby("agent_id")
    want = pd.DataFrame({
        "logged_in_s": by["d"].sum(),
        "ready_s": spell[spell["state"] == "ready"].groupby("agent_id")["d"].sum(),
        "not_ready_s": spell[spell["state"] == "not_ready"].groupby("agent_id")["d"].sum(),
        "busy_s": spell[busy].groupby("agent_id")["d"].sum()})
    for column in want.columns:
        assert np.allclose(agents[column], want[column].to_numpy(), rtol=1e-9), column
    assert np.allclose(agents["occupancy"],
                       (want["busy_s"] / (want["busy_s"] + want["ready_s"])).to_numpy(),
                       rtol=1e-9)
    later = spell[(spell["call_id"] != "") & (spell["start"] >= start.floor("s"))]
    rang = later[(later["state"] == "ringing") & (s_ms[later.index] >= start)
                 & (s_ms[later.index] < end)][["agent_id", "call_id"]].drop_duplicates()
    talked = later[later["state"] == "talking"][["agent_id", "call_id"]].drop_duplicates()
    answered = rang.merge(talked, on=["agent_id", "call_id"])
    assert agents["rung"].tolist() == rang.groupby("agent_id").size().tolist()
    assert agents["rung_answered"].tolist() == answered.groupby("agent_id").size().reindex(
        agents["agent_id"], fill_value=0).tolist()
    handled = inside[inside["outcome"] == "answered"].groupby("agent_id")
    assert agents["handled"].tolist() == handled.size().tolist()
    aht = (handled["talk_s"].sum() + handled["hold_s"].sum() + handled["acw_s"].sum()) \
        / handled.size()
    assert np.allclose(agents["aht_s"], aht.to_numpy(), rtol=1e-9)
