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

from analytics.clv._common import (
    DAYS_PER_MONTH,
    WEEKS_PER_MONTH,
    BgNbdFit,
    BgNbdParams,
    FloatArray,
    GammaGammaFit,
    GammaGammaParams,
)
from analytics.clv.bgnbd import (
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
)
from analytics.clv.gamma_gamma import gamma_gamma_expected_value, gamma_gamma_fit
from analytics.clv.value import clv_predict

__all__ = [
    "BgNbdFit",
    "BgNbdParams",
    "DAYS_PER_MONTH",
    "FloatArray",
    "GammaGammaFit",
    "GammaGammaParams",
    "WEEKS_PER_MONTH",
    "bgnbd_expected_purchases",
    "bgnbd_fit",
    "bgnbd_log_likelihood",
    "bgnbd_probability_alive",
    "clv_predict",
    "gamma_gamma_expected_value",
    "gamma_gamma_fit",
]
