"""The ``queuecast`` command: one entry point whose sub-commands each package extends."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import click
import msgspec
import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from ingest.contract import Topic, decode_event, encode_event
from ingest.contract.codec import InvalidEventError
from ingest.contract.schema import export_schemas, stale_schemas
from ingest.log import EventLog, LogError, open_log
from queuecast.config import ConfigError, Settings, load_settings
from queuecast.logs import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="queuecast",
    help="Event-sourced call-center analytics and workforce management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Validate, produce, tail and replay contract events.",
                         no_args_is_help=True)
app.add_typer(events_app, name="events")

err = Console(stderr=True, soft_wrap=True)
DOCS_EVENTS = Path("docs/events")


class _State:
    config: Path | None = None


def settings() -> Settings:
    """The effective settings; a bad setting ends the command with its message."""
    try:
        loaded = load_settings(_State.config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    configure_logging(loaded.logging)
    return loaded


def open_event_log(current: Settings) -> EventLog:
    """The event log the settings name, with a clear message if it cannot be opened."""
    partitions = {Topic(name): n for name, n in current.event_log.partitions.counts().items()}
    try:
        return open_log(
            current.event_log.url, home=current.home_path,
            namespace=current.event_log.namespace, partitions=partitions,
            options=current.event_log.transport_options(),
        )
    except (LogError, ValueError, TypeError) as exc:
        err.print(f"[red]cannot open the event log {current.event_log.url}:[/red] {exc}")
        raise typer.Exit(2) from None


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[tuple[Progress, int]]:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    ) as bar:
        yield bar, bar.add_task(description, total=total)


@app.callback()
def _root(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (TOML).", exists=True,
                                  dir_okay=False)
    ] = None,
) -> None:
    _State.config = config


@app.command("config")
def show_config() -> None:
    """Print the effective settings (file plus environment) as JSON."""
    typer.echo(json.dumps(msgspec.to_builtins(settings()), indent=2))


@events_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="JSON-lines file of events.", exists=True,
                                         dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every line of FILE against the contract; exit 1 if any line is invalid."""
    valid = 0
    invalid: list[dict[str, object]] = []
    with file.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                decode_event(line)
                valid += 1
            except InvalidEventError as exc:
                invalid.append({"line": number, "reason": exc.reason})
    if as_json:
        typer.echo(json.dumps({"valid": valid, "invalid": len(invalid), "errors": invalid}))
    else:
        for problem in invalid:
            typer.echo(f"{file}:{problem['line']}: {problem['reason']}")
        typer.echo(f"{valid} valid, {len(invalid)} invalid")
    if invalid:
        raise typer.Exit(1)


@events_app.command("produce")
def produce(
    file: Annotated[Path, typer.Argument(help="JSON-lines file of events.", exists=True,
                                         dir_okay=False)],
    origin: Annotated[str, typer.Option(help="Label of this producer in dead letters.")] = "cli",
) -> None:
    """Append the events of FILE to the log; invalid lines go to the dead-letter topic."""
    with open_event_log(settings()) as log, file.open("rb") as lines:
        records = (line.rstrip(b"\r\n") for line in lines if line.strip())
        report = log.produce_raw(records, origin=origin)
    for rejection in report.rejected:
        typer.echo(f"record {rejection.index + 1}: dead-lettered: {rejection.reason}")
    typer.echo(f"{report.accepted} appended, {report.dead_lettered} dead-lettered")


def _topic(name: str) -> Topic:
    try:
        return Topic(name.removeprefix("queuecast."))
    except ValueError:
        raise typer.BadParameter(
            f"unknown topic {name!r}; choose from {', '.join(t.value for t in Topic)}"
        ) from None


