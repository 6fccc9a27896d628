"""One narrow client API over two ClickHouse engines.

* :class:`ChdbWarehouse`: chdb, ClickHouse inside this process, over a data folder. Only one
  process can own a folder at a time (a second gets "Cannot lock file .../status").
* :class:`ServerWarehouse`: a ClickHouse server (18.16 and later) over the native protocol
  (clickhouse-driver).

Both offer ``query(sql, params)`` -> DataFrame, ``insert(table, data)``, ``execute(ddl)`` and
``close()``, and both are context managers. Parameters are always bound client-side as
``%(name)s`` with Python ``%`` semantics (so a literal ``%`` is written ``%%`` when ``params``
are given). Both engines bind through :func:`bind`, which renders every value as an escaped
ClickHouse literal of its type (the escaping clickhouse-driver uses), so a query behaves the
same on both; nothing is ever passed to the driver's own formatting. :func:`open_warehouse` opens
either from a URL: ``chdb:///path`` or ``clickhouse://user:password@host:port/db?secure=1``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

__all__ = [
    "ChdbWarehouse",
    "ServerWarehouse",
    "Warehouse",
    "WarehouseError",
    "bind",
    "default_warehouse_url",
    "identifier",
    "literal",
    "open_warehouse",
]

Params = Mapping[str, Any]
Data = pd.DataFrame | Mapping[str, Sequence[Any]]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_INLINE_INSERT = re.compile(r"(?is)^\s*INSERT\b.*\bVALUES\b")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\b": "\\b", "\f": "\\f", "\r": "\\r", "\n": "\\n",
            "\t": "\\t", "\0": "\\0", "\a": "\\a", "\v": "\\v"}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


class WarehouseError(RuntimeError):
    """A warehouse statement failed, or a URL/argument is invalid; the message says which."""


@runtime_checkable
class Warehouse(Protocol):
    """What every engine offers. ``dialect`` is ``"chdb"`` or ``"server"``."""

    dialect: str

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        """Rows of a SELECT as a DataFrame; ``%(name)s`` parameter markers are bound from params."""
        ...

    def insert(self, table: str, data: Data) -> int:
        """Append a DataFrame (or a mapping column -> values) to ``table``; returns rows."""
        ...

    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement that returns no rows (DDL, ALTER, INSERT ... SELECT)."""
        ...

    def close(self) -> None:
        """Release the connection (or the data folder)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def _escape_string(text: str) -> str:
    return "'" + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text) + "'"


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def literal(value: Any, *, name: str = "value") -> str:
    """``value`` as a ClickHouse SQL literal.

    None -> NULL; bool -> 1/0; int/float (nan, inf) -> numbers; str/UUID -> quoted and
    escaped; datetime -> ``'YYYY-MM-DD hh:mm:ss'`` in UTC (tz-aware values are converted);
    date -> ``'YYYY-MM-DD'``; list -> ``[..]``, tuple/set -> ``(..)`` (for ``IN``).
    """
    if value is None or value is pd.NaT:
        return "NULL"
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return repr(number)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise WarehouseError(f"parameter {name}: {value} is not a finite decimal")
        return str(value)
    if isinstance(value, str):
        return _escape_string(value)
    if isinstance(value, uuid.UUID):
        return _escape_string(str(value))
    if isinstance(value, dt.datetime):  # before date: datetime is a date
        return "'" + _utc_naive(value).strftime("%Y-%m-%d %H:%M:%S") + "'"
    if isinstance(value, dt.date):
        return "'" + value.strftime("%Y-%m-%d") + "'"
    if isinstance(value, list | np.ndarray):
        return "[" + ", ".join(literal(v, name=name) for v in value) + "]"
    if isinstance(value, tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return "(" + ", ".join(literal(v, name=name) for v in items) + ")"
    raise WarehouseError(
        f"parameter {name}: cannot bind a {type(value).__name__}; pass str, int, float, "
        "bool, None, Decimal, UUID, date, datetime, or a list/tuple of those")


class _Bound(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise WarehouseError(f"the query uses %({key})s but params has no {key!r}")


def bind(sql: str, params: Params | None) -> str:
    """``sql`` with every ``%(name)s`` replaced by the literal of ``params[name]``.

    Without params the text is returned unchanged; with params, Python ``%`` formatting
    applies (``%%`` is a literal percent sign), exactly as clickhouse-driver does it.
    """
    if not params:
        return sql
    bound = _Bound({str(k): literal(v, name=str(k)) for k, v in params.items()})
    try:
        return sql % bound
    except (TypeError, ValueError) as exc:
        raise WarehouseError(
            f"cannot bind params into the query ({exc}); parameter markers are %(name)s and a "
            "literal percent sign is %%") from None


def identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"table/column name {name!r} is not a plain identifier")
    return name


def _frame(data: Data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Mapping):
        frame = pd.DataFrame(dict(data))
    else:
        raise WarehouseError(f"insert: data must be a DataFrame or a mapping of columns, "
                             f"not {type(data).__name__}")
    for column in frame.columns:
        identifier(str(column))
    return frame


def _holds_lists(series: pd.Series) -> bool:
    if series.dtype != object or series.empty:
        return False
    first = series.iloc[0]
    return isinstance(first, list | tuple)


def _python_column(series: pd.Series) -> list[Any]:
    """A column as Python values the native protocol accepts (UTC naive datetimes, None)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        # numpy turns datetime64[us] into datetime objects in C; NaT becomes None
        return series.to_numpy(dtype="datetime64[us]").astype(object).tolist()
    if pd.api.types.is_float_dtype(series.dtype) and isinstance(series.dtype, np.dtype):
        return series.tolist()  # NaN stays NaN (Float columns are not Nullable)
    return series.astype(object).where(series.notna(), None).tolist()


