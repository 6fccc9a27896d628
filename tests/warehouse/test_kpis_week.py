"""Every report figure against an independent computation (issue 5's bar): a simulated week
of the demo center goes through the fact fold into the warehouse (each engine in turn),
and the same KPIs are computed in pandas straight from the raw events in this test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import demo_events

from ingest.contract import Event
from streams.sink import write_events
from warehouse import reports
from warehouse.client import Warehouse
from warehouse.migrations import migrate

ZONE = "Asia/Shanghai"  # the demo center's clock
T = 20.0
SHORT = 5.0
COUNTS = ("offered", "answered", "abandoned", "short_abandoned", "answered_within")


@pytest.fixture(scope="module")
def week() -> list[Event]:
    return list(demo_events(seed=5, days=7))


@pytest.fixture(scope="module")
def raw(week: list[Event]) -> pd.DataFrame:
    """The events as one flat table: time, type, call, agent, queue and a few payload fields."""
    def field(event: Event, name: str) -> object:
        return getattr(event.payload, name, None)
    return pd.DataFrame({
        "at": pd.to_datetime([e.occurred_at for e in week], utc=True),
        "type": [e.type for e in week],
        "call_id": [field(e, "call_id") for e in week],
        "agent_id": [field(e, "agent_id") for e in week],
        "queue": [field(e, "queue") for e in week],
        "state": [field(e, "state") for e in week],
        "stage": [field(e, "stage") for e in week],
        "score": [field(e, "score") for e in week],
        "region": [origin(field(e, "caller_region")) for e in week],
        "direction": [field(e, "direction") for e in week],
    })


def origin(region: object) -> str | None:
    """The region of a caller: the province, or the country for numbers abroad."""
    if region is None:
        return None
    return getattr(region, "province", None) or getattr(region, "country", None)


def calls_in_pandas(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per call from the raw events. The demo has no transfers or holds and every
    call waits in at most one queue: wait runs from joining the queue (or being sent on
    from it) to the answer, the hang-up or the overflow; talk from the answer until the
    agent leaves (the survey's IVR or the end); ACW is the agent's after_call_work spell."""
    calls = raw[raw["type"].str.startswith("call.")]
    first = calls.groupby(["call_id", "type"])["at"].min().unstack()
    out = pd.DataFrame(index=first.index)
    out["offered_at"] = first["call.offered"]
    queues = calls[calls["type"].isin(["call.queued", "call.overflowed"])]
    out["queue"] = queues.groupby("call_id")["queue"].last()
    out["queue"] = out["queue"].fillna("")
    out["answered"] = first["call.answered"].notna()
    stages = calls[calls["type"] == "call.abandoned"].set_index("call_id")["stage"]
    out["abandoned"] = stages.reindex(out.index).isin(["queue", "ringing"])
    leg_end = first[["call.answered", "call.abandoned", "call.overflowed",
                     "call.ended"]].min(axis=1)
    out["wait_s"] = ((leg_end - first["call.queued"]).dt.total_seconds()).fillna(0.0)
    answered_at = first["call.answered"]
    after = calls.merge(answered_at.rename("answered_at"), left_on="call_id",
                        right_index=True)
    left = after[(after["type"].isin(["call.ivr_entered", "call.ended"]))
                 & (after["at"] >= after["answered_at"])].groupby("call_id")["at"].min()
    out["talk_s"] = (left - answered_at).dt.total_seconds().reindex(out.index).fillna(0.0)
    agents = raw[raw["type"].isin(["agent.state_changed", "agent.logged_out"])].sort_values(
        ["agent_id", "at"], kind="stable")
    agents = agents.assign(until=agents.groupby("agent_id")["at"].shift(-1))
    acw = agents[agents["state"] == "after_call_work"]
    out["acw_s"] = ((acw["until"] - acw["at"]).dt.total_seconds().groupby(
        acw["call_id"].to_numpy()).sum().reindex(out.index).fillna(0.0))
    out["agent_id"] = calls[calls["type"] == "call.answered"].groupby("call_id")[
        "agent_id"].first().reindex(out.index).fillna("")
    offered = calls[calls["type"] == "call.offered"].set_index("call_id")
    out["region"] = offered["region"].reindex(out.index).fillna("")
    out["direction"] = offered["direction"].reindex(out.index)
    return out


def kpis(offered: pd.DataFrame) -> pd.Series:
    """The report KPIs of offered calls (docs/metrics.md "Report KPIs")."""
    answered = offered[offered["answered"]]
    abandoned = offered[offered["abandoned"]]
    within = int((answered["wait_s"] <= T).sum())
    return pd.Series({
        "offered": len(offered), "answered": len(answered), "abandoned": len(abandoned),
        "short_abandoned": int((abandoned["wait_s"] <= SHORT).sum()),
        "answered_within": within,
        "service_level": ratio(within, len(answered) + len(abandoned)),
        "asa_s": answered["wait_s"].mean(), "avg_wait_s": offered["wait_s"].mean(),
        "aht_s": (answered["talk_s"] + answered["acw_s"]).mean(),
        "abandon_rate": ratio(len(abandoned), len(offered)),
    })


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else np.nan


@pytest.fixture
def loaded(warehouse: Warehouse, week: list[Event]) -> Warehouse:
    migrate(warehouse)
    write_events(warehouse, week)
    return warehouse


