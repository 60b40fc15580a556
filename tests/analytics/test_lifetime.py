"""Predicted CLV of a program's members: the models' inputs from the purchases (hand-computed), the fit and
predictions written back, the clv_fit command, and CLV:CAC per acquisition channel."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from analytics.clv import bgnbd_fit
from analytics.lifetime import clv_cac_by_channel, clv_data, clv_refresh
from analytics.members import member_analytics_refresh
from analytics.models import ClvFit, MemberAnalytics
from loyalty.models import Purchase
from tests.factories import (
    AcquisitionCostFactory,
    MemberAnalyticsFactory,
    MemberFactory,
    ProgramFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def prague():
    return ProgramFactory(timezone="Europe/Prague", clv_time_unit="days")


ENROLLED = datetime(2025, 1, 1, tzinfo=UTC)  # before every as-of below: the members count as of them


def at(program, day, hour=12):
    return datetime.combine(day, datetime.min.time(), tzinfo=program.tz) + timedelta(hours=hour)


def test_model_inputs_from_the_purchases(prague):
    as_of = at(prague, date(2026, 6, 30), 23)
    regular = MemberFactory(program=prague, enrolled_at=ENROLLED)
    # the first day: 100 + 20 on the same day
    PurchaseFactory(member=regular, occurred_at=at(prague, date(2026, 1, 1)), total="100")
    PurchaseFactory(member=regular, occurred_at=at(prague, date(2026, 1, 1), 18), total="20")
    PurchaseFactory(member=regular, occurred_at=at(prague, date(2026, 1, 11)), total="50")
    PurchaseFactory(member=regular, occurred_at=at(prague, date(2026, 3, 1)), total="80", returned_total="30")  # 50 net
    # fully returned: not a purchase
    PurchaseFactory(member=regular, occurred_at=at(prague, date(2026, 4, 1)), total="70", returned_total="70")
    once = MemberFactory(program=prague, enrolled_at=ENROLLED)
    PurchaseFactory(
        member=once,
        occurred_at=at(
            prague,
            date(2026, 6, 1),
            0,
        ),
        total="40",
    )  # 00:00 in Prague is the previous day in UTC
    never = MemberFactory(program=prague, enrolled_at=ENROLLED)
    member_analytics_refresh(program=prague, as_of=as_of)

    data = clv_data(program=prague, as_of=as_of, time_unit="days")

    index = {pk: i for i, pk in enumerate(data.member_ids.tolist())}
    r, o, n = index[regular.pk], index[once.pk], index[never.pk]
    # regular: purchase days Jan 1, Jan 11, Mar 1: x = 2, t_x = 59 days, T = Jan 1 .. Jun 30 = 180 days;
    # repeat value (50 + 50) / 2 = 50 (the first day's 120 left out)
    assert (data.frequency[r], data.recency[r], data.age[r], data.mean_value[r]) == (2, 59, 180, 50)
    assert (data.frequency[o], data.recency[o], data.age[o]) == (0, 0, 29) and np.isnan(data.mean_value[o])
    assert (data.frequency[n], data.recency[n], data.age[n]) == (0, 0, 0)
    assert data.purchasers == 2
    weeks = clv_data(program=prague, as_of=as_of, time_unit="weeks")
    assert (weeks.recency[r], weeks.age[r]) == pytest.approx((59 / 7, 180 / 7))


@pytest.fixture
def simulated(prague):
    """300 members buying at random over a year (a fixed seed), and 20 who never bought."""
    rng = np.random.default_rng(7)
    start = at(prague, date(2025, 7, 1))
    as_of = at(prague, date(2026, 6, 30), 23)
    rows = []
    for i in range(300):
        member = MemberFactory(program=prague, enrolled_at=ENROLLED, acquisition_channel="store" if i % 2 else "eshop")
        first = start + timedelta(days=int(rng.integers(0, 300)))
        rate, lifetime = rng.gamma(2, 0.02), rng.exponential(200)
        day = 0.0
        while day < min(lifetime, (as_of - first).days):
            rows.append(
                PurchaseFactory.build(
                    member=member,
                    external_id=f"S-{i}-{day}",
                    occurred_at=first + timedelta(days=day),
                    total=Decimal(int(rng.gamma(5, 10)) + 1),
                    eligible_amount=Decimal(0),
                )
            )
            day += rng.exponential(1 / rate) + 1
    Purchase.objects.bulk_create(rows)
    for _ in range(20):
        MemberFactory(program=prague, enrolled_at=ENROLLED)
    member_analytics_refresh(program=prague, as_of=as_of)
    return prague, as_of


def test_clv_refresh_fits_and_writes_every_members_prediction(simulated):
    program, as_of = simulated

    result = clv_refresh(program=program, as_of=as_of)

    fit = result.fit
    assert fit.converged, fit.message
    data = clv_data(program=program, as_of=as_of, time_unit="days")
    purchased = data.age > 0
    same = bgnbd_fit(data.frequency[purchased], data.recency[purchased], data.age[purchased])
    assert [fit.params[name] for name in ("r", "alpha", "a", "b")] == pytest.approx(
        [same.params.r, same.params.alpha, same.params.a, same.params.b]
    )
    assert (fit.members_used, result.written) == (300, 320)
    rows = list(
        MemberAnalytics.objects.filter(program=program).values_list(
            "purchases", "p_alive", "expected_purchases", "clv_predicted"
        )
    )
    assert all(0 <= alive <= 1 and expected >= 0 and clv >= 0 for _, alive, expected, clv in rows)
    newcomers = {(alive, expected, clv) for purchases, alive, expected, clv in rows if purchases == 0}
    assert len(newcomers) == 1 and next(iter(newcomers))[0] == 1.0  # one population-level prediction
    assert ClvFit.objects.filter(program=program).count() == 1


def test_clv_fit_command_prints_the_fit(simulated):
    program, _ = simulated
    out = StringIO()

    call_command("clv_fit", "--program", program.slug, "--as-of", "2026-06-30", "--json", stdout=out)

    summary = json.loads(out.getvalue())
    assert summary["converged"] and summary["members_used"] == 300 and summary["members_written"] == 320
    assert set(summary["params"]) >= {"r", "alpha", "a", "b", "p", "q", "gamma"}
    assert summary["as_of"].startswith("2026-06-30T23:59:59")
    with pytest.raises(CommandError, match="No program"):
        call_command("clv_fit", "--program", "nope")
    with pytest.raises(CommandError, match="not a date"):
        call_command("clv_fit", "--program", program.slug, "--as-of", "June")


def test_a_program_without_repeat_purchases_says_the_fit_did_not_converge(prague):
    member = MemberFactory(program=prague, enrolled_at=ENROLLED)
    PurchaseFactory(member=member, occurred_at=at(prague, date(2026, 1, 5)), total="10")
    member_analytics_refresh(program=prague, as_of=at(prague, date(2026, 2, 1)))

    result = clv_refresh(program=prague, as_of=at(prague, date(2026, 2, 1)))

    assert not result.fit.converged and result.written == 0
    assert "Gamma-Gamma" in result.fit.message


def test_clv_to_cac_per_channel(prague):
    def joined(channel, day, historical, predicted):
        member = MemberFactory(program=prague, acquisition_channel=channel, enrolled_at=at(prague, day))
        MemberAnalyticsFactory(
            member=member,
            program=prague,
            computed_at=at(prague, day),
            clv_historical=Decimal(historical),
            clv_predicted=Decimal(predicted),
        )

    joined("store", date(2026, 1, 10), "100", "50")
    joined("store", date(2026, 1, 20), "60", "30")
    joined("store", date(2026, 3, 1), "999", "999")  # outside the cost period
    joined("eshop", date(2026, 1, 5), "20", "10")
    AcquisitionCostFactory(
        program=prague, channel="store", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), cost=Decimal("40")
    )
    AcquisitionCostFactory(
        program=prague, channel="eshop", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31), cost=Decimal("25")
    )

    by_channel = {row.channel: row for row in clv_cac_by_channel(program=prague)}

    store, eshop = by_channel["store"], by_channel["eshop"]
    # store: CAC 40 / 2 = 20; CLV mean (150, 90) = 120; 6:1
    assert (store.members, store.cac, store.clv, store.ratio, store.below_target) == (
        2,
        Decimal("20.00"),
        Decimal("120.00"),
        6.0,
        False,
    )
    # eshop: CAC 25; CLV 30; 1.2:1, flagged
    assert (eshop.members, eshop.cac, eshop.clv, eshop.ratio, eshop.below_target) == (
        1,
        Decimal("25.00"),
        Decimal("30.00"),
        1.2,
        True,
    )


def test_clv_endpoint_answers_the_fit_distribution_and_channels(simulated, client):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    from tests.factories import StaffFactory

    program, as_of = simulated
    clv_refresh(program=program, as_of=as_of)
    AcquisitionCostFactory(
        program=program,
        channel="store",
        period_start=date(2020, 1, 1),
        period_end=date(2030, 1, 1),
        cost=Decimal("150"),
    )
    user = StaffFactory(programs=[program])
    user.user_permissions.add(Permission.objects.get(codename="view_memberanalytics"))
    api = APIClient()
    api.force_authenticate(user)

    response = api.get("/api/manage/v1/analytics/clv/", {"program": program.slug})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["fit"]["converged"] and body["fit"]["members_used"] == 300
    assert body["distribution"]["members"] == 320
    assert sum(b["members"] for b in body["distribution"]["bins"]) == 320
    total = sum(MemberAnalytics.objects.filter(program=program).values_list("clv_predicted", flat=True))
    assert Decimal(body["distribution"]["total"]) == pytest.approx(total, abs=Decimal("0.05"))
    [store] = body["channels"]
    assert (store["channel"], store["members"], store["cac"]) == ("store", 150, "1.00")  # 150 members for 150
    other = APIClient()
    other.force_authenticate(StaffFactory())
    assert other.get("/api/manage/v1/analytics/clv/", {"program": program.slug}).status_code in (403, 404)
    assert api.get("/api/manage/v1/analytics/clv/").status_code == 400


def test_without_a_spend_model_every_purchase_is_valued_at_the_mean(simulated, monkeypatch):
    from analytics import lifetime
    from analytics.clv import GammaGammaFit

    program, as_of = simulated
    not_identified = GammaGammaFit(None, 0.0, float("nan"), 0, False, "q at the bound: not identified")
    monkeypatch.setattr(lifetime, "gamma_gamma_fit", lambda *args, **kwargs: not_identified)

    result = clv_refresh(program=program, as_of=as_of)

    data = clv_data(program=program, as_of=as_of, time_unit="days")
    repeat = data.frequency > 0
    mean = np.average(data.mean_value[repeat], weights=data.frequency[repeat])
    assert not result.fit.converged and result.written == 320
    assert f"mean repeat purchase value, {mean:.2f}" in result.fit.message
    assert MemberAnalytics.objects.filter(program=program, clv_predicted__gt=0).exists()
