"""Erlang B, Erlang C and Erlang A queueing formulas and staffing, vectorized over intervals.

Units: ``calls`` are offered calls per interval of ``interval_minutes``; ``aht``,
``answer_within``, ``patience`` and the ASA are in seconds. Every function accepts scalars or
numpy arrays (one element per interval) and broadcasts them against each other.

* Erlang B: blocking probability of M/M/N/N, by the stable recursion
  ``B(n) = a B(n-1) / (n + a B(n-1))`` (in log space), or the Poisson closed form.
* Erlang C: M/M/N, ``C = B / (1 - rho (1 - B))``.
* Erlang A (Palm, Garnett–Mandelbaum–Reiman): M/M/N+M with exponential patience of mean
  ``patience``; computed exactly from the birth–death chain with abandonment rate
  ``theta = 1 / patience``, in log space, as padded (intervals x queue length) blocks; the
  service level uses the regularized incomplete beta function (see ``_erlang_a``). The
  service level is answered within ``T`` over offered calls (abandoned calls count against
  it); ASA is the mean wait of answered calls.

See ``docs/metrics.md`` for the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc, gammaincc, gammaln

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


_CHUNK_CELLS = 2_000_000  # rows x series terms per block, to bound memory


def _erlang_a(n: NDArray[np.int64], lam: NDArray[np.float64], mu: NDArray[np.float64],
              theta: NDArray[np.float64], t: float) -> tuple[NDArray[np.float64], ...]:
    """(p_wait, service_level, asa, p_abandon) of M/M/n+M per interval (1-D, rates per s).

    With all agents busy, pi_{n+j} / pi_n = prod_{k=1..j} y / (x + k) where x = n mu / theta
    and y = lam / theta; the series is summed over a padded (intervals x terms) block.
    A caller with j ahead is served with probability prod_k r_k / (r_k + theta) and, given
    that, within t when sum_{k=1..j+1} Exp(theta (x + k)) <= t; since e^{-theta Exp(theta
    (x + k))} ~ Beta(x + k, 1) and the product of those is Beta(x + 1, j + 1), that is
    1 - I_{exp(-theta t)}(x + 1, j + 1), the regularized incomplete beta function.
    """
    size = n.shape[0]
    p_wait, sl, asa, p_ab = np.zeros(size), np.ones(size), np.zeros(size), np.zeros(size)
    none = (n == 0) & (lam > 0)
    p_wait[none], sl[none], asa[none], p_ab[none] = 1.0, 0.0, np.inf, 1.0
    live = np.flatnonzero((n > 0) & (lam > 0))
    if live.size == 0:
        return p_wait, sl, asa, p_ab
    x_all, y_all = n[live] * mu[live] / theta[live], lam[live] / theta[live]
    terms = np.ceil(np.maximum(0.0, y_all - x_all)
                    + 12.0 * np.sqrt(np.maximum.reduce([x_all, y_all, np.ones(live.size)]))
                    + 40.0).astype(np.int64)
    if terms.max() > _MAX_SERIES_TERMS:
        raise ValueError("patience is too long relative to aht for Erlang A at this load; "
                         "pass patience=None (Erlang C) instead")
    order = np.argsort(terms, kind="stable")  # similar widths share a block
    ordered = terms[order]
    begin = 0
    while begin < live.size:
        fits = (np.arange(1, live.size - begin + 1) * ordered[begin:]) <= _CHUNK_CELLS
        stop = begin + (int(np.argmin(fits)) if not fits.all() else fits.size)
        stop = max(stop, begin + 1)
        pick, width = order[begin:stop], int(ordered[stop - 1])
        begin = stop
        rows = live[pick]
        x, y = x_all[pick, None], y_all[pick, None]
        nmu, th = (n[rows] * mu[rows])[:, None], theta[rows, None]
        j = np.arange(width, dtype=np.float64)[None, :]
        inside = j < terms[pick, None]
        steps = np.where(inside[:, 1:], np.log(y) - np.log(x + j[:, 1:]), 0.0)
        log_t = np.where(inside, np.concatenate((np.zeros((len(rows), 1)),
                                                 np.cumsum(steps, axis=1)), axis=1), -np.inf)
        peak = log_t.max(axis=1, keepdims=True)
        weights = np.exp(log_t - peak)
        total = weights.sum(axis=1, keepdims=True)
        w = weights / total
        log_s0 = (peak + np.log(total))[:, 0]
        log_b = _log_erlang_b(n[rows], lam[rows] / mu[rows])
        log_below = np.log1p(-np.exp(log_b)) - log_b  # sum_{k<n} pi_k / pi_n
        pw = 1.0 / (1.0 + np.exp(np.minimum(log_below - log_s0, 700.0)))
        rates = nmu + (j + 1.0) * th
        served = nmu / rates
        ab = pw * (w * (1.0 - served)).sum(axis=1)
        wait_served = served * np.cumsum(1.0 / rates, axis=1)
        answered = 1.0 - ab
        with np.errstate(divide="ignore", invalid="ignore"):
            asa[rows] = np.where(answered > 0, pw * (w * wait_served).sum(axis=1) / answered,
                                 np.inf)
        if t > 0:
            mass = w * served
            # the incomplete beta is the costly part: skip terms that cannot count
            live_terms = mass > 1e-18 * mass.max(axis=1, keepdims=True)
            within = np.zeros(mass.shape)
            a_arg = np.broadcast_to(x + 1.0, mass.shape)[live_terms]
            b_arg = np.broadcast_to(j + 1.0, mass.shape)[live_terms]
            z_arg = np.broadcast_to(np.exp(-th * t), mass.shape)[live_terms]
            within[live_terms] = 1.0 - betainc(a_arg, b_arg, z_arg)
            sl[rows] = (1.0 - pw) + pw * np.minimum((mass * within).sum(axis=1), 1.0)
        else:
            sl[rows] = 1.0 - pw
        p_wait[rows], p_ab[rows] = pw, ab
    return p_wait, sl, asa, p_ab


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
    p_wait, sl, asa, p_ab = (v.reshape(n.shape) for v in _erlang_a(
        n.ravel(), lam.ravel().astype(np.float64), 1.0 / aht_arr.ravel(), 1.0 / pat.ravel(),
        float(answer_within)))
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
    shape = np.broadcast_shapes(load.shape, np.shape(aht), np.shape(calls), pat_shape)
    load_f = np.broadcast_to(load, shape).ravel()
    calls_f = np.broadcast_to(_array("calls", calls), shape).ravel()
    aht_f = np.broadcast_to(_array("aht", aht, positive=True), shape).ravel()
    pat_f = None if patience is None else np.broadcast_to(
        _array("patience", patience, positive=True), shape).ravel()

    def meets(agents: NDArray[np.int64], rows: NDArray[np.intp]
              ) -> tuple[NDArray[np.bool_], QueueMetrics]:
        m = queue_metrics(calls=calls_f[rows], aht=aht_f[rows], agents=agents,
                          interval_minutes=interval_minutes, answer_within=answer_within,
                          patience=None if pat_f is None else pat_f[rows])
        ok = (np.ones(rows.size, dtype=bool) if pat_f is not None
              else (agents > load_f[rows]) | (load_f[rows] == 0))
        if sl_target is not None:
            ok &= m.service_level >= sl_target - 1e-12
        if max_asa is not None:
            ok &= m.asa <= max_asa + 1e-12
        if occ_target is not None:
            ok &= m.occupancy <= occ_target + 1e-12
        if ab_target is not None:
            ok &= m.p_abandon <= ab_target + 1e-12
        return ok, m

    # Gallop from square-root staffing until each interval is bracketed (lo fails, hi
    # meets; lo = -1 stands for "below zero"), then bisect; every pass evaluates only the
    # intervals still undecided.
    size = load_f.size
    lo, hi = np.full(size, -1, dtype=np.int64), np.full(size, -1, dtype=np.int64)
    step = np.ones(size, dtype=np.int64)
    cand = np.ceil(load_f + np.sqrt(load_f)).astype(np.int64)
    undecided = np.arange(size)
    while undecided.size:
        ok, _ = meets(cand[undecided], undecided)
        hi[undecided[ok]], lo[undecided[~ok]] = cand[undecided[ok]], cand[undecided[~ok]]
        up = hi[undecided] < 0
        nxt = np.where(up, lo[undecided] + step[undecided], hi[undecided] - step[undecided])
        step[undecided] *= 2
        if np.any(nxt > _MAX_AGENTS):
            raise ValueError("targets cannot be met with a finite number of agents; "
                             "relax service_level, max_asa or max_abandon")
        open_ = up | ((nxt >= 0) & (hi[undecided] - lo[undecided] > 1) & (nxt > lo[undecided]))
        cand[undecided] = nxt
        undecided = undecided[open_]
    undecided = np.flatnonzero(hi - lo > 1)
    while undecided.size:
        mid = (lo[undecided] + hi[undecided]) // 2
        ok, _ = meets(mid, undecided)
        hi[undecided[ok]], lo[undecided[~ok]] = mid[ok], mid[~ok]
        undecided = undecided[hi[undecided] - lo[undecided] > 1]
    _, metrics = meets(hi, np.arange(size))
    hi = hi.reshape(shape)
    metrics = QueueMetrics(*(np.asarray(getattr(metrics, f.name)).reshape(shape)
                             for f in fields(QueueMetrics)))
    return StaffingResult(hi, apply_shrinkage(hi, shrinkage), metrics)
