"""``queuecast warehouse``: migrations and queries of the ClickHouse warehouse (issue 5).

The warehouse is ``--url`` (or ``$QUEUECAST_WAREHOUSE_URL``), else the ``[warehouse] url``
setting, by default ``chdb``: the embedded chdb folder ``HOME/warehouse``;
``clickhouse://user:password@host:port/db`` names a server.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from queuecast.cli import err, settings
from queuecast.jsonable import json_value
from warehouse.client import Warehouse, WarehouseError, open_warehouse
from warehouse.migrations import MigrationError, migrate

__all__ = ["open_cli_warehouse", "parse_param", "warehouse_app"]

warehouse_app = typer.Typer(help="The ClickHouse warehouse: migrate, query.",
                            no_args_is_help=True)

UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="QUEUECAST_WAREHOUSE_URL",
    help="chdb:///path or clickhouse://user:pass@host:port/db (default: HOME/warehouse).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

_TYPES: dict[str, Any] = {
    "str": str, "int": int, "float": float,
    "date": dt.date.fromisoformat, "datetime": dt.datetime.fromisoformat,
}


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` (a string) or ``name:type=value`` with type str/int/float/date/datetime."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"{text!r}: write --param name=value or name:int=value")
    name, _, kind = name.partition(":")
    convert = _TYPES.get(kind or "str")
    if convert is None:
        raise typer.BadParameter(f"{text!r}: type {kind!r} is not one of {', '.join(_TYPES)}")
    try:
        return name, convert(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None


def open_cli_warehouse(url: str | None) -> Warehouse:
    current = settings()
    target = url or current.warehouse.url
    try:
        return open_warehouse(target, home=current.home_path)
    except WarehouseError as exc:
        err.print(f"[red]cannot open the warehouse {target}:[/red] {exc}")
        raise typer.Exit(2) from None


@warehouse_app.command("migrate")
def migrate_command(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Apply the pending schema migrations and print the versions applied."""
    with open_cli_warehouse(url) as warehouse:
        try:
            applied = migrate(warehouse)
        except (MigrationError, WarehouseError) as exc:
            err.print(f"[red]migration error:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"applied": [{"version": m.version, "name": m.name}
                                           for m in applied]}))
    elif applied:
        for m in applied:
            typer.echo(f"applied {m.version:03d}_{m.name}")
    else:
        typer.echo("up to date: no migration to apply")


@warehouse_app.command("query")
def query_command(
    sql: Annotated[str, typer.Argument(help="A SELECT; parameter markers are %(name)s.")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="name=value or name:int=value (str/int/float/date/datetime).")
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a query with bound parameters and print its rows."""
    params = dict(parse_param(p) for p in param or [])
    with open_cli_warehouse(url) as warehouse:
        try:
            frame = warehouse.query(sql, params or None)
        except WarehouseError as exc:
            err.print(f"[red]query error:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        records = [{str(k): json_value(v) for k, v in row.items()}
                   for row in frame.astype(object).to_dict(orient="records")]
        typer.echo(json.dumps(records))
    else:
        typer.echo(frame.to_string(index=False))


@warehouse_app.command("dimensions")
def dimensions_command(
    scenario: Annotated[str | None, typer.Option(
        help="A bundled scenario name or scenario YAML whose center to load.")] = None,
    center: Annotated[Path | None, typer.Option(
        help="A center configuration (YAML) to load instead.", exists=True,
        dir_okay=False)] = None,
    timezone: Annotated[str, typer.Option(help="The site's time zone (with --center).")]
    = "UTC",
    calendar: Annotated[Path | None, typer.Option(
        help="Business calendar (YAML); default: public holidays of --region.", exists=True,
        dir_okay=False)] = None,
    region: Annotated[str, typer.Option(help="Holiday region of the calendar rows.")] = "CN",
    first: Annotated[str | None, typer.Option(
        "--from", help="First calendar date (default: Jan 1 of this year).")] = None,
    last: Annotated[str | None, typer.Option(
        "--to", help="Last calendar date (default: Dec 31 of next year).")] = None,
    url: UrlOption = None, as_json: JsonOption = False,
) -> None:
    """Load queues, agents, teams, sites and the holiday calendar into the dimensions."""
    from callcore.calendar import BusinessCalendar, CalendarConfig, load_calendar
    from callcore.center import load_center
    from callcore.scenario import load_scenario
    from queuecast.dimensions import calendar_rows, center_rows, scenario_rows

    if (scenario is None) == (center is None):
        err.print("[red]give exactly one of --scenario NAME and --center FILE[/red]")
        raise typer.Exit(2)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        if scenario is not None:
            loaded = load_scenario(scenario)
            frames = scenario_rows(loaded, updated_at=now)
            timezone = loaded.timezone
        else:
            frames = center_rows(load_center(center), timezone=timezone, updated_at=now)
        book = (load_calendar(calendar) if calendar is not None else BusinessCalendar(
            CalendarConfig(timezone=timezone, country=region)))
        start = dt.date.fromisoformat(first) if first else dt.date(now.year, 1, 1)
        end = dt.date.fromisoformat(last) if last else dt.date(now.year + 1, 12, 31)
        frames["calendar"] = calendar_rows(book, region=region, start=start, end=end,
                                           updated_at=now)
    except ValueError as exc:
        err.print(f"[red]cannot build the dimensions:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    with open_cli_warehouse(url) as warehouse:
        migrate(warehouse)
        loaded_rows = {table: warehouse.insert(table, frame) for table, frame in frames.items()}
    if as_json:
        typer.echo(json.dumps({"rows": loaded_rows}))
    else:
        for table, n in loaded_rows.items():
            typer.echo(f"{table:<10} {n:>6} rows")
