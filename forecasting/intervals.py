"""Prediction intervals for interval counts of offered calls, shared by every forecast model.

An interval count is modelled as negative binomial with variance ``m + phi * m**2``: the Poisson
noise of arrivals (``m``) plus the uncertainty of the day level (``phi``, the squared relative
error of the model's daily totals that is not explained by Poisson noise). ``phi = 0`` gives a
Poisson band. Counts are discrete, so a plain quantile over-covers at small means (a band that
must contain a whole extra integer); the bounds here use the mid-distribution quantile, which
spreads each integer's mass evenly over ``(k - 0.5, k + 0.5]``: a bound covers an integer when
more than half of that integer's mass lies inside the nominal level.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

__all__ = ["BAND_COLUMNS", "LEVELS", "count_bands", "count_dispersion"]

LEVELS: tuple[float, ...] = (0.80, 0.95)
BAND_COLUMNS: tuple[str, ...] = ("mean", "lower_80", "upper_80", "lower_95", "upper_95")

_POISSON_BELOW = 1e-6


def count_dispersion(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, *, inflation: float = 1.0
) -> float:
    """Moment estimate of ``phi`` from one-day-ahead forecasts of counts (day totals or intervals).

    ``E[(y - f)^2] = f + phi * f^2`` for a Poisson count whose level is off by a relative
    error of variance ``phi``; pooled over counts (weighted by ``f^2``) and floored at 0.
    ``inflation`` scales the squared errors when ``f`` was estimated from data that include
    ``y`` (in-sample errors understate out-of-sample ones).
    """
    y = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    keep = np.isfinite(y) & np.isfinite(f) & (f > 0)
    if not keep.any():
        return 0.0
    y, f = y[keep], f[keep]
    return max(0.0, float(np.sum(inflation * (y - f) ** 2 - f) / np.sum(f**2)))


def _cdf(k: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Count CDF at integer ``k`` (0 below 0): negative binomial, Poisson where phi is ~0."""
    poisson = phi < _POISSON_BELOW
    n = 1.0 / np.where(poisson, 1.0, phi)
    safe_k = np.maximum(k, 0.0)
    value = np.where(
        poisson,
        special.gammaincc(safe_k + 1, mean),
        special.betainc(n, safe_k + 1, n / (n + mean)),
    )
    return np.where(k < 0, 0.0, value)


def _mid_quantile(p: float, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Mid-distribution quantile: integer ``k`` with ``F(k-1) < p <= F(k)``, interpolated."""
    sd = np.sqrt(mean + phi * mean**2)
    k = np.maximum(np.floor(mean + stats.norm.ppf(p) * sd), 0.0)
    # Walk from the normal guess to the exact integer quantile (a few steps at most).
    for _ in range(64):
        below = _cdf(k - 1, mean, phi)
        at = _cdf(k, mean, phi)
        up = at < p
        down = (below >= p) & (k > 0)
        if not (up.any() or down.any()):
            break
        k = k + up - down
    mass = at - below
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(mass > 0, (p - below) / mass, 0.5)
    return np.maximum(k - 0.5 + frac, 0.0)


def count_bands(
    mean: npt.ArrayLike, dispersion: npt.ArrayLike | float, index: pd.Index
) -> pd.DataFrame:
    """The forecast frame: ``mean`` and the 80 % / 95 % bands for counts with ``dispersion``.

    ``mean`` is clipped at 0; where it is 0 (a closed interval) every bound is 0.
    """
    m = np.clip(np.asarray(mean, dtype=float), 0.0, None)
    phi = np.broadcast_to(np.clip(np.asarray(dispersion, dtype=float), 0.0, None), m.shape)
    out = {"mean": m}
    open_ = m > 0
    for level in LEVELS:
        tail = (1.0 - level) / 2.0
        lower = np.zeros_like(m)
        upper = np.zeros_like(m)
        lower[open_] = _mid_quantile(tail, m[open_], phi[open_])
        upper[open_] = _mid_quantile(1.0 - tail, m[open_], phi[open_])
        pct = round(level * 100)
        out[f"lower_{pct}"] = lower
        out[f"upper_{pct}"] = upper
    return pd.DataFrame(out, index=index, columns=list(BAND_COLUMNS))
