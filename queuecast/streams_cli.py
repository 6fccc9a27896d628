"""``queuecast streams``: the in-process stream host (issue 4) over the event log.

``run`` consumes as the ``[streams] group`` consumer group until stopped (Ctrl-C) or, with
``--until-idle``, until the log is drained; ``rebuild`` empties the fact and rollup tables
and replays the whole log into them. With ``--json`` both print what they did and, per
fact table, the row count and a content checksum, so two runs can be compared.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from queuecast.alarming import notifiers_from_settings, rules_from_settings
from queuecast.cli import err, open_event_log, progress, settings
from queuecast.config import Settings
from queuecast.warehouse_cli import JsonOption, UrlOption, open_cli_warehouse
from streams.facts import FACT_TABLES
from streams.runner import RunReport, StreamsRunner
from streams.sink import WarehouseSink
from streams.views import ViewSettings
from warehouse.client import Warehouse, WarehouseError
from warehouse.digest import table_digest, truncate
from warehouse.migrations import MigrationError, migrate

__all__ = ["streams_app", "view_settings"]

streams_app = typer.Typer(help="Stream processing: live views and warehouse facts.",
                          no_args_is_help=True)


def rollup_tables(warehouse: Warehouse) -> list[str]:
    """Tables fed by materialized views (the summing and aggregating rollups)."""
    found = warehouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine IN ('SummingMergeTree', 'AggregatingMergeTree') ORDER BY name")
    return [str(name) for name in found["name"]] if not found.empty else []


@contextmanager
def _ready(url: str | None) -> Iterator[Warehouse]:
    """The migrated warehouse; a warehouse that cannot be reached or migrated ends the
    command with its message (nothing is committed to the log before it is written)."""
    with open_cli_warehouse(url) as warehouse:
        try:
            migrate(warehouse)
            yield warehouse
        except (WarehouseError, MigrationError) as exc:
            err.print(f"[red]warehouse error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None


def view_settings(current: Settings) -> ViewSettings:
    """The live boards' settings from ``[streams]``."""
    config = current.streams
    return ViewSettings(sl_threshold_s=config.sl_threshold_s, sl_variant=config.sl_variant,
                        short_abandon_s=config.short_abandon_s,
                        interval_minutes=config.interval_minutes, time_zone=config.time_zone,
                        thresholds=dict(config.sl_thresholds))


def _run(current: Settings, warehouse: Warehouse, *, until_idle: bool,
         from_scratch: bool) -> tuple[RunReport, StreamsRunner]:
    config = current.streams
    try:
        alarms = rules_from_settings(current.alarms)
        notifiers = notifiers_from_settings(current.alarms)
    except ValueError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    sink = WarehouseSink(warehouse, batch_rows=config.batch_rows,
                         batch_seconds=config.batch_seconds)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with open_event_log(current) as log, progress("events") as (bar, task):
            runner = StreamsRunner(log, sink, group=config.group, from_scratch=from_scratch,
                                   grace=timedelta(seconds=config.acw_grace_s),
                                   views=view_settings(current),
                                   alarms=alarms, notifiers=notifiers)
            report = runner.run(until_idle=until_idle, stop=stop, on_batch=lambda r: bar.update(
                task, completed=r.events + r.restored,
                description=f"events ({sum(r.written.values())} rows written)"))
            return report, runner
    finally:
        signal.signal(signal.SIGINT, previous)


def _summary(report: RunReport, runner: StreamsRunner, warehouse: Warehouse
             ) -> dict[str, Any]:
    digests = [table_digest(warehouse, table) for table in FACT_TABLES]
    return {
        "events": report.events, "restored": report.restored,
        "dead_lettered": report.dead_lettered, "retries": report.retries,
        "alarms": report.alarms, "written": report.written,
        "seconds": round(report.seconds, 3),
        "tables": {d.table: {"rows": d.rows, "checksum": d.checksum} for d in digests},
        "queues": {q.queue: {"offered": q.offered, "answered": q.answered,
                             "abandoned": q.abandoned, "service_level": q.service_level,
                             "asa_s": q.asa_s, "aht_s": q.aht_s}
                   for q in runner.boards.snapshot()["queues"]},  # type: ignore[attr-defined]
    }


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(f"{summary['events']} events folded ({summary['restored']} replayed to restore "
               f"state), {summary['dead_lettered']} dead-lettered, {summary['seconds']} s")
    for table, digest in summary["tables"].items():
        typer.echo(f"  {table:<24} {digest['rows']:>10} rows  checksum {digest['checksum']}")


UntilIdle = Annotated[bool, typer.Option(
    "--until-idle", help="Stop once the log is drained (calls waiting for after-call work "
    "are written with what was seen).")]


@streams_app.command("run")
def run_command(until_idle: UntilIdle = False, url: UrlOption = None,
                as_json: JsonOption = False) -> None:
    """Fold the event log into the warehouse facts until stopped (Ctrl-C)."""
    current = settings()
    with _ready(url) as warehouse:
        report, runner = _run(current, warehouse, until_idle=until_idle, from_scratch=False)
        _print(_summary(report, runner, warehouse), as_json)


@streams_app.command("rebuild")
def rebuild_command(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Empty the fact and rollup tables and replay the whole log into them."""
    current = settings()
    with _ready(url) as warehouse:
        truncate(warehouse, [*FACT_TABLES, *rollup_tables(warehouse)])
        err.print("fact and rollup tables emptied; replaying the log from the beginning")
        report, runner = _run(current, warehouse, until_idle=True, from_scratch=True)
        _print(_summary(report, runner, warehouse), as_json)


@streams_app.command("worker")
def worker_command(
    url: UrlOption = None,
    web_port: Annotated[int, typer.Option(help="Port of the web views on 127.0.0.1.")] = 6066,
) -> None:
    """Run the Faust host on the Kafka event log until stopped: facts into the warehouse,
    boards at http://127.0.0.1:PORT/boards/queues and /boards/agents."""
    import faust

    from streams.faust_app import FaustSettings, make_app
    from warehouse.client import open_warehouse

    current = settings()
    if not current.event_log.url.startswith("kafka://"):
        err.print(f"[red]the Faust worker needs a Kafka event log[/red] (event_log.url is "
                  f"{current.event_log.url!r}): set QUEUECAST_EVENT_LOG=kafka://host:port, or "
                  "use `queuecast streams run` on the embedded log")
        raise typer.Exit(2)
    config = current.streams
    target = url or current.warehouse.url

    def sink() -> WarehouseSink:
        warehouse = open_warehouse(target, home=current.home_path)
        migrate(warehouse)
        return WarehouseSink(warehouse, batch_rows=config.batch_rows,
                             batch_seconds=config.batch_seconds)

    app = make_app(FaustSettings(
        broker=current.event_log.url.removeprefix("kafka://").split("?")[0],
        namespace=current.event_log.namespace, app_id=config.group,
        partitions=current.event_log.partitions.counts() or None, web_port=web_port,
        batch_rows=config.batch_rows, batch_seconds=config.batch_seconds,
        grace=timedelta(seconds=config.acw_grace_s), views=view_settings(current)), sink)
    faust.Worker(app, loglevel="WARNING").execute_from_commandline()
