"""Reader of the Anonymous Bank call-center records (Technion SEE lab; Brown et al., JASA 2005).

One CSV row per call with 17 fields: ``vru+line, call_id, customer_id, priority, type,
date, vru_entry, vru_exit, vru_time, q_start, q_exit, q_time, outcome, ser_start, ser_exit,
ser_time, server``. Times are local clock times (H:MM:SS) of the row's date; a later
clock time more than 12 hours before an earlier one of the same call is on the next day.
Every call first goes through the VRU; on leaving it, it joins the agents' queue (``q_start``
is 0:00:00 for calls that never did), is answered at once, or hangs up. ``outcome`` is
AGENT (served), HANG (hung up: in the queue, or in the VRU if it never queued) or PHANTOM
("a virtual call to be ignored", per the data set's documentation).

``read_anonymous_bank(path)`` returns the calls as a typed DataFrame and an
``ImportReport``. Rows whose fields the analysis needs (date, clock times, durations,
outcome) cannot be read are rejected with their line and reason; rows with an
inconsistency that does not spoil them are kept and flagged in ``issues``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.importers import ImportFormatError, ImportReport, RejectedRow

__all__ = ["COLUMNS", "HEADER", "OUTCOMES", "TYPES", "BankCalls", "read_anonymous_bank"]

HEADER: tuple[str, ...] = (
    "vru+line", "call_id", "customer_id", "priority", "type", "date", "vru_entry", "vru_exit",
    "vru_time", "q_start", "q_exit", "q_time", "outcome", "ser_start", "ser_exit", "ser_time",
    "server",
)
"""The file's header, in order."""

OUTCOMES: tuple[str, ...] = ("AGENT", "HANG", "PHANTOM")
TYPES: tuple[str, ...] = ("PS", "PE", "IN", "NE", "NW", "TT")
"""Service types: regular, regular in English, internet, stock exchange, prospective
customers, and callers called back and put on hold."""

COLUMNS: dict[str, str] = {
    "line": "line of the row in the file (the header is line 1)",
    "call_id": "Int64; <NA> when not a number",
    "vru_line": "VRU and line, e.g. AA0101",
    "customer_id": "string; <NA> for unidentified callers (0 in the file)",
    "priority": "Int8: 0 and 1 regular, 2 priority (credited 90 s of waiting in the queue)",
    "type": "service type, one of TYPES",
    "entered": "datetime: the call entered the VRU",
    "arrival": "datetime: the call left the VRU for the agents (q_start, else vru_exit)",
    "queued": "bool: the call joined the agents' queue",
    "wait_s": "float: seconds in the queue (q_time; 0 for calls that never queued)",
    "outcome": "AGENT, HANG or PHANTOM",
    "served": "bool: outcome AGENT",
    "abandoned": "bool: hung up in the queue (HANG and queued)",
    "vru_abandoned": "bool: hung up in the VRU (HANG and never queued)",
    "offered": "bool: reached the agents (queued or served), PHANTOM excluded",
    "service_start": "datetime of the answer; NaT unless served",
    "service_s": "float: ser_time of served calls; NaN otherwise",
    "server": "string: the agent; <NA> for NO_SERVER",
    "issues": "string: '; '-joined inconsistencies of a kept row; <NA> when none",
}
"""The DataFrame's columns and what they hold."""

_HALF_DAY = 43_200
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d:[0-5]\d"
_CLOCKS = ("vru_entry", "vru_exit", "q_start", "q_exit", "ser_start", "ser_exit")
_SECONDS = ("vru_time", "q_time", "ser_time")


@dataclass(frozen=True, slots=True)
class BankCalls:
    """The imported calls (``COLUMNS``) and the import report."""

    calls: pd.DataFrame
    report: ImportReport


