"""BG/NBD [FHL05]: the log-likelihood, the fit, P(alive) and the expected number of purchases."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from analytics.clv._common import (
    _NEAR_SINGULAR,
    BgNbdFit,
    BgNbdParams,
    FloatArray,
    _compress,
    _dot,
    _maximise,
    _rfm_arrays,
    _unique_rows,
    _weights,
)


@dataclass(frozen=True)
class _BgNbdData:
    """Rows with x > 0 (x, t_x, T, w); rows with x = 0 (T0, w0); per distinct x > 0 its total weight."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    w: FloatArray
    T0: FloatArray
    w0: FloatArray
    x_unique: FloatArray
    w_unique: FloatArray

    @classmethod
    def build(cls, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> _BgNbdData:
        repeat = x > 0
        x_unique, inverse = np.unique(x[repeat], return_inverse=True)
        # Weighted, bincount gives floats (numpy's stubs say integers).
        w_unique = cast(FloatArray, np.bincount(inverse.ravel(), weights=w[repeat], minlength=len(x_unique)))
        return cls(x[repeat], t_x[repeat], T[repeat], w[repeat], T[~repeat], w[~repeat], x_unique, w_unique)


def _bgnbd_log_likelihood(params: FloatArray, d: _BgNbdData) -> tuple[float, FloatArray]:
    """Sum of w * ln L(r, alpha, a, b | x, t_x, T) and its gradient [FHL05, FHL-004].

    L = A1 * A2 * (A3 + [x > 0] * A4), with
        ln A1 = lnG(r + x) - lnG(r) + r ln(alpha)
        ln A2 = lnG(a + b) + lnG(b + x) - lnG(b) - lnG(a + b + x)
        ln A3 = -(r + x) ln(alpha + T)
        ln A4 = ln(a) - ln(b + x - 1) - (r + x) ln(alpha + t_x)
    For x = 0 this is L = (alpha / (alpha + T))^r. The terms in x alone are summed over distinct x.
    """
    r, alpha, a, b = params
    xu, wu, x, w = d.x_unique, d.w_unique, d.x, d.w
    total = wu.sum() + d.w0.sum()
    log_alpha_T0 = np.log(alpha + d.T0)
    ll = _dot(wu, special.gammaln(r + xu) + special.gammaln(b + xu) - special.gammaln(a + b + xu))
    ll += wu.sum() * (special.gammaln(a + b) - special.gammaln(r) - special.gammaln(b))
    ll += total * r * np.log(alpha) - r * _dot(d.w0, log_alpha_T0)
    log_alpha_t_x, log_alpha_T = np.log(alpha + d.t_x), np.log(alpha + d.T)
    log_a4_over_a3 = np.log(a) - np.log(b + x - 1) + (r + x) * (log_alpha_T - log_alpha_t_x)
    share4 = special.expit(log_a4_over_a3)  # A4 / (A3 + A4): the weight of "dropped out right after t_x"
    share3 = 1 - share4
    # ln(A3 + A4) = ln A3 + ln(1 + A4 / A3)
    ll += _dot(w, np.logaddexp(0.0, log_a4_over_a3) - (r + x) * log_alpha_T)

    psi_ab = special.digamma(a + b)
    psi_abx = special.digamma(a + b + xu)
    grad = np.array(
        [
            _dot(wu, special.digamma(r + xu))
            - wu.sum() * special.digamma(r)
            + total * np.log(alpha)
            - _dot(w, share3 * log_alpha_T + share4 * log_alpha_t_x)
            - _dot(d.w0, log_alpha_T0),
            total * r / alpha
            - _dot(w * (r + x), share3 / (alpha + d.T) + share4 / (alpha + d.t_x))
            - r * _dot(d.w0, 1 / (alpha + d.T0)),
            _dot(wu, psi_ab - psi_abx) + _dot(w, share4) / a,
            _dot(wu, psi_ab + special.digamma(b + xu) - special.digamma(b) - psi_abx) - _dot(w, share4 / (b + x - 1)),
        ]
    )
    return float(ll), grad


def bgnbd_log_likelihood(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None
) -> float:
    """The BG/NBD log-likelihood of the data at `params` (see `_bgnbd_log_likelihood`)."""
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    d = _BgNbdData.build(x.ravel(), t_x.ravel(), age.ravel(), _weights(weights, x.shape).ravel())
    return _bgnbd_log_likelihood(np.array([params.r, params.alpha, params.a, params.b]), d)[0]


def bgnbd_fit(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    compress: bool = True,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters r, alpha, a, b [FHL05].

    `weights` counts customers per row, for data already grouped by (x, t_x, T) (e.g. GROUP BY in SQL,
    the fastest way); `compress` groups identical rows here, which pays when times are whole days
    or weeks. Time is scaled so that max(T) = 1 during the fit (alpha is scaled back). Never raises
    on data that pass validation: a failed or degenerate fit has converged=False and says why.
    """
    x, t_x, age = (v.ravel() for v in _rfm_arrays(frequency, recency, T))
    w = _weights(weights, x.shape)
    if compress:
        (x, t_x, age), w = _compress((x, t_x, age), w)
    n_customers = int(round(w.sum()))
    if n_customers == 0:
        return BgNbdFit(BgNbdParams(1.0, 1.0, 1.0, 1.0), 0.0, 0, False, "no customers to fit")
    scale = float(age.max()) or 1.0
    data = _BgNbdData.build(x, t_x / scale, age / scale, w)
    optimum = _maximise(lambda p: _bgnbd_log_likelihood(p, data), np.ones(4), w.sum(), "r alpha a b")
    r, alpha, a, b = optimum.params
    params = BgNbdParams(float(r), float(alpha * scale), float(a), float(b))
    ll = bgnbd_log_likelihood(params, x, t_x, age, weights=w)
    if not w[x > 0].sum() > 0:
        # The likelihood then grows without bound as r/alpha -> 0 and a, b are not identified.
        message = "no repeat purchase: the model is not identified (r/alpha -> 0: the fit predicts ~0 purchases)"
        return BgNbdFit(params, ll, n_customers, False, message)
    return BgNbdFit(params, ll, n_customers, optimum.converged, optimum.message)


# --- prediction -------------------------------------------------------------------------------------------


def _log_odds_dead(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """ln(A4 / A3) = ln(a / (b + x - 1)) + (r + x) ln((alpha + T) / (alpha + t_x)); -inf for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, log_odds, -np.inf)


def bgnbd_probability_alive(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(alive | x, t_x, T) = 1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)) [FHL-021].

    It is 1 for x = 0: in the BG/NBD a customer can only drop out right after a repeat purchase.
    """
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    return special.expit(-_log_odds_dead(params, x, t_x, age))


def _scaled_hyp2f1(
    a: FloatArray | float, b: FloatArray | float, c: FloatArray, z: FloatArray, log_scale: FloatArray
) -> FloatArray:
    """exp(log_scale) * 2F1(a, b; c; z) without overflow (2F1 can be huge where the scale is tiny)."""
    value = special.hyp2f1(a, b, c, z)
    return np.sign(value) * np.exp(np.log(np.abs(value)) + log_scale)


def _hyp_term(params: BgNbdParams, x: FloatArray, T: FloatArray, t: FloatArray) -> FloatArray:
    """((alpha + T) / (alpha + T + t))^(r + x) * 2F1(r + x, b + x; a + b + x - 1; z), z = t / (alpha + T + t).

    As in lifetimes, where scipy's hyp2f1 overflows, Euler's transformation
    2F1(a, b; c; z) = (1 - z)^(c - a - b) 2F1(c - a, c - b; c; z) gives the same term as
    (1 - z)^(a - 1) * 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z), whose parameters stay small.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    c = a + b + x - 1
    log_1mz = np.log1p(-z)
    term = _scaled_hyp2f1(r + x, b + x, c, z, (r + x) * log_1mz)
    bad = ~np.isfinite(term)
    if bad.any():
        term[bad] = _scaled_hyp2f1(a + b - 1 - r, a - 1, c[bad], z[bad], (a - 1) * log_1mz[bad])
    return term


