"""Handle-time and patience fitting (inputs of WF-04) and the Anonymous Bank importer.

Hand-computed Kaplan–Meier values, censored maximum likelihood recovering known
parameters, the Mandelbaum–Zeltyn cross-check, and the real Anonymous Bank month.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from support import REAL_DATA

from callcore.scenario import Empirical, Exponential, Lognormal
from ingest.importers import ImportFormatError
from ingest.importers.anonymous_bank import HEADER, read_anonymous_bank
from scheduling.fitting import (
    FitError,
    abandonment_regression,
    fit_handle_time,
    fit_patience,
    kaplan_meier,
)

BANK = REAL_DATA / "anonymous_bank_one_month_calls.csv"
needs_bank = pytest.mark.skipif(
    not BANK.exists(), reason=f"real data absent: {BANK} (see ../shared/data/real/SOURCES.md)")


def _censored(rng: np.random.Generator, n: int, patience: np.ndarray | None = None,
              wait_mean: float = 120.0, patience_mean: float = 240.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Waits and abandon flags: patience ~ Exp(patience_mean) censored by Exp(wait_mean)."""
    p = rng.exponential(patience_mean, n) if patience is None else patience
    w = rng.exponential(wait_mean, n)
    return np.minimum(p, w), p < w


# -- Kaplan–Meier ------------------------------------------------------------------------


def test_kaplan_meier_matches_the_hand_computed_curve() -> None:
    # durations 1 2 2+ 3 4+ 5 ("+": censored)
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True])
    np.testing.assert_array_equal(km.times, [1, 2, 3, 5])
    np.testing.assert_array_equal(km.at_risk, [6, 5, 3, 1])
    np.testing.assert_allclose(km.survival, [5 / 6, 2 / 3, 4 / 9, 0.0])
    # Greenwood: S(1)^2 * 1 / (6 * 5)
    assert km.std_err[0] == pytest.approx(5 / 6 * math.sqrt(1 / 30))
    assert km.median == 3.0
    # area: 1 + 5/6 + 2/3 + 2 * 4/9
    assert km.restricted_mean() == pytest.approx(61 / 18)
    assert km.restricted_mean(2.5) == pytest.approx(1 + 5 / 6 + 0.5 * 2 / 3)
    np.testing.assert_allclose(km.survival_at([0.5, 1, 2.9, 3, 10]),
                               [1, 5 / 6, 2 / 3, 4 / 9, 0])


def test_kaplan_meier_counts_censorings_at_an_event_time_as_still_at_risk() -> None:
    # at t = 2 one event and two censorings: all three are at risk, so S drops by 1/3,
    # not by 1/1 (censorings first) or 1/2
    km = kaplan_meier([2, 2, 2, 4], [False, True, False, True])
    np.testing.assert_array_equal(km.at_risk, [4, 1])
    np.testing.assert_allclose(km.survival, [3 / 4, 0.0])
    tied = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 0, 1, 1, 0, 1])  # order within a tie is moot
    np.testing.assert_allclose(tied.survival, [5 / 6, 2 / 3, 4 / 9, 0.0])
    rng = np.random.default_rng(3)
    order = rng.permutation(6)
    shuffled = kaplan_meier(np.array([1, 2, 2, 3, 4, 5])[order],
                            np.array([1, 1, 0, 1, 0, 1], dtype=bool)[order])
    np.testing.assert_allclose(shuffled.survival, tied.survival)


