"""Handle-time and patience distributions fitted from per-call history (inputs of WF-04).

Pure functions over numpy arrays (columns of a per-call DataFrame); no I/O.

* ``fit_handle_time``: lognormal maximum likelihood and the empirical distribution, each
  scored by the Kolmogorov–Smirnov distance; the lognormal is chosen when it is close
  enough (``max_ks``), else the empirical one.
* ``fit_patience``: callers who abandon reveal their patience, served callers only that it
  exceeded their wait (right-censored). The Kaplan–Meier product-limit estimator gives the
  survival curve, the median and the restricted mean; censored maximum likelihood gives
  exponential (closed form: events / total exposure), Weibull and lognormal fits.
* ``abandonment_regression``: the Mandelbaum–Zeltyn cross-check of the Erlang A patience
  mean, the slope of P(abandon) against E[wait] over groups of calls (e.g. hours).

Every fit hands the simulator a ``callcore.scenario`` distribution (``.distribution``).
Times are seconds. See ``docs/simulation-check.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats
from scipy.special import gammaln

from callcore.scenario import Distribution, Empirical, Exponential, Lognormal

__all__ = [
    "AbandonmentRegression",
    "FitError",
    "HandleTimeFit",
    "KaplanMeier",
    "ParametricFit",
    "PatienceFit",
    "abandonment_regression",
    "fit_handle_time",
    "fit_patience",
    "kaplan_meier",
]

PatienceMethod = Literal["km", "exponential", "weibull", "lognormal"]
_GRID = 1000
_RAW_LIMIT = 20_000


class FitError(ValueError):
    """The data cannot be fitted as given; the message names the argument and the fix."""


# -- validation ------------------------------------------------------------------------


def _durations(name: str, value: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise FitError(f"{name} must be an array of seconds, got {type(value).__name__}"
                       ) from None
    if not np.all(np.isfinite(arr)):
        raise FitError(f"{name} holds NaN or infinite values; drop those calls first")
    if np.any(arr < 0):
        raise FitError(f"{name} must be >= 0 seconds; got {arr[arr < 0][:3].tolist()}")
    return arr


def _flags(name: str, value: ArrayLike, size: int) -> NDArray[np.bool_]:
    arr = np.asarray(value).ravel()
    if arr.dtype != np.bool_:
        if not np.all(np.isin(arr, (0, 1))):
            raise FitError(f"{name} must be booleans (True: the caller abandoned)")
        arr = arr.astype(bool)
    if arr.size != size:
        raise FitError(f"{name} has {arr.size} values for {size} waits; give one per call")
    return arr


def _quantile_grid(quantile: Any, grid: int) -> Empirical:
    """An equal-weight sample of ``grid`` quantiles at probabilities (i + 0.5) / grid."""
    if grid < 2:
        raise FitError(f"grid must be at least 2 quantiles, got {grid}")
    p = (np.arange(grid) + 0.5) / grid
    return Empirical(values=np.round(np.maximum(quantile(p), 0.0), 3).tolist())


# -- Kaplan–Meier ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KaplanMeier:
    """The product-limit estimate of a survival function from right-censored durations.

    ``times`` are the distinct event times, ``at_risk`` the durations >= each (censorings
    at an event time count as still at risk: events come first), ``survival`` the
    estimate just after each time and ``std_err`` Greenwood's standard error. The estimate
    is defined up to ``last_time`` (the largest duration, event or not) and held beyond.
    """

    times: NDArray[np.float64]
    at_risk: NDArray[np.int64]
    events: NDArray[np.int64]
    survival: NDArray[np.float64]
    std_err: NDArray[np.float64]
    last_time: float
    n: int

    def survival_at(self, t: ArrayLike) -> NDArray[np.float64]:
        """S(t), right-continuous: the share still patient after ``t`` seconds."""
        t = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.times, t, side="right") - 1
        return np.where(idx >= 0, self.survival[np.maximum(idx, 0)], 1.0)

    def quantile(self, p: float) -> float:
        """The smallest time with S(t) <= 1 - p; NaN when the curve never gets there."""
        hit = np.nonzero(self.survival <= 1.0 - p + 1e-12)[0]
        return float(self.times[hit[0]]) if hit.size else math.nan

    @property
    def median(self) -> float:
        """The median (NaN when fewer than half the calls have an event)."""
        return self.quantile(0.5)

    def restricted_mean(self, tau: float | None = None) -> float:
        """The mean of min(T, ``tau``): the area under S from 0 to ``tau``
        (default ``last_time``)."""
        tau = self.last_time if tau is None else float(tau)
        inside = self.times < tau
        edges = np.concatenate(([0.0], self.times[inside], [tau]))
        levels = np.concatenate(([1.0], self.survival[inside]))
        return float(np.sum(levels * np.diff(edges)))

    def frame(self) -> pd.DataFrame:
        """The curve as a DataFrame: time, at_risk, events, survival, std_err."""
        return pd.DataFrame({"time": self.times, "at_risk": self.at_risk,
                             "events": self.events, "survival": self.survival,
                             "std_err": self.std_err})


def kaplan_meier(durations: ArrayLike, observed: ArrayLike) -> KaplanMeier:
    """Kaplan–Meier estimate from ``durations`` and ``observed`` (True: the event, e.g. the
    caller abandoned; False: censored there, e.g. served after that wait)."""
    t = _durations("durations", durations)
    if t.size == 0:
        raise FitError("durations is empty; give at least one call")
    e = _flags("observed", observed, t.size)
    order = np.argsort(t, kind="stable")
    t, e = t[order], e[order]
    distinct, first = np.unique(t, return_index=True)
    events = np.add.reduceat(e.astype(np.int64), first)
    at_risk = t.size - first  # everyone with a duration >= this time, censored ones included
    keep = events > 0
    times, d, n = distinct[keep], events[keep], at_risk[keep].astype(np.int64)
    survival = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, d / (n * (n - d)), np.inf)
        std_err = survival * np.sqrt(np.cumsum(terms))
    std_err = np.where(survival == 0, 0.0, std_err)
    return KaplanMeier(times, n, d, survival, std_err, float(t[-1]), int(t.size))


def _life_table(km_durations: NDArray[np.float64], observed: NDArray[np.bool_],
                width: float) -> pd.DataFrame:
    edges = np.arange(0.0, km_durations.max() + width, width)
    exposure = np.array([np.sum(np.clip(km_durations - a, 0.0, width)) for a in edges])
    events = np.bincount((km_durations[observed] // width).astype(np.int64),
                         minlength=edges.size)[:edges.size]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(exposure > 0, events / exposure, np.nan)
    return pd.DataFrame({"start": edges, "events": events, "exposure_s": exposure,
                         "hazard_per_s": rate})


# -- parametric censored fits ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParametricFit:
    """A censored maximum-likelihood fit: parameters, log-likelihood, AIC and the mean."""

    family: str
    params: dict[str, float]
    loglik: float
    aic: float
    mean: float
    distribution: Distribution = field(repr=False)


def _exponential_fit(t: NDArray[np.float64], e: NDArray[np.bool_]) -> ParametricFit:
    d, exposure = int(e.sum()), float(t.sum())
    rate = d / exposure
    loglik = d * math.log(rate) - rate * exposure
    return ParametricFit("exponential", {"rate": rate}, loglik, 2 - 2 * loglik, 1 / rate,
                         Exponential(mean=1 / rate))


def _minimize(nll: Any, start: NDArray[np.float64], family: str) -> NDArray[np.float64]:
    found = optimize.minimize(nll, start, method="Nelder-Mead",
                              options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 4000})
    if not np.all(np.isfinite(found.x)) or not np.isfinite(found.fun):
        raise FitError(f"the censored {family} fit did not converge; drop it from families")
    return np.asarray(found.x, dtype=np.float64)


def _weibull_fit(t: NDArray[np.float64], e: NDArray[np.bool_], grid: int) -> ParametricFit:
    te, tc = t[e], t[~e]

    def nll(x: NDArray[np.float64]) -> float:
        k, lam = math.exp(x[0]), math.exp(x[1])
        ze, zc = te / lam, tc / lam
        ll = np.sum(math.log(k) - math.log(lam) + (k - 1) * np.log(ze) - ze**k) - np.sum(zc**k)
        return -float(ll)

    start = np.array([0.0, math.log(t.sum() / e.sum())])
    log_k, log_lam = (float(v) for v in _minimize(nll, start, "weibull"))
    k, lam = math.exp(log_k), math.exp(log_lam)
    loglik = -nll(np.array([log_k, log_lam]))
    mean = lam * math.exp(gammaln(1 + 1 / k))
    dist = _quantile_grid(lambda p: lam * (-np.log1p(-p)) ** (1 / k), grid)
    return ParametricFit("weibull", {"shape": k, "scale": lam}, loglik, 4 - 2 * loglik, mean,
                         dist)


def _lognormal_fit(t: NDArray[np.float64], e: NDArray[np.bool_]) -> ParametricFit:
    le, lc = np.log(t[e]), np.log(t[~e])

    def nll(x: NDArray[np.float64]) -> float:
        mu, sigma = x[0], math.exp(x[1])
        ze, zc = (le - mu) / sigma, (lc - mu) / sigma
        ll = (np.sum(-le - math.log(sigma) + stats.norm.logpdf(ze))
              + np.sum(stats.norm.logsf(zc)))
        return -float(ll)

    start = np.array([float(np.mean(np.log(t))), 0.0])
    mu, log_sigma = (float(v) for v in _minimize(nll, start, "lognormal"))
    sigma = math.exp(log_sigma)
    loglik = -nll(np.array([mu, log_sigma]))
    mean = math.exp(mu + sigma**2 / 2)
    cv = math.sqrt(math.expm1(sigma**2))
    return ParametricFit("lognormal", {"mu": mu, "sigma": sigma}, loglik, 4 - 2 * loglik,
                         mean, Lognormal(mean=mean, cv=cv))


# -- the abandonment regression (Mandelbaum–Zeltyn) -------------------------------------------


@dataclass(frozen=True, slots=True)
class AbandonmentRegression:
    """P(abandon) against E[wait] over groups: under Erlang A, P(ab) = E[W] / mean patience.

    ``theta`` is the slope of the weighted least-squares line through the origin (weights:
    calls per group), ``mean_patience`` = 1 / theta; ``points`` has one row per group.
    For non-exponential patience the slope estimates the patience density at 0.
    """

    theta: float
    mean_patience: float
    r_squared: float
    points: pd.DataFrame


def abandonment_regression(waits: ArrayLike, abandoned: ArrayLike, groups: ArrayLike, *,
                           min_calls: int = 20) -> AbandonmentRegression:
    """Regress each group's abandon rate on its mean wait (groups of ``min_calls`` or more).

    ``waits`` are the times in queue of every call that reached it (till the answer or
    the hang-up), ``groups`` a label per call such as the hour of arrival.
    """
    w = _durations("waits", waits)
    ab = _flags("abandoned", abandoned, w.size)
    g = np.asarray(groups).ravel()
    if g.size != w.size:
        raise FitError(f"groups has {g.size} labels for {w.size} waits; give one per call")
    frame = pd.DataFrame({"group": g, "wait": w, "ab": ab})
    points = frame.groupby("group", sort=True).agg(
        calls=("wait", "size"), mean_wait_s=("wait", "mean"), p_abandon=("ab", "mean"))
    points = points[points["calls"] >= min_calls]
    if len(points) < 2:
        raise FitError(f"abandonment_regression needs two or more groups with at least "
                       f"{min_calls} calls; use coarser groups or lower min_calls")
    n, x, y = (points[c].to_numpy(dtype=float) for c in ("calls", "mean_wait_s", "p_abandon"))
    denominator = float(np.sum(n * x * x))
    if denominator == 0:
        raise FitError("no group has waited at all; the abandon rate cannot be regressed")
    theta = float(np.sum(n * x * y) / denominator)
    residual = float(np.sum(n * (y - theta * x) ** 2))
    total = float(np.sum(n * y * y))
    r2 = 1 - residual / total if total > 0 else math.nan
    return AbandonmentRegression(theta, 1 / theta if theta > 0 else math.inf, r2,
                                 points.reset_index())


# -- patience -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatienceFit:
    """Patience of callers in queue, from censored waits.

    ``km`` is the Kaplan–Meier curve; ``exponential_mean`` the censored exponential MLE
    (total exposure / abandonments, with a ``confidence`` interval from the Wald interval
    of log rate, standard error 1 / sqrt(abandonments)); ``parametric`` the censored MLE fits
    by family; ``pooled_ratio_mean`` is E[wait] / P(abandon) over all calls, which equals
    the exponential MLE; ``regression`` the Mandelbaum–Zeltyn slope when groups were given.

    ``distribution`` (by ``method``) feeds the simulator. For ``km`` it is the inverse of
    the KM distribution function on a grid of quantiles; beyond ``km.last_time`` (where
    ``tail_mass`` of the callers are still waiting and the data says nothing) patience
    continues as ``last_time`` + Exponential(``tail_mean``): memoryless, with the mean of
    the exponential fit unless ``tail_mean`` was given.
    """

    km: KaplanMeier
    calls: int
    abandoned: int
    exposure_s: float
    exponential_mean: float
    exponential_ci: tuple[float, float]
    parametric: dict[str, ParametricFit]
    regression: AbandonmentRegression | None
    method: PatienceMethod
    tail_mean: float
    grid: int
    life_table: pd.DataFrame = field(repr=False)

    @property
    def median(self) -> float:
        """The KM median patience (NaN when fewer than half the callers abandon)."""
        return self.km.median

    @property
    def restricted_mean(self) -> float:
        """The KM mean of min(patience, last observed wait)."""
        return self.km.restricted_mean()

    @property
    def tail_mass(self) -> float:
        """KM survival at the last observed wait: the mass the tail model extrapolates."""
        return float(self.km.survival_at(self.km.last_time))

    @property
    def pooled_ratio_mean(self) -> float:
        """E[wait] / P(abandon) over all calls (the exponential MLE, by algebra)."""
        return self.exposure_s / self.abandoned

    @property
    def km_mean(self) -> float:
        """Mean of the KM distribution with its exponential tail."""
        return self.restricted_mean + self.tail_mass * self.tail_mean

    @property
    def erlang_a_mean(self) -> float:
        """The patience mean for Erlang A (exponential patience): the exponential MLE."""
        return self.exponential_mean

    def quantile(self, p: ArrayLike) -> NDArray[np.float64]:
        """Inverse of the KM distribution function, with the exponential tail beyond."""
        p = np.asarray(p, dtype=np.float64)
        km = self.km
        reached = 1.0 - km.survival
        idx = np.searchsorted(reached, p - 1e-12, side="left")
        inside = idx < km.times.size
        body = km.times[np.minimum(idx, km.times.size - 1)]
        mass = self.tail_mass
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = km.last_time + self.tail_mean * np.log(mass / np.maximum(1.0 - p, 1e-300))
        return np.where(inside & (p <= 1.0 - mass + 1e-12), body, np.maximum(tail, km.last_time))

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        """``size`` draws from the KM distribution with its tail (inverse transform)."""
        return self.quantile(rng.random(size))

    @property
    def distribution(self) -> Distribution:
        """The patience distribution for a scenario, by ``method``."""
        if self.method == "km":
            return _quantile_grid(self.quantile, self.grid)
        if self.method == "exponential":
            return Exponential(mean=self.exponential_mean)
        if self.method not in self.parametric:
            raise FitError(f"method {self.method!r} was not fitted; add it to families")
        return self.parametric[self.method].distribution

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready builtins."""
        return {
            "calls": self.calls, "abandoned": self.abandoned, "exposure_s": self.exposure_s,
            "km_median_s": _num(self.median), "km_restricted_mean_s": self.restricted_mean,
            "km_last_time_s": self.km.last_time, "tail_mass": self.tail_mass,
            "tail_mean_s": self.tail_mean, "km_mean_s": self.km_mean,
            "exponential_mean_s": self.exponential_mean,
            "exponential_ci_s": list(self.exponential_ci),
            "pooled_ratio_mean_s": self.pooled_ratio_mean,
            "regression_mean_s": None if self.regression is None else _num(
                self.regression.mean_patience),
            "parametric": {k: {"params": v.params, "aic": v.aic, "mean_s": v.mean}
                           for k, v in self.parametric.items()},
            "method": self.method,
        }


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else value


