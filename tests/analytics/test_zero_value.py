"""Purchases for 0 (a free item, a fully discounted basket) are visits: never "fully returned", so a member who
only bought for 0 keeps a segment, a cohort, activity and CLV input (one definition: `FULLY_RETURNED`)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.lifetime import clv_data
from analytics.members import member_analytics_refresh
from analytics.metrics import cohort_matrix, inactive_members, order_figures
from analytics.models import MemberAnalytics
from loyalty.models import Purchase
from loyalty.services.tiers import tier_metric_between
from tests.factories import MemberFactory, ProgramFactory, PurchaseFactory

pytestmark = pytest.mark.django_db

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
ENROLLED = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def shop():
    return ProgramFactory(
        timezone="Europe/Prague", margin_rate=Decimal("0.3"), inactive_days=30, tier_metric="purchases"
    )


@pytest.fixture
def people(shop):
    """zed: two purchases for 0 (June 20 and 25); amy: one for 50 (June 29); fred: one for 20, fully returned."""
    zed, amy, fred = (MemberFactory(program=shop, first_name=name, enrolled_at=ENROLLED) for name in "zaf")
    PurchaseFactory(member=zed, external_id="Z1", occurred_at=datetime(2025, 6, 20, 10, tzinfo=UTC), total="0.00")
    PurchaseFactory(member=zed, external_id="Z2", occurred_at=datetime(2025, 6, 25, 10, tzinfo=UTC), total="0.00")
    PurchaseFactory(member=amy, external_id="A1", occurred_at=datetime(2025, 6, 29, 10, tzinfo=UTC), total="50.00")
    PurchaseFactory(
        member=fred,
        external_id="F1",
        occurred_at=datetime(2025, 6, 1, 10, tzinfo=UTC),
        total="20.00",
        returned_total="20.00",
    )
    return {"zed": zed, "amy": amy, "fred": fred}


def test_a_purchase_for_zero_is_never_fully_returned():
    assert Purchase(total=Decimal(0), returned_total=Decimal(0)).fully_returned is False
    assert Purchase(total=Decimal(20), returned_total=Decimal(20)).fully_returned is True
    assert Purchase(total=Decimal(20), returned_total=Decimal(5)).fully_returned is False


def test_a_member_who_only_bought_for_zero_gets_figures_scores_and_a_segment(shop, people):
    result = member_analytics_refresh(program=shop, as_of=AS_OF)

    # Two buyers, zed and amy. F: zed 2 (rank 2 of 2: 1 + 5 // 2 = 3), amy 1 (1). M: zed 0 (1), amy 50 (3).
    # R by recency, most recent best: zed 5 days (1), amy 1 day (3). zed: R1, FM 2.0; amy: R3, FM 2.0.
    rows = dict(
        (member_id, rest)
        for member_id, *rest in MemberAnalytics.objects.values_list(
            "member_id",
            "purchases",
            "purchase_days",
            "monetary",
            "recency_days",
            "r_score",
            "f_score",
            "m_score",
            "segment",
        )
    )
    assert result.purchasers == 2
    assert rows[people["zed"].pk] == [2, 2, Decimal("0.00"), 5, 1, 3, 1, "Lost"]
    assert rows[people["amy"].pk] == [1, 1, Decimal("50.00"), 1, 3, 1, 3, "Need Attention"]
    assert rows[people["fred"].pk] == [0, 0, Decimal("0.00"), None, None, None, None, ""]


def test_a_member_who_only_bought_for_zero_is_in_the_clv_input(shop, people):
    member_analytics_refresh(program=shop, as_of=AS_OF)

    data = clv_data(program=shop, as_of=AS_OF, time_unit="days")

    # zed: purchase days June 20 and 25 (Prague): frequency 1, recency 5, age June 20 -> June 30 = 10 days.
    zed = list(data.member_ids).index(people["zed"].pk)
    assert (data.frequency[zed], data.recency[zed], data.age[zed]) == (1, 5, 10)
    assert data.mean_value[zed] == 0  # (0 spent - 0 on the first day) / 1 repeat purchase
    assert data.purchasers == 2


def test_a_member_who_only_bought_for_zero_stays_in_cohorts_activity_and_orders(shop, people):
    june = date(2025, 6, 1)

    cohorts = cohort_matrix(shop, first_month=june, last_month=june, offsets=1, as_of=AS_OF)
    inactive = inactive_members(shop, as_of=AS_OF)
    orders = order_figures(shop, start=datetime(2025, 6, 1, tzinfo=UTC), end=AS_OF)

    assert [(c.month, c.size, c.shares) for c in cohorts] == [(june, 2, [1.0, None])]  # zed and amy
    assert sorted(m.first_name for m in inactive) == ["f"]  # fred's only purchase was returned
    assert (orders.purchases, orders.purchasing_members, orders.revenue) == (3, 2, Decimal("50.00"))
    assert orders.average_order_value == Decimal("16.67")


def test_tiers_count_a_purchase_for_zero_and_not_a_returned_one(shop, people):
    start, end = datetime(2025, 1, 1, tzinfo=UTC), AS_OF

    assert tier_metric_between(program=shop, member_id=people["zed"].pk, start=start, end=end) == 2
    assert tier_metric_between(program=shop, member_id=people["fred"].pk, start=start, end=end) == 0