def test_without_censoring_the_kaplan_meier_quantiles_are_the_sample_quantiles() -> None:
    x = np.random.default_rng(5).exponential(100, 501).round()
    fit = fit_patience(x, np.ones(x.size, dtype=bool))
    assert fit.tail_mass == 0
    p = np.array([0.1, 0.25, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(fit.quantile(p), np.quantile(x, p, method="inverted_cdf"))
    assert fit.median == np.quantile(x, 0.5, method="inverted_cdf")
    assert fit.restricted_mean == pytest.approx(x.mean())


def test_the_tail_beyond_the_last_wait_is_exponential_and_documented_in_the_mean() -> None:
    # everyone still waiting at 100 s is censored there: 40 % of the mass is in the tail
    waits = np.array([10.0] * 30 + [50.0] * 30 + [100.0] * 40)
    gave_up = np.array([True] * 60 + [False] * 40)
    fit = fit_patience(waits, gave_up, tail_mean=200.0)
    assert fit.km.last_time == 100
    assert fit.tail_mass == pytest.approx(0.4)
    assert fit.restricted_mean == pytest.approx(10 + 0.7 * 40 + 0.4 * 50)
    assert fit.km_mean == pytest.approx(58 + 0.4 * 200)
    np.testing.assert_allclose(fit.quantile([0.3, 0.6]), [10, 50])
    # P(T > 100 + s) = 0.4 exp(-s / 200)
    assert fit.quantile(0.8) == pytest.approx(100 + 200 * math.log(0.4 / 0.2))
    draws = fit.sample(np.random.default_rng(8), 200_000)
    assert draws.mean() == pytest.approx(fit.km_mean, rel=0.01)
    assert np.mean(draws > 100) == pytest.approx(0.4, abs=0.005)
    grid = fit.distribution
    assert isinstance(grid, Empirical)
    assert len(grid.values) == 1000
    assert grid.mean_s == pytest.approx(fit.km_mean, rel=0.01)


# -- parametric fits ---------------------------------------------------------------------------


def test_censored_exponential_mle_recovers_the_rate_with_nominal_coverage() -> None:
    rng = np.random.default_rng(11)
    waits, gave_up = _censored(rng, 20_000)
    fit = fit_patience(waits, gave_up, families=())
    low, high = fit.exponential_ci
    assert low < 240 < high
    assert high - low < 15  # about 6,700 abandonments: +-2.4 %
    assert fit.exponential_mean == pytest.approx(waits.sum() / gave_up.sum())
    assert fit.pooled_ratio_mean == pytest.approx(fit.exponential_mean)  # by algebra
    assert isinstance(fit.parametric["exponential"].distribution, Exponential)
    covered = 0
    for _ in range(300):
        w, g = _censored(rng, 400)
        lo, hi = fit_patience(w, g, families=()).exponential_ci
        covered += lo < 240 < hi
    assert 0.91 <= covered / 300 <= 0.985


def test_censored_weibull_and_lognormal_mle_recover_known_parameters() -> None:
    rng = np.random.default_rng(21)
    weibull = 300 * rng.weibull(0.7, 8000)
    fit = fit_patience(*_censored(rng, 8000, patience=weibull, wait_mean=400), method="weibull")
    assert fit.parametric["weibull"].params["shape"] == pytest.approx(0.7, rel=0.05)
    assert fit.parametric["weibull"].params["scale"] == pytest.approx(300, rel=0.06)
    assert fit.parametric["weibull"].aic < fit.parametric["exponential"].aic
    lognormal = rng.lognormal(5.0, 1.2, 8000)
    fit = fit_patience(*_censored(rng, 8000, patience=lognormal, wait_mean=400),
                       method="lognormal")
    assert fit.parametric["lognormal"].params["mu"] == pytest.approx(5.0, abs=0.06)
    assert fit.parametric["lognormal"].params["sigma"] == pytest.approx(1.2, rel=0.05)
    assert isinstance(fit.distribution, Lognormal)
    assert min(fit.parametric.values(), key=lambda f: f.aic).family == "lognormal"


def test_abandonment_regression_recovers_the_mean_patience_across_loads() -> None:
    rng = np.random.default_rng(31)
    waits, gave_up, groups = [], [], []
    for g, wait_mean in enumerate([10, 20, 40, 60, 90, 120, 180, 240]):
        w, a = _censored(rng, 4000, wait_mean=wait_mean, patience_mean=300)
        waits.append(w)
        gave_up.append(a)
        groups.append(np.full(w.size, g))
    reg = abandonment_regression(np.concatenate(waits), np.concatenate(gave_up),
                                 np.concatenate(groups))
    assert reg.mean_patience == pytest.approx(300, rel=0.05)
    assert reg.r_squared > 0.99
    assert len(reg.points) == 8


def test_handle_time_prefers_a_close_lognormal_and_falls_back_to_the_sample() -> None:
    rng = np.random.default_rng(41)
    x = rng.lognormal(5.0, 0.8, 5000).round()  # recorded in whole seconds
    fit = fit_handle_time(x, resolution=1.0)
    assert fit.chosen == "lognormal"
    assert fit.lognormal_mu == pytest.approx(5.0, abs=0.03)
    assert fit.lognormal_sigma == pytest.approx(0.8, rel=0.03)
    assert fit.ks["lognormal"] < fit.ks_critical < fit.ks["exponential"]
    assert isinstance(fit.distribution, Lognormal)
    assert fit.distribution.mean_s == pytest.approx(math.exp(5 + 0.32), rel=0.03)
    # two kinds of calls, 30 s and 400 s: no lognormal fits, the sample itself is used
    mixed = np.concatenate([rng.normal(30, 3, 3000), rng.normal(400, 40, 3000), [0.0, 0.0]])
    fit = fit_handle_time(mixed)
    assert fit.chosen == "empirical"
    assert fit.excluded == 2
    assert fit.distribution.mean_s == pytest.approx(mixed[mixed > 0].mean())
    assert fit_handle_time(mixed, choose="exponential").distribution == Exponential(
        mean=pytest.approx(mixed[mixed > 0].mean()))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: fit_patience([10, -1], [True, False]), "waits must be >= 0"),
    (lambda: fit_patience([10, 20], [False, False]), "no True value"),
    (lambda: fit_patience([10, 20], [True]), "abandoned has 1 values for 2 waits"),
    (lambda: fit_patience([10, 20], [True, False], method="gamma"), "method 'gamma'"),
    (lambda: fit_handle_time([0, 0, 5]), "give at least two handle times"),
    (lambda: kaplan_meier([1.0, math.nan], [True, True]), "durations holds NaN"),
])
def test_bad_inputs_name_the_argument_and_the_fix(call: object, message: str) -> None:
    with pytest.raises(FitError, match=message):
        call()  # type: ignore[operator]