@events_app.command("tail")
def tail(
    topic: Annotated[str, typer.Argument(
        help="calls, agents, tickets, wfm, alarms or deadletter.")],
    group: Annotated[str | None, typer.Option(help="Consume as this group, committing.")] = None,
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    limit: Annotated[int | None, typer.Option("--max", help="Stop after N records.")] = None,
    idle: Annotated[float | None, typer.Option(help="Stop after N seconds with nothing new.")]
    = None,
) -> None:
    """Print records of TOPIC as JSON lines as they arrive (dead letters with their reason)."""
    chosen = _topic(topic)
    start = "earliest" if from_beginning else "latest"
    seen = 0
    with open_event_log(settings()) as log:
        consumer = (
            log.dead_letters(group=group, start=start) if chosen is Topic.DEADLETTER
            else log.consumer(group=group, topics=[chosen], start=start)
        )
        with consumer:
            try:
                while limit is None or seen < limit:
                    batch = consumer.poll(max_events=1000,
                                          timeout=idle if idle is not None else 1.0)
                    if not batch and idle is not None:
                        break
                    for item in batch[: None if limit is None else limit - seen]:
                        typer.echo(_render(item))
                        seen += 1
                    if group is not None:
                        consumer.commit()
            except KeyboardInterrupt:
                pass


def _render(item: object) -> str:
    from ingest.log import DeadLetter, Delivery

    if isinstance(item, Delivery):
        return encode_event(item.event).decode()
    assert isinstance(item, DeadLetter)
    return json.dumps({
        "reason": item.reason, "stage": item.stage, "origin": item.origin,
        "origin_partition": item.origin_partition, "origin_offset": item.origin_offset,
        "dead_lettered_at": item.dead_lettered_at.isoformat(),
        "original": item.original.decode("utf-8", "backslashreplace"),
    }, ensure_ascii=False)


@events_app.command("replay")
def replay(
    topics: Annotated[list[str] | None, typer.Option("--topic", help="Repeatable.")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Repeatable.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write JSON lines here, not stdout.")] = None,
    idle: Annotated[float, typer.Option(help="Seconds with nothing new that end it.")] = 2.0,
) -> None:
    """Read the log from the beginning and write its events as JSON lines, with counts."""
    chosen = [_topic(t) for t in topics] if topics else [
        Topic.CALLS, Topic.AGENTS, Topic.TICKETS, Topic.WFM
    ]
    wanted = set(event_type or ())
    counts: Counter[str] = Counter()
    sink = out.open("wb") if out else sys.stdout.buffer
    try:
        with (
            open_event_log(settings()) as log,
            log.consumer(group=None, topics=chosen) as consumer,
            progress("replaying") as (bar, task),
        ):
            for batch in consumer.drain(idle=idle):
                for delivery in batch:
                    if wanted and delivery.event.type not in wanted:
                        continue
                    counts[delivery.event.type] += 1
                    sink.write(encode_event(delivery.event) + b"\n")
                bar.advance(task, len(batch))
    finally:
        if out:
            sink.close()
        else:
            sink.flush()
    err.print(f"replayed {sum(counts.values())} events: "
              + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@events_app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option("--max", help="Show at most N.")] = 100,
    idle: Annotated[float, typer.Option(help="Seconds with nothing new that end it.")] = 1.0,
) -> None:
    """List dead letters from the beginning with their reasons, as JSON lines."""
    shown = 0
    with open_event_log(settings()) as log, log.dead_letters() as consumer:
        for batch in consumer.drain(idle=idle, max_events=limit):
            for letter in batch[: limit - shown]:
                typer.echo(_render(letter))
                shown += 1
            if shown >= limit:
                break


@events_app.command("retention")
def retention() -> None:
    """Delete records past the embedded log's retention settings (run it from cron)."""
    from ingest.log.embedded import EmbeddedTransport

    with open_event_log(settings()) as log:
        if not isinstance(log.transport, EmbeddedTransport):
            typer.echo("the Kafka brokers enforce retention themselves (retention.ms)")
            return
        deleted = log.transport.enforce_retention()
    typer.echo(json.dumps(deleted))


