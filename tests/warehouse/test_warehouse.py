"""The warehouse on both engines: migrations, schema, 15-minute rollups, binding, dedup."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from warehouse.client import Warehouse, WarehouseError
from warehouse.load import insert_new
from warehouse.migrations import MIGRATIONS, MigrationError, discover, migrate

EXPECTED_TABLES = {
    "schema_migrations", "calls", "call_segments", "agent_state_intervals", "ticket_events",
    "surveys", "qa_scores", "schedules", "forecasts", "queues", "agents", "teams", "sites",
    "calendar", "calls_queue_15m", "calls_queue_15m_mv", "calls_agent_15m", "calls_agent_15m_mv",
}
HOSTILE = [
    "x' OR 1=1 --",
    "'; DROP TABLE calls; --",
    "back\\slash",
    "quote\\'; SELECT 1; --",
    "line\nbreak\ttab\r",
    "%(other)s and %s",
    "nul\0byte",
    "ünïcødé 北京 😀",
    "``backquote`` \"double\"",
    "",
]

QUEUE_COUNTS = ["offered", "answered", "abandoned", "short_abandoned", "answered_within_20s",
                "abandoned_within_20s"]
QUEUE_SUMS = ["wait_sum", "answered_wait_sum", "abandoned_wait_sum", "talk_sum", "hold_sum",
              "acw_sum"]
AGENT_COUNTS = ["handled", "transfers_sum", "holds_sum"]
AGENT_SUMS = ["talk_sum", "hold_sum", "acw_sum", "ring_sum"]
QUEUE_ROLLUP = f"""
SELECT queue, interval_start,
       {", ".join(f"sum({c}) AS n_{c}" for c in QUEUE_COUNTS + QUEUE_SUMS)},
       maxMerge(wait_max) AS n_wait_max
FROM calls_queue_15m
GROUP BY queue, interval_start
ORDER BY queue, interval_start
"""
AGENT_ROLLUP = f"""
SELECT agent_id, interval_start,
       {", ".join(f"sum({c}) AS n_{c}" for c in AGENT_COUNTS + AGENT_SUMS)}
FROM calls_agent_15m
GROUP BY agent_id, interval_start
ORDER BY agent_id, interval_start
"""


def _millis(rng: np.random.Generator, low_s: int, high_s: int, n: int) -> np.ndarray:
    """Durations in seconds with three decimals, so float sums are not trivially exact."""
    return rng.integers(low_s * 1000, high_s * 1000, n) / 1000


def make_calls(n: int, *, seed: int = 7) -> pd.DataFrame:
    """``n`` finished calls offered over two hours on three queues. 5% end in the IVR: never
    offered to a queue (queue '', no queued_at). Of the others about 20% abandon and 5% go
    unanswered (voicemail)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-04 08:00", tz="UTC")
    offered = pd.Series(start + pd.to_timedelta(rng.integers(0, 7200, n), unit="s"))
    ivr = _millis(rng, 0, 60, n)
    in_ivr = rng.random(n) < 0.05
    draw = rng.random(n)
    outcome = np.where(in_ivr, "ivr_abandoned", np.where(
        draw < 0.2, "abandoned", np.where(draw < 0.25, "unanswered", "answered")))
    answered = outcome == "answered"
    wait = np.where(in_ivr, 0.0, _millis(rng, 0, 60, n))
    talk = np.where(answered, _millis(rng, 30, 600, n), 0.0)
    hold = np.where(answered & (rng.random(n) < 0.3), _millis(rng, 1, 60, n), 0.0)
    queued_at = (offered + pd.to_timedelta(np.floor(ivr), unit="s")).where(~in_ivr)
    answered_at = (queued_at + pd.to_timedelta(np.floor(wait), unit="s")).where(answered)
    return pd.DataFrame({
        "call_id": [f"c{i:05d}" for i in range(n)],
        "event_id": [f"e{i:05d}" for i in range(n)],
        "queue": np.where(in_ivr, "", rng.choice(["billing", "sales", "support"], n)),
        "agent_id": np.where(answered, [f"a{k}" for k in rng.integers(1, 6, n)], ""),
        "region": "EU",
        "offered_at": offered,
        "offered_ms": rng.integers(0, 1000, n).astype("uint16"),
        "queued_at": queued_at,
        "answered_at": answered_at,
        "ended_at": offered + pd.to_timedelta(np.floor(ivr + wait + talk + hold), unit="s"),
        "ivr_s": ivr,
        "wait_s": wait,
        "ring_s": np.where(answered, _millis(rng, 0, 8, n), 0.0),
        "talk_s": talk,
        "hold_s": hold,
        "acw_s": np.where(answered, _millis(rng, 0, 60, n), 0.0),
        "outcome": outcome,
        "disposition": "",
        "transfers": np.where(answered, rng.integers(0, 3, n), 0).astype("uint8"),
        "holds": np.where(hold > 0, rng.integers(1, 4, n), 0).astype("uint16"),
    })


