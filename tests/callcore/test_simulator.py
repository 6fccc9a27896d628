"""The simulator: scenario validation, determinism, queueing theory, schedules, output."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support import collect
from typer.testing import CliRunner

from callcore.scenario import (
    SCHEMA_PATH,
    ScenarioError,
    export_schema,
    load_scenario,
    scenario_schema,
)
from callcore.simulator import Simulation
from ingest.contract import (
    Event,
    ForecastInterval,
    ForecastPublished,
    Payload,
    ScheduledActivity,
    ScheduledShift,
    SchedulePublished,
    encode_event,
    make_event,
)
from ingest.log import EventLog
from ingest.log.embedded import EmbeddedTransport
from queuecast.cli import app

LAMBDA = 100 / 1800  # calls per second
AHT_S = 180.0
AGENTS = 14
PATIENCE_S = 300.0


# -- helpers --------------------------------------------------------------------------------


def _center(agents: int, **queue: Any) -> dict[str, Any]:
    return {
        "queues": [{"name": "q", "after_call_work_s": 0, **queue}],
        "numbers": [{"number": "4001", "entry": {"kind": "queue", "target": "q"}}],
        "agents": [{"id": f"a{i:02d}", "skills": {"q": 1}} for i in range(agents)],
    }


def _scenario(**overrides: Any) -> dict[str, Any]:
    """One queue, 14 agents always logged in, 100 calls per 30 min, exponential 180 s."""
    raw: dict[str, Any] = {
        "name": "mmc", "start": "2026-01-05", "days": 1,
        "center": _center(AGENTS),
        "queue_defaults": {"handle_time": {"dist": "exponential", "mean": AHT_S}},
        "arrivals": [{"number": "4001", "interval_minutes": 30, "calls": [100] * 26}],
    }
    raw.update(overrides)
    return raw


def _events(scenario: Any, seed: int | None = None, **options: Any) -> list[Event[Payload]]:
    events: list[Event[Payload]] = []
    Simulation(scenario, seed=seed).run(on_events=events.extend, **options)
    return events


def _problem(raw: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(raw)
    return str(caught.value)


def _erlang_c(n: int, load: float) -> float:
    blocking = 1.0
    for k in range(1, n + 1):
        blocking = load * blocking / (k + load * blocking)
    return n * blocking / (n - load * (1 - blocking))


def _erlang_a(n: int, lam: float, mu: float, theta: float) -> tuple[float, float]:
    """P(wait) and P(abandon) of M/M/n+M from its birth-death chain."""
    weights = [1.0]
    for k in range(1, 2000):
        weights.append(weights[-1] * lam / (min(k, n) * mu + max(k - n, 0) * theta))
    total = sum(weights)
    p_wait = sum(weights[n:]) / total
    queue = sum((k - n) * w for k, w in enumerate(weights) if k > n) / total
    return p_wait, theta * queue / lam


# -- scenario files -------------------------------------------------------------------------


def test_bundled_scenarios_have_the_promised_size() -> None:
    demo = load_scenario("demo")
    center = demo.center_config()
    assert len(center.queues) == 3
    assert len(center.agents) == 40
    kinds = Counter(n.entry.kind for n in center.numbers)
    assert kinds == {"queue": 4, "ivr": 1}
    large = load_scenario("large")
    center = large.center_config()
    assert len(center.queues) == 10
    assert len(center.agents) == 500
    assert sum(len(a.skills) >= 2 for a in center.agents) == 500
    daily = sum(sum(a.calls or []) * a.scale for a in large.arrivals)
    assert daily == pytest.approx(100_000)


def test_checked_in_schema_is_the_generated_one(tmp_path: Path) -> None:
    fresh = export_schema(tmp_path / "schema.json")
    assert json.loads(SCHEMA_PATH.read_text()) == scenario_schema(), (
        "docs/scenario.schema.json is stale: run "
        "`python -c 'from callcore.scenario import export_schema; export_schema()'`")
    assert fresh.read_text() == SCHEMA_PATH.read_text()


@pytest.mark.parametrize(("change", "expected"), [
    ({"queus": {}}, "unknown field `queus`; remove or rename it (allowed here: name,"),
    ({"queues": {"q": {"handel_time": {}}}}, "unknown field `handel_time` - at "
     "`$.queues[...]` (in queues.q); remove or rename it (allowed here: handle_time,"),
    ({"queue_defaults": {"handle_time": {"dist": "gamma", "mean": 3}}},
     "at `$.queue_defaults.handle_time.dist`; use one of exponential, lognormal,"),
    ({"queue_defaults": {"handle_time": {"dist": "lognormal", "mean": 3, "sd": 1}}},
     "unknown field `sd` - at `$.queue_defaults.handle_time`; remove or rename it (allowed "
     "here: dist, and by dist exponential: mean; lognormal: mean, cv; deterministic: value;"),
    ({"queue_defaults": {"handle_time": {"dist": "exponential", "mean": -1}}},
     "Expected `float` > 0.0 - at `$.queue_defaults.handle_time.mean`"),
    ({"arrivals": [{"number": "4009", "calls": [1]}]},
     "arrivals[0].number: '4009' is not a number of the center; add it to center.numbers "
     "or use one of 4001"),
    ({"arrivals": [{"number": "4001"}]},
     "arrivals[0]: give exactly one of 'calls' (a profile) or 'forecast' (a file)"),
    ({"arrivals": [{"number": "4001", "calls": [1] * 49}]},
     "arrivals[0].calls: 49 intervals of 30 min from 00:00 run past midnight"),
    ({"arrivals": [{"number": "4001", "calls": [1], "interval_minutes": 7}]},
     "arrivals[0].interval_minutes: 7 does not divide a day"),
    ({"center": None}, "center: give exactly one of 'center' (inline) or 'center_file'"),
    ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is unknown; use an IANA name"),
    ({"queues": {"nope": {}}}, "queues.nope: no such queue in the center; known: q"),
    ({"schedules": [{"agents": ["a00"], "start": "25:00", "end": "17:00"}]},
     "at `$.schedules[0].start`"),
    ({"schedules": [{"agents": ["zz"], "start": "09:00", "end": "17:00"}]},
     "schedules[0].agents: unknown agent 'zz'"),
    ({"schedules": [{"groups": ["g"], "start": "09:00", "end": "17:00",
                     "breaks": [{"start": "08:00", "minutes": 15}]}]},
     "schedules[0].breaks[0]: 08:00 for 15 min is not inside the shift 09:00-17:00"),
    ({"ivr": [{"flow": "main", "press": {"1": 0.8}, "hang_up": 0.3}]},
     "ivr[0]: press and hang_up probabilities add up to 1.1"),
    ({"warmup_minutes": 1440}, "warmup_minutes: 1440 leaves nothing"),
    ({"center": {**_center(1), "agents": [{"id": "a", "team": "t", "skills": {"q": 1}}]}},
     "center: agent a: unknown team 't'; add it to teams"),
    ({"agent_groups": [{"name": "g", "count": 2, "skills": {"x": 1}}]},
     "agent_groups[0].skills: unknown queue 'x'; known: q"),
])
def test_invalid_scenarios_name_the_path_and_the_fix(change: dict[str, Any],
                                                     expected: str) -> None:
    assert expected in _problem(_scenario(**change))


def test_yaml_times_stay_times_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "center.yaml").write_text(json.dumps(_center(2)))
    text = ("start: 2026-01-05\ncenter_file: center.yaml\n"
            "arrivals: [{number: 4001, calls: [3]}]\n"
            "schedules: [{agents: [a00], start: 12:30, end: 13:30,\n"
            "             breaks: [{start: 13:00, minutes: 5}]}]\n")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ScenarioError, match=r"got `int` - at `\$\.arrivals\[0\]\.number`; quote "
                       "the value in YAML"):
        load_scenario(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text(text.replace("4001", "'4001'"))
    scenario = load_scenario(tmp_path / "s.yaml")
    assert scenario.schedules[0].start == "12:30"
    assert scenario.center is not None
    assert scenario.center_file is None
    assert scenario.arrivals[0].number == "4001"
    (tmp_path / "bad.yaml").write_text("start: 2026-01-05\ncenter_file: missing.yaml\n"
                                       "arrivals: [{number: '4001', calls: [1]}]\n")
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read it"):
        load_scenario(tmp_path / "bad.yaml")
    with pytest.raises(ScenarioError, match="no such scenario file; give a path or one of the "
                       "bundled scenarios: demo, large"):
        load_scenario("no-such-scenario")


def test_days_and_weekday_factors_shape_the_arrivals() -> None:
    scenario = load_scenario(_scenario(arrivals=[{
        "number": "4001", "start": "09:00", "interval_minutes": 60, "calls": [50],
        "weekdays": {"tue": 0.0, "wed": 2.0}}]))
    events = _events(Simulation(scenario, days=3).scenario, seed=1)
    per_day = Counter(e.occurred_at.date().isoformat() for e in events
                      if e.type == "call.offered")
    assert set(per_day) == {"2026-01-05", "2026-01-07"}  # Monday and Wednesday
    assert per_day["2026-01-07"] > per_day["2026-01-05"]
    with pytest.raises(ScenarioError, match=r"queues\.nope: no such queue"):
        Simulation(msgspec.structs.replace(scenario, queues={"nope": scenario.queue_defaults}))


# -- determinism and conservation ----------------------------------------------------------


def test_same_seed_gives_the_same_event_stream_and_another_seed_does_not() -> None:
    first = [encode_event(e) for e in _events("demo", seed=3)]
    again = [encode_event(e) for e in _events("demo", seed=3)]
    other = [encode_event(e) for e in _events("demo", seed=4)]
    assert len(first) > 10_000
    assert first == again
    assert first != other


def test_every_offered_call_ends_exactly_once_and_queues_balance() -> None:
    events: list[Event[Payload]] = []
    result = Simulation("demo").run(on_events=events.extend)
    assert result.events == len(events)
    assert result.rejected == {}
    offered = Counter(e.payload.call_id for e in events if e.type == "call.offered")
    ended = Counter(e.payload.call_id for e in events if e.type == "call.ended")
    assert offered.keys() == ended.keys()
    assert set(ended.values()) == {1}
    assert result.calls == len(offered)
    counted = 0
    for queue in result.queues.values():
        assert queue.offered == queue.answered + queue.abandoned + sum(queue.other.values())
        assert queue.answered > 0
        assert 0 < queue.service_level <= 1
        counted += queue.offered
    assert counted + sum(result.unqueued.values()) == len(offered)
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    types = Counter(e.type for e in events)
    # Support's survey (an IVR menu of key presses) and billing's voicemail box.
    assert types["call.survey_answered"] > 0
    assert types["call.voicemail_left"] == result.queues["billing"].other["voicemail"]
    scores = {e.payload.score for e in events if e.type == "call.survey_answered"}
    assert scores <= {1, 2, 3, 4, 5}
    assert types["agent.logged_in"] == types["agent.logged_out"] == 40


# -- queueing theory ------------------------------------------------------------------------


def _replications(patience: float | None) -> Any:
    model: dict[str, Any] = {"handle_time": {"dist": "exponential", "mean": AHT_S}}
    if patience is not None:
        model["patience"] = {"dist": "exponential", "mean": patience}
    scenario = load_scenario(_scenario(queue_defaults=model, warmup_minutes=60))
    return Simulation(scenario, seed=1000).replicate(40)


def test_erlang_c_agrees_within_confidence_intervals() -> None:
    load = LAMBDA * AHT_S
    wait = _erlang_c(AGENTS, load)
    rate = AGENTS / AHT_S - LAMBDA
    expected = {"p_wait": wait, "service_level": 1 - wait * math.exp(-rate * 20),
                "asa": wait / rate}
    assert expected["p_wait"] == pytest.approx(0.1741, abs=1e-4)
    assert expected["service_level"] == pytest.approx(0.8884, abs=1e-4)
    assert expected["asa"] == pytest.approx(7.84, abs=0.01)
    runs = _replications(None)
    assert all(r.queues["q"].abandoned == 0 for r in runs.results)
    for metric, value in expected.items():
        low, high = runs.conf_int("q", metric, alpha=0.01)
        assert low <= value <= high, (metric, value, (low, high))
    low, high = runs.conf_int("q", "p_wait", alpha=0.01)
    assert high - low < 0.06
    low, high = runs.conf_int("q", "aht", alpha=0.01)
    assert low <= AHT_S <= high


def test_erlang_a_agrees_within_confidence_intervals() -> None:
    p_wait, p_abandon = _erlang_a(AGENTS, LAMBDA, 1 / AHT_S, 1 / PATIENCE_S)
    assert p_wait == pytest.approx(0.1453, abs=1e-4)
    assert p_abandon == pytest.approx(0.0140, abs=1e-4)
    runs = _replications(PATIENCE_S)
    for metric, value in (("p_wait", p_wait), ("p_abandon", p_abandon)):
        low, high = runs.conf_int("q", metric, alpha=0.01)
        assert low <= value <= high, (metric, value, (low, high))
    low, high = runs.conf_int("q", "p_wait", alpha=0.01)
    assert high - low < 0.06


# -- callers and agents ---------------------------------------------------------------------


def test_abandoning_callers_retry_from_the_same_number() -> None:
    scenario = _scenario(
        center=_center(1),
        queue_defaults={
            "handle_time": {"dist": "deterministic", "value": 300},
            "patience": {"dist": "deterministic", "value": 30},
            "retrial": {"probability": 1.0, "delay": {"dist": "deterministic", "value": 60},
                        "max_attempts": 2}},
        arrivals=[{"number": "4001", "interval_minutes": 60, "calls": [20, 20]}],
        callers={"prefix": "+8613", "digits": 12})
    events = _events(load_scenario(scenario), seed=5)
    offers = [e for e in events if e.type == "call.offered"]
    by_caller = Counter(e.payload.caller for e in offers)
    assert max(by_caller.values()) == 3  # the first call and two retrials
    repeat = next(c for c, n in by_caller.items() if n > 1)
    calls = [e for e in offers if e.payload.caller == repeat]
    abandoned = {e.payload.call_id: e.occurred_at for e in events if e.type == "call.ended"
                 and e.payload.disposition == "abandoned"}
    assert calls[1].occurred_at - abandoned[calls[0].payload.call_id] == timedelta(seconds=60)
    assert {e.payload.dialed for e in calls} == {"4001"}


def _shift_scenario(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "start": "2026-03-02", "timezone": "Asia/Shanghai",
        "center": _center(3, after_call_work_s=10),
        "queue_defaults": {"handle_time": {"dist": "deterministic", "value": 1800}},
        "arrivals": [{"number": "4001", "start": "09:00", "calls": [0]}],
        "schedules": [{"agents": ["a00", "a01", "a02"], "start": "09:00", "end": "12:00",
                       "stagger_minutes": 30,
                       "breaks": [{"start": "10:00", "minutes": 15, "reason": "break"}]}],
    }
    return _scenario(**{**settings, **overrides})


def _agent_timeline(events: list[Event[Payload]], agent: str) -> list[tuple[str, str]]:
    timeline = []
    for e in events:
        if e.key != agent or not e.type.startswith("agent."):
            continue
        label = e.type if e.type != "agent.state_changed" else (
            f"{e.payload.state}:{e.payload.reason or ''}")
        timeline.append((e.occurred_at.strftime("%H:%M:%S"), label))
    return timeline


def test_shifts_log_agents_in_and_out_with_breaks_at_the_right_instants() -> None:
    events = _events(load_scenario(_shift_scenario()))
    # 09:00 Shanghai is 01:00 UTC; the third agent starts 20 minutes later.
    assert _agent_timeline(events, "a02") == [
        ("01:20:00", "agent.logged_in"), ("01:20:00", "not_ready:login"),
        ("01:20:00", "ready:"), ("02:20:00", "not_ready:break"), ("02:35:00", "ready:"),
        ("04:20:00", "not_ready:end_of_shift"), ("04:20:00", "agent.logged_out")]
    assert _agent_timeline(events, "a00")[0] == ("01:00:00", "agent.logged_in")
    assert _agent_timeline(events, "a01")[-1] == ("04:10:00", "agent.logged_out")


@pytest.mark.parametrize("wrap_up_s", [10, 0])
def test_an_agent_on_a_call_at_the_end_of_the_shift_leaves_after_wrap_up(
        wrap_up_s: int) -> None:
    scenario = _shift_scenario(
        center=_center(1, after_call_work_s=wrap_up_s),
        arrivals=[{"number": "4001", "start": "11:40", "interval_minutes": 5, "calls": [4]}],
        schedules=[{"agents": ["a00"], "start": "09:00", "end": "12:00"}])
    events = _events(load_scenario(scenario), seed=2)
    answered = next(e for e in events if e.type == "call.answered")
    hung_up = next(e for e in events if e.type == "call.ended"
                   and e.payload.call_id == answered.payload.call_id)
    assert hung_up.occurred_at - answered.occurred_at == timedelta(minutes=30)
    logged_out = next(e for e in events if e.type == "agent.logged_out")
    assert logged_out.occurred_at - hung_up.occurred_at == timedelta(seconds=wrap_up_s)
    assert logged_out.payload.reason == "end_of_shift"
    # Calls still waiting were never offered to the leaving agent; the last one hangs up.
    assert sum(e.type == "call.answered" for e in events) == 1


def test_agents_who_let_calls_ring_out_become_ready_again() -> None:
    scenario = _scenario(
        center=_center(4, ring_timeout_s=5),
        queue_defaults={"handle_time": {"dist": "exponential", "mean": 120},
                        "rona_probability": 0.3,
                        "rona_recovery": {"dist": "deterministic", "value": 20}},
        arrivals=[{"number": "4001", "calls": [30, 30]}])
    events = _events(load_scenario(scenario), seed=9)
    ronas = [e for e in events if e.type == "call.rona"]
    assert ronas
    rona_states = [e for e in events if e.type == "agent.state_changed"
                   and e.payload.reason == "rona"]
    first = rona_states[0]
    back = next(e for e in events if e.type == "agent.state_changed"
                and e.key == first.key and e.occurred_at > first.occurred_at)
    assert back.payload.state == "ready"
    assert back.occurred_at - first.occurred_at == timedelta(seconds=20)
    ended = Counter(e.payload.disposition for e in events if e.type == "call.ended")
    assert ended["answered"] == sum(ended.values())


# -- published forecasts and schedules ------------------------------------------------------


def _write_events(path: Path, payloads: list[Payload]) -> str:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    path.write_text("\n".join(encode_event(make_event(p, occurred_at=at, source="wfm")).decode()
                              for p in payloads))
    return str(path)


def test_published_forecast_and_schedule_drive_arrivals_and_shifts(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    forecast = ForecastPublished(
        queue="q", forecast_id="f", version=2, interval_minutes=60, start=start,
        end=start + timedelta(hours=2), model="ets", published_by="planner",
        intervals=[ForecastInterval(start=start, calls=40),
                   ForecastInterval(start=start + timedelta(hours=1), calls=0)])
    older = msgspec.structs.replace(forecast, version=1, intervals=[
        ForecastInterval(start=start + timedelta(hours=1), calls=500)])
    schedule = SchedulePublished(
        queue="q", schedule_id="s", version=1, start=start, end=start + timedelta(hours=3),
        published_by="planner", shifts=[ScheduledShift(
            agent_id="a00", start=start - timedelta(minutes=30), end=start + timedelta(hours=3),
            activities=[ScheduledActivity(kind="meeting", start=start + timedelta(hours=2),
                                          end=start + timedelta(hours=2, minutes=30))])])
    scenario = _scenario(
        center=_center(3),
        arrivals=[{"number": "4001",
                   "forecast": _write_events(tmp_path / "f.jsonl", [older, forecast])}],
        schedule_file=_write_events(tmp_path / "s.jsonl", [schedule]),
        unscheduled_agents="absent")
    events = _events(load_scenario(scenario, base=tmp_path), seed=4)
    offered = [e.occurred_at for e in events if e.type == "call.offered"]
    assert 15 <= len(offered) <= 70
    assert all(start <= t < start + timedelta(hours=1) for t in offered)
    assert {e.key for e in events if e.type == "agent.logged_in"} == {"a00"}
    assert _agent_timeline(events, "a00")[0] == ("08:30:00", "agent.logged_in")
    assert ("11:00:00", "not_ready:meeting") in _agent_timeline(events, "a00")
    assert _agent_timeline(events, "a00")[-1] == ("12:00:00", "agent.logged_out")
    with pytest.raises(ScenarioError, match=r"no wfm\.forecast_published event for queue 'q'"):
        load_scenario(_scenario(arrivals=[{
            "number": "4001", "forecast": _write_events(tmp_path / "x.jsonl", [schedule])}]))


# -- output -----------------------------------------------------------------------------------


def test_writing_to_an_embedded_log_stores_exactly_the_simulated_events(tmp_path: Path) -> None:
    seen: list[Event[Payload]] = []
    log = EventLog(EmbeddedTransport(tmp_path / "log.sqlite3"))
    try:
        result = Simulation("demo", seed=11).run(log=log, on_events=seen.extend,
                                                 batch_size=4_000)
        with log.consumer(group=None) as consumer:
            stored = [d.event for d in collect(consumer, result.events)]
            assert consumer.poll(timeout=0.2) == []
    finally:
        log.close()

    def canonical(events: list[Event[Payload]]) -> list[bytes]:
        return sorted(encode_event(msgspec.structs.replace(e, recorded_at=None)) for e in events)

    assert len(stored) == len(seen) == result.events
    assert canonical(stored) == canonical(seen)


def test_speed_paces_the_virtual_clock() -> None:
    scenario = _scenario(arrivals=[{"number": "4001", "interval_minutes": 1, "calls": [2]}],
                         drain_minutes=0, days=1)
    model = Simulation(load_scenario(scenario))
    progress: list[tuple[int, int]] = []
    # A paced run lasts until the end of the simulated day: here 0.1 s.
    result = model.run(speed=10 * 86_400, on_progress=lambda d, t: progress.append((d, t)))
    assert 0.09 <= result.wall_s < 1.0
    assert progress[-1] == (86_400_000, 86_400_000)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


# -- the command ------------------------------------------------------------------------------


def test_simulate_command_prints_json_and_writes_the_log(home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "demo", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["queues"]) == {"sales", "support", "billing"}
    for figures in summary["queues"].values():
        assert {"offered", "answered", "abandoned", "service_level", "asa", "aht"} <= set(
            figures)
    assert summary["events"] > 10_000
    assert (home / "eventlog" / "events.sqlite3").exists()
    shown = runner.invoke(app, ["simulate", "demo", "--no-log", "--fast"])
    assert shown.exit_code == 0, shown.output
    assert "support" in shown.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["simulate", "nope"], "no such scenario file"),
    (["simulate", "demo", "--fast", "--speed", "2"], "--speed X or --fast"),
    (["simulate", "demo", "--days", "0"], "days must be at least 1"),
])
def test_simulate_command_refuses_bad_input(home: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output



# -- IVR --------------------------------------------------------------------------------------

BANK_FLOW = """
flows:
  bank:
    start: account
    nodes:
      account: {kind: collect, prompt: Enter your account number., variable: account,
                min_digits: 4, max_digits: 4, terminator: "#", on_fail: agent, next: pin}
      pin: {kind: pin_check, prompt: {file: pin.wav}, hook: verify_pin,
            args: {account: "{account}"}, store: [name], min_digits: 4, max_digits: 4,
            terminator: "#", next: agent, on_fail: bye}
      agent: {kind: transfer, target_kind: queue, target: q}
      bye: {kind: hangup}