# -- the Anonymous Bank importer ---------------------------------------------------------------


def test_importer_rejects_unreadable_rows_with_their_line_and_keeps_the_rest(
        tmp_path: Path) -> None:
    good = ("AA0101,1,0,0,PS,2010-08-01,9:00:00,9:00:10,10,9:00:10,9:01:10,60,AGENT,9:01:10,"
            "9:04:10,180,AVI")
    wrap = ("AA0101,2,55,2,NE,2010-08-01,23:59:50,0:00:05,15,0:00:05,0:00:35,30,HANG,0:00:00,"
            "0:00:00,0,NO_SERVER")
    lines = [",".join(HEADER), good, wrap,
             good.replace("2010-08-01", "2010-13-01"),        # line 4: bad date
             good.replace("AGENT", "ROBOT"),                   # line 5: unknown outcome
             good.replace(",60,AGENT", ",-60,AGENT"),          # line 6: negative wait
             good + ",EXTRA",                                  # line 7: 18 fields
             "",                                               # line 8: empty
             good.replace("9:01:10,60", "9:61:10,60"),          # line 9: bad clock time
             good.replace(",1,0,0,", ",x,0,0,")]                # line 10: kept, flagged
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(lines) + "\n")
    result = read_anonymous_bank(path)
    report = result.report
    assert (report.rows_read, report.rows_kept) == (9, 3)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (4, "date is not YYYY-MM-DD"), (5, "outcome is not AGENT, HANG or PHANTOM"),
        (6, "q_time is negative"), (7, "18 fields, not 17"), (8, "empty row"),
        (9, "q_exit is not a clock time H:MM:SS")]
    assert report.flagged == {"call_id is not a number": 1}
    calls = result.calls
    assert calls["line"].tolist() == [2, 3, 10]
    first, second = calls.iloc[0], calls.iloc[1]
    assert (first["served"], first["wait_s"], first["service_s"]) == (True, 60.0, 180.0)
    assert str(first["arrival"]) == "2010-08-01 09:00:10"
    # left the VRU after midnight: the next day
    assert str(second["arrival"]) == "2010-08-02 00:00:05"
    assert (second["abandoned"], second["offered"], second["priority"]) == (True, True, 2)
    assert math.isnan(second["service_s"])
    assert calls["call_id"].isna().tolist() == [False, False, True]
    bad = tmp_path / "other.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ImportFormatError, match="header must be vru\\+line,call_id"):
        read_anonymous_bank(bad)


