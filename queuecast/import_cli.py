"""``queuecast import``: other systems' call records into contract events (issue 5)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from ingest.contract import Event, Payload
from ingest.importers.asterisk import QueueLogState, parse_queue_log
from ingest.importers.cdr import ASTERISK_MASTER, MappingError, load_mapping, parse_cdr
from ingest.importers.report import Converted, EventReport, Outcome

__all__ = ["import_app"]

import_app = typer.Typer(help="Import PBX history (Asterisk queue_log, CDR CSV) as events.",
                         no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Convert and report; write nothing.")]
Strict = Annotated[bool, typer.Option("--strict", help="Exit 1 if any line is an error.")]


def _counted(outcomes: Iterable[Outcome], report: EventReport, bar: object, task: int
             ) -> Iterator[Event[Payload]]:
    for outcome in outcomes:
        report.add(outcome)
        bar.advance(task)  # type: ignore[attr-defined]
        if isinstance(outcome, Converted):
            yield from outcome.events


def _finish(report: EventReport, *, written: int | None, dead: int, as_json: bool,
            strict: bool) -> None:
    from queuecast.cli import err

    summary = report.to_dict() | {"written": written, "dead_lettered": dead}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for problem in report.errors:
            err.print(f"{problem.source}:{problem.line}: {problem.reason}", markup=False,
                      highlight=False)
        quiet = ", ".join(f"{label} {n}" for label, n in sorted(report.no_event.items()))
        typer.echo(f"{report.lines} lines: {report.converted} converted into {report.events} "
                   f"events of {report.calls} calls, {sum(report.no_event.values())} with no "
                   f"event ({quiet or 'none'}), {len(report.errors)} errors; "
                   + ("nothing written (dry run)" if written is None else
                      f"{written} events written, {dead} dead-lettered"))
    if strict and report.errors:
        raise typer.Exit(1)


def _write(events: list[Event[Payload]], dry_run: bool) -> tuple[int | None, int]:
    from queuecast.cli import open_event_log, progress, settings

    if dry_run:
        return None, 0

    def advancing() -> Iterator[Event[Payload]]:
        for event in events:
            yield event
            bar.advance(task)

    with open_event_log(settings()) as log, progress("writing", total=len(events)) as (bar, task):
        produced = log.produce(advancing())
    return produced.accepted, produced.dead_lettered


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


@import_app.command("asterisk-queue-log")
def asterisk_queue_log(
    files: Annotated[list[Path], typer.Argument(
        help="queue_log files, oldest first (rotated: queue_log-20220801 ... queue_log).",
        exists=True, dir_okay=False)],
    system: Annotated[str, typer.Option(help="Prefix of the call ids: SYSTEM:uniqueid.")]
    = "asterisk",
    as_json: AsJson = False,
    dry_run: DryRun = False,
    strict: Strict = False,
) -> None:
    """Convert Asterisk queue_log FILES, in order, to events and append them to the log."""
    from queuecast.cli import progress

    state = QueueLogState(system=system)
    report = EventReport()
    events: list[Event[Payload]] = []
    with progress("queue_log", total=sum(map(_lines, files))) as (bar, task):
        for path in files:
            with path.open("rb") as handle:
                events += _counted(parse_queue_log(handle, source=str(path), state=state),
                                   report, bar, task)
    written, dead = _write(events, dry_run)
    _finish(report, written=written, dead=dead, as_json=as_json, strict=strict)


@import_app.command("cdr")
def cdr(
    file: Annotated[Path, typer.Argument(help="CDR CSV, one row per call.", exists=True,
                                         dir_okay=False)],
    mapping: Annotated[Path | None, typer.Option(
        help="Column-mapping YAML (see docs/importers.md); default: Asterisk Master.csv.",
        exists=True, dir_okay=False)] = None,
    as_json: AsJson = False,
    dry_run: DryRun = False,
    strict: Strict = False,
) -> None:
    """Convert the rows of a CDR CSV FILE to events and append them to the log."""
    from queuecast.cli import err, progress

    try:
        chosen = ASTERISK_MASTER if mapping is None else load_mapping(mapping)
        report = EventReport()
        with progress("cdr", total=_lines(file) - chosen.header) as (bar, task):
            events = list(_counted(parse_cdr(file.read_bytes(), mapping=chosen,
                                             source=str(file)), report, bar, task))
    except MappingError as exc:
        err.print(f"[red]mapping error:[/red] {exc}")
        raise typer.Exit(2) from None
    written, dead = _write(events, dry_run)
    _finish(report, written=written, dead=dead, as_json=as_json, strict=strict)
