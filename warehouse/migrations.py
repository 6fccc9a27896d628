"""Versioned SQL migrations of the warehouse schema.

Files ``NNN_name.sql`` in a folder (by default ``warehouse/migrations/``) are applied in
version order by :func:`migrate` and recorded in ``schema_migrations`` (version, name, dialect,
checksum, applied_at). A dialect may override a version with ``NNN_name.chdb.sql`` or
``NNN_name.server.sql``; a version with only a dialect file applies to that dialect only.
Re-running applies nothing; a file changed after it was applied is refused
(:class:`MigrationError`): add a new version instead of editing an applied one.

ClickHouse has no transactional DDL, so statements should be idempotent
(``CREATE ... IF NOT EXISTS``): a migration that failed half-way is simply re-run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from warehouse.client import Warehouse

__all__ = [
    "MIGRATIONS",
    "Migration",
    "MigrationError",
    "applied_migrations",
    "discover",
    "migrate",
    "split_statements",
]

MIGRATIONS = Path(__file__).with_name("migrations")
"""The folder of the built-in migrations."""

_FILE = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>chdb|server))?"
                   r"\.sql$")
_DIALECTS = ("chdb", "server")
_TABLE = "schema_migrations"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {_TABLE} (version UInt32, name String, dialect String, "
           "checksum String, applied_at DateTime('UTC')) ENGINE = MergeTree ORDER BY version")


class MigrationError(RuntimeError):
    """Migrations are inconsistent (a changed applied file, clashing names) or one failed."""


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One version as it applies to one dialect."""

    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file text."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    def statements(self) -> list[str]:
        """The statements of the file, comments removed."""
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """Split SQL text at ``;`` outside quotes, backquotes and comments; drop comments."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        if ch in "'\"`":
            j = i + 1
            while j < n and sql[j] != ch:
                j += 2 if sql[j] == "\\" else 1
            current.append(sql[i:j + 1])
            i = j + 1
            continue
        if ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def discover(dialect: str, folder: Path | None = None) -> list[Migration]:
    """The migrations of ``folder`` that apply to ``dialect``, in version order."""
    if dialect not in _DIALECTS:
        raise MigrationError(f"dialect {dialect!r} must be one of {', '.join(_DIALECTS)}")
    folder = folder or MIGRATIONS
    chosen: dict[int, tuple[str, Path, bool]] = {}
    names: dict[int, str] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_name.sql, "
                                 "NNN_name.chdb.sql or NNN_name.server.sql")
        version, name, only = int(match["version"]), match["name"], match["dialect"]
        if names.setdefault(version, name) != name:
            raise MigrationError(f"{path}: version {version} is already {names[version]!r}; "
                                 "give each migration its own number")
        if only is not None and only != dialect:
            continue
        specific = only is not None
        if version not in chosen or specific:
            chosen[version] = (name, path, specific)
    return [Migration(version=v, name=name, path=path, sql=path.read_text(encoding="utf-8"))
            for v, (name, path, _) in sorted(chosen.items())]


def applied_migrations(warehouse: Warehouse) -> pd.DataFrame:
    """Rows of ``schema_migrations`` in version order (the table is created if missing)."""
    warehouse.execute(_CREATE)
    return warehouse.query(f"SELECT version, name, dialect, checksum, applied_at "
                           f"FROM {_TABLE} ORDER BY version")


def migrate(warehouse: Warehouse, *, folder: Path | None = None) -> list[Migration]:
    """Apply the pending migrations in order; returns those applied (empty when up to date)."""
    migrations = discover(warehouse.dialect, folder)
    done = applied_migrations(warehouse)
    recorded = {int(r.version): (str(r.name), str(r.checksum)) for r in done.itertuples()}
    for m in migrations:
        if m.version in recorded and recorded[m.version][1] != m.checksum:
            raise MigrationError(
                f"migration {m.version:03d}_{m.name} ({m.path}) was changed after it was "
                f"applied (checksum {recorded[m.version][1][:12]} recorded, {m.checksum[:12]} "
                "now): restore the file and add a new migration for the change")
    applied: list[Migration] = []
    for m in migrations:
        if m.version in recorded:
            continue
        for number, statement in enumerate(m.statements(), start=1):
            try:
                warehouse.execute(statement)
            except Exception as exc:
                raise MigrationError(f"{m.path}: statement {number} failed: {exc}") from None
        warehouse.insert(_TABLE, pd.DataFrame({
            "version": pd.Series([m.version], dtype="uint32"), "name": [m.name],
            "dialect": [warehouse.dialect], "checksum": [m.checksum],
            "applied_at": [pd.Timestamp(dt.datetime.now(dt.UTC).replace(microsecond=0))],
        }))
        applied.append(m)
    return applied