@events_app.command("schema")
def schema(
    out: Annotated[Path, typer.Option(help="Folder of the schemas.")] = DOCS_EVENTS,
    check: Annotated[bool, typer.Option(help="Only check they are up to date.")] = False,
) -> None:
    """Export the JSON Schema of every event type (``--check``: exit 1 if any is stale)."""
    if check:
        stale = stale_schemas(out)
        for name in stale:
            typer.echo(f"stale or missing: {out / name}")
        if stale:
            typer.echo("run `queuecast events schema` and commit docs/events/")
            raise typer.Exit(1)
        typer.echo("event schemas are up to date")
        return
    written = export_schemas(out)
    typer.echo(f"wrote {len(written)} schema files under {out}")


def main() -> None:
    """Entry point of the ``queuecast`` console script."""
    app()


def _demo_table(run: object) -> Table:
    from queuecast.demo import DemoRun

    assert isinstance(run, DemoRun)
    snapshot = run.boards.snapshot()
    at = run.boards.last_at
    table = Table(title=f"queuecast live: {run.events} events, up to {at:%H:%M:%S} UTC"
                  if at else "queuecast live")
    for column in ("queue", "offered", "answered", "abandoned", "other", "waiting", "SL",
                   "ASA s", "AHT s"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for q in snapshot["queues"]:
        other = q.offered - q.answered - q.abandoned
        table.add_row(q.queue, str(q.offered), str(q.answered), str(q.abandoned), str(other),
                      str(q.waiting), _fmt(q.service_level, "{:.1%}"), _fmt(q.asa_s, "{:.1f}"),
                      _fmt(q.aht_s, "{:.0f}"))
    states = Counter(a.state for a in snapshot["agents"] if a.state is not None)
    table.caption = "agents: " + ", ".join(f"{s} {n}" for s, n in sorted(states.items()))
    return table


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


@app.command("demo")
def demo(
    scenario: Annotated[str, typer.Option(help="Bundled scenario name or YAML file.")] = "demo",
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 2400.0,
    seed: Annotated[int, typer.Option(help="Random seed of the traffic.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final counts as JSON.")]
    = False,
) -> None:
    """Run the call-control simulator on a scenario into the event log and show live queue
    counts read back from the log."""
    from queuecast.demo import run_demo

    current = settings()
    out = Console()
    err.print(f"event log: {current.event_log.url} under {current.home_path}")
    with open_event_log(current) as log, Live(console=out, auto_refresh=False,
                                              transient=as_json) as live:
        run = run_demo(log, scenario=scenario, speed=speed, seed=seed,
                       on_update=lambda r: live.update(_demo_table(r), refresh=True))
    if as_json:
        queues = run.boards.snapshot()["queues"]
        typer.echo(json.dumps({
            "events": run.events,
            "queues": {q.queue: {"offered": q.offered, "answered": q.answered,
                                 "abandoned": q.abandoned,
                                 "other": q.offered - q.answered - q.abandoned,
                                 "service_level": q.service_level, "asa": q.asa_s,
                                 "aht": q.aht_s} for q in queues},
        }))


@app.command("broker")
def broker(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")]
    = None,
) -> None:
    """Run the Tansu Kafka-protocol broker for development until Ctrl-C."""
    from ingest.tansu import main as tansu_main

    tansu_main(["--port", str(port)] if port else [])


callcore_app = typer.Typer(help="The call-control core: the CTI API server.",
                           no_args_is_help=True)
app.add_typer(callcore_app, name="callcore")
DOCS_CTI_OPENAPI = Path("docs/cti-openapi.json")


@callcore_app.command("serve")
def callcore_serve(
    center: Annotated[Path, typer.Option(help="Center configuration (YAML).", exists=True,
                                         dir_okay=False)],
    flows: Annotated[list[Path] | None, typer.Option(
        "--flows", help="IVR flow file or folder (repeatable).", exists=True)] = None,
    calendar: Annotated[Path | None, typer.Option(
        help="Business calendar (YAML) for numbers with a schedule.", exists=True,
        dir_okay=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the CTI API (HTTP + WebSocket) over the engine on the real clock until Ctrl-C."""
    from callcore.api import EngineService, serve
    from callcore.calendar import CalendarConfigError, load_calendar
    from callcore.center import CenterConfigError, load_center
    from callcore.ivr import FlowError, load_flows
    from callcore.region import caller_region

    current = settings()
    try:
        config = load_center(center)
        scheduled = sorted(n.number for n in config.numbers if n.schedule is not None)
        if scheduled and calendar is None:
            raise ValueError(f"numbers {', '.join(scheduled)} have a schedule; pass "
                             "--calendar FILE with their business hours")
        business = load_calendar(calendar) if calendar is not None else None
        service = EngineService(
            config, region_lookup=caller_region, flows=load_flows(*flows) if flows else None,
            calendar=business.state if business is not None else None)
    except (CenterConfigError, CalendarConfigError, FlowError, ValueError) as exc:
        err.print(f"[red]cannot start the call-control engine:[/red] {exc}")
        raise typer.Exit(2) from None
    err.print(f"CTI API on http://{host}:{port}/docs, event log {current.event_log.url} "
              f"under {current.home_path}")
    with open_event_log(current) as log:
        service.event_log = log
        serve(service, host=host, port=port)


@callcore_app.command("openapi")
def callcore_openapi(
    out: Annotated[Path, typer.Option(help="Where the document goes.")] = DOCS_CTI_OPENAPI,
    check: Annotated[bool, typer.Option(help="Only check it is up to date.")] = False,
) -> None:
    """Export the CTI API's OpenAPI document (``--check``: exit 1 if it is stale)."""
    from callcore.api import openapi_document, write_openapi

    if check:
        current = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
        if current != openapi_document():
            typer.echo(f"stale or missing: {out}; run `queuecast callcore openapi` and commit it")
            raise typer.Exit(1)
        typer.echo("the CTI OpenAPI document is up to date")
        return
    write_openapi(out)
    typer.echo(f"wrote {out}")


# -- simulator (callcore.simulator) -----------------------------------------------------


class _SimulateGroup(TyperGroup):
    """``simulate SCENARIO ...`` runs a scenario (the ``run`` command); ``simulate
    arrivals ...`` and other sub-commands are named."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


simulate_app = typer.Typer(
    cls=_SimulateGroup, no_args_is_help=True,
    help="Simulate a scenario: `simulate SCENARIO` runs it into the event log, `simulate "
    "arrivals` writes its offered-calls history as CSV.")
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("run")
def simulate(
    scenario: Annotated[str, typer.Argument(
        help="Scenario YAML file, or a bundled scenario: demo, large.")],
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")]
    = None,
    speed: Annotated[float | None, typer.Option(help="Pace at X times real time.")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="As fast as possible (the default).")]
    = False,
    days: Annotated[int | None, typer.Option(help="Simulated days (default: the scenario's).")]
    = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Write no events, only count them.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Drive the call-control engine with simulated traffic into the event log."""
    from callcore.simulator import Simulation

    if fast and speed is not None:
        raise typer.BadParameter("give --speed X or --fast, not both")
    try:
        model = Simulation(scenario, seed=seed, days=days)
    except ValueError as exc:
        err.print(f"[red]scenario error:[/red] {exc}")
        raise typer.Exit(2) from None
    log = None if no_log else open_event_log(settings())
    try:
        with progress("simulated minutes") as (bar, task):
            result = model.run(log=log, speed=speed, on_progress=lambda done, total: bar.update(
                task, completed=done // 60_000, total=total // 60_000))
    finally:
        if log is not None:
            log.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        Console().print(result.table())
    if result.rejected:
        err.print(f"[yellow]engine rejected commands:[/yellow] {result.rejected}")


@simulate_app.command("arrivals")
def simulate_arrivals(
    scenario: Annotated[str, typer.Option(
        help="Scenario YAML file, or a bundled scenario: demo, large.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (timestamp,queue,calls).",
                                      dir_okay=False)],
    start: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First day (default: the scenario's start).")] = None,
    days: Annotated[int | None, typer.Option(help="Days (default: the scenario's).")] = None,
    interval: Annotated[int | None, typer.Option(
        help="Interval minutes, e.g. 15, 30 or 60 (default: the profiles').")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")]
    = None,
) -> None:
    """Write a scenario's offered calls per interval and queue as CSV, without simulating calls.

    The arrivals are drawn exactly as the simulator draws them (holidays, trend and day
    noise included): a history to forecast from.
    """
    from callcore.simulator import arrival_history

    try:
        with progress("simulated days") as (bar, task):
            history = arrival_history(
                scenario, seed=seed, start=None if start is None else start.date(), days=days,
                interval_minutes=interval,
                on_day=lambda done, total: bar.update(task, completed=done, total=total))
    except ValueError as exc:
        err.print(f"[red]scenario error:[/red] {exc}")
        raise typer.Exit(2) from None
    history.to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S")
    err.print(f"wrote {out}: {len(history):,} rows, {int(history['calls'].sum()):,} calls, "
              f"{history['queue'].nunique()} queues")


# -- staffing (scheduling.erlang) -------------------------------------------------------


@app.command("staff")
def staff(
    calls: Annotated[float, typer.Option(help="Offered calls per interval.")],
    aht: Annotated[float, typer.Option(help="Average handle time, seconds.")],
    interval_minutes: Annotated[float, typer.Option(help="Interval length, minutes.")] = 30.0,
    sl: Annotated[float, typer.Option(help="Service-level target, fraction.")] = 0.8,
    answer_within: Annotated[float, typer.Option(help="Service-level threshold T, s.")] = 20.0,
    shrinkage: Annotated[float, typer.Option(help="Shrinkage, fraction.")] = 0.0,
    max_occupancy: Annotated[float | None, typer.Option(help="Occupancy cap.")] = None,
    patience: Annotated[float | None, typer.Option(
        help="Mean patience, seconds (Erlang A).")] = None,
    agents: Annotated[int | None, typer.Option(
        help="Figures for this staffing instead of the required one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Agents needed for a service level (Erlang C, or Erlang A with --patience)."""
    from scheduling.erlang import apply_shrinkage, queue_metrics, required_agents

    try:
        if agents is None:
            result = required_agents(
                calls=calls, aht=aht, interval_minutes=interval_minutes, service_level=sl,
                answer_within=answer_within, max_occupancy=max_occupancy, patience=patience,
                shrinkage=shrinkage)
            m = result.metrics
        else:
            m = queue_metrics(calls=calls, aht=aht, agents=agents,
                              interval_minutes=interval_minutes, answer_within=answer_within,
                              patience=patience)
            apply_shrinkage(agents, shrinkage)
    except ValueError as exc:
        err.print(f"[red]staffing error:[/red] {exc}")
        raise typer.Exit(2) from None
    n = int(m.agents)
    figures = {
        "agents": n, "agents_with_shrinkage": int(apply_shrinkage(n, shrinkage)),
        "p_wait": float(m.p_wait), "service_level": float(m.service_level),
        "asa": float(m.asa) if float(m.asa) < float("inf") else None,
        "occupancy": float(m.occupancy), "p_abandon": float(m.p_abandon),
    }
    if as_json:
        typer.echo(json.dumps(figures))
        return
    table = Table(title="staffing")
    for column in figures:
        table.add_column(column, justify="right")
    table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in figures.values()))
    Console().print(table)


# -- schedules (scheduling.*): a command group in its own module -------------------------
# It imports the helpers above (settings, open_event_log, err), so it is imported last.
from queuecast.schedule_cli import schedule_app  # noqa: E402

app.add_typer(schedule_app, name="schedule")

from queuecast.import_cli import import_app  # noqa: E402
from queuecast.warehouse_cli import warehouse_app  # noqa: E402

app.add_typer(import_app, name="import")
app.add_typer(warehouse_app, name="warehouse")

from queuecast.streams_cli import streams_app  # noqa: E402

app.add_typer(streams_app, name="streams")

from queuecast.forecast_cli import forecast_app  # noqa: E402

app.add_typer(forecast_app, name="forecast")
