"""ClickHouse fixtures, imported by tests/conftest.py: a 18.16 server per session, both engines.

The server is started by ``scripts/clickhouse-server.sh`` on a free loopback port. If it
cannot start (no apt, not root), the server tests fail in CI (``CI=true``) and are skipped
elsewhere, with the script's message.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from warehouse.access import AnalystLimits, users_xml
from warehouse.client import ChdbWarehouse, ServerWarehouse, Warehouse

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "clickhouse-server.sh"
ANALYST_PASSWORD = "analyst-pw"
WRITER_PASSWORD = "writer-pw"
ANALYST_MAX_ROWS_TO_READ = 1_000_000
ENGINES = ["chdb", "server"]


@dataclass(frozen=True)
class ClickHouseServer:
    """A running test server: the admin user ``default`` has no password."""

    port: int
    folder: Path
    analyst_password: str = ANALYST_PASSWORD
    writer_password: str = WRITER_PASSWORD
    analyst_max_rows_to_read: int = ANALYST_MAX_ROWS_TO_READ

    def connect(self, *, database: str = "default", user: str = "default",
                password: str = "") -> ServerWarehouse:
        return ServerWarehouse("127.0.0.1", self.port, user=user, password=password,
                               database=database)


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"ClickHouse server tests need the server in CI: {message}")
    pytest.skip(f"ClickHouse server unavailable here: {message}")


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """clickhouse-server 18.16 on a free loopback port for the whole session."""
    folder = tmp_path_factory.mktemp("clickhouse-server")
    users = folder / "users-source.xml"
    users.write_text(users_xml(
        analyst_password=ANALYST_PASSWORD, writer_password=WRITER_PASSWORD,
        analyst=AnalystLimits(max_execution_time=30, max_memory_usage=500_000_000,
                              max_rows_to_read=ANALYST_MAX_ROWS_TO_READ)), encoding="utf-8")
    try:
        done = subprocess.run([str(SCRIPT), "--folder", str(folder / "server"), "--users-xml",
                               str(users)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"{SCRIPT} did not run: {exc}")
    if done.returncode != 0:
        _unavailable(f"{SCRIPT} exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    server = ClickHouseServer(port=int(done.stdout.strip().splitlines()[-1]),
                              folder=folder / "server")
    try:
        yield server
    finally:
        subprocess.run([str(SCRIPT), "--folder", str(server.folder), "--stop"],
                       capture_output=True, timeout=60, check=False)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the session server, dropped afterwards."""
    server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with server.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield name
    with server.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse on each engine in turn: chdb in a tmp folder, then the server."""
    opened: Warehouse
    if request.param == "chdb":
        opened = ChdbWarehouse(tmp_path / "warehouse")
    else:
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        opened = server.connect(database=request.getfixturevalue("database"))
    with opened:
        yield opened