def expected_queue_rollup(calls: pd.DataFrame) -> pd.DataFrame:
    """The queue rollup computed independently with pandas: calls offered to a queue (queue
    named), per (last) queue and 15-minute interval of offered_at."""
    queued = calls[calls["queue"] != ""]
    answered = queued["outcome"] == "answered"
    abandoned = queued["outcome"] == "abandoned"
    wait = queued["wait_s"]
    frame = pd.DataFrame({
        "queue": queued["queue"],
        "interval_start": queued["offered_at"].dt.floor("15min"),
        "offered": 1,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": abandoned & (wait <= 5),
        "answered_within_20s": answered & (wait <= 20),
        "abandoned_within_20s": abandoned & (wait <= 20),
        "wait_sum": wait,
        "answered_wait_sum": wait.where(answered, 0.0),
        "abandoned_wait_sum": wait.where(abandoned, 0.0),
        "talk_sum": queued["talk_s"].where(answered, 0.0),
        "hold_sum": queued["hold_s"].where(answered, 0.0),
        "acw_sum": queued["acw_s"].where(answered, 0.0),
        "wait_max": wait,
    })
    grouped = frame.groupby(["queue", "interval_start"], sort=True)
    want = grouped[QUEUE_COUNTS + QUEUE_SUMS].sum().join(grouped["wait_max"].max())
    return want.add_prefix("n_").reset_index()


def expected_agent_rollup(calls: pd.DataFrame) -> pd.DataFrame:
    """The agent rollup with pandas: answered calls per agent and interval of answered_at."""
    handled = calls[calls["answered_at"].notna() & (calls["agent_id"] != "")]
    frame = pd.DataFrame({
        "agent_id": handled["agent_id"],
        "interval_start": handled["answered_at"].dt.floor("15min"),
        "handled": 1,
        "transfers_sum": handled["transfers"].astype(int),
        "holds_sum": handled["holds"].astype(int),
        "talk_sum": handled["talk_s"],
        "hold_sum": handled["hold_s"],
        "acw_sum": handled["acw_s"],
        "ring_sum": handled["ring_s"],
    })
    want = frame.groupby(["agent_id", "interval_start"], sort=True).sum()
    return want.add_prefix("n_").reset_index()


def assert_rollup(got: pd.DataFrame, want: pd.DataFrame, *, key: str, exact: list[str],
                  sums: list[str]) -> None:
    """Same keys; counts (and maxima) exactly equal; float sums within 1e-9 relative."""
    assert got[key].tolist() == want[key].tolist()
    assert got["interval_start"].tolist() == want["interval_start"].tolist()
    for column in exact:
        assert got[f"n_{column}"].tolist() == want[f"n_{column}"].tolist(), column
    for column in sums:
        np.testing.assert_allclose(got[f"n_{column}"].to_numpy(float),
                                   want[f"n_{column}"].to_numpy(float), rtol=1e-9, atol=0,
                                   err_msg=column)


def as_utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.as_unit("s")


def rollup(warehouse: Warehouse, sql: str = QUEUE_ROLLUP) -> pd.DataFrame:
    got = warehouse.query(sql)
    got["interval_start"] = as_utc(got["interval_start"])
    return got


