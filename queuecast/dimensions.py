"""Dimension rows for the warehouse (002_dimensions): queues, agents, teams and sites from a
center configuration (or a simulation scenario's), and the calendar with public holidays
and make-up workdays from the business calendar (CC-05).

The warehouse keeps the newest row per key (``updated_at``), so loading again after a
change to the center replaces what changed and keeps history out of the reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

import pandas as pd

from callcore.calendar import BusinessCalendar
from callcore.center import CenterConfig
from callcore.scenario import Scenario

__all__ = ["calendar_rows", "center_rows", "scenario_rows"]


def center_rows(center: CenterConfig, *, timezone: str, updated_at: datetime,
                agents: Mapping[str, tuple[str | None, list[str]]] | None = None,
                targets: Mapping[str, float] | None = None) -> dict[str, pd.DataFrame]:
    """Rows of ``queues``, ``agents``, ``teams`` and ``sites`` for one center.

    ``agents`` adds agents that are not in the configuration (a scenario's generated ones):
    id -> (team, queues). ``targets`` gives a queue's service-level target (default 0.8).
    """
    site = center.site
    queues = pd.DataFrame({
        "queue": [q.name for q in center.queues], "name": [q.name for q in center.queues],
        "channel": "voice", "site": site,
        "service_level_s": [int(q.service_level_s) for q in center.queues],
        "service_level_target": [(targets or {}).get(q.name, 0.8) for q in center.queues],
        "updated_at": updated_at})
    people = {a.id: (a.name or a.id, a.team or "", sorted(a.skills)) for a in center.agents}
    for agent_id, (team, skills) in (agents or {}).items():
        people.setdefault(agent_id, (agent_id, team or "", sorted(skills)))
    agent_rows = pd.DataFrame({
        "agent_id": list(people), "name": [p[0] for p in people.values()],
        "team": [p[1] for p in people.values()], "site": site,
        "skills": [p[2] for p in people.values()], "hired_on": date(1970, 1, 1),
        "active": 1, "updated_at": updated_at})
    teams = pd.DataFrame({
        "team": [t.name for t in center.teams], "name": [t.name for t in center.teams],
        "site": site, "supervisor": [",".join(sorted(
            m for m, groups in center.managers.items() if t.group in groups))
            for t in center.teams],
        "updated_at": updated_at})
    sites = pd.DataFrame({"site": [site], "name": [site], "timezone": [timezone],
                          "region": [""], "updated_at": [updated_at]})
    return {"queues": queues, "agents": agent_rows, "teams": teams, "sites": sites}


def scenario_rows(scenario: Scenario, *, updated_at: datetime) -> dict[str, pd.DataFrame]:
    """:func:`center_rows` of a scenario's center with its generated agents."""
    if scenario.center is None:
        raise ValueError(f"scenario {scenario.name!r} names its center in a file: load "
                         "that file and call center_rows")
    generated = {agent_id: (group.team, list(group.skills))
                 for group in scenario.agent_groups for agent_id in group.agent_ids()}
    return center_rows(scenario.center, timezone=scenario.timezone, updated_at=updated_at,
                       agents=generated)


def calendar_rows(calendar: BusinessCalendar, *, region: str, start: date, end: date,
                  updated_at: datetime) -> pd.DataFrame:
    """One row per date in ``[start, end]``: workday (weekdays and official make-up days,
    not public holidays), holiday and its name."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}: give start <= end")
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    kinds = [calendar.day(d) for d in days]
    return pd.DataFrame({
        "region": region, "date": days,
        "is_workday": [int(k.kind == "workday" or (k.kind == "regular" and d.weekday() < 5))
                       for d, k in zip(days, kinds, strict=True)],
        "is_holiday": [int(k.kind == "holiday") for k in kinds],
        "holiday_name": [k.name or "" for k in kinds],
        "updated_at": updated_at})
