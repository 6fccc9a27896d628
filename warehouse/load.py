"""Loading facts without double counting a redelivered event.

A replay may deliver the same call twice. The fact tables are ReplacingMergeTree keyed by
their id, so ``SELECT ... FINAL`` sees one row per id even before merges; but materialized
views see every insert. :func:`insert_new` therefore drops rows whose key is already stored
(or repeated in the batch) before inserting, which keeps the 15-minute rollups exact.
"""

from __future__ import annotations

import pandas as pd

from warehouse.client import Warehouse, WarehouseError, identifier

__all__ = ["insert_new"]

_BATCH = 10_000


def insert_new(warehouse: Warehouse, table: str, frame: pd.DataFrame, *,
               key: str = "call_id") -> int:
    """Insert the rows of ``frame`` whose ``key`` is not yet in ``table``; returns rows added."""
    if key not in frame.columns:
        raise WarehouseError(f"insert_new: frame has no key column {key!r}")
    table, key = identifier(table), identifier(key)
    fresh = frame.drop_duplicates(subset=[key], keep="last")
    ids = fresh[key].astype(str).tolist()
    stored: set[str] = set()
    for start in range(0, len(ids), _BATCH):
        found = warehouse.query(
            f"SELECT DISTINCT {key} AS k FROM {table} WHERE {key} IN %(ids)s",
            {"ids": tuple(ids[start:start + _BATCH])})
        stored.update(found["k"].astype(str) if not found.empty else [])
    fresh = fresh[~fresh[key].astype(str).isin(stored)]
    return warehouse.insert(table, fresh) if len(fresh) else 0
