"""Shared by the CLV models: parameter and fit dataclasses, constants, input checks and the optimizer wrapper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

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
    # Weighted, bincount gives floats (numpy's stubs say integers).
    return unique, cast(FloatArray, np.bincount(inverse, weights=weights[keep], minlength=len(unique[0])))


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
