"""Per-call figures computed with pandas straight from the real third-party files, without
the importers: the independent side of the importer and warehouse checks (issue 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Each frame: day, offered (the importers' sense: queued or answered), queued (entered a
# queue: the reports' offered), answered, abandoned, wait (s) of answered or abandoned calls.
__all__ = ["BANK", "MASTER_COLUMNS", "ROTATED", "SYNK", "bank_calls", "master_calls",
           "per_day", "queue_log_calls"]

SYNK = "karthik0112__synk_bug__"
ROTATED = [f"{SYNK}queue_log-20220707", f"{SYNK}queue_log-20220801",
           f"{SYNK}queue_log-20220901", f"{SYNK}queue_log-20221005", f"{SYNK}queue_log"]
BANK = "anonymous_bank_one_month_calls.csv"
MASTER_COLUMNS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
                  "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
                  "disposition", "amaflags", "uniqueid", "userfield"]


def queue_log_calls(paths: list[Path]) -> pd.DataFrame:
    """Calls of a rotated queue_log series (damaged NUL lines left out): ``day`` (UTC) of
    ENTERQUEUE, answered (CONNECT, wait = holdtime), abandoned (ABANDON, wait = waittime)."""
    rows = [raw.decode().split("|") for p in paths for raw in p.read_bytes().splitlines()
            if raw and b"\0" not in raw]
    log = pd.DataFrame({"epoch": [int(r[0]) for r in rows], "callid": [r[1] for r in rows],
                        "event": [r[4] for r in rows],
                        "d1": [r[5] if len(r) > 5 else "" for r in rows],
                        "d3": [r[7] if len(r) > 7 else "" for r in rows]})
    enter = log[log.event == "ENTERQUEUE"].drop_duplicates("callid")
    day = enter.set_index("callid").epoch.map(
        lambda s: pd.Timestamp(s, unit="s", tz="UTC").date().isoformat())
    connect = log[log.event == "CONNECT"].assign(wait=lambda f: f.d1.astype(float))
    abandon = log[log.event == "ABANDON"].assign(wait=lambda f: f.d3.astype(float))
    frame = pd.DataFrame({"day": day, "offered": 1, "queued": 1})
    frame["answered"] = frame.index.isin(connect.callid).astype(int)
    frame["abandoned"] = frame.index.isin(abandon.callid).astype(int)
    frame["wait"] = pd.concat([connect, abandon]).set_index("callid").wait
    return frame


def master_calls(path: Path) -> pd.DataFrame:
    """Calls of an Asterisk Master.csv: offered when queued or answered by an agent
    channel, abandoned on NO ANSWER; wait from start to answer (or to the end)."""
    cdr = pd.read_csv(path, header=None, names=MASTER_COLUMNS, dtype=str, keep_default_na=False)
    start = pd.to_datetime(cdr.start)
    answer = pd.to_datetime(cdr.answer.replace("", None))
    end = pd.to_datetime(cdr.end)
    queued = cdr.lastapp == "Queue"
    answered = (cdr.disposition == "ANSWERED") & (cdr.dstchannel != "")
    abandoned = cdr.disposition == "NO ANSWER"
    frame = pd.DataFrame({
        "day": start.dt.date.astype(str),
        "offered": (queued | answered).astype(int), "queued": queued.astype(int),
        "answered": answered.astype(int), "abandoned": abandoned.astype(int),
        "wait": ((answer - start).where(answered).fillna((end - start).where(abandoned))
                 ).dt.total_seconds()})
    return frame[frame.offered == 1]


def bank_calls(path: Path) -> pd.DataFrame:
    """Calls of the Anonymous Bank month (local dates): served by an agent, or hung up
    after queueing; phantom calls are not calls."""
    bank = pd.read_csv(path, dtype=str)
    queued = ~bank.q_start.isin(["0:00:00", "00:00:00"])
    served = bank.outcome == "AGENT"
    abandoned = (bank.outcome == "HANG") & queued
    real = bank.outcome != "PHANTOM"
    frame = pd.DataFrame({"day": bank.date, "offered": ((queued | served) & real).astype(int),
                          "queued": queued.astype(int), "answered": served.astype(int),
                          "abandoned": abandoned.astype(int),
                          "wait": bank.q_time.astype(float).where(served | abandoned)})
    return frame[frame.offered == 1]


def per_day(calls: pd.DataFrame) -> pd.DataFrame:
    """Offered, answered, abandoned and the mean wait of answered or abandoned calls per day."""
    return calls.groupby("day").agg(offered=("offered", "sum"), answered=("answered", "sum"),
                                    abandoned=("abandoned", "sum"), wait=("wait", "mean"))