class _Base(ABC):
    dialect: str = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release the connection (each engine does its own)."""


class ChdbWarehouse(_Base):
    """chdb (embedded ClickHouse) over the data folder ``path``, owned by this process."""

    dialect = "chdb"

    def __init__(self, path: str | Path) -> None:
        import chdb

        self.path = Path(path).expanduser().resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._conn: Any = chdb.connect(str(self.path))
        except Exception as exc:
            raise WarehouseError(
                f"cannot open the chdb warehouse in {self.path}: {exc} (only one process may "
                "own a chdb data folder; use the ClickHouse server for shared access)") from None

    def _run(self, sql: str, fmt: str) -> Any:
        try:
            return self._conn.query(sql, fmt)
        except Exception as exc:
            raise WarehouseError(f"chdb: {exc}") from None

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        result = self._run(bind(sql, params), "DataFrame")
        return result if isinstance(result, pd.DataFrame) else pd.DataFrame()

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._run(bind(sql, params), "CSV")

    def insert(self, table: str, data: Data) -> int:
        frame = _frame(data)
        if frame.empty:
            return 0
        frame = frame.copy()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC")
        selected = []
        for column in frame.columns:
            if _holds_lists(frame[column]):
                # chdb reads a list column as Nullable(String): pass JSON, parse it back
                frame[column] = [json.dumps(list(v), ensure_ascii=False) for v in frame[column]]
                kind = self._column_type(table, str(column))
                selected.append(f"JSONExtract({column}, {literal(kind)}) AS {column}")
            else:
                selected.append(str(column))
        columns = ", ".join(str(c) for c in frame.columns)
        # Python(frame) reads the local variable ``frame`` of this function. optimize_on_insert
        # re-sorts and merges each block on insert (30-40% of the rate); reads use FINAL.
        self._run(f"INSERT INTO {identifier(table)} ({columns}) "
                  f"SELECT {', '.join(selected)} FROM Python(frame) "
                  "SETTINGS optimize_on_insert = 0", "CSV")
        return len(frame)

    def _column_type(self, table: str, column: str) -> str:
        found = self.query("SELECT type FROM system.columns WHERE database = currentDatabase() "
                           "AND table = %(t)s AND name = %(c)s", {"t": table, "c": column})
        if found.empty:
            raise WarehouseError(f"insert: table {table!r} has no column {column!r}")
        return str(found["type"].iloc[0])

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._conn = None


class ServerWarehouse(_Base):
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    dialect = "server"

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, user: str = "default",
                 password: str = "", database: str = "default", secure: bool = False,
                 compression: bool | Literal["lz4", "lz4hc", "zstd"] = False,
                 settings: Mapping[str, Any] | None = None) -> None:
        from clickhouse_driver import Client

        self.host, self.port, self.user, self.database = host, port, user, database
        self._client: Any = Client(host, port=port, user=user, password=password,
                                   database=database, secure=secure, compression=compression,
                                   settings=dict(settings or {}))

    def _error(self, exc: Exception) -> WarehouseError:
        message = str(exc).split("Stack trace:")[0].strip()
        return WarehouseError(f"ClickHouse {self.host}:{self.port} as {self.user}: {message}")

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        try:
            rows, types = self._client.execute(bind(sql, params), with_column_types=True)
        except Exception as exc:
            raise self._error(exc) from None
        return pd.DataFrame.from_records(rows, columns=[name for name, _ in types])

    def execute(self, sql: str, params: Params | None = None) -> None:
        if _INLINE_INSERT.match(sql):
            raise WarehouseError("execute: INSERT ... VALUES with inline rows waits forever on "
                                 "the native protocol; use insert(table, frame) for rows")
        try:
            self._client.execute(bind(sql, params))
        except Exception as exc:
            raise self._error(exc) from None

    def insert(self, table: str, data: Data) -> int:
        frame = _frame(data)
        if frame.empty:
            return 0
        columns = [str(c) for c in frame.columns]
        values = [_python_column(frame[c]) for c in frame.columns]
        try:
            self._client.execute(f"INSERT INTO {identifier(table)} ({', '.join(columns)}) "
                                 "VALUES", values, columnar=True, types_check=True)
        except Exception as exc:
            raise self._error(exc) from None
        return len(frame)

    def close(self) -> None:
        self._client.disconnect()


def default_warehouse_url(home: str | Path) -> str:
    """The embedded warehouse under a QUEUECAST_HOME: ``chdb:///HOME/warehouse``."""
    return f"chdb://{Path(home).expanduser().resolve() / 'warehouse'}"


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    value = query.get(name, ["0"])[-1].lower()
    return value in {"1", "true", "yes", "on"}


