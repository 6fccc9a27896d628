"""``queuecast schedule``: plan, publish, edit history and simulation check of schedules.

The planning maths lives in ``scheduling`` (pure, no I/O); this module reads the files,
replays the ``wfm`` topic of the event log into a ``ScheduleBook`` and appends the
``wfm.schedule_published`` events the book decides.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from ingest.contract import Topic
from ingest.log import EventLog
from queuecast.cli import err, open_event_log, settings
from scheduling.model import Activity

__all__ = ["read_roster", "roster_records", "schedule_app"]

schedule_app = typer.Typer(help="Shift plans and rosters: plan, publish, history, check.",
                           no_args_is_help=True)

ROSTER_COLUMNS = ("agent_id", "template", "day", "start", "end", "paid_minutes", "skill",
                  "activities")


def roster_records(roster: pd.DataFrame) -> list[dict[str, Any]]:
    """A roster (one row per agent shift) as JSON-ready records, times as ISO local times."""
    records = []
    for row in roster.itertuples(index=False):
        records.append({
            "agent_id": row.agent_id, "template": row.template, "day": str(row.day),
            "start": row.start.isoformat(), "end": row.end.isoformat(),
            "paid_minutes": int(row.paid_minutes), "skill": row.skill,
            "activities": [{"kind": a.kind, "start": a.start.isoformat(),
                            "end": a.end.isoformat(), "paid": a.paid} for a in row.activities],
        })
    return records


def read_roster(path: Path) -> pd.DataFrame:
    """Read a roster written by ``queuecast schedule plan --out`` (JSON lines)."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rows.append({
                "agent_id": item["agent_id"], "template": item.get("template"),
                "day": pd.Timestamp(item["start"]).date() if "day" not in item
                else pd.Timestamp(item["day"]).date(),
                "start": pd.Timestamp(item["start"]), "end": pd.Timestamp(item["end"]),
                "paid_minutes": int(item.get("paid_minutes", 0)), "skill": item.get("skill"),
                "activities": tuple(
                    Activity(a["kind"], pd.Timestamp(a["start"]), pd.Timestamp(a["end"]),
                             bool(a.get("paid", True))) for a in item.get("activities", ())),
            })
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a roster line ({exc}); write rosters with "
                             "'queuecast schedule plan --out'") from None
    if not rows:
        raise ValueError(f"{path}: holds no shifts")
    return pd.DataFrame(rows, columns=list(ROSTER_COLUMNS))


def _events(log: EventLog, topic: Topic, prefix: str) -> list[Any]:
    """Every event of ``topic`` whose type starts with ``prefix``, from the beginning."""
    events = []
    with log.consumer(group=None, topics=[topic]) as consumer:
        for batch in consumer.drain(idle=1.0):
            events.extend(d.event for d in batch if d.event.type.startswith(prefix))
    return events


def _book(log: EventLog, timezone: str) -> Any:
    """Every schedule published so far, replayed from the ``wfm`` topic."""
    from scheduling.publish import replay

    return replay(_events(log, Topic.WFM, "wfm.schedule_"), timezone=timezone)


