"""Literal rendering of bound values, statement splitting, and the ``queuecast warehouse`` CLI."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from queuecast.cli import app
from warehouse.client import WarehouseError, bind, literal, open_warehouse
from warehouse.migrations import split_statements


@pytest.mark.parametrize(("value", "sql"), [
    (None, "NULL"), (True, "1"), (42, "42"), (-1.5, "-1.5"), (float("nan"), "nan"),
    (Decimal("12.30"), "12.30"), ("it's", "'it\\'s'"), ("a\\'b", "'a\\\\\\'b'"),
    ("x\ny", "'x\\ny'"), (dt.date(2024, 2, 29), "'2024-02-29'"),
    (dt.datetime(2024, 1, 1, 12, 0, 5), "'2024-01-01 12:00:05'"),
    (dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=8))),
     "'2024-01-01 04:00:00'"),
    ([1, "a"], "[1, 'a']"), (("a", "b'"), "('a', 'b\\'')"),
    (uuid.UUID(int=1), "'00000000-0000-0000-0000-000000000001'"),
])
def test_literal(value: object, sql: str) -> None:
    assert literal(value) == sql


def test_bind_keeps_text_without_params_and_needs_double_percent_with_them() -> None:
    assert bind("SELECT 'a%b'", None) == "SELECT 'a%b'"
    assert bind("SELECT %(x)s LIKE 'a%%'", {"x": "'"}) == "SELECT '\\'' LIKE 'a%'"
    with pytest.raises(WarehouseError, match="literal percent sign is %%"):
        bind("SELECT %(x)s LIKE 'a%'", {"x": 1})


def test_split_statements_ignores_semicolons_in_strings_and_comments() -> None:
    sql = ("-- a comment; with a semicolon\nCREATE TABLE a (s String DEFAULT ';');\n"
           "/* block; */ SELECT 'it\\'s;' ; SELECT `x;y` FROM t")
    assert split_statements(sql) == [
        "CREATE TABLE a (s String DEFAULT ';')", "SELECT 'it\\'s;'", "SELECT `x;y` FROM t"]


def test_open_warehouse_urls(tmp_path: Path) -> None:
    with open_warehouse(f"chdb://{tmp_path}/wh") as warehouse:
        assert warehouse.dialect == "chdb"
    assert (tmp_path / "wh").is_dir()
    server = open_warehouse("clickhouse://ana%40x:p%2Fw@db.example:9001/facts?secure=1")
    assert (server.host, server.port, server.user, server.database) == (
        "db.example", 9001, "ana@x", "facts")
    with pytest.raises(WarehouseError, match="scheme must be chdb:// or clickhouse://"):
        open_warehouse("postgres://x")


def test_cli_migrate_and_query(home: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["warehouse", "migrate", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"applied": [
        {"version": 1, "name": "facts"}, {"version": 2, "name": "dimensions"},
        {"version": 3, "name": "rollups_15m"}]}
    again = runner.invoke(app, ["warehouse", "migrate", "--json"])
    assert json.loads(again.stdout) == {"applied": []}
    assert (home / "warehouse").is_dir()
    hostile = "x'); DROP TABLE calls; --"
    done = runner.invoke(app, [
        "warehouse", "query", "--json",
        "SELECT version, %(s)s AS s, %(n)s + 1 AS n FROM schema_migrations "
        "WHERE version >= %(n)s ORDER BY version",
        "--param", f"s={hostile}", "--param", "n:int=2"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == [{"version": 2, "s": hostile, "n": 3},
                                       {"version": 3, "s": hostile, "n": 3}]
    bad = runner.invoke(app, ["warehouse", "query", "SELECT 1", "--param", "n:money=3"])
    assert bad.exit_code == 2
    assert "money" in bad.output