def _clock(values: pd.Series) -> pd.Series:
    parts = values.str.split(":", expand=True).astype(np.int64)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def _after(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """``later`` in seconds from the start of the row's date, past midnight if it wrapped."""
    return later + np.where(later < earlier - _HALF_DAY, 86_400, 0)


def _read_rows(path: Path) -> tuple[list[list[str]], list[int], list[RejectedRow], int]:
    rows: list[list[str]] = []
    lines: list[int] = []
    rejected: list[RejectedRow] = []
    read = 0
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != HEADER:
            raise ImportFormatError(
                f"{path}: not an Anonymous Bank call file; the header must be "
                f"{','.join(HEADER)} (got {','.join(header or [])[:200]!r})")
        for fields in reader:
            read += 1
            if not any(f.strip() for f in fields):
                rejected.append(RejectedRow(reader.line_num, "empty row", ""))
            elif len(fields) != len(HEADER):
                rejected.append(RejectedRow(reader.line_num, f"{len(fields)} fields, not "
                                            f"{len(HEADER)}", ",".join(fields)[:500]))
            else:
                rows.append([f.strip() for f in fields])
                lines.append(reader.line_num)
    return rows, lines, rejected, read


def read_anonymous_bank(path: Path | str) -> BankCalls:
    """Read the Anonymous Bank CSV at ``path`` into typed per-call columns (``COLUMNS``)."""
    path = Path(path)
    rows, lines, rejected, read = _read_rows(path)
    raw = pd.DataFrame(rows, columns=list(HEADER), dtype=object).astype(str)
    raw["line"] = np.asarray(lines, dtype=np.int64)
    reason = pd.Series(pd.NA, index=raw.index, dtype=object)

    def reject(mask: pd.Series, why: str) -> None:
        reason[mask & reason.isna()] = why

    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    reject(dates.isna(), "date is not YYYY-MM-DD")
    for name in _CLOCKS:
        reject(~raw[name].str.fullmatch(_TIME), f"{name} is not a clock time H:MM:SS")
    for name in _SECONDS:
        reject(~raw[name].str.fullmatch(r"-?\d{1,6}"), f"{name} is not whole seconds")
    reject(~raw["outcome"].isin(OUTCOMES), "outcome is not AGENT, HANG or PHANTOM")
    ok = reason.isna()
    q_time = pd.to_numeric(raw["q_time"].where(ok, "0"))
    ser_time = pd.to_numeric(raw["ser_time"].where(ok, "0"))
    reject(q_time < 0, "q_time is negative")
    reject(ser_time < 0, "ser_time is negative")
    ok = reason.isna()
    for index in np.nonzero(~ok.to_numpy())[0]:
        rejected.append(RejectedRow(int(raw["line"].iat[index]), str(reason.iat[index]),
                                    ",".join(rows[index])[:500]))
    rejected.sort(key=lambda r: r.line)

    good = raw[ok].reset_index(drop=True)
    day = dates[ok].reset_index(drop=True)
    sec = {name: _clock(good[name]) for name in _CLOCKS}
    dur = {name: pd.to_numeric(good[name]).astype(np.int64) for name in _SECONDS}
    outcome = good["outcome"]
    queued = ~good["q_start"].str.fullmatch(r"0?0:00:00") | (dur["q_time"] > 0)
    served = outcome == "AGENT"
    hung = outcome == "HANG"
    vru_exit = sec["vru_exit"] + np.where(
        sec["vru_exit"] < sec["vru_entry"] - _HALF_DAY, 86_400, 0)
    q_start = _after(sec["q_start"], sec["vru_entry"])
    ser_start = _after(sec["ser_start"], sec["vru_entry"])
    arrival_s = np.where(queued, q_start, vru_exit)

    def at(seconds: pd.Series | np.ndarray) -> pd.Series:
        return day + pd.to_timedelta(np.asarray(seconds, dtype=np.int64), unit="s")

    call_id = pd.to_numeric(good["call_id"].where(good["call_id"].str.fullmatch(r"\d+")),
                            errors="coerce").astype("Int64")
    priority = pd.to_numeric(good["priority"].where(good["priority"].isin(["0", "1", "2"])),
                             errors="coerce").astype("Int8")
    server = good["server"].where(good["server"] != "NO_SERVER").astype("string")
    customer = good["customer_id"].where(good["customer_id"] != "0").astype("string")

    def span(later: str, earlier: str) -> pd.Series:
        diff = sec[later] - sec[earlier]
        return diff + np.where(diff < -_HALF_DAY, 86_400, 0)

    checks = {
        "call_id is not a number": call_id.isna(),
        "priority is not 0, 1 or 2": priority.isna(),
        "type is unknown": ~good["type"].isin(TYPES),
        "vru_exit before vru_entry": dur["vru_time"] < 0,
        "vru_time disagrees with vru_exit - vru_entry":
            span("vru_exit", "vru_entry") != dur["vru_time"],
        "q_time disagrees with q_exit - q_start":
            queued & (span("q_exit", "q_start") != dur["q_time"]),
        "ser_time disagrees with ser_exit - ser_start":
            served & (span("ser_exit", "ser_start") != dur["ser_time"]),
        "served without a server name": served & server.isna(),
        "served for 0 s": served & (dur["ser_time"] == 0),
        "hung up with a service record": hung & ((dur["ser_time"] > 0) | server.notna()),
    }
    issues = pd.Series("", index=good.index, dtype=object)
    flagged: dict[str, int] = {}
    for issue, mask in checks.items():
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            flagged[issue] = int(mask.sum())
            issues[mask] = issues[mask] + issue + "; "
    issues = issues.str.rstrip("; ").replace("", pd.NA).astype("string")

    calls = pd.DataFrame({
        "line": good["line"],
        "call_id": call_id,
        "vru_line": good["vru+line"].astype("string"),
        "customer_id": customer,
        "priority": priority,
        "type": good["type"].astype("string"),
        "entered": at(sec["vru_entry"]),
        "arrival": at(arrival_s),
        "queued": queued.to_numpy(dtype=bool),
        "wait_s": dur["q_time"].astype(np.float64),
        "outcome": outcome.astype("string"),
        "served": served.to_numpy(dtype=bool),
        "abandoned": (hung & queued).to_numpy(dtype=bool),
        "vru_abandoned": (hung & ~queued).to_numpy(dtype=bool),
        "offered": ((queued | served) & (outcome != "PHANTOM")).to_numpy(dtype=bool),
        "service_start": at(ser_start).where(served),
        "service_s": dur["ser_time"].astype(np.float64).where(served),
        "server": server,
        "issues": issues,
    })
    report = ImportReport(source=str(path), rows_read=read, rows_kept=len(calls),
                          rejected=tuple(rejected), flagged=flagged)
    return BankCalls(calls, report)