@schedule_app.command("plan")
def plan(
    source: Annotated[str, typer.Argument(help="Plan YAML file, or a bundled plan: week.")],
    out: Annotated[Path | None, typer.Option(
        help="Write the roster here (JSON lines) for 'schedule publish'.")] = None,
    time_limit: Annotated[float, typer.Option(
        help="Seconds for both solves (shifts up to two thirds, roster the rest).")] = 60.0,
    gap: Annotated[float, typer.Option(help="Relative MIP gap to stop at.")] = 0.01,
    solver: Annotated[str, typer.Option(help="auto (HiGHS if installed), highs or cbc.")
                      ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Staff a week by Erlang, choose shifts (MIP) and roster the named agents onto them."""
    from queuecast.planning import PlanError, load_plan, run_plan

    if solver not in ("auto", "highs", "cbc"):
        raise typer.BadParameter("choose auto, highs or cbc", param_hint="--solver")
    try:
        spec = load_plan(source)
        with err.status("planning") as status:
            result = run_plan(spec, time_limit_s=time_limit, gap=gap,
                              solver=solver,  # type: ignore[arg-type]
                              on_stage=lambda stage: status.update(stage))
    except PlanError as exc:
        err.print(f"[red]plan error:[/red] {exc}")
        raise typer.Exit(2) from None
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n"
                               for r in roster_records(result.roster.assignments)),
                       encoding="utf-8")
        err.print(f"wrote {len(result.roster.assignments)} shifts to {out}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
        return
    console = Console()
    console.print(result.shifts.summary())
    console.print(result.roster.summary())


def _append(log: EventLog, events: Sequence[Any]) -> None:
    """Append a decision's events; a refusal by the log ends the command."""
    report = log.produce(events)
    if report.dead_lettered:
        err.print(f"[red]the log refused the schedule events:[/red] {report}")
        raise typer.Exit(1)


@schedule_app.command("publish")
def publish(
    roster: Annotated[Path, typer.Argument(help="Roster file (JSON lines) from 'plan --out'.",
                                           exists=True, dir_okay=False)],
    schedule_id: Annotated[str, typer.Option(help="Schedule name, e.g. support-2026-w10.")],
    queue: Annotated[str, typer.Option(help="Queue (planning unit) the schedule covers.")],
    by: Annotated[str, typer.Option("--by", help="Who publishes (agent id of the planner).")],
    timezone: Annotated[str, typer.Option(help="IANA zone of the roster's local times.")] = "UTC",
    expected_version: Annotated[int | None, typer.Option(
        help="Refuse unless the schedule is at this version (default: its current one).")] = None,
) -> None:
    """Publish a roster as the next version of a schedule (wfm.schedule_published)."""
    from scheduling.publish import ScheduleCommandError, UnknownScheduleError

    try:
        frame = read_roster(roster)
    except ValueError as exc:
        err.print(f"[red]roster error:[/red] {exc}")
        raise typer.Exit(2) from None
    with open_event_log(settings()) as log:
        try:
            book = _book(log, timezone)
            try:
                current = book.version(schedule_id)
            except UnknownScheduleError:
                current = 0
            decision = book.publish(
                frame, schedule_id=schedule_id, published_by=by, queue=queue,
                now=datetime.now(UTC),
                expected_version=current if expected_version is None else expected_version)
        except ScheduleCommandError as exc:
            err.print(f"[red]cannot publish:[/red] {exc}")
            raise typer.Exit(2) from None
        _append(log, decision.events)
    version = decision.book.version(schedule_id)
    err.print(f"published {schedule_id} version {version}: {len(frame)} shifts of "
              f"{frame['agent_id'].nunique()} agents")


@schedule_app.command("edit")
def edit(
    schedule_id: Annotated[str, typer.Option(help="Schedule name.")],
    agent: Annotated[list[str], typer.Option(
        "--agent", help="Agent whose shifts in the window are replaced (repeatable).")],
    start: Annotated[datetime, typer.Option(help="Window start, local time.")],
    end: Annotated[datetime, typer.Option(help="Window end (exclusive), local time.")],
    by: Annotated[str, typer.Option("--by", help="Who edits (agent id of the planner).")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")],
    shifts: Annotated[Path | None, typer.Option(
        help="The agents' new shifts (roster JSON lines); none removes them.", exists=True,
        dir_okay=False)] = None,
    timezone: Annotated[str, typer.Option(help="IANA zone of the local times.")] = "UTC",
    expected_version: Annotated[int | None, typer.Option(
        help="Refuse unless the schedule is still at this version.")] = None,
) -> None:
    """Replace some agents' shifts in a window: a new version (wfm.schedule_changed)."""
    from scheduling.publish import ScheduleCommandError

    try:
        frame = read_roster(shifts) if shifts is not None else None
    except ValueError as exc:
        err.print(f"[red]roster error:[/red] {exc}")
        raise typer.Exit(2) from None
    with open_event_log(settings()) as log:
        try:
            decision = _book(log, timezone).edit(
                agent, frame, schedule_id=schedule_id, start=start, end=end, changed_by=by,
                now=datetime.now(UTC), reason=reason, expected_version=expected_version)
        except ScheduleCommandError as exc:
            err.print(f"[red]cannot edit:[/red] {exc}")
            raise typer.Exit(2) from None
        _append(log, decision.events)
    err.print(f"{schedule_id} is now version {decision.book.version(schedule_id)}: "
              f"{', '.join(agent)} changed ({reason})")


@schedule_app.command("history")
def history(
    schedule_id: Annotated[str, typer.Option(help="Schedule name.")],
    timezone: Annotated[str, typer.Option(help="IANA zone to show local times in.")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per version.")] = False,
) -> None:
    """The audit trail of a schedule: every version, who, when, why and what changed."""
    from scheduling.publish import ScheduleCommandError

    with open_event_log(settings()) as log:
        book = _book(log, timezone)
    try:
        trail = book.history(schedule_id)
    except ScheduleCommandError as exc:
        err.print(f"[red]no history:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        for record in trail.to_dict("records"):
            typer.echo(json.dumps(record, default=str))
        return
    table = Table(title=f"schedule {schedule_id}")
    for column in trail.columns:
        table.add_column(str(column))
    for record in trail.itertuples(index=False):
        table.add_row(*(str(v) for v in record))
    Console().print(table)


@schedule_app.command("adherence")
def adherence(
    schedule_id: Annotated[str, typer.Option(help="Schedule name.")],
    timezone: Annotated[str, typer.Option(help="IANA zone of intervals and days.")] = "UTC",
    tolerance: Annotated[float, typer.Option(
        help="Minutes of grace around each scheduled change.")] = 5.0,
    interval_minutes: Annotated[int, typer.Option(help="Interval length, minutes.")] = 15,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Days, intervals and exceptions as JSON.")] = False,
) -> None:
    """Adherence and conformance (WF-10) of the agents on the current schedule version,
    from the agent-state events in the log."""
    from scheduling.adherence import AdherenceRules, measure_adherence
    from scheduling.publish import ScheduleCommandError
    from streams.agent_states import state_spells

    with open_event_log(settings()) as log:
        book = _book(log, timezone)
        states = state_spells(_events(log, Topic.AGENTS, "agent."))
    try:
        segments = book.segments(schedule_id)
        result = measure_adherence(states, segments,
                                   rules=AdherenceRules(tolerance_minutes=tolerance),
                                   interval_minutes=interval_minutes, timezone=timezone)
    except (ScheduleCommandError, ValueError) as exc:
        err.print(f"[red]cannot measure adherence:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({name: getattr(result, name).to_dict("records")
                               for name in ("days", "intervals", "exceptions")}, default=str))
        return
    table = Table(title=f"adherence to {schedule_id} (tolerance {tolerance:g} min)")
    for column in ("agent", "day", "scheduled min", "in adherence", "adherence",
                   "worked min", "conformance"):
        table.add_column(column, justify="left" if column in ("agent", "day") else "right")
    for row in result.days.itertuples(index=False):
        table.add_row(row.agent_id, str(row.day), f"{row.scheduled:g}",
                      f"{row.in_adherence:g}", f"{row.adherence:.1%}", f"{row.worked:g}",
                      f"{row.conformance:.1%}")
    Console().print(table)


def _read_payload(path: Path, expected: str) -> Any:
    """The payload of the last event of type ``expected`` in a file of events."""
    from queuecast.planning import read_events

    return read_events(path, expected)[-1].payload


@schedule_app.command("check")
def check(
    forecast: Annotated[Path | None, typer.Option(
        help="Published forecast (wfm.forecast_published, JSON or JSON lines).", exists=True,
        dir_okay=False)] = None,
    schedule: Annotated[Path | None, typer.Option(
        help="Published schedule (wfm.schedule_published), or a roster from 'plan --out'.",
        exists=True, dir_okay=False)] = None,
    patience: Annotated[float | None, typer.Option(
        help="Mean patience, seconds (exponential); default: callers never hang up.")] = None,
    bank: Annotated[Path | None, typer.Option(
        help="Instead: the Anonymous Bank demonstration on this per-call file.", exists=True,
        dir_okay=False)] = None,
    day: Annotated[str, typer.Option(help="Day of the bank file to demonstrate on.")
                   ] = "2010-08-02",
    timezone: Annotated[str, typer.Option(help="IANA zone of the forecast's local times.")
                        ] = "UTC",
    replications: Annotated[int, typer.Option(help="Simulation replications.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the first replication.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Simulate a published schedule against its forecast, beside Erlang C and A."""
    from callcore.scenario import Exponential
    from queuecast.schedule_check import ScheduleCheckError, bank_demonstration, check_schedule

    try:
        if bank is not None:
            result = bank_demonstration(bank, day=day, replications=replications,
                                        seed=seed).check
        elif forecast is None or schedule is None:
            err.print("[red]give --forecast and --schedule, or --bank[/red]")
            raise typer.Exit(2)
        else:
            published = _read_payload(forecast, "wfm.forecast_published")
            try:
                shifts: Any = _read_payload(schedule, "wfm.schedule_published")
            except ValueError:
                shifts = read_roster(schedule)
            aht = [i.aht_s for i in published.intervals if i.aht_s]
            mean_aht = sum(aht) / len(aht) if aht else 180.0
            result = check_schedule(
                forecast=published, schedule=shifts,
                handle_time=Exponential(mean=mean_aht),
                patience=None if patience is None else Exponential(mean=patience),
                replications=replications, seed=seed, timezone=timezone)
    except (ValueError, ScheduleCheckError) as exc:
        err.print(f"[red]cannot check:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
        return
    Console().print(result.summary())
