"""Predicted customer lifetime value of a program's members, and CLV:CAC per acquisition channel.

`clv_refresh` fits the BG/NBD and Gamma-Gamma models (`clv/`) on the members' purchase history as of a
date and writes each member's P(alive), expected purchases over the program's horizon and predicted CLV to
`MemberAnalytics`; the fit itself is kept as a `ClvFit`. It reads the per-member figures of the same refresh
(`members.py`: first and last purchase, purchase days, net spend), so it runs after them, and one grouped
query for the spend of each member's first purchase day:

- frequency x = purchase days - 1 (a day with several purchases is one purchase; the first is no repeat);
- recency t_x = last purchase day - first purchase day; age T = as-of day - first purchase day; in days or
  weeks (the program's `clv_time_unit`);
- mean repeat value = (net spend - first day's net spend) / x, for x > 0.

A member without a purchase is a new customer (x = t_x = T = 0): the population-level prediction. The
predictions are written when the BG/NBD fit converged; when the Gamma-Gamma fit did not (the data do not
identify it, e.g. members whose mean spend does not differ), every purchase is valued at the members' mean
repeat purchase value and the message says so. Without a BG/NBD fit nothing is written: the fit is stored
with the optimizer's message and the members keep their previous predictions.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, SupportsFloat

import numpy as np
from django.db import transaction
from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.as_of import members_as_of, qualifying_purchases
from analytics.clv import (
    DAYS_PER_MONTH,
    WEEKS_PER_MONTH,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_probability_alive,
    clv_predict,
    gamma_gamma_expected_value,
    gamma_gamma_fit,
)
from analytics.member_figures import EpochDays
from analytics.models import AcquisitionCost, ClvFit, MemberAnalytics
from config.bulk import bulk_update
from loyalty.models import NET_THEN
from members.models import Program, TimeUnit

EPOCH_DAY = date(1970, 1, 1)
CAC_TARGET = 3  # channels whose CLV is under three times what acquiring a member cost are flagged


@dataclass(frozen=True)
class ClvData:
    member_ids: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    age: np.ndarray
    mean_value: np.ndarray  # NaN without a repeat purchase
    purchasers: int


def _local_day(program: Program, moment: datetime) -> int:
    return (moment.astimezone(program.tz).date() - EPOCH_DAY).days


def clv_data(*, program: Program, as_of: datetime, time_unit: str) -> ClvData:
    """The models' inputs for every member of the program, from `MemberAnalytics` (refreshed at `as_of`)."""
    tz = program.tz
    rows = list(
        MemberAnalytics.objects.filter(program=program, member__in=members_as_of(program, as_of))
        .order_by("member_id")
        .annotate(
            first_day=EpochDays(TruncDate("first_purchase_at", tzinfo=tz)),
            last_day=EpochDays(TruncDate("last_purchase_at", tzinfo=tz)),
        )
        .values_list("member_id", "first_day", "last_day", "purchase_days", "monetary")
    )
    first_spend = dict(
        qualifying_purchases(program, as_of)
        .filter(occurred_at__lt=F("member__analytics__first_purchase_at") + timedelta(days=1))
        .annotate(
            day=TruncDate("occurred_at", tzinfo=tz), first=TruncDate("member__analytics__first_purchase_at", tzinfo=tz)
        )
        .filter(day=F("first"))
        .values("member_id")
        .annotate(net=Sum(NET_THEN))
        .order_by()
        .values_list("member_id", "net")
    )
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    bought = np.array([row[1] is not None for row in rows], dtype=bool)
    first = np.array([row[1] if row[1] is not None else 0 for row in rows], dtype=np.float64)
    last = np.array([row[2] if row[2] is not None else 0 for row in rows], dtype=np.float64)
    days = np.array([row[3] for row in rows], dtype=np.float64)
    monetary = np.array([float(row[4]) for row in rows], dtype=np.float64)
    first_net = np.array([float(first_spend.get(pk, 0)) for pk in ids.tolist()], dtype=np.float64)
    scale = 7.0 if time_unit == TimeUnit.WEEKS else 1.0
    frequency = np.where(bought, np.maximum(days - 1, 0), 0)
    recency = np.where(bought, (last - first) / scale, 0.0)
    age = np.where(bought, (_local_day(program, as_of) - first) / scale, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_value = np.where(frequency > 0, (monetary - first_net) / frequency, np.nan)
    return ClvData(ids, frequency, recency, np.maximum(age, recency), mean_value, int(bought.sum()))


@dataclass(frozen=True)
class ClvResult:
    fit: ClvFit
    written: int


def clv_refresh(
    *, program: Program, as_of: datetime | None = None, time_unit: str | None = None, write: bool = True
) -> ClvResult:
    """Fits both models as of `as_of` and (when both converged and `write`) stores every member's predictions."""
    as_of = as_of or timezone.now()
    unit = time_unit or program.clv_time_unit
    data = clv_data(program=program, as_of=as_of, time_unit=unit)
    purchased = data.age > 0
    bgnbd = bgnbd_fit(data.frequency[purchased], data.recency[purchased], data.age[purchased])
    repeat = data.frequency > 0
    spend = gamma_gamma_fit(data.frequency[repeat], data.mean_value[repeat])
    converged = bgnbd.converged and spend.converged
    messages = [f"BG/NBD: {bgnbd.message}", f"Gamma-Gamma: {spend.message}"]
    mean_value = _mean_repeat_value(data) if not spend.converged else None
    if bgnbd.converged and mean_value is not None:
        messages.append(f"every purchase valued at the members' mean repeat purchase value, {mean_value:.2f}")
    params: dict[str, Any] = {name: getattr(bgnbd.params, name) for name in ("r", "alpha", "a", "b")}
    params |= {name: getattr(spend.params, name) for name in ("p", "q", "gamma")} if spend.params else {}
    params["population_mean_value"] = spend.population_mean
    written = 0
    with transaction.atomic():
        fit = ClvFit.objects.create(
            program=program,
            as_of=as_of,
            time_unit=unit,
            members_used=int(purchased.sum()),
            repeat_members=int(repeat.sum()),
            params={name: _finite(value) for name, value in params.items()},
            log_likelihood={"bgnbd": _finite(bgnbd.log_likelihood), "gamma_gamma": _finite(spend.log_likelihood)},
            converged=converged,
            message="; ".join(messages),
            horizon_months=program.clv_horizon_months,
            discount_rate=program.clv_discount_rate,
            margin_rate=program.margin_rate,
        )
        if bgnbd.converged and write and data.member_ids.size:
            written = _write_predictions(program, data, bgnbd.params, spend, unit, mean_value)
    return ClvResult(fit=fit, written=written)


def _finite(value: float | None) -> float | None:
    """A number JSON can store: None for a missing, infinite or NaN one."""
    return float(value) if value is not None and np.isfinite(value) else None


def _mean_repeat_value(data: ClvData) -> float:
    """The mean value of all repeat purchases (0 without any): each member's mean weighted by their repeats."""
    repeat = (data.frequency > 0) & np.isfinite(data.mean_value)
    return float(np.average(data.mean_value[repeat], weights=data.frequency[repeat])) if repeat.any() else 0.0


def _write_predictions(
    program: Program, data: ClvData, bgnbd_params: Any, spend: Any, unit: str, mean_value: float | None
) -> int:
    periods = WEEKS_PER_MONTH if unit == TimeUnit.WEEKS else DAYS_PER_MONTH
    horizon = program.clv_horizon_months
    x, t_x, age = data.frequency, data.recency, data.age
    alive = bgnbd_probability_alive(bgnbd_params, x, t_x, age)
    expected = bgnbd_expected_purchases(bgnbd_params, horizon * periods, x, t_x, age)
    if mean_value is None:
        value = gamma_gamma_expected_value(spend.params, x, data.mean_value, population_mean=spend.population_mean)
    else:  # the spend model is not identified (e.g. no spread between members): the mean for everyone
        value = np.full(x.shape, mean_value)
    clv = clv_predict(
        bgnbd_params,
        x,
        t_x,
        age,
        value,
        horizon_months=horizon,
        monthly_discount_rate=float(program.clv_discount_rate),
        periods_per_month=periods,
        margin=float(program.margin_rate),
    )
    cents = Decimal("0.01")
    rows = (
        (int(pk), float(a), float(e), Decimal(repr(float(c))).quantize(cents))
        for pk, a, e, c in zip(data.member_ids, alive, expected, clv, strict=True)
    )
    return bulk_update(MemberAnalytics, "member_id", ["p_alive", "expected_purchases", "clv_predicted"], rows)


# --- CLV:CAC per acquisition channel ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelValue:
    channel: str
    members: int
    cost: Decimal
    cac: Decimal | None
    clv: Decimal | None
    ratio: float | None
    below_target: bool


def clv_cac_by_channel(*, program: Program, as_of: datetime | None = None) -> list[ChannelValue]:
    """Per channel with acquisition costs entered: CAC = the costs / the members who joined through the channel
    within those cost periods (and by `as_of`, now by default); CLV = their mean historical plus predicted CLV;
    flagged under 3:1."""
    current = members_as_of(program, as_of or timezone.now())
    costs = list(AcquisitionCost.objects.filter(program=program).order_by("channel", "period_start"))
    result = []
    for channel in sorted({cost.channel for cost in costs}):
        periods = [cost for cost in costs if cost.channel == channel]
        joined = Q()
        for cost in periods:
            start = datetime.combine(cost.period_start, datetime.min.time(), tzinfo=program.tz)
            end = datetime.combine(cost.period_end + timedelta(days=1), datetime.min.time(), tzinfo=program.tz)
            joined |= Q(enrolled_at__gte=start, enrolled_at__lt=end)
        figures = (
            current.filter(acquisition_channel=channel)
            .filter(joined)
            .aggregate(
                members=Count("pk"),
                historical=Avg("analytics__clv_historical"),
                predicted=Avg("analytics__clv_predicted"),
            )
        )
        spent = sum((cost.cost for cost in periods), Decimal(0))
        members = figures["members"]
        cac = (spent / members).quantize(Decimal("0.01")) if members else None
        value = None
        if figures["historical"] is not None or figures["predicted"] is not None:
            value = (Decimal(figures["historical"] or 0) + Decimal(figures["predicted"] or 0)).quantize(Decimal("0.01"))
        ratio = round(float(value / cac), 2) if value is not None and cac else None
        result.append(
            ChannelValue(channel, members, spent, cac, value, ratio, ratio is not None and ratio < CAC_TARGET)
        )
    return result


@dataclass(frozen=True)
class ClvDistribution:
    members: int
    total: Decimal
    mean: Decimal | None
    quantiles: dict[str, Decimal]  # p10, p50, p90
    bins: list[tuple[Decimal, Decimal, int]]  # [low, high) and members; the last bin includes its high


def clv_distribution(*, program: Program, bins: int = 10) -> ClvDistribution:
    """Predicted CLV over the members who have one: total, mean, quantiles and a histogram (one query)."""
    values = np.array(
        MemberAnalytics.objects.filter(program=program, clv_predicted__isnull=False).values_list(
            "clv_predicted", flat=True
        ),
        dtype=np.float64,
    )
    cents = Decimal("0.01")

    def money(value: SupportsFloat) -> Decimal:
        return Decimal(repr(float(value))).quantize(cents)

    if not values.size:
        return ClvDistribution(0, Decimal(0), None, {}, [])
    counts, edges = np.histogram(values, bins=bins)
    quantiles = {f"p{q}": money(np.percentile(values, q)) for q in (10, 50, 90)}
    histogram = [(money(edges[i]), money(edges[i + 1]), int(counts[i])) for i in range(len(counts))]
    return ClvDistribution(int(values.size), money(values.sum()), money(values.mean()), quantiles, histogram)
