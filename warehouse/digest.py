"""Row counts and content checksums of tables, so two loads can be compared.

``table_digest`` hashes every column of every row (read with ``FINAL``) except load
bookkeeping, and sums the hashes modulo 2**64: the checksum does not depend on row order
or on how rows were batched, only on what is stored. Both engines compute it alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from warehouse.client import Warehouse, WarehouseError, identifier

__all__ = ["TableDigest", "table_digest", "truncate"]


@dataclass(frozen=True, slots=True)
class TableDigest:
    """How many rows a table holds and the checksum of their content."""

    table: str
    rows: int
    checksum: str


def table_digest(warehouse: Warehouse, table: str, *,
                 exclude: Sequence[str] = ("loaded_at",)) -> TableDigest:
    """The digest of ``table`` (``FINAL``: one row per key), ignoring ``exclude`` columns."""
    columns = warehouse.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = %(t)s ORDER BY name", {"t": table})
    if columns.empty:
        raise WarehouseError(f"table_digest: no table {table!r} (run queuecast warehouse "
                             "migrate first)")
    parts = [f"ifNull(toString({identifier(name)}), '\\\\N')"
             if str(kind).startswith("Nullable") else f"toString({identifier(name)})"
             for name, kind in zip(columns["name"], columns["type"], strict=True)
             if name not in exclude]
    found = warehouse.query(
        f"SELECT count() AS n, toString(sum(cityHash64({', '.join(parts)}))) AS h "
        f"FROM {identifier(table)} FINAL")
    return TableDigest(table, int(found["n"].iloc[0]), str(found["h"].iloc[0]))


def truncate(warehouse: Warehouse, tables: Iterable[str]) -> None:
    """Empty ``tables`` (facts before a rebuild, and the rollups their views feed)."""
    for table in tables:
        warehouse.execute(f"TRUNCATE TABLE IF EXISTS {identifier(table)}")
