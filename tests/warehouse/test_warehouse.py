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

QUEUE_ROLLUP = """
SELECT queue, interval_start,
       uniqExactMerge(offered) AS n_offered, uniqExactIfMerge(answered) AS n_answered,
       uniqExactIfMerge(abandoned) AS n_abandoned,
       uniqExactIfMerge(answered_within_20s) AS n_within,
       sumMerge(wait_sum) AS wait_total, sumMerge(talk_sum) AS talk_total
FROM calls_queue_15m
GROUP BY queue, interval_start
ORDER BY queue, interval_start
"""


def make_calls(n: int, *, seed: int = 7) -> pd.DataFrame:
    """``n`` finished calls over two hours on three queues; about 20 % abandoned."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-04 08:00", tz="UTC")
    offered = start + pd.to_timedelta(rng.integers(0, 7200, n), unit="s")
    wait = rng.integers(0, 60, n).astype(float)
    abandoned = rng.random(n) < 0.2
    talk = np.where(abandoned, 0.0, rng.integers(30, 600, n).astype(float))
    answered_at = pd.Series(offered + pd.to_timedelta(wait, unit="s")).where(~abandoned)
    ended = pd.Series(offered + pd.to_timedelta(wait + talk, unit="s"))
    return pd.DataFrame({
        "call_id": [f"c{i:05d}" for i in range(n)],
        "event_id": [f"e{i:05d}" for i in range(n)],
        "queue": rng.choice(["billing", "sales", "support"], n),
        "agent_id": np.where(abandoned, "", [f"a{k}" for k in rng.integers(1, 6, n)]),
        "region": "EU",
        "offered_at": offered,
        "offered_ms": rng.integers(0, 1000, n).astype("uint16"),
        "answered_at": answered_at,
        "ended_at": ended,
        "wait_s": wait,
        "talk_s": talk,
        "hold_s": np.where(abandoned, 0.0, 5.0),
        "acw_s": np.where(abandoned, 0.0, 10.0),
        "outcome": np.where(abandoned, "abandoned", "answered"),
        "disposition": "",
        "transfers": rng.integers(0, 2, n).astype("uint8"),
    })


def expected_queue_rollup(calls: pd.DataFrame) -> pd.DataFrame:
    """The queue rollup computed independently with pandas."""
    frame = calls.assign(
        interval_start=calls["offered_at"].dt.floor("15min"),
        is_answered=calls["answered_at"].notna(),
        is_abandoned=calls["outcome"] == "abandoned",
    )
    frame["is_within"] = frame["is_answered"] & (frame["wait_s"] <= 20)
    grouped = frame.groupby(["queue", "interval_start"], sort=True)
    return pd.DataFrame({
        "n_offered": grouped["call_id"].nunique(),
        "n_answered": grouped["is_answered"].sum(),
        "n_abandoned": grouped["is_abandoned"].sum(),
        "n_within": grouped["is_within"].sum(),
        "wait_total": grouped["wait_s"].sum(),
        "talk_total": grouped["talk_s"].sum(),
    }).reset_index()


def as_utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.as_unit("s")


def queue_rollup(warehouse: Warehouse) -> pd.DataFrame:
    got = warehouse.query(QUEUE_ROLLUP)
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
    assert set(schedule_columns) == set(SCHEDULE_ROW_COLUMNS)


def test_fifteen_minute_rollup_matches_pandas(warehouse: Warehouse) -> None:
    migrate(warehouse)
    calls = make_calls(600)
    warehouse.insert("calls", calls.iloc[:250])
    warehouse.insert("calls", calls.iloc[250:])  # two inserts: partial states must merge
    got = queue_rollup(warehouse)
    want = expected_queue_rollup(calls)
    assert len(got) == len(want) == 3 * 8
    assert int(got["n_offered"].sum()) == 600
    for column in ("n_offered", "n_answered", "n_abandoned", "n_within"):
        assert got[column].astype(int).tolist() == want[column].astype(int).tolist(), column
    for column in ("wait_total", "talk_total"):  # whole seconds: sums are exact
        assert got[column].tolist() == want[column].tolist(), column
    assert got["queue"].tolist() == want["queue"].tolist()
    assert got["interval_start"].tolist() == want["interval_start"].tolist()

    agents = warehouse.query(
        "SELECT agent_id, uniqExactMerge(handled) AS n_handled, sumMerge(talk_sum) AS talk "
        "FROM calls_agent_15m GROUP BY agent_id ORDER BY agent_id")
    answered = calls[calls["answered_at"].notna()]
    by_agent = answered.groupby("agent_id").agg(n=("call_id", "size"), talk=("talk_s", "sum"))
    assert agents["agent_id"].tolist() == by_agent.index.tolist()
    assert agents["n_handled"].astype(int).tolist() == by_agent["n"].tolist()
    assert agents["talk"].tolist() == by_agent["talk"].tolist()


def test_hand_checked_interval(warehouse: Warehouse) -> None:
    """Three calls by hand: two in 08:00-08:15 (one answered in 12 s, one abandoned)."""
    migrate(warehouse)
    calls = make_calls(3).assign(
        queue="sales",
        offered_at=pd.to_datetime(["2024-03-04 08:00:00", "2024-03-04 08:14:59",
                                   "2024-03-04 08:15:00"], utc=True),
        wait_s=[12.0, 40.0, 25.0], outcome=["answered", "abandoned", "answered"],
        talk_s=[100.0, 0.0, 50.0])
    calls["answered_at"] = calls["offered_at"] + pd.to_timedelta([12, 0, 25], unit="s")
    calls.loc[1, "answered_at"] = pd.NaT
    warehouse.insert("calls", calls)
    got = queue_rollup(warehouse)
    assert got[["n_offered", "n_answered", "n_abandoned", "n_within"]].astype(int).values \
        .tolist() == [[2, 1, 1, 1], [1, 1, 0, 0]]
    assert got["wait_total"].tolist() == [52.0, 25.0]


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
    got = queue_rollup(warehouse)
    want = expected_queue_rollup(calls)
    assert got["n_offered"].astype(int).tolist() == want["n_offered"].tolist()
    assert got["wait_total"].tolist() == want["wait_total"].tolist()
    # A redelivery that bypasses insert_new: FINAL still sees one row per call, and the
    # rollup's counts (uniqExact states) stay exact; only its plain sums double count.
    warehouse.insert("calls", calls.iloc[:1])
    final = warehouse.query("SELECT count() AS n, uniqExact(call_id) AS u FROM calls FINAL")
    assert final.astype(int).iloc[0].tolist() == [40, 40]
    assert int(queue_rollup(warehouse)["n_offered"].sum()) == 40


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
