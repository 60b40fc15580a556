"""BG/NBD and Gamma-Gamma (analytics.clv): recovery of simulated parameters, the formulas
against independent expressions and published CDNOW numbers, edge cases, and agreement with the
lifetimes package.

Tolerances are stated where they are asserted. The recovery tolerances are about 4 standard
deviations of the estimates, measured over 20 seeds with the same design; the seeds are fixed,
so the tests are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import integrate, special

from analytics.clv import (
    WEEKS_PER_MONTH,
    BgNbdParams,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    clv_predict,
    gamma_gamma_expected_value,
    gamma_gamma_fit,
)

TRUE_BGNBD = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
TRUE_GG = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
# Fader, Hardie & Lee (2005), CDNOW sample, weeks.
CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


# --- simulators and independent formulas ----------------------------------------------------------------


@dataclass(frozen=True)
class Simulated:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    alive: np.ndarray  # still alive at T
    future: np.ndarray  # repeat purchases in (T, T + horizon]


def simulate_bgnbd(rng: np.random.Generator, params: BgNbdParams, T: np.ndarray, horizon: float = 0.0) -> Simulated:
    """Customers of the BG/NBD story, observed over (0, T] and followed for `horizon` more.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases form a Poisson process of rate lambda
    and the customer drops out right after the k-th repeat purchase, k ~ Geometric(p). Given the
    number n of arrivals in (0, T], the x-th arrival time is T * Beta(x, n - x + 1).
    """
    n = len(T)
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    dropout_after = rng.geometric(rng.beta(params.a, params.b, n))
    arrivals_total = rng.poisson(rate * (T + horizon))
    arrivals_observed = rng.binomial(arrivals_total, T / (T + horizon))
    x = np.minimum(dropout_after, arrivals_observed)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals_observed - x + 1), 0.0)
    alive = dropout_after > arrivals_observed
    return Simulated(x, t_x, T, alive, np.minimum(dropout_after, arrivals_total) - x)


def simulate_mean_values(rng: np.random.Generator, params: GammaGammaParams, x: np.ndarray) -> np.ndarray:
    """nu ~ Gamma(q, rate gamma); the mean of x values Gamma(p, rate nu) is Gamma(p x, rate x nu)."""
    nu = rng.gamma(params.q, 1 / params.gamma, len(x))
    return rng.gamma(params.p * x, 1 / (x * nu))


def p_alive_by_hand(params: BgNbdParams, x: int, t_x: float, T: float) -> float:
    """1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)), and 1 for x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if x == 0:
        return 1.0
    return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def expected_by_quadrature(params: BgNbdParams, t: float, x: int, t_x: float, T: float) -> float:
    """E[Y(t) | x, t_x, T] without 2F1: P(alive) * E[(1 - exp(-lambda p t)) / p] under the posterior.

    Given alive, lambda ~ Gamma(r + x, rate alpha + T) and p ~ Beta(a, b + x) independently; an alive
    customer makes (1 - exp(-lambda p t)) / p purchases in t on average, and
    E[exp(-lambda p t) | p] = ((alpha + T) / (alpha + T + p t))^(r + x).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def mean_purchases(p: float) -> float:
        if p == 0:  # the limit (r + x) t / (alpha + T)
            return (r + x) * t / (alpha + T)
        return -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p

    # QUADPACK's QAWS integrates f(p) p^(a-1) (1-p)^(b+x-1), singular ends included.
    value, _ = integrate.quad(mean_purchases, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-11)
    return p_alive_by_hand(params, x, t_x, T) * value / special.beta(a, b + x)


def z_score(residuals: np.ndarray) -> float:
    """Sum of independent zero-mean residuals over its standard error."""
    return float(residuals.sum() / (residuals.std() * math.sqrt(len(residuals))))


# --- parameter recovery -----------------------------------------------------------------------------------


def test_bgnbd_fit_recovers_simulated_parameters():
    # given 20,000 customers, first purchases spread over a year, observed for one to two years (weeks)
    rng = np.random.default_rng(20050101)
    data = simulate_bgnbd(rng, TRUE_BGNBD, rng.uniform(52, 104, 20_000))

    # when
    fit = bgnbd_fit(data.x, data.t_x, data.T)

    # then: tolerances are ~4 standard deviations (sd: r 1.3%, alpha 1.5%, a 5%, b 7%)
    assert fit.converged, fit.message
    assert fit.n_customers == 20_000
    got = fit.params
    assert got.r == pytest.approx(TRUE_BGNBD.r, rel=0.06)
    assert got.alpha == pytest.approx(TRUE_BGNBD.alpha, rel=0.08)
    assert got.a == pytest.approx(TRUE_BGNBD.a, rel=0.20)
    assert got.b == pytest.approx(TRUE_BGNBD.b, rel=0.25)
    # the mean purchase rate r/alpha and mean dropout a/(a+b) are better determined (sd 1% and 2.3%)
    assert got.r / got.alpha == pytest.approx(TRUE_BGNBD.r / TRUE_BGNBD.alpha, rel=0.05)
    assert got.a / (got.a + got.b) == pytest.approx(TRUE_BGNBD.a / (TRUE_BGNBD.a + TRUE_BGNBD.b), rel=0.10)
    # a maximum: at least as likely as the true parameters
    assert fit.log_likelihood >= bgnbd_log_likelihood(TRUE_BGNBD, data.x, data.t_x, data.T)


def test_gamma_gamma_fit_recovers_simulated_parameters():
    # given 20,000 repeat customers with 1 + Poisson(4) repeat purchases
    rng = np.random.default_rng(20130101)
    x = 1 + rng.poisson(4, 20_000)
    values = simulate_mean_values(rng, TRUE_GG, x)

    # when
    fit = gamma_gamma_fit(x, values)

    # then: ~4 sd (sd: p 7.5%, q 1.2%, gamma 9.4%; p and gamma are strongly correlated)
    assert fit.converged, fit.message
    assert fit.n_customers == 20_000
    got = fit.params
    assert got.p == pytest.approx(TRUE_GG.p, rel=0.30)
    assert got.q == pytest.approx(TRUE_GG.q, rel=0.06)
    assert got.gamma == pytest.approx(TRUE_GG.gamma, rel=0.40)
    # the population mean p*gamma/(q-1) = 30 is sharp (sd 0.4%)
    assert fit.population_mean == pytest.approx(30.0, rel=0.02)
    assert fit.population_mean == got.population_mean


def test_fit_on_grouped_rows_with_weights_equals_fit_on_all_rows():
    rng = np.random.default_rng(7)
    data = simulate_bgnbd(rng, TRUE_BGNBD, np.full(3000, 52.0))
    days = (np.round(data.x), np.round(data.t_x), data.T)  # integer times repeat often

    grouped, counts = np.unique(np.column_stack(days), axis=0, return_counts=True)
    by_weight = bgnbd_fit(*grouped.T, weights=counts, compress=False)
    by_row = bgnbd_fit(*days, compress=False)
    compressed = bgnbd_fit(*days)

    for fit in (by_weight, compressed):
        assert fit.n_customers == 3000
        for name in ("r", "alpha", "a", "b"):
            assert getattr(fit.params, name) == pytest.approx(getattr(by_row.params, name), rel=1e-4)
        assert fit.log_likelihood == pytest.approx(by_row.log_likelihood, rel=1e-9)


# --- formulas against independent expressions and published numbers --------------------------------------


def test_expected_purchases_match_the_published_cdnow_example():
    # Fader, Hardie & Lee (2005): x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226 purchases in 39 weeks
    expected = bgnbd_expected_purchases(CDNOW, 39, 2, 30.43, 38.86)

    assert round(float(expected), 3) == 1.226


@pytest.mark.parametrize(
    ("params", "t", "x", "t_x", "T"),
    [
        (CDNOW, 39, 2, 30.43, 38.86),
        (CDNOW, 39, 0, 0.0, 38.86),
        (CDNOW, 10, 7, 35.0, 38.86),
        (TRUE_BGNBD, 52, 1, 5.0, 60.0),
        (BgNbdParams(1.5, 20.0, 3.0, 4.0), 365, 40, 300.0, 365.0),  # a > 1
        (BgNbdParams(0.3, 2.0, 1.0, 2.0), 30, 3, 10.0, 20.0),  # a = 1: removable singularity
        (BgNbdParams(0.3, 2.0, 0.4, 0.6), 30, 0, 0.0, 20.0),  # a + b = 1, x = 0: 2F1 with c = 0
        (BgNbdParams(0.3, 2.0, 0.2, 0.3), 30, 0, 0.0, 20.0),  # a + b < 1: c < 0
        (BgNbdParams(2.0, 1.0, 0.5, 5.0), 3650, 500, 700.0, 730.0),  # many purchases, long horizon
    ],
)
def test_expected_purchases_and_p_alive_match_independent_expressions(params, t, x, t_x, T):
    # relative tolerance 1e-6 for E (quadrature error ~1e-10; the singular cases are interpolated)
    assert bgnbd_expected_purchases(params, t, x, t_x, T) == pytest.approx(
        expected_by_quadrature(params, t, x, t_x, T), rel=1e-6
    )
    assert bgnbd_probability_alive(params, x, t_x, T) == pytest.approx(p_alive_by_hand(params, x, t_x, T), rel=1e-12)


def test_p_alive_is_one_without_repeat_purchase():
    # the BG/NBD lets a customer drop out only right after a repeat purchase
    assert bgnbd_probability_alive(CDNOW, [0, 0], [0.0, 0.0], [1.0, 1e6]).tolist() == [1.0, 1.0]


def test_predictions_are_calibrated_on_simulated_customers():
    # given 20,000 simulated customers followed 39 weeks beyond the end of the observation
    rng = np.random.default_rng(39)
    data = simulate_bgnbd(rng, TRUE_BGNBD, rng.uniform(26, 78, 20_000), horizon=39.0)

    # when
    expected = bgnbd_expected_purchases(TRUE_BGNBD, 39, data.x, data.t_x, data.T)
    alive = bgnbd_probability_alive(TRUE_BGNBD, data.x, data.t_x, data.T)

    # then: the totals match what happened within 4 standard errors, overall and for x = 0
    assert abs(z_score(data.future - expected)) < 4
    assert abs(z_score(data.alive - alive)) < 4
    assert abs(z_score((data.future - expected)[data.x == 0])) < 4


def test_gamma_gamma_expected_value_by_hand():
    # E = (q-1)/(px+q-1) * p*gamma/(q-1) + px/(px+q-1) * m; x = 3, m = 20: 3/21 * 30 + 18/21 * 20 = 450/21
    values = gamma_gamma_expected_value(TRUE_GG, [3, 0, 0], [20.0, float("nan"), 0.0])

    assert values == pytest.approx([450 / 21, 30.0, 30.0], rel=1e-12)


def test_clv_is_the_discounted_sum_of_monthly_purchases_times_value():
    # given one customer; months of 4 weeks; expected purchases at 4, 8 and 12 weeks by quadrature
    cumulative = [0.0] + [expected_by_quadrature(CDNOW, 4 * m, 2, 30.43, 38.86) for m in (1, 2, 3)]
    by_hand = sum(
        0.3 * 50.0 * (cumulative[m] - cumulative[m - 1]) / 1.02**m for m in (1, 2, 3)
    )  # margin 30%, value 50, 2% a month

    # when
    clv = clv_predict(
        CDNOW,
        [2],
        [30.43],
        [38.86],
        [50.0],
        horizon_months=3,
        monthly_discount_rate=0.02,
        periods_per_month=4,
        margin=0.3,
    )

    # then
    assert clv[0] == pytest.approx(by_hand, rel=1e-6)


# --- edge cases -------------------------------------------------------------------------------------------


def test_no_repeat_purchase_at_all_gives_population_estimates_not_errors():
    # given 100 customers who each bought once
    x, t_x, T = np.zeros(100), np.zeros(100), np.linspace(1, 300, 100)

    # when
    bg = bgnbd_fit(x, t_x, T)
    gg = gamma_gamma_fit(x, np.full(100, np.nan))

    # then: the purchase rate goes to 0 (not identified: reported, not raised) ...
    assert not bg.converged and "not identified" in bg.message
    expected = bgnbd_expected_purchases(bg.params, 365, x, t_x, T)
    assert np.isfinite(expected).all() and (expected >= 0).all() and expected.max() < 1e-3
    assert (bgnbd_probability_alive(bg.params, x, t_x, T) == 1).all()
    # ... and every customer gets the same (zero) value estimate
    assert gg.params is None and not gg.converged and gg.n_customers == 0
    values = gamma_gamma_expected_value(gg.params, x, np.full(100, np.nan), population_mean=gg.population_mean)
    assert values.tolist() == [0.0] * 100
    clv = clv_predict(
        bg.params, x, t_x, T, values, horizon_months=12, monthly_discount_rate=0.01, periods_per_month=WEEKS_PER_MONTH
    )
    assert clv.tolist() == [0.0] * 100


def test_single_customer_fits_without_error():
    fit = bgnbd_fit([3], [20.0], [30.0])
    gg = gamma_gamma_fit([3], [25.0])

    assert fit.n_customers == 1 and gg.n_customers == 1
    assert np.isfinite(fit.log_likelihood) and np.isfinite(gg.log_likelihood)
    expected = bgnbd_expected_purchases(fit.params, 30, [3, 0], [20.0, 0.0], [30.0, 30.0])
    assert np.isfinite(expected).all() and (expected >= 0).all()
    assert np.isfinite(
        gamma_gamma_expected_value(gg.params, [3, 0], [25.0, 0.0], population_mean=gg.population_mean)
    ).all()


@pytest.mark.parametrize(
    "params", [CDNOW, TRUE_BGNBD, BgNbdParams(0.3, 2.0, 1.0, 2.0), BgNbdParams(5.0, 0.1, 0.05, 40.0)]
)
def test_predictions_are_finite_and_non_negative_for_extreme_histories(params):
    # x = 0 / few / thousands of purchases, tiny and huge ages, horizons from 0 to 30 years of days
    x = np.array([0, 0, 1, 5, 5, 3000, 50])
    t_x = np.array([0.0, 0.0, 0.5, 10.0, 1e6, 3000.0, 60.0])
    T = np.array([0.0, 1e6, 1.0, 1e6, 1e6, 3000.0, 1e5])
    for t in (0.0, 1.0, 365.0, 10_957.0):
        expected = bgnbd_expected_purchases(params, t, x, t_x, T)
        assert np.isfinite(expected).all() and (expected >= 0).all()
        if t == 0:
            assert (expected == 0).all()
    alive = bgnbd_probability_alive(params, x, t_x, T)
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()


def test_gamma_gamma_with_q_at_most_one_falls_back_to_the_observed_mean():
    # q <= 1: the model's population mean does not exist
    params = GammaGammaParams(p=2.0, q=0.8, gamma=10.0)

    values = gamma_gamma_expected_value(params, [0, 2, 4], [np.nan, 10.0, 40.0])

    # x = 0: the frequency-weighted observed mean (2 * 10 + 4 * 40) / 6 = 30; else p (gamma + x m) / (p x + q - 1)
    assert values == pytest.approx([30.0, 2 * (10 + 20) / 3.8, 2 * (10 + 160) / 7.8], rel=1e-12)


def test_invalid_histories_are_rejected():
    with pytest.raises(ValueError, match="recency"):
        bgnbd_fit([1], [40.0], [30.0])
    with pytest.raises(ValueError, match="frequency"):
        bgnbd_probability_alive(CDNOW, [1.5], [1.0], [2.0])
    with pytest.raises(ValueError, match="mean_value"):
        gamma_gamma_expected_value(TRUE_GG, [2], [-5.0])


# --- agreement with lifetimes -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The 'mode.chained_assignment' option is deprecated")  # lifetimes on pandas 3
def test_agrees_with_lifetimes_on_cdnow_to_three_significant_figures():
    # lifetimes is a test-only dependency (see requirements); no skip: CI must have it
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    data = load_cdnow_summary_data_with_monetary_value()
    x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    reference_bg = BetaGeoFitter().fit(x, t_x, T)
    repeat = x > 0
    reference_gg = GammaGammaFitter().fit(x[repeat], m[repeat])

    bg = bgnbd_fit(x, t_x, T)
    gg = gamma_gamma_fit(x, m)

    # published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4 (Fader, Hardie & Lee 2005)
    assert bg.converged and gg.converged
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    for name, published in (("r", 0.243), ("alpha", 4.414), ("a", 0.793), ("b", 2.426)):
        assert getattr(bg.params, name) == pytest.approx(published, abs=5e-4)
    _assert_same_predictions(bg, gg, reference_bg, reference_gg, x, t_x, T, m, periods_per_month=4.345, freq="W")


@pytest.mark.filterwarnings("ignore:The 'mode.chained_assignment' option is deprecated")  # lifetimes on pandas 3
def test_agrees_with_lifetimes_on_simulated_daily_data_to_three_significant_figures():
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    rng = np.random.default_rng(2)
    daily = BgNbdParams(r=0.25, alpha=4.0 * 7, a=0.8, b=2.5)
    sim = simulate_bgnbd(rng, daily, np.round(rng.uniform(30, 730, 5_000)))
    x, t_x, T = pd.Series(sim.x), pd.Series(np.round(sim.t_x)), pd.Series(sim.T)
    m = pd.Series(np.where(sim.x > 0, simulate_mean_values(rng, TRUE_GG, np.maximum(sim.x, 1)), 0.0))
    reference_bg = BetaGeoFitter().fit(x, t_x, T)
    repeat = x > 0
    reference_gg = GammaGammaFitter().fit(x[repeat], m[repeat])

    bg = bgnbd_fit(x, t_x, T)
    gg = gamma_gamma_fit(x, m)

    assert bg.converged and gg.converged
    _assert_same_predictions(bg, gg, reference_bg, reference_gg, x, t_x, T, m, periods_per_month=30, freq="D")


def _assert_same_predictions(bg, gg, reference_bg, reference_gg, x, t_x, T, m, *, periods_per_month, freq):
    """Parameters, E[Y(t)], P(alive), E[value] and 12-month CLV at 1%/month agree to rtol 5e-4."""
    three_figures = 5e-4
    for name, value in reference_bg.params_.items():
        assert getattr(bg.params, name) == pytest.approx(value, rel=three_figures)
    for ours, theirs in zip((gg.params.p, gg.params.q, gg.params.gamma), reference_gg.params_, strict=True):
        assert ours == pytest.approx(theirs, rel=three_figures)
    for t in (1, 10 * periods_per_month):
        assert bgnbd_expected_purchases(bg.params, t, x, t_x, T) == pytest.approx(
            np.asarray(reference_bg.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)),
            rel=three_figures,
        )
    assert bgnbd_probability_alive(bg.params, x, t_x, T) == pytest.approx(
        np.asarray(reference_bg.conditional_probability_alive(x, t_x, T)), rel=three_figures
    )
    values = gamma_gamma_expected_value(gg.params, x, m)
    assert values == pytest.approx(
        np.asarray(reference_gg.conditional_expected_average_profit(x, m)), rel=three_figures
    )
    clv = clv_predict(
        bg.params, x, t_x, T, values, horizon_months=12, monthly_discount_rate=0.01, periods_per_month=periods_per_month
    )
    reference_clv = reference_gg.customer_lifetime_value(
        reference_bg, x, t_x, T, m, time=12, discount_rate=0.01, freq=freq
    )
    assert clv == pytest.approx(np.asarray(reference_clv), rel=three_figures)