def fit_patience(
    waits: ArrayLike,
    abandoned: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    method: PatienceMethod = "km",
    families: tuple[str, ...] = ("weibull", "lognormal"),
    tail_mean: float | None = None,
    zero_time: float = 0.5,
    confidence: float = 0.95,
    grid: int = _GRID,
    hazard_width: float = 10.0,
) -> PatienceFit:
    """Fit patience from each queued call's wait and whether it ``abandoned``.

    Served callers are censored at their wait. ``groups`` (one label per call, e.g. the
    hour) adds the Mandelbaum–Zeltyn regression. Parametric likelihoods need positive
    times: an abandonment recorded at 0 s is taken at ``zero_time`` (half the recording
    resolution); a served call with no wait carries no information and is left out of
    them. ``method`` picks the distribution handed to the simulator.
    """
    w = _durations("waits", waits)
    ab = _flags("abandoned", abandoned, w.size)
    d = int(ab.sum())
    if d == 0:
        raise FitError("abandoned has no True value: with no abandonment the patience cannot "
                       "be estimated; pass patience=None (Erlang C) to the check instead")
    if not 0 < confidence < 1:
        raise FitError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    if method not in ("km", "exponential", *families):
        raise FitError(f"method {method!r} is unknown or not in families; use km, exponential"
                       f" or one of {list(families)}")
    unknown = set(families) - {"weibull", "lognormal"}
    if unknown:
        raise FitError(f"families {sorted(unknown)} are unknown; use weibull and/or lognormal")
    km = kaplan_meier(w, ab)
    # exact values for the closed forms, zero events shifted only for the likelihoods
    exponential = _exponential_fit(w, ab)
    t = np.where(ab & (w == 0), zero_time, w)
    informative = t > 0
    t, e = t[informative], ab[informative]
    parametric = {"exponential": exponential}
    for family in families:
        parametric[family] = (_weibull_fit(t, e, grid) if family == "weibull"
                              else _lognormal_fit(t, e))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    mean = exponential.mean
    ci = (mean * math.exp(-z / math.sqrt(d)), mean * math.exp(z / math.sqrt(d)))
    regression = None if groups is None else abandonment_regression(w, ab, groups)
    if tail_mean is not None and not tail_mean > 0:
        raise FitError(f"tail_mean must be > 0 seconds; got {tail_mean!r}")
    return PatienceFit(km, int(w.size), d, float(w.sum()), mean, ci, parametric, regression,
                       method, mean if tail_mean is None else float(tail_mean), grid,
                       _life_table(w, ab, hazard_width))