def test_migrate_twice_applies_nothing_the_second_time(warehouse: Warehouse) -> None:
    first = migrate(warehouse)
    assert [(m.version, m.name) for m in first] == [
        (1, "facts"), (2, "dimensions"), (3, "rollups_15m")]
    assert migrate(warehouse) == []
    recorded = warehouse.query("SELECT version, checksum, dialect FROM schema_migrations "
                               "ORDER BY version")
    assert recorded["version"].tolist() == [1, 2, 3]
    assert recorded["checksum"].tolist() == [m.checksum for m in first]
    assert set(recorded["dialect"]) == {warehouse.dialect}


def test_tables_exist(warehouse: Warehouse) -> None:
    migrate(warehouse)
    names = warehouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")["name"]
    assert set(names) >= EXPECTED_TABLES
    columns = warehouse.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = %(t)s", {"t": "agent_state_intervals"})["name"]
    from scheduling.adherence import STATE_COLUMNS
    from scheduling.publish import SCHEDULE_ROW_COLUMNS
    assert set(STATE_COLUMNS) <= set(columns)
    schedule_columns = warehouse.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'schedules'")["name"]
    assert set(schedule_columns) == {*SCHEDULE_ROW_COLUMNS, "row_id"}


def test_fifteen_minute_rollup_matches_pandas(warehouse: Warehouse) -> None:
    migrate(warehouse)
    calls = make_calls(600)
    warehouse.insert("calls", calls.iloc[:250])
    warehouse.insert("calls", calls.iloc[250:])  # two inserts: two parts must add up
    got = rollup(warehouse)
    want = expected_queue_rollup(calls)
    assert set(got["queue"]) == {"billing", "sales", "support"}
    assert len(want) >= 3 * 8
    queued = int(calls["queued_at"].notna().sum())
    assert int(got["n_offered"].sum()) == queued == int((calls["queue"] != "").sum()) < 600
    assert_rollup(got, want, key="queue", exact=[*QUEUE_COUNTS, "wait_max"], sums=QUEUE_SUMS)
    agents = rollup(warehouse, AGENT_ROLLUP)
    want_agents = expected_agent_rollup(calls)
    assert int(agents["n_handled"].sum()) == int((calls["outcome"] == "answered").sum())
    assert_rollup(agents, want_agents, key="agent_id", exact=AGENT_COUNTS, sums=AGENT_SUMS)


HAND_CALLS = pd.DataFrame([
    # call, queue, outcome, offered, queued, answered, wait, talk, hold, acw, ring, agent
    ("c0", "sales", "answered", "08:14:30", "08:14:45", "08:15:05", 20.0, 100.0, 10.0, 30.0,
     3.0, "a1"),
    ("c1", "sales", "abandoned", "08:14:40", "08:14:50", None, 5.0, 0.0, 0.0, 0.0, 0.0, ""),
    ("c2", "sales", "abandoned", "08:00:00", "08:00:15", None, 40.0, 0.0, 0.0, 0.0, 0.0, ""),
    ("c3", "sales", "unanswered", "08:09:00", "08:10:00", None, 90.0, 0.0, 0.0, 0.0, 0.0, ""),
    ("c4", "", "ivr_abandoned", "08:01:00", None, None, 0.0, 0.0, 0.0, 0.0, 0.0, ""),
    ("c5", "sales", "answered", "08:15:00", "08:15:10", "08:15:30", 20.5, 50.0, 0.0, 10.0,
     2.0, "a2"),
    ("c6", "sales", "abandoned", "08:14:59", "08:15:20", None, 12.0, 0.0, 0.0, 0.0, 0.0, ""),
], columns=["call_id", "queue", "outcome", "offered_at", "queued_at", "answered_at", "wait_s",
            "talk_s", "hold_s", "acw_s", "ring_s", "agent_id"])