def _alive_purchases_closed_form(params: BgNbdParams, x: FloatArray, T: FloatArray, t: FloatArray) -> FloatArray:
    a, b = params.a, params.b
    with np.errstate(all="ignore"):
        return (a + b + x - 1) / (a - 1) * (1 - _hyp_term(params, x, T, t))


def _alive_purchases(params: BgNbdParams, x: FloatArray, T: FloatArray, t: FloatArray) -> FloatArray:
    """Expected purchases in (T, T + t] of a customer alive at T with x repeat purchases (1-D arrays).

        (a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x) * 2F1(...)]   [FHL05 eq. 10]

    This is 0/0 at a = 1 and, for x = 0, at a + b = 1 (2F1 with c = 0), while the expectation is
    analytic in a and b there: within h of them it is interpolated linearly between the two
    evaluations at distance h on either side, exact up to O(h^2). A value that is still not finite
    (never seen in the tests) falls back to E[lambda | x, T] * t, an upper bound that ignores dropout.
    Clipped to >= 0, and 0 at t = 0.
    """
    a, b, h = params.a, params.b, _NEAR_SINGULAR
    if abs(a - 1) < h:
        expected = _interpolated(params, "a", 1.0, x, T, t)
    elif abs(a + b - 1) < h and b > 2 * h:
        expected = _interpolated(params, "b", 1.0 - a, x, T, t)
    else:
        expected = _alive_purchases_closed_form(params, x, T, t)
    expected = np.where(np.isfinite(expected), expected, (params.r + x) / (params.alpha + T) * t)
    return np.where(t > 0, np.maximum(expected, 0.0), 0.0)


def _interpolated(
    params: BgNbdParams, name: str, singular: float, x: FloatArray, T: FloatArray, t: FloatArray
) -> FloatArray:
    """The closed form at `params`, interpolated in parameter `name` between singular - h and singular + h."""
    h = _NEAR_SINGULAR
    low = _alive_purchases_closed_form(replace(params, **{name: singular - h}), x, T, t)
    high = _alive_purchases_closed_form(replace(params, **{name: singular + h}), x, T, t)
    return low + (getattr(params, name) - (singular - h)) / (2 * h) * (high - low)


def bgnbd_expected_purchases(
    params: BgNbdParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Expected number of purchases in the next t periods, E[Y(t) | x, t_x, T] [FHL05 eq. 10]:

        E = (a + b + x - 1) / (a - 1)
            * [1 - ((alpha + T) / (alpha + T + t))^(r + x) * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))]
            / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x))

    i.e. P(alive) times the expected purchases of an alive customer, which depend on (x, T, t) only
    and are computed once per distinct (x, T, t). `t` broadcasts against the customers. Finite and
    >= 0 for every valid input, including x = 0, a = 1 and a + b = 1 (the limits).
    """
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    horizon = np.asarray(t, dtype=np.float64)
    if not np.isfinite(horizon).all() or (horizon < 0).any():
        raise ValueError("t must be finite and >= 0")
    x, t_x, age, horizon = np.broadcast_arrays(x, t_x, age, horizon)
    (xu, Tu, tu), inverse = _unique_rows(x.ravel(), age.ravel(), horizon.ravel())
    alive_purchases = _alive_purchases(params, xu, Tu, tu)[inverse].reshape(x.shape)
    return special.expit(-_log_odds_dead(params, x, t_x, age)) * alive_purchases
