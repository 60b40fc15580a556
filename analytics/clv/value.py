"""The discounted customer lifetime value from a BG/NBD fit and expected purchase values."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from analytics.clv._common import BgNbdParams, FloatArray, _rfm_arrays, _unique_rows
from analytics.clv.bgnbd import _alive_purchases, _log_odds_dead


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