def test_hand_checked_interval(warehouse: Warehouse) -> None:
    """Seven calls by hand, intervals by offered_at. 08:00-08:15: c0 answered in exactly 20 s,
    c1 abandoned after exactly 5 s (short), c2 abandoned after 40 s, c3 to voicemail after
    90 s, c6 abandoned after 12 s (offered 08:14:59, queued 08:15:20); c4 hung up in the IVR
    (never offered to a queue: left out). 08:15-08:30: c5 answered in 20.5 s.
    Agents by answered_at: c0 and c5 both at 08:15."""
    migrate(warehouse)
    calls = HAND_CALLS.copy()
    for column in ("offered_at", "queued_at", "answered_at"):
        calls[column] = pd.to_datetime("2024-03-04 " + calls[column], utc=True)
    calls["ended_at"] = calls["offered_at"] + pd.Timedelta(minutes=30)
    calls["transfers"] = np.array([1, 0, 0, 0, 0, 0, 0], dtype="uint8")
    calls["holds"] = np.array([2, 0, 0, 0, 0, 0, 0], dtype="uint16")
    warehouse.insert("calls", calls)
    got = rollup(warehouse)
    assert got["interval_start"].dt.strftime("%H:%M").tolist() == ["08:00", "08:15"]
    assert got[[f"n_{c}" for c in QUEUE_COUNTS]].astype(int).values.tolist() == [
        [5, 1, 3, 1, 1, 2], [1, 1, 0, 0, 0, 0]]
    assert got[[f"n_{c}" for c in [*QUEUE_SUMS, "wait_max"]]].values.tolist() == [
        [167.0, 20.0, 57.0, 100.0, 10.0, 30.0, 90.0], [20.5, 20.5, 0.0, 50.0, 0.0, 10.0, 20.5]]
    agents = rollup(warehouse, AGENT_ROLLUP)
    assert agents["agent_id"].tolist() == ["a1", "a2"]
    assert agents["interval_start"].dt.strftime("%H:%M").tolist() == ["08:15", "08:15"]
    assert agents[[f"n_{c}" for c in AGENT_COUNTS + AGENT_SUMS]].values.tolist() == [
        [1, 1, 2, 100.0, 10.0, 30.0, 3.0], [1, 0, 0, 50.0, 0.0, 10.0, 2.0]]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_round_trip(warehouse: Warehouse, hostile: str) -> None:
    got = warehouse.query("SELECT %(s)s AS s, length(%(s)s) AS n", {"s": hostile})
    assert got["s"].tolist() == [hostile]
    assert int(got["n"].iloc[0]) == len(hostile.encode("utf-8"))


def test_bound_values_filter_rows_and_never_inject(warehouse: Warehouse) -> None:
    migrate(warehouse)
    calls = make_calls(len(HOSTILE)).assign(call_id=HOSTILE)
    warehouse.insert("calls", calls)
    for hostile in HOSTILE:
        got = warehouse.query("SELECT call_id FROM calls WHERE call_id = %(id)s", {"id": hostile})
        assert got["call_id"].tolist() == [hostile]
    assert warehouse.query("SELECT count() AS n FROM calls")["n"].tolist() == [len(HOSTILE)]
    some = warehouse.query("SELECT count() AS n FROM calls WHERE call_id IN %(ids)s",
                           {"ids": tuple(HOSTILE[:3])})
    assert some["n"].tolist() == [3]
    first = calls["offered_at"].min()
    berlin = first.tz_convert("Europe/Berlin").to_pydatetime()  # same instant, other zone
    at = warehouse.query("SELECT count() AS n FROM calls WHERE offered_at = %(t)s "
                         "AND toDate(offered_at) = %(d)s",
                         {"t": berlin, "d": first.date()})
    assert at["n"].tolist() == [int((calls["offered_at"] == first).sum())]
    typed = warehouse.query("SELECT %(i)s + 1 AS i, %(f)s * 2 AS f, %(b)s AS b, "
                            "isNull(%(none)s) AS z, length(%(xs)s) AS k",
                            {"i": 41, "f": 1.25, "b": True, "none": None, "xs": [1, 2, 3]})
    assert typed.astype(float).iloc[0].tolist() == [42.0, 2.5, 1.0, 1.0, 3.0]