def open_warehouse(url: str | Path | None = None, *, home: str | Path | None = None,
                   **options: Any) -> ChdbWarehouse | ServerWarehouse:
    """Open a warehouse from a URL.

    ``chdb:///abs/path`` (or a plain path) opens chdb in that folder; ``None`` or ``chdb``
    opens ``HOME/warehouse`` (HOME: ``home`` or ``$QUEUECAST_HOME``).
    ``clickhouse://user:password@host:port/database?secure=1&compression=lz4`` opens a server.
    """
    if url is None or str(url) in {"", "chdb", "chdb:", "chdb://"}:
        base = home or os.environ.get("QUEUECAST_HOME")
        if not base:
            raise WarehouseError("open_warehouse: no URL and no QUEUECAST_HOME; pass "
                                 "chdb:///path or clickhouse://host:port/db")
        url = default_warehouse_url(base)
    text = str(url)
    if "://" not in text:
        return ChdbWarehouse(text)
    parts = urlsplit(text)
    if parts.scheme == "chdb":
        return ChdbWarehouse(unquote(parts.netloc + parts.path))
    if parts.scheme in {"clickhouse", "clickhouses"}:
        query = parse_qs(parts.query)
        secure = parts.scheme == "clickhouses" or _flag(query, "secure")
        compression: Any = query.get("compression", ["0"])[-1]
        compression = False if compression in {"0", "false", ""} else compression
        return ServerWarehouse(
            parts.hostname or "127.0.0.1", parts.port or (9440 if secure else 9000),
            user=unquote(parts.username or "default"), password=unquote(parts.password or ""),
            database=parts.path.strip("/") or "default", secure=secure,
            compression=compression, **options)
    raise WarehouseError(f"warehouse URL {text!r}: scheme must be chdb:// or clickhouse://")
