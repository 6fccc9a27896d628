"""Server access control: the read-only analyst and the writer of users.xml (18.16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

from warehouse.access import AnalystLimits, users_xml
from warehouse.client import WarehouseError
from warehouse.migrations import migrate

if TYPE_CHECKING:  # the fixture's type
    from clickhouse_fixtures import ClickHouseServer


@pytest.fixture
def migrated(clickhouse_server: ClickHouseServer, database: str) -> str:
    with clickhouse_server.connect(database=database) as admin:
        migrate(admin)
        admin.insert("queues", {"queue": ["sales"], "name": ["Sales"],
                                "updated_at": [pd.Timestamp("2024-01-01", tz="UTC")]})
    return database


def test_analyst_can_select_but_not_write(clickhouse_server: ClickHouseServer,
                                          migrated: str) -> None:
    with clickhouse_server.connect(database=migrated, user="analyst",
                                   password=clickhouse_server.analyst_password) as analyst:
        assert analyst.query("SELECT queue FROM queues FINAL")["queue"].tolist() == ["sales"]
        with pytest.raises(WarehouseError, match="readonly"):
            analyst.insert("queues", {"queue": ["x"], "name": ["X"]})
        with pytest.raises(WarehouseError, match="readonly"):
            analyst.execute("CREATE TABLE t (x UInt8) ENGINE = Memory")
        with pytest.raises(WarehouseError, match="readonly"):
            analyst.execute("DROP TABLE queues")
        with pytest.raises(WarehouseError, match="readonly"):  # cannot lift its own limits
            analyst.execute("SET max_rows_to_read = 0")


def test_analyst_limits_apply(clickhouse_server: ClickHouseServer, migrated: str) -> None:
    with clickhouse_server.connect(database=migrated, user="analyst",
                                   password=clickhouse_server.analyst_password) as analyst:
        limits = analyst.query(
            "SELECT name, value FROM system.settings WHERE name IN "
            "('max_execution_time', 'max_memory_usage', 'max_rows_to_read', 'readonly') "
            "ORDER BY name")
        assert dict(zip(limits["name"], limits["value"], strict=True)) == {
            "max_execution_time": "30", "max_memory_usage": "500000000",
            "max_rows_to_read": str(clickhouse_server.analyst_max_rows_to_read), "readonly": "1"}
        small = analyst.query("SELECT count() AS n FROM (SELECT number FROM system.numbers "
                              "LIMIT 1000)")
        assert small["n"].tolist() == [1000]
        with pytest.raises(WarehouseError, match=r"[Ll]imit for rows"):
            analyst.query("SELECT count() AS n FROM (SELECT number FROM system.numbers "
                          "LIMIT 5000000)")
    with clickhouse_server.connect(database=migrated) as admin:  # the admin has no such limit
        big = admin.query("SELECT count() AS n FROM (SELECT number FROM system.numbers "
                          "LIMIT 5000000)")
        assert big["n"].tolist() == [5_000_000]


def test_writer_can_insert_and_migrate(clickhouse_server: ClickHouseServer,
                                       database: str) -> None:
    with clickhouse_server.connect(database=database, user="writer",
                                   password=clickhouse_server.writer_password) as writer:
        assert [m.version for m in migrate(writer)] == [1, 2, 3]
        writer.insert("teams", {"team": ["t1"], "name": ["Team 1"], "site": ["s"],
                                "supervisor": ["sup"],
                                "updated_at": [pd.Timestamp("2024-01-01", tz="UTC")]})
        assert writer.query("SELECT count() AS n FROM teams")["n"].tolist() == [1]


def test_wrong_password_is_refused(clickhouse_server: ClickHouseServer) -> None:
    with clickhouse_server.connect(user="analyst", password="wrong") as intruder, \
            pytest.raises(WarehouseError, match=r"(?i)password"):
        intruder.query("SELECT 1")


def test_users_xml_stores_hashes_and_limits() -> None:
    text = users_xml(analyst_password="s3cret", writer_password="w",
                     analyst=AnalystLimits(max_execution_time=5, max_rows_to_read=10))
    assert "s3cret" not in text
    assert "<max_execution_time>5</max_execution_time>" in text
    assert "<max_rows_to_read>10</max_rows_to_read>" in text
    assert text.count("<readonly>1</readonly>") == 1
    with pytest.raises(ValueError, match="must not be empty"):
        users_xml(analyst_password="", writer_password="w")