# -- handle time ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandleTimeFit:
    """Handle time: the sample, its lognormal and exponential fits and the one chosen.

    ``ks`` holds the Kolmogorov–Smirnov distance of each model to the sample (``empirical``
    is 0 by construction), ``ks_critical`` the 5 % critical value 1.358 / sqrt(n) for
    reference: with thousands of calls every parametric model is rejected, so the choice
    uses the distance itself (``max_ks``), not a p-value.
    """

    n: int
    excluded: int
    """Values <= ``min_seconds`` left out (by default zeros: a recording artefact)."""
    mean: float
    cv: float
    median: float
    lognormal_mu: float
    lognormal_sigma: float
    ks: dict[str, float]
    ks_critical: float
    chosen: Literal["lognormal", "empirical", "exponential"]
    reason: str
    distribution: Distribution = field(repr=False)

    @property
    def lognormal_mean(self) -> float:
        """Mean of the fitted lognormal."""
        return math.exp(self.lognormal_mu + self.lognormal_sigma**2 / 2)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready builtins."""
        return {"n": self.n, "excluded": self.excluded, "mean_s": self.mean, "cv": self.cv,
                "median_s": self.median, "lognormal_mu": self.lognormal_mu,
                "lognormal_sigma": self.lognormal_sigma, "ks": dict(self.ks),
                "ks_critical": self.ks_critical, "chosen": self.chosen, "reason": self.reason}


def _ks(sample: NDArray[np.float64], cdf: Any, resolution: float | None) -> float:
    """KS distance of the sample's ECDF to ``cdf``; with a ``resolution``, values are
    recorded on that grid, so the ECDF at v is compared with the model at v + resolution/2."""
    values, counts = np.unique(sample, return_counts=True)
    upper = np.cumsum(counts) / sample.size
    if resolution:
        return float(np.max(np.abs(upper - cdf(values + resolution / 2))))
    lower = upper - counts / sample.size
    model = cdf(values)
    return float(max(np.max(upper - model), np.max(model - lower)))


def fit_handle_time(
    seconds: ArrayLike,
    *,
    choose: Literal["auto", "lognormal", "empirical", "exponential"] = "auto",
    max_ks: float = 0.05,
    resolution: float | None = None,
    min_seconds: float = 0.0,
    grid: int = _GRID,
) -> HandleTimeFit:
    """Fit handle times: lognormal MLE (mean and std of log seconds), exponential, empirical.

    Values <= ``min_seconds`` (default: zeros only) are left out and counted in
    ``excluded``. ``choose="auto"`` takes the lognormal when its KS distance is at most
    ``max_ks``, else the empirical distribution (the sample itself up to 20,000 values,
    else ``grid`` quantiles). ``resolution`` is the recording step (1.0 for whole
    seconds) so that rounding does not count against a continuous model.
    """
    raw = _durations("seconds", seconds)
    if not min_seconds >= 0:
        raise FitError(f"min_seconds must be >= 0, e.g. 10; got {min_seconds!r}")
    x = raw[raw > min_seconds]
    if x.size < 2:
        raise FitError(f"seconds has {x.size} positive values; give at least two handle times")
    if not 0 < max_ks < 1:
        raise FitError(f"max_ks must be in (0, 1), e.g. 0.05; got {max_ks!r}")
    logs = np.log(x)
    mu, sigma = float(logs.mean()), float(logs.std())
    mean = float(x.mean())
    ks = {"lognormal": _ks(x, stats.lognorm(s=sigma, scale=math.exp(mu)).cdf, resolution),
          "exponential": _ks(x, stats.expon(scale=mean).cdf, resolution),
          "empirical": 0.0}
    if choose == "auto":
        chosen: Literal["lognormal", "empirical", "exponential"] = (
            "lognormal" if ks["lognormal"] <= max_ks else "empirical")
        reason = (f"lognormal KS distance {ks['lognormal']:.3f} "
                  f"{'<=' if chosen == 'lognormal' else '>'} max_ks {max_ks:g}")
    elif choose in ("lognormal", "empirical", "exponential"):
        chosen, reason = choose, "chosen by the caller"
    else:
        raise FitError(f"choose must be auto, lognormal, empirical or exponential; got "
                       f"{choose!r}")
    if chosen == "lognormal":
        dist: Distribution = Lognormal(mean=math.exp(mu + sigma**2 / 2),
                                       cv=math.sqrt(math.expm1(sigma**2)))
    elif chosen == "exponential":
        dist = Exponential(mean=mean)
    elif x.size <= _RAW_LIMIT:  # the sample itself: the empirical mean stays exact
        dist = Empirical(values=np.sort(x).tolist())
    else:
        dist = _quantile_grid(lambda p: np.quantile(x, p), grid)
    return HandleTimeFit(int(x.size), int(raw.size - x.size), mean, float(x.std() / mean),
                         float(np.median(x)), mu, sigma, ks, 1.358 / math.sqrt(x.size), chosen,
                         reason, dist)