@pytest.fixture(scope="module")
def bank() -> object:
    if not BANK.exists():
        pytest.skip(f"real data absent: {BANK} (see ../shared/data/real/SOURCES.md)")
    return read_anonymous_bank(BANK)


@needs_bank
def test_the_real_month_imports_every_row_and_flags_its_oddities(bank: object) -> None:
    report, calls = bank.report, bank.calls  # type: ignore[attr-defined]
    assert (report.rows_read, report.rows_kept, len(report.rejected)) == (42_078, 42_078, 0)
    assert calls["outcome"].value_counts().to_dict() == {
        "AGENT": 31_402, "HANG": 10_366, "PHANTOM": 310}
    assert report.flagged == {
        "call_id is not a number": 1, "vru_exit before vru_entry": 19,
        "served without a server name": 391, "served for 0 s": 125,
        "hung up with a service record": 126}
    assert int(calls["offered"].sum()) == 38_711   # queued or served, PHANTOM left out
    assert int(calls["abandoned"].sum()) == 7_309  # hung up in the queue
    assert int(calls["vru_abandoned"].sum()) == 3_057
    assert int(calls["queued"].sum()) == 26_011
    assert calls["arrival"].min() >= calls["entered"].min()
    assert (calls.loc[calls["served"] & ~calls["queued"], "wait_s"] == 0).all()


@needs_bank
def test_patience_on_the_real_month(bank: object) -> None:
    calls = bank.calls  # type: ignore[attr-defined]
    offered = calls[calls["offered"]]
    fit = fit_patience(offered["wait_s"], offered["abandoned"],
                       groups=offered["arrival"].dt.strftime("%Y-%m-%d %H"))
    assert (fit.calls, fit.abandoned) == (38_711, 7_309)
    assert fit.median == 364.0                                   # KM median, ~6 min
    assert fit.exponential_mean == pytest.approx(406.04, abs=0.01)
    assert fit.exponential_ci == pytest.approx((396.84, 415.46), abs=0.01)
    assert fit.regression is not None
    assert fit.regression.mean_patience == pytest.approx(419.3, abs=0.1)
    assert fit.restricted_mean == pytest.approx(626.4, abs=0.1)
    # the hazard bump at the 60-second queue announcement (Brown et al. 2005)
    hazard = fit.life_table.set_index("start")["hazard_per_s"]
    assert hazard[50.0] > 1.3 * hazard[30.0]
    assert hazard[50.0] > 1.3 * hazard[70.0]
    # decreasing hazard overall: Weibull shape < 1 beats the exponential
    assert fit.parametric["weibull"].params["shape"] == pytest.approx(0.79, abs=0.01)
    assert fit.parametric["weibull"].aic < fit.parametric["exponential"].aic


@needs_bank
def test_handle_time_on_the_real_month_is_lognormal_once_short_calls_are_left_out(
        bank: object) -> None:
    calls = bank.calls  # type: ignore[attr-defined]
    service = calls.loc[calls["served"], "service_s"]
    full = fit_handle_time(service, resolution=1.0)
    assert (full.n, full.excluded) == (31_277, 125)
    assert full.mean == pytest.approx(185.13, abs=0.01)
    assert full.chosen == "empirical"  # 5 % of services under 10 s spoil the lognormal
    assert full.ks["lognormal"] == pytest.approx(0.082, abs=0.001)
    trimmed = fit_handle_time(service, resolution=1.0, min_seconds=9.5)
    assert trimmed.chosen == "lognormal"
    assert trimmed.ks["lognormal"] == pytest.approx(0.017, abs=0.001)
    assert trimmed.ks["exponential"] > 5 * trimmed.ks["lognormal"]
