"""Gamma-Gamma [FH13]: the log-likelihood, the fit and the expected purchase value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from analytics.clv._common import (
    FloatArray,
    GammaGammaFit,
    GammaGammaParams,
    _compress,
    _dot,
    _maximise,
    _weights,
)


@dataclass(frozen=True)
class _GammaGammaData:
    """Rows (x, m, w) with x > 0 and m > 0; per distinct x its total weight; the sums that never change."""

    x: FloatArray
    m: FloatArray
    w: FloatArray
    x_unique: FloatArray
    w_unique: FloatArray
    sum_log_m: float  # sum of w ln(m)
    sum_x_log_xm: float  # sum of w x ln(x m)

    @classmethod
    def build(cls, x: FloatArray, m: FloatArray, w: FloatArray) -> _GammaGammaData:
        x_unique, inverse = np.unique(x, return_inverse=True)
        # Weighted, bincount gives floats (numpy's stubs say integers).
        w_unique = cast(FloatArray, np.bincount(inverse.ravel(), weights=w, minlength=len(x_unique)))
        return cls(x, m, w, x_unique, w_unique, _dot(w, np.log(m)), _dot(w * x, np.log(x * m)))


def _gamma_gamma_log_likelihood(params: FloatArray, d: _GammaGammaData) -> tuple[float, FloatArray]:
    """Sum of w * ln f(m | p, q, gamma, x) and its gradient [FH13 eq. 1a], for x > 0 and mean value m > 0:

    ln f = lnG(p x + q) - lnG(p x) - lnG(q) + q ln(gamma) + (p x - 1) ln(m) + p x ln(x) - (p x + q) ln(gamma + x m)

    The gamma functions depend on x only and are summed over distinct x.
    """
    p, q, gamma = params
    xu, wu, w, wx = d.x_unique, d.w_unique, d.w, d.w * d.x
    total = wu.sum()
    pxu = p * xu
    log_gxm = np.log(gamma + d.x * d.m)
    psi_pxq = special.digamma(pxu + q)
    ll = _dot(wu, special.gammaln(pxu + q) - special.gammaln(pxu)) + p * d.sum_x_log_xm - d.sum_log_m
    ll += total * (q * np.log(gamma) - special.gammaln(q)) - p * _dot(wx, log_gxm) - q * _dot(w, log_gxm)
    grad = np.array(
        [
            _dot(wu * xu, psi_pxq - special.digamma(pxu)) + d.sum_x_log_xm - _dot(wx, log_gxm),
            _dot(wu, psi_pxq) + total * (np.log(gamma) - special.digamma(q)) - _dot(w, log_gxm),
            total * q / gamma - _dot(p * wx + q * w, 1 / (gamma + d.x * d.m)),
        ]
    )
    return float(ll), grad


def gamma_gamma_fit(
    frequency: ArrayLike, mean_value: ArrayLike, *, weights: ArrayLike | None = None, compress: bool = False
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters p, q, gamma on customers with x > 0 [FH13].

    Rows with x = 0 or a mean value <= 0 are left out (the model needs positive values). Values are
    scaled to a mean of 1 during the fit (gamma is scaled back). `compress` merges identical (x, m)
    rows, which only pays when values repeat. `population_mean` is p*gamma/(q-1), or the observed
    mean purchase value when q <= 1, or 0 when no customer has a repeat purchase.
    """
    x, m = (np.ravel(np.asarray(v, dtype=np.float64)) for v in np.broadcast_arrays(frequency, mean_value))
    w = np.ravel(_weights(weights, x.shape))
    usable = (x > 0) & (m > 0) & np.isfinite(m) & (w > 0)
    left_out = int(((x > 0) & (w > 0) & ~usable).sum())
    note = f"; {left_out} rows with repeat purchases left out: mean value not > 0" if left_out else ""
    x, m, w = x[usable], m[usable], w[usable]
    if compress:
        (x, m), w = _compress((x, m), w)
    n_customers = int(round(w.sum()))
    if n_customers == 0:
        return GammaGammaFit(None, 0.0, 0.0, 0, False, "no customer with a repeat purchase and a positive value" + note)
    observed_mean = _dot(w * x, m) / _dot(w, x)
    scaled = _GammaGammaData.build(x, m / observed_mean, w)
    optimum = _maximise(
        lambda p: _gamma_gamma_log_likelihood(p, scaled), np.array([1.0, 2.0, 1.0]), w.sum(), "p q gamma"
    )
    p, q, gamma = (float(v) for v in optimum.params)
    params = GammaGammaParams(p, q, gamma * observed_mean)
    ll, _ = _gamma_gamma_log_likelihood(np.array([p, q, params.gamma]), _GammaGammaData.build(x, m, w))
    population_mean = params.population_mean
    return GammaGammaFit(
        params,
        population_mean if population_mean is not None else observed_mean,
        ll,
        n_customers,
        optimum.converged,
        optimum.message + note,
    )


def _population_mean(params: GammaGammaParams | None, x: FloatArray, m: FloatArray) -> float:
    """p * gamma / (q - 1); else the observed mean purchase value of these customers; else 0."""
    if params is not None and params.population_mean is not None:
        return params.population_mean
    repeat = (x > 0) & np.isfinite(m)
    return _dot(x[repeat], m[repeat]) / x[repeat].sum() if repeat.any() else 0.0


def gamma_gamma_expected_value(
    params: GammaGammaParams | None,
    frequency: ArrayLike,
    mean_value: ArrayLike,
    *,
    population_mean: float | None = None,
) -> FloatArray:
    """Expected value of a customer's purchases, E[Z | x, mean value m] [FH13]:

        E = (q - 1) / (p x + q - 1) * p gamma / (q - 1) + p x / (p x + q - 1) * m = p (gamma + x m) / (p x + q - 1)

    Customers with x = 0 (m is ignored, may be NaN) get the population mean p * gamma / (q - 1);
    pass `population_mean` (e.g. GammaGammaFit.population_mean) to override it, which is
    needed when q <= 1 or `params` is None (no repeat purchase in the fit data).
    """
    x, m = np.broadcast_arrays(np.asarray(frequency, dtype=np.float64), np.asarray(mean_value, dtype=np.float64))
    if ((x > 0) & ~(m >= 0)).any():
        raise ValueError("mean_value must be >= 0 where frequency > 0")
    prior = population_mean if population_mean is not None else _population_mean(params, x, m)
    if params is None:
        return np.full(x.shape, prior)
    p, q, gamma = params.p, params.q, params.gamma
    denominator = p * x + q - 1
    with np.errstate(all="ignore"):
        conditional = p * (gamma + x * np.where(x > 0, m, 0.0)) / denominator
    return np.where((x > 0) & (denominator > 0), conditional, prior)