"""


def _ivr_scenario(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    (tmp_path / "bank.yaml").write_text(BANK_FLOW)
    center = _center(4)
    center["numbers"].append({"number": "4002", "entry": {"kind": "ivr", "target": "bank"}})
    settings: dict[str, Any] = {
        "center": center, "flows": ["bank.yaml"],
        "arrivals": [{"number": "4002", "calls": [40, 40]}],
        "hooks": {"verify_pin": {"found": 0.5, "values": {"name": "Li"}}},
        "ivr": [{"flow": "bank", "node": "account", "press": {"1234#": 1.0}},
                {"flow": "bank", "node": "pin", "press": {"9999#": 1.0}}],
    }
    return _scenario(**{**settings, **overrides})


def test_ivr_callers_press_keys_per_menu_node_and_hooks_answer(tmp_path: Path) -> None:
    events = _events(load_scenario(_ivr_scenario(tmp_path), base=tmp_path), seed=6)
    visits = Counter((e.payload.node, e.payload.outcome, e.payload.digits) for e in events
                     if e.type == "call.ivr_node")
    assert visits[("account", "collected", "1234")] > 0
    assert visits[("pin", "pin_ok", None)] > 0
    assert visits[("pin", "pin_failed", None)] > 0
    ended = Counter(e.payload.disposition for e in events if e.type == "call.ended")
    # Three wrong PINs in a row (1 in 8) hang up; the others reach the queue.
    assert 0 < ended["ivr_completed"] < ended["answered"]
    queued = {e.payload.call_id for e in events if e.type == "call.queued"}
    assert len(queued) == ended["answered"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"hooks": {}}, "node 'pin': hook 'verify_pin' is not a known hook"),
    ({"flows": []}, "center.numbers: 4002 enters IVR flow 'bank'; add the file defining it"),
    ({"ivr": [{"flow": "bnak", "press": {"1": 1}}]}, "ivr[0].flow: no IVR flow 'bnak' is "
     "loaded; known: bank"),
    ({"ivr": [{"flow": "bank", "node": "agent", "press": {"1": 1}}]},
     "ivr[0].node: 'agent' is not a node of flow 'bank' that waits for keys; use one of "
     "account, pin"),
    ({"hooks": {"verify_pin": {"found": 0.5}}},
     "hooks.verify_pin.values: flow 'bank' node 'pin' stores name; add them"),
    ({"center": {**_center(1), "numbers": [
        {"number": "4002", "entry": {"kind": "ivr", "target": "bank"}}],
        "queues": [{"name": "other"}], "agents": [{"id": "a", "skills": {"other": 1}}]},
      "arrivals": [{"number": "4002", "calls": [1]}]},
     "flows: flow 'bank' node 'agent' transfers to unknown queue 'q'; add it to the center"),
])
def test_ivr_settings_are_checked_against_the_flows(tmp_path: Path, change: dict[str, Any],
                                                    expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_ivr_scenario(tmp_path, **change), base=tmp_path)
    assert expected in str(caught.value)
