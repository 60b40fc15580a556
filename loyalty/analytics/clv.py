"""Predicted customer lifetime value: the BG/NBD and Gamma-Gamma models, vectorised, without the ORM.

Data per customer, built by the caller from the purchases:
- frequency x: the number of REPEAT purchases: distinct purchase days minus one
  (purchases on the same day count as one; the first purchase is not counted);
- recency t_x: time from the first to the last purchase (0 when x = 0);
- age T: time from the first purchase to the end of the observation period;
- mean_value: the mean value of the repeat purchases (Gamma-Gamma only,
  ignored when x = 0).

The time unit is the caller's, days or weeks: t_x, T, the prediction time t and
`periods_per_month` must all use the same one. `alpha` is then in that unit and
so is the log-likelihood (the published CDNOW value -9582.4 is in weeks).

BG/NBD [FHL05]: while alive, a customer buys at rate lambda ~ Gamma(shape r,
rate alpha); after each repeat purchase they drop out with probability
p ~ Beta(a, b). Gamma-Gamma [FH13]: the values of a customer's purchases are
Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate gamma), independent of the
purchase process.

Sources:
- [FHL05] Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284.
- [FHL-004] Fader, Hardie & Lee (2005), "Implementing the BG/NBD Model for
  Customer Base Analysis in Excel", brucehardie.com note 004.
- [FHL-021] Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD
  Model", brucehardie.com note 021.
- [FH13] Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value",
  brucehardie.com note 025.
- the lifetimes package (MIT), whose hyp2f1 guard and monthly discounted CLV
  are followed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

FloatArray = NDArray[np.float64]

DAYS_PER_MONTH = 365.25 / 12
WEEKS_PER_MONTH = DAYS_PER_MONTH / 7

# Log-parameters are bounded: a parameter that reaches e^+-20 means the data do not identify the model.
_LOG_BOUND = 20.0
# Half-width of the step around the removable singularities of the conditional expectation.
_NEAR_SINGULAR = 1e-4


@dataclass(frozen=True)
class BgNbdParams:
    """Purchase rate lambda ~ Gamma(shape r, rate alpha); dropout probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Purchase value ~ Gamma(shape p, rate nu); nu ~ Gamma(shape q, rate gamma)."""

    p: float
    q: float
    gamma: float

    @property
    def population_mean(self) -> float | None:
        """E[Z] = p * gamma / (q - 1) [FH13]; None when q <= 1, where the mean does not exist."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else None


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float
    n_customers: int
    converged: bool
    message: str


@dataclass(frozen=True)
class GammaGammaFit:
    """`params` is None when no customer has a repeat purchase; `population_mean` is always finite."""

    params: GammaGammaParams | None
    population_mean: float
    log_likelihood: float
    n_customers: int
    converged: bool
    message: str


# --- input ------------------------------------------------------------------------------------------------


def _rfm_arrays(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated float arrays (x, t_x, T); t_x is set to 0 where x = 0, where it carries no information."""
    x, t_x, age = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frequency, recency, T)))
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(age).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a non-negative whole number (repeat purchases)")
    if (t_x < 0).any() or (t_x > age).any():
        raise ValueError("recency must lie in [0, T]")
    return x, np.where(x > 0, t_x, 0.0), age


def _weights(weights: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray:
    if weights is None:
        return np.ones(shape)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), shape)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return w


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Sum of a * b; einsum, not BLAS: a multithreaded BLAS dot is erratic on a busy machine."""
    return float(np.einsum("i,i->", a, b))


def _unique_rows(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], NDArray[np.intp]]:
    """The distinct rows of equal-length 1-D columns, and for each input row the index of its distinct row.

    One lexsort (cheaper than np.unique(axis=0), which compares rows as raw bytes).
    """
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    starts = np.ones(len(order), dtype=bool)  # the first row of each run of equal rows
    if len(order) > 1:
        starts[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in ordered])
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return tuple(c[starts] for c in ordered), inverse


