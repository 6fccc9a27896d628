"""Loading facts without double counting a redelivered event.

A replay may deliver the same fact twice. The fact tables are ReplacingMergeTree keyed by
their id, so ``SELECT ... FINAL`` sees one row per id even before merges; but materialized
views see every insert. :func:`insert_new` therefore drops rows whose key is already stored
(or repeated in the batch) before inserting, which keeps the 15-minute rollups exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from warehouse.client import Warehouse, WarehouseError, identifier

__all__ = ["insert_new"]

_BATCH = 2_000  # ids per lookup: keeps the SQL text under max_query_size (256 KiB)


def insert_new(warehouse: Warehouse, table: str, frame: pd.DataFrame, *,
               key: str = "call_id", scope: Sequence[str] = ()) -> int:
    """Insert the rows of ``frame`` whose ``key`` is not yet in ``table``; returns rows added.

    ``scope`` names columns that narrow the lookup of stored keys to what the batch can
    collide with, so it reads the primary index instead of the table: a text column
    restricts to the batch's values (``agent_id IN ...``), a time column to the batch's
    earliest moment and later (``start >= ...``).
    """
    for column in (key, *scope):
        if column not in frame.columns:
            raise WarehouseError(f"insert_new: frame has no column {column!r} (key or scope)")
    table, key = identifier(table), identifier(key)
    fresh = frame.drop_duplicates(subset=[key], keep="last")
    stored: set[str] = set()
    for start in range(0, len(fresh), _BATCH):
        chunk = fresh.iloc[start:start + _BATCH]
        where, params = _scope(chunk, scope)
        params["ids"] = tuple(chunk[key].astype(str))
        found = warehouse.query(
            f"SELECT DISTINCT {key} AS k FROM {table} WHERE {key} IN %(ids)s{where}", params)
        stored.update(found["k"].astype(str) if not found.empty else [])
    fresh = fresh[~fresh[key].astype(str).isin(stored)]
    return warehouse.insert(table, fresh) if len(fresh) else 0


def _scope(chunk: pd.DataFrame, scope: Sequence[str]) -> tuple[str, dict[str, Any]]:
    conditions, params = [], {}
    for n, column in enumerate(scope):
        values = chunk[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            conditions.append(f"{identifier(column)} >= %(s{n})s")
            params[f"s{n}"] = values.min().to_pydatetime()
        else:
            conditions.append(f"{identifier(column)} IN %(s{n})s")
            params[f"s{n}"] = tuple(str(v) for v in values.unique())
    return "".join(f" AND {c}" for c in conditions), params