def same(name: str, got: pd.Series, want: pd.Series) -> None:
    """Exact for counts, 1e-9 relative for means and ratios."""
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    if pd.api.types.is_integer_dtype(want.dtype):
        assert got.astype("int64").tolist() == want.astype("int64").tolist(), name
    else:
        np.testing.assert_allclose(got.astype(float), want.astype(float), rtol=1e-9,
                                   atol=0, err_msg=name)


def compare(what: str, got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} rows, expected {len(want)}"
    for column in columns:
        same(f"{what} {column}", got[column], want[column].astype(
            "int64" if column in COUNTS else "float64"))


def test_reports_equal_pandas_on_a_simulated_week(loaded: Warehouse, raw: pd.DataFrame
                                                  ) -> None:
    calls = calls_in_pandas(raw)
    assert len(calls) > 10_000
    start = calls["offered_at"].min().tz_convert(ZONE).floor("D").tz_localize(None)
    end = start + pd.Timedelta(days=8)
    window: dict[str, object] = {"start": start.to_pydatetime(), "end": end.to_pydatetime(),
                                 "time_zone": ZONE}
    columns = list(reports.KPI_COLUMNS)

    # RP-04: per queue over the week
    offered = calls[calls["queue"] != ""]
    want = offered.groupby("queue").apply(kpis, include_groups=False)
    got = reports.queue_report(loaded, **window).set_index("queue").sort_index()
    compare("queue_report", got, want.sort_index(), columns)

    # RP-02: per queue and local 15-minute interval; per day
    local = calls["offered_at"].dt.tz_convert(ZONE)
    for grain, floor in (("15m", "15min"), ("1d", "D")):
        keyed = offered.assign(interval_start=local[offered.index].dt.floor(floor))
        want = keyed.groupby(["queue", "interval_start"]).apply(
            kpis, include_groups=False).reset_index()
        got = reports.interval_traffic(loaded, grain=grain, **window)
        assert got["interval_start"].tolist() == want["interval_start"].tolist()
        compare(f"interval_traffic {grain}", got, want, ["offered", "answered", "abandoned",
                                                         "answered_within", "asa_s", "aht_s"])

    # RP-07: calling time by local hour, origin by region
    hours = calls.assign(hour=local.dt.hour).groupby("hour").size()
    got = reports.calling_time(loaded, by="hour", **window).set_index("hour")["calls"]
    assert got.reindex(range(24)).tolist() == hours.reindex(range(24), fill_value=0).tolist()
    regions = calls.groupby("region").size().sort_index()
    got = reports.origin_analysis(loaded, level="region", **window).set_index("region")
    assert got["calls"].sort_index().tolist() == regions.tolist()
    same("region share", got["share"].sort_index(), regions / regions.sum())

    # RP-03: per agent handled calls and AHT; state times from the agent events
    answered = calls[calls["answered"]]
    per_agent = answered.groupby("agent_id").agg(
        handled=("wait_s", "size"), talk_s=("talk_s", "sum"), acw_s=("acw_s", "sum"))
    per_agent["aht_s"] = (per_agent["talk_s"] + per_agent["acw_s"]) / per_agent["handled"]
    got = reports.agent_performance(loaded, **window).set_index("agent_id")
    got = got[got["handled"] > 0].sort_index()
    assert got.index.tolist() == per_agent.index.tolist()
    for column in ("handled", "talk_s", "acw_s", "aht_s"):
        same(f"agent {column}", got[column], per_agent[column])
    spells = state_seconds(raw)
    got = reports.agent_performance(loaded, **window).set_index("agent_id").sort_index()
    for column in ("ready_s", "not_ready_s", "logged_in_s", "occupancy"):
        same(f"agent {column}", got[column], spells[column].reindex(got.index))

    # RP-05: lost calls; RP-06: surveys per agent
    lost = calls[(calls["queue"] != "") & ~calls["answered"]]
    got = reports.lost_calls(loaded, **window)
    assert sorted(got["call_id"]) == sorted(lost.index)
    surveys = raw[raw["type"] == "call.survey_answered"]
    mean_score = surveys.groupby("agent_id")["score"].mean().sort_index()
    got = reports.satisfaction(loaded, by="agent", **window).set_index("agent_id").sort_index()
    same("survey mean score", got["mean_score"], mean_score)


def state_seconds(raw: pd.DataFrame) -> pd.DataFrame:
    """Seconds per agent in each state, from state changes to the next change or log-out."""
    agents = raw[raw["type"].isin(["agent.state_changed", "agent.logged_out"])].sort_values(
        ["agent_id", "at"], kind="stable")
    agents = agents.assign(until=agents.groupby("agent_id")["at"].shift(-1))
    spells = agents[(agents["type"] == "agent.state_changed") & agents["until"].notna()]
    seconds = (spells["until"] - spells["at"]).dt.total_seconds()
    table = seconds.groupby([spells["agent_id"], spells["state"]]).sum().unstack(fill_value=0)
    busy = sum(table.get(s, 0) for s in ("talking", "hold", "after_call_work", "ringing"))
    return pd.DataFrame({"ready_s": table["ready"], "not_ready_s": table["not_ready"],
                         "logged_in_s": table.sum(axis=1),
                         "occupancy": busy / (busy + table["ready"])})