def _compress(columns: tuple[FloatArray, ...], weights: FloatArray) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Merge identical rows and add their weights: the log-likelihood is a weighted sum over rows."""
    keep = weights > 0
    unique, inverse = _unique_rows(*(c[keep] for c in columns))
    return unique, np.bincount(inverse, weights=weights[keep], minlength=len(unique[0]))


# --- fitting ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Optimum:
    params: FloatArray
    converged: bool
    message: str


def _maximise(
    log_likelihood: Callable[[FloatArray], tuple[float, FloatArray]], start: FloatArray, total_weight: float, names: str
) -> _Optimum:
    """Maximise a log-likelihood over log-parameters (positivity) with L-BFGS-B and the analytic gradient.

    `log_likelihood(params)` returns the log-likelihood and its gradient in the parameters; the
    objective is the mean negative log-likelihood, so the tolerances do not depend on the number of
    customers. Never raises: a failure or a parameter at its bound comes back as converged=False.
    """

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        ll, grad = log_likelihood(params)
        return -ll / total_weight, -grad * params / total_weight

    with np.errstate(all="ignore"):
        result = optimize.minimize(
            objective,
            np.log(start),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-7},
        )
    at_bound = [name for name, th in zip(names.split(), result.x, strict=True) if abs(th) >= _LOG_BOUND - 1e-3]
    # L-BFGS-B may stop its line search at machine precision ("ABNORMAL") on an optimum: a tiny gradient counts.
    stationary = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6
    converged = stationary and bool(np.isfinite(result.fun)) and not at_bound
    message = (
        f"{'converged' if converged else 'did not converge'} after {result.nit} iterations (L-BFGS-B: {result.message})"
    )
    if at_bound:
        message += f"; {', '.join(at_bound)} at the bound e^+-{_LOG_BOUND:g}: the data do not identify the model"
    return _Optimum(np.exp(result.x), converged, message)


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
        w_unique = np.bincount(inverse.ravel(), weights=w[repeat], minlength=len(x_unique))
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
        w_unique = np.bincount(inverse.ravel(), weights=w, minlength=len(x_unique))
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


def _scaled_hyp2f1(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray, log_scale: FloatArray) -> FloatArray:
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


def clv_predict(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    expected_value: ArrayLike,
    *,
    horizon_months: int,
    monthly_discount_rate: float,
    periods_per_month: float,
    margin: float = 1.0,
) -> FloatArray:
    """Discounted expected margin over the next `horizon_months` months, per customer:

        CLV = sum_{m=1..H} margin * v * (E(m k) - E((m - 1) k)) / (1 + d)^m

    with E(t) = bgnbd_expected_purchases(t, ...), v the expected purchase value
    (gamma_gamma_expected_value), k = periods_per_month in the data's time unit
    (DAYS_PER_MONTH, WEEKS_PER_MONTH; lifetimes uses 30 and 4.345) and d the monthly discount rate.
    These are lifetimes' `customer_lifetime_value` discrete monthly steps, with a margin.
    """
    if horizon_months < 0 or periods_per_month <= 0 or monthly_discount_rate <= -1:
        raise ValueError("need horizon_months >= 0, periods_per_month > 0 and monthly_discount_rate > -1")
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    value = np.broadcast_to(np.asarray(expected_value, dtype=np.float64), x.shape)
    # sum_m (E(m k) - E((m - 1) k)) / (1 + d)^m = P(alive) * sum_m (F(m k) - F((m - 1) k)) / (1 + d)^m with F
    # the purchases of an alive customer, which depend on (x, T) only: computed once per distinct pair.
    (xu, Tu), inverse = _unique_rows(x.ravel(), age.ravel())
    discounted = np.zeros(len(xu))
    previous = np.zeros(len(xu))
    for month in range(1, horizon_months + 1):
        cumulative = _alive_purchases(params, xu, Tu, np.full(len(xu), month * periods_per_month))
        discounted += (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    alive = special.expit(-_log_odds_dead(params, x, t_x, age))
    return margin * value * alive * discounted[inverse].reshape(x.shape)
