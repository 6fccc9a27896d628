"""Erlang B, C and A against published values, stability at scale, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.wfm import chain_erlang_a
from queuecast.cli import app
from scheduling import (
    apply_shrinkage,
    erlang_b,
    erlang_c,
    queue_metrics,
    required_agents,
)

TOL = 1e-6


def test_erlang_b_published() -> None:
    assert erlang_b(16, 10.0) == pytest.approx(0.022302, abs=TOL)
    assert erlang_b(17, 10.0) == pytest.approx(0.012949, abs=TOL)


def test_erlang_c_published_100_calls() -> None:
    m = queue_metrics(calls=100, aht=180, agents=[14, 13], interval_minutes=30, answer_within=20)
    np.testing.assert_allclose(m.p_wait, [0.174132, 0.285270], atol=TOL)
    np.testing.assert_allclose(m.service_level, [0.888350, 0.795595], atol=TOL)
    assert m.asa[0] == pytest.approx(7.836, abs=1e-3)
    np.testing.assert_allclose(m.occupancy, [10 / 14, 10 / 13])
    assert np.all(m.p_abandon == 0)
    assert erlang_c(14, 10.0) == pytest.approx(0.174132, abs=TOL)


def test_erlang_c_published_360_calls() -> None:
    m = queue_metrics(calls=360, aht=240, agents=55, answer_within=15)
    assert m.p_wait == pytest.approx(0.238701, abs=TOL)
    assert m.service_level == pytest.approx(0.8459, abs=1e-4)


def test_required_agents_with_shrinkage() -> None:
    r = required_agents(calls=100, aht=180, service_level=0.8, answer_within=20, shrinkage=0.3)
    assert int(r.agents) == 14
    assert int(r.agents_with_shrinkage) == 20
    assert apply_shrinkage(14, 0.3) == 20


def test_erlang_a_published() -> None:
    # 10/3 calls per minute = 100 per 30 min; AHT 3 min; mean patience 5 min
    m = queue_metrics(calls=100, aht=180, agents=[14, 13], patience=300)
    np.testing.assert_allclose(m.p_wait, [0.145260, 0.225797], atol=TOL)
    np.testing.assert_allclose(m.p_abandon, [0.013984, 0.024963], atol=TOL)


def test_erlang_a_tends_to_erlang_c_with_long_patience() -> None:
    a = queue_metrics(calls=100, aht=180, agents=14, patience=1e6)
    c = queue_metrics(calls=100, aht=180, agents=14)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-4)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-4)
    assert a.asa == pytest.approx(c.asa, rel=1e-3)


def test_erlang_a_service_level_consistent() -> None:
    m = queue_metrics(calls=100, aht=180, agents=np.arange(8, 20), patience=300)
    assert np.all((m.service_level >= 0) & (m.service_level <= 1))
    assert np.all(np.diff(m.service_level) > 0)
    # answered within T cannot exceed answered overall
    assert np.all(m.service_level <= 1 - m.p_abandon + 1e-12)
    # answered without waiting is answered within T
    assert np.all(m.service_level >= 1 - m.p_wait)


@pytest.mark.parametrize(("calls", "aht", "agents", "patience"),
                         [(100, 180, 14, 300), (360, 240, 44, 120), (40, 300, 5, 60)])
def test_erlang_a_matches_brute_force(calls: float, aht: float, agents: int,
                                      patience: float) -> None:
    p_wait, p_ab, sl = chain_erlang_a(agents, calls / 1800.0, aht, patience, 20.0,
                                      extra_states=400)
    m = queue_metrics(calls=calls, aht=aht, agents=agents, patience=patience)
    assert float(m.p_wait) == pytest.approx(p_wait, abs=1e-9)
    assert float(m.p_abandon) == pytest.approx(p_ab, abs=1e-9)
    assert float(m.service_level) == pytest.approx(sl, abs=1e-9)


@pytest.mark.parametrize("patience", [None, 300.0])
def test_stable_at_5000_erlangs(patience: float | None) -> None:
    agents = np.arange(4900, 5301, 25)
    m = queue_metrics(calls=50_000, aht=180, agents=agents, patience=patience)
    np.testing.assert_allclose(m.load, 5000.0)
    for values in (m.p_wait, m.service_level, m.occupancy, m.p_abandon):
        assert np.all(np.isfinite(values))
        assert np.all((values >= 0) & (values <= 1))
    assert np.all(np.diff(m.p_wait) <= 0)
    assert np.all(np.diff(m.service_level) >= 0)
    assert np.all(np.diff(m.p_abandon) <= 0)
    b = erlang_b(np.arange(4000, 6001, 100), 5000.0)
    assert np.all(np.isfinite(b))
    assert np.all(np.diff(b) < 0)


def test_erlang_b_recursion_matches_closed_form_deep_overload() -> None:
    # far below the load the closed form underflows and the recursion takes over
    assert erlang_b(100, 5000.0) == pytest.approx(1 - 100 / 5000, abs=1e-3)
    assert erlang_b(np.arange(0, 3), 0.0).tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("patience", [None, 300.0])
def test_vectorized_equals_scalar(patience: float | None) -> None:
    calls = np.array([40.0, 100.0, 360.0, 0.0])
    aht = np.array([200.0, 180.0, 240.0, 180.0])
    agents = np.array([6, 14, 55, 1])
    m = queue_metrics(calls=calls, aht=aht, agents=agents, patience=patience)
    for i in range(len(calls)):
        one = queue_metrics(calls=calls[i], aht=aht[i], agents=agents[i], patience=patience)
        for field in ("p_wait", "service_level", "asa", "occupancy", "p_abandon"):
            assert getattr(m, field)[i] == pytest.approx(float(getattr(one, field)), abs=1e-12)
    r = required_agents(calls=calls, aht=aht, service_level=0.8, patience=patience)
    for i in range(len(calls)):
        one = required_agents(calls=calls[i], aht=aht[i], service_level=0.8, patience=patience)
        assert r.agents[i] == int(one.agents)


def test_required_agents_targets() -> None:
    r = required_agents(calls=100, aht=180, max_asa=7.9)
    assert int(r.agents) == 14
    r = required_agents(calls=100, aht=180, max_occupancy=0.7)
    assert int(r.agents) == 15
    r = required_agents(calls=100, aht=180, patience=300, max_abandon=0.02)
    assert int(r.agents) == 14
    assert float(r.metrics.p_abandon) <= 0.02
    big = required_agents(calls=50_000, aht=180, service_level=0.8)
    m = queue_metrics(calls=50_000, aht=180, agents=big.agents - 1)
    assert float(big.metrics.service_level) >= 0.8 > float(m.service_level)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls": -1, "aht": 180, "service_level": 0.8}, "calls must be >= 0"),
        ({"calls": 100, "aht": 0, "service_level": 0.8}, "aht must be > 0"),
        ({"calls": 100, "aht": 180, "service_level": 80}, "service_level must be a fraction"),
        ({"calls": 100, "aht": 180, "shrinkage": 1.0}, "shrinkage must be a fraction"),
        ({"calls": 100, "aht": 180, "max_abandon": 0.05}, "max_abandon needs patience"),
    ],
)
def test_errors_name_the_argument(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        required_agents(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="agents must be whole numbers"):
        queue_metrics(calls=100, aht=180, agents=13.5)


def test_results_are_frozen() -> None:
    m = queue_metrics(calls=100, aht=180, agents=14)
    with pytest.raises(AttributeError):
        m.p_wait = 0  # type: ignore[misc]


runner = CliRunner()
BASE = ["staff", "--calls", "100", "--interval-minutes", "30", "--aht", "180", "--sl", "0.8",
        "--answer-within", "20", "--json"]


def test_cli_staff_required() -> None:
    result = runner.invoke(app, [*BASE, "--shrinkage", "0.3"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"agents", "agents_with_shrinkage", "p_wait", "service_level", "asa",
                        "occupancy", "p_abandon"}
    assert out["agents"] == 14
    assert out["agents_with_shrinkage"] == 20
    assert out["p_wait"] == pytest.approx(0.174132, abs=TOL)
    assert out["service_level"] == pytest.approx(0.888350, abs=TOL)
    assert out["p_abandon"] == 0


def test_cli_staff_given_agents_and_patience() -> None:
    out = json.loads(runner.invoke(app, [*BASE, "--agents", "13"]).output)
    assert out["agents"] == 13
    assert out["service_level"] == pytest.approx(0.795595, abs=TOL)
    out = json.loads(runner.invoke(app, [*BASE, "--agents", "13", "--patience", "300"]).output)
    assert out["p_wait"] == pytest.approx(0.225797, abs=TOL)
    assert out["p_abandon"] == pytest.approx(0.024963, abs=TOL)
    result = runner.invoke(app, [*BASE, "--max-occupancy", "0.7"])
    assert json.loads(result.output)["agents"] == 15


def test_cli_staff_bad_input() -> None:
    result = runner.invoke(app, [*BASE, "--shrinkage", "1.5"])
    assert result.exit_code == 2
    assert "shrinkage" in result.output
