"""Erlang B, Erlang C and Erlang A queueing formulas and staffing, vectorized over intervals.

Units: ``calls`` are offered calls per interval of ``interval_minutes``; ``aht``,
``answer_within``, ``patience`` and the ASA are in seconds. Every function accepts scalars or
numpy arrays (one element per interval) and broadcasts them against each other.

* Erlang B: blocking probability of M/M/N/N, by the stable recursion
  ``B(n) = a B(n-1) / (n + a B(n-1))`` (in log space), or the Poisson closed form.
* Erlang C: M/M/N, ``C = B / (1 - rho (1 - B))``.
* Erlang A (Palm, Garnett–Mandelbaum–Reiman): M/M/N+M with exponential patience of mean
  ``patience``; computed exactly from the birth–death chain with abandonment rate
  ``theta = 1 / patience``, in log space. The service level is answered within ``T`` over
  offered calls (abandoned calls count against it); ASA is the mean wait of answered calls.

See ``docs/metrics.md`` for the definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse.linalg import expm_multiply
from scipy.special import gammaincc, gammaln

__all__ = [
    "QueueMetrics",
    "StaffingResult",
    "apply_shrinkage",
    "erlang_b",
    "erlang_c",
    "offered_load",
    "queue_metrics",
    "required_agents",
]

_MAX_SERIES_TERMS = 5_000_000
_MAX_AGENTS = 10_000_000


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Per-interval queue figures for a given staffing (arrays, one element per interval)."""

    agents: NDArray[np.int64]
    load: NDArray[np.float64]
    p_wait: NDArray[np.float64]
    service_level: NDArray[np.float64]
    asa: NDArray[np.float64]
    occupancy: NDArray[np.float64]
    p_abandon: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """Required agents per interval, with shrinkage, and the figures at that staffing."""

    agents: NDArray[np.int64]
    agents_with_shrinkage: NDArray[np.int64]
    metrics: QueueMetrics


# -- validation ------------------------------------------------------------------------