def test_binding_errors_name_the_parameter(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="params has no 'b'"):
        warehouse.query("SELECT %(a)s, %(b)s", {"a": 1})
    with pytest.raises(WarehouseError, match="parameter a: cannot bind a object"):
        warehouse.query("SELECT %(a)s", {"a": object()})
    with pytest.raises(WarehouseError, match="not a plain identifier"):
        warehouse.insert("calls; DROP TABLE calls", {"x": [1]})


def test_redelivered_call_is_counted_once(warehouse: Warehouse) -> None:
    migrate(warehouse)
    calls = make_calls(40)
    assert insert_new(warehouse, "calls", calls) == 40
    replay = pd.concat([calls.iloc[10:20], calls.iloc[15:16]])  # a replay: 10 old, one twice
    assert insert_new(warehouse, "calls", replay) == 0
    assert_rollup(rollup(warehouse), expected_queue_rollup(calls), key="queue",
                  exact=[*QUEUE_COUNTS, "wait_max"], sums=QUEUE_SUMS)
    # The contract: dedup is insert_new's. A redelivery inserted around it is one row in
    # calls FINAL, but the views add it again: the rollups count it twice.
    again = calls[calls["outcome"] == "answered"].iloc[:1]  # queued, answered by an agent
    warehouse.insert("calls", again)
    final = warehouse.query("SELECT count() AS n, uniqExact(call_id) AS u FROM calls FINAL")
    assert final.astype(int).iloc[0].tolist() == [40, 40]
    doubled = pd.concat([calls, again])
    assert_rollup(rollup(warehouse), expected_queue_rollup(doubled), key="queue",
                  exact=[*QUEUE_COUNTS, "wait_max"], sums=QUEUE_SUMS)
    assert int(rollup(warehouse)["n_offered"].sum()) == int((calls["queue"] != "").sum()) + 1
    assert_rollup(rollup(warehouse, AGENT_ROLLUP), expected_agent_rollup(doubled),
                  key="agent_id", exact=AGENT_COUNTS, sums=AGENT_SUMS)


def test_changed_applied_migration_is_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_first.sql").write_text(
        "CREATE TABLE IF NOT EXISTS t1 (x UInt8) ENGINE = MergeTree ORDER BY x;\n")
    assert [m.version for m in migrate(warehouse, folder=folder)] == [1]
    (folder / "001_first.sql").write_text(
        "CREATE TABLE IF NOT EXISTS t1 (x UInt16) ENGINE = MergeTree ORDER BY x;\n")
    with pytest.raises(MigrationError, match=r"001_first .* was changed after it was applied"):
        migrate(warehouse, folder=folder)


def test_dialect_overrides(warehouse: Warehouse, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    table = "CREATE TABLE IF NOT EXISTS {} (x UInt8) ENGINE = MergeTree ORDER BY x"
    (folder / "001_base.sql").write_text(table.format("common_t") + ";")
    (folder / f"001_base.{warehouse.dialect}.sql").write_text(
        "-- the override; semicolon in a string: ';'\n" + table.format("own_t") + ";")
    (folder / "002_only.server.sql").write_text(table.format("server_only_t") + ";")
    applied = migrate(warehouse, folder=folder)
    names = set(warehouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")["name"])
    assert "own_t" in names
    assert "common_t" not in names
    assert ("server_only_t" in names) == (warehouse.dialect == "server")
    assert [m.version for m in applied] == ([1, 2] if warehouse.dialect == "server" else [1])


def test_builtin_migrations_are_numbered_and_common() -> None:
    chdb_files = [m.path.name for m in discover("chdb")]
    server_files = [m.path.name for m in discover("server")]
    assert chdb_files == server_files == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    with pytest.raises(MigrationError, match="dialect"):
        discover("postgres")


def test_datetime_is_utc_on_both_engines(warehouse: Warehouse) -> None:
    got = warehouse.query("SELECT toDateTime(%(t)s, 'UTC') AS t",
                          {"t": dt.datetime(2024, 3, 31, 3, 30, tzinfo=dt.timezone(
                              dt.timedelta(hours=2)))})
    assert as_utc(got["t"]).tolist() == [pd.Timestamp("2024-03-31 01:30", tz="UTC")]