def _array(name: str, value: ArrayLike, *, positive: bool = False) -> NDArray[np.float64]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; replace NaN/inf values in {name}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0; got {arr[arr <= 0].ravel()[:3].tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0; got {arr[arr < 0].ravel()[:3].tolist()}")
    return arr


def _agents(value: ArrayLike) -> NDArray[np.int64]:
    arr = _array("agents", value)
    if np.any(arr != np.floor(arr)):
        raise ValueError("agents must be whole numbers; round them up with numpy.ceil first")
    if np.any(arr > _MAX_AGENTS):
        raise ValueError(f"agents must be <= {_MAX_AGENTS}")
    return arr.astype(np.int64)


def _fraction(name: str, value: float | None, *, upper_open: bool = True) -> float | None:
    if value is None:
        return None
    if not (0 <= value < 1 if upper_open else 0 < value <= 1):
        bound = "[0, 1)" if upper_open else "(0, 1]"
        raise ValueError(f"{name} must be a fraction in {bound}, e.g. 0.8; got {value!r}")
    return float(value)


def offered_load(
    *, calls: ArrayLike, aht: ArrayLike, interval_minutes: float = 30.0
) -> NDArray[np.float64]:
    """Offered load in Erlangs: ``calls * aht / (interval_minutes * 60)``."""
    if not interval_minutes > 0:
        raise ValueError(f"interval_minutes must be > 0, e.g. 30; got {interval_minutes!r}")
    return _array("calls", calls) * _array("aht", aht, positive=True) / (interval_minutes * 60.0)


# -- Erlang B and C --------------------------------------------------------------------


def _log_erlang_b(agents: NDArray[np.int64], load: NDArray[np.float64]) -> NDArray[np.float64]:
    """log B(agents, load), broadcast; closed form where stable, else the recursion."""
    n, a = np.broadcast_arrays(agents, load)
    n = n.astype(np.float64)
    out = np.zeros(n.shape)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        cdf = gammaincc(n + 1.0, a)  # P(Poisson(a) <= n)
        closed = (a > 0) & (cdf > 1e-250)
        log_pmf = n * np.log(np.where(a > 0, a, 1.0)) - a - gammaln(n + 1.0)
        out = np.where(closed, log_pmf - np.log(np.where(closed, cdf, 1.0)), out)
    out = np.where((a == 0) & (n > 0), -np.inf, out)
    pending = ~closed & (a > 0) & (n > 0)
    if np.any(pending):
        nn, aa = n[pending], a[pending]
        log_b = np.zeros(nn.shape)
        log_a = np.log(aa)
        for k in range(1, int(nn.max()) + 1):
            step = log_a + log_b - np.log(k + aa * np.exp(log_b))
            log_b = np.where(k <= nn, step, log_b)
        out[pending] = log_b
    return out


def erlang_b(agents: ArrayLike, load: ArrayLike) -> NDArray[np.float64]:
    """Erlang B blocking probability for ``agents`` servers and ``load`` Erlangs."""
    return np.exp(_log_erlang_b(_agents(agents), _array("load", load)))


def erlang_c(agents: ArrayLike, load: ArrayLike) -> NDArray[np.float64]:
    """Erlang C probability of waiting; 1 when ``agents <= load`` (unstable queue)."""
    n, a = np.broadcast_arrays(_agents(agents), _array("load", load))
    b = np.exp(_log_erlang_b(n, a))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = b / (1.0 - (a / n) * (1.0 - b))
    return np.where(n > a, np.clip(c, 0.0, 1.0), 1.0)


# -- Erlang A --------------------------------------------------------------------------


def _erlang_a_one(n: int, lam: float, mu: float, theta: float, t: float) -> tuple[float, ...]:
    """(p_wait, service_level, asa, p_abandon) of M/M/n+M for one interval (rates per s)."""
    if lam == 0:
        return 0.0, 1.0, 0.0, 0.0
    a = lam / mu
    x, y = n * mu / theta, lam / theta
    terms = math.ceil(max(0.0, y - x) + 12.0 * math.sqrt(max(x, y, 1.0)) + 40.0)
    if terms > _MAX_SERIES_TERMS:
        raise ValueError("patience is too long relative to aht for Erlang A at this load; "
                         "pass patience=None (Erlang C) instead")
    j = np.arange(terms, dtype=np.float64)
    # t_j = pi_{n+j} / pi_n = prod_{k=1..j} y / (x + k)
    log_t = np.concatenate(([0.0], np.cumsum(np.log(y) - np.log(x + j[1:]))))
    peak = log_t.max()
    weights = np.exp(log_t - peak)
    log_s0 = peak + math.log(weights.sum())
    w = weights / weights.sum()  # distribution of calls ahead, given all agents busy
    log_b = float(_log_erlang_b(np.array(n), np.array(a)))
    log_below = math.log1p(-math.exp(log_b)) - log_b if n > 0 else -math.inf  # sum_{k<n} pi/pi_n
    p_wait = 1.0 / (1.0 + math.exp(min(log_below - log_s0, 700.0)))
    served = n * mu / (n * mu + (j + 1.0) * theta)  # P(served | j ahead), telescoped
    p_abandon = p_wait * float(np.dot(w, 1.0 - served))
    rates = n * mu + (j + 1.0) * theta
    mean_wait_served = served * np.cumsum(1.0 / rates)  # E[W; served | j ahead]
    p_served = 1.0 - p_abandon
    asa = p_wait * float(np.dot(w, mean_wait_served)) / p_served if p_served > 0 else math.inf
    if n == 0:
        return 1.0, 0.0, math.inf, 1.0
    # P(served within t | j) = P(served | j) * P(sum_{k=1..j+1} Exp(n mu + k theta) <= t):
    # a pure-death chain from state j+1 down to 0, solved with one sparse matrix exponential.
    size = terms + 1
    diag = -np.concatenate(([0.0], rates))
    # transposed generator: state i (i calls to clear) moves to i - 1 at rate n mu + i theta
    gen_t = sparse.diags([diag, rates], [0, 1], shape=(size, size), format="csc")
    start = np.concatenate(([0.0], w * served))
    within = float(expm_multiply(gen_t * t, start)[0]) if t > 0 else 0.0
    service_level = (1.0 - p_wait) + p_wait * min(within, 1.0)
    return p_wait, service_level, asa, p_abandon


# -- metrics and staffing --------------------------------------------------------------


def queue_metrics(
    *,
    calls: ArrayLike,
    aht: ArrayLike,
    agents: ArrayLike,
    interval_minutes: float = 30.0,
    answer_within: float = 20.0,
    patience: ArrayLike | None = None,
) -> QueueMetrics:
    """P(wait), service level within ``answer_within`` s, ASA, occupancy and P(abandon).

    Without ``patience`` this is Erlang C (no abandonment, ``p_abandon`` is 0); with it,
    Erlang A with exponential patience of that mean in seconds.
    """
    if not answer_within >= 0:
        raise ValueError(f"answer_within must be >= 0 seconds, e.g. 20; got {answer_within!r}")
    load = offered_load(calls=calls, aht=aht, interval_minutes=interval_minutes)
    n = _agents(agents)
    aht_arr = _array("aht", aht, positive=True)
    calls_arr = _array("calls", calls)
    if patience is None:
        n, load, aht_arr = np.broadcast_arrays(n, load, aht_arr)
        c = erlang_c(n, load)
        stable = n > load
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gap = np.where(stable, n - load, 1.0)
            sl = np.where(stable, 1.0 - c * np.exp(-gap * answer_within / aht_arr), 0.0)
            asa = np.where(stable, c * aht_arr / gap, np.inf)
            occ = np.where(n > 0, np.minimum(load / np.where(n > 0, n, 1), 1.0), 1.0)
        occ = np.where(load == 0, 0.0, occ)
        sl = np.where(load == 0, 1.0, sl)
        return QueueMetrics(n.copy(), load.copy(), c, np.clip(sl, 0.0, 1.0), asa, occ,
                            np.zeros(n.shape))
    pat = _array("patience", patience, positive=True)
    n, calls_arr, aht_arr, pat, load = np.broadcast_arrays(n, calls_arr, aht_arr, pat, load)
    lam = calls_arr / (interval_minutes * 60.0)
    rows = [_erlang_a_one(int(k), float(la), 1.0 / float(h), 1.0 / float(p), answer_within)
            for k, la, h, p in zip(n.ravel(), lam.ravel(), aht_arr.ravel(), pat.ravel(),
                                   strict=True)]
    p_wait, sl, asa, p_ab = (np.array(col, dtype=np.float64).reshape(n.shape)
                             for col in zip(*rows, strict=True)) if rows else (
        np.zeros(n.shape),) * 4
    # occupancy = carried load / agents, carried load = load * (1 - p_abandon)
    with np.errstate(divide="ignore", invalid="ignore"):
        occ = np.where(n > 0, load * (1.0 - p_ab) / np.where(n > 0, n, 1), 1.0)
    occ = np.where(load == 0, 0.0, np.minimum(occ, 1.0))
    return QueueMetrics(n.copy(), load.copy(), p_wait, sl, asa, occ, p_ab)


def apply_shrinkage(agents: ArrayLike, shrinkage: float) -> NDArray[np.int64]:
    """Agents to schedule so ``agents`` remain after ``shrinkage``: ceil(agents / (1 - s))."""
    s = _fraction("shrinkage", shrinkage)
    assert s is not None
    # round away float noise first, so that 14 / 0.7 = 20.000000000000004 gives 20
    return np.ceil(np.round(_agents(agents) / (1.0 - s), 9)).astype(np.int64)


def required_agents(
    *,
    calls: ArrayLike,
    aht: ArrayLike,
    interval_minutes: float = 30.0,
    service_level: float | None = None,
    answer_within: float = 20.0,
    max_asa: float | None = None,
    max_occupancy: float | None = None,
    max_abandon: float | None = None,
    patience: ArrayLike | None = None,
    shrinkage: float = 0.0,
) -> StaffingResult:
    """The fewest agents per interval meeting every given target, then shrinkage.

    Targets: ``service_level`` (fraction answered within ``answer_within`` s), ``max_asa``
    (seconds), ``max_occupancy`` (fraction) and ``max_abandon`` (fraction; Erlang A only, so
    it needs ``patience``). Without Erlang A, at least one agent more than the load is
    always required (a stable queue).
    """
    sl_target = _fraction("service_level", service_level, upper_open=False)
    occ_target = _fraction("max_occupancy", max_occupancy, upper_open=False)
    ab_target = _fraction("max_abandon", max_abandon)
    _fraction("shrinkage", shrinkage)
    if max_asa is not None and not max_asa > 0:
        raise ValueError(f"max_asa must be > 0 seconds, e.g. 30; got {max_asa!r}")
    if ab_target is not None and patience is None:
        raise ValueError("max_abandon needs patience (mean seconds before a caller hangs up)")
    load = offered_load(calls=calls, aht=aht, interval_minutes=interval_minutes)
    pat_shape = () if patience is None else np.shape(patience)
    shape = np.broadcast_shapes(load.shape, np.shape(aht), pat_shape)
    load = np.broadcast_to(load, shape)

    def meets(agents: NDArray[np.int64]) -> tuple[NDArray[np.bool_], QueueMetrics]:
        m = queue_metrics(calls=calls, aht=aht, agents=agents, interval_minutes=interval_minutes,
                          answer_within=answer_within, patience=patience)
        ok = np.ones(shape, dtype=bool) if patience is not None else (agents > load) | (load == 0)
        if sl_target is not None:
            ok &= m.service_level >= sl_target - 1e-12
        if max_asa is not None:
            ok &= m.asa <= max_asa + 1e-12
        if occ_target is not None:
            ok &= m.occupancy <= occ_target + 1e-12
        if ab_target is not None:
            ok &= m.p_abandon <= ab_target + 1e-12
        return ok, m

    # bisection on agents, vectorized over intervals: lo fails (or is -1), hi meets
    lo = np.full(shape, -1, dtype=np.int64)
    hi = np.maximum(np.ceil(load).astype(np.int64) + 1, 1)
    while True:
        ok, _ = meets(hi)
        if ok.all():
            break
        lo = np.where(ok, lo, hi)
        hi = np.where(ok, hi, hi * 2 + 1)
        if np.any(hi > _MAX_AGENTS):
            raise ValueError("targets cannot be met with a finite number of agents; "
                             "relax service_level, max_asa or max_abandon")
    while np.any(hi - lo > 1):
        mid = np.where(hi - lo > 1, (lo + hi) // 2, hi)
        ok, _ = meets(np.maximum(mid, 0))
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    _, metrics = meets(hi)
    return StaffingResult(hi, apply_shrinkage(hi, shrinkage), metrics)
