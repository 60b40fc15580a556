"""Program figures against hand-computed populations: retention and churn, cohorts, orders, inactivity,
liability, expiries and breakage (analytics.metrics)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analytics.liability import breakage, points_liability, upcoming_expiries
from analytics.metrics import (
    MemberFilters,
    Period,
    cohort_matrix,
    inactive_members,
    month_periods,
    order_figures,
    retention,
)
from loyalty.models import Account, Purchase
from loyalty.services.ledger import ledger_credit, ledger_debit
from loyalty.services.lots import lots_expire
from members.services.members import member_close, member_suspend
from tests.builders import adjust, purchase, return_, tier
from tests.factories import MemberFactory, ProgramFactory

pytestmark = pytest.mark.django_db

PRAGUE = ZoneInfo("Europe/Prague")
ENROLLED = datetime(2025, 11, 1, tzinfo=UTC)


def at(year, month, day, hour=12, minute=0):
    """A local time in Prague (the programs' time zone)."""
    return datetime(year, month, day, hour, minute, tzinfo=PRAGUE)


def give_back(program, external_id, amount):
    """A return at the purchase's own time (so that it counts as of any moment the purchase does)."""
    when = Purchase.objects.get(program=program, external_id=external_id).occurred_at
    return_(program, external_id, amount=amount, occurred_at=when)


@pytest.fixture
def shop(db):
    """inactive_days = 30: active at 1 March = a purchase from 30 January; at 1 April from 2 March; at 1 May
    from 1 April (local days)."""
    return ProgramFactory(inactive_days=30)


@pytest.fixture
def people(shop):
    """A: loyal. B: lapses after February. C: new in March, back in April. D: a fully returned purchase in
    February (does not count), first real one in March, partly returned. E: bought in December, reactivated in
    April. F: new in April. G: 1 April 00:30 in Prague, still 31 March in UTC. H: new in April, four purchases
    on three days. K: never bought. Members enrolled on 1 November 2025."""
    names = "ABCDEFGHK"
    members = {name: MemberFactory(program=shop, enrolled_at=ENROLLED, first_name=name) for name in names}
    for name in "CD":
        members[name].acquisition_channel = "facebook"
        members[name].save(update_fields=["acquisition_channel"])
    purchases = [
        ("A", at(2026, 2, 10), "100.00"),
        ("A", at(2026, 3, 15), "100.00"),
        ("A", at(2026, 4, 20), "50.00"),
        ("B", at(2026, 2, 20), "70.00"),
        ("C", at(2026, 3, 10), "40.00"),
        ("C", at(2026, 4, 5), "60.00"),
        ("D", at(2026, 2, 25), "90.00"),
        ("D", at(2026, 3, 20), "80.00"),
        ("E", at(2025, 12, 1), "25.00"),
        ("E", at(2026, 4, 10), "20.00"),
        ("F", at(2026, 4, 25), "30.00"),
        ("G", at(2026, 4, 1, 0, 30), "10.00"),
        ("H", at(2026, 4, 2, 9), "15.00"),
        ("H", at(2026, 4, 2, 18), "25.00"),
        ("H", at(2026, 4, 8), "20.00"),
        ("H", at(2026, 4, 14), "20.00"),
    ]
    for i, (name, when, total) in enumerate(purchases):
        purchase(members[name], f"P{i}-{name}", total, occurred_at=when)
    give_back(shop, "P6-D", Decimal("90.00"))  # the whole February purchase
    give_back(shop, "P7-D", Decimal("30.00"))  # part of the March one
    return members


def as_tuple(row):
    return (row.active_at_start, row.active_at_end, row.new, row.retained, row.reactivated, row.retention, row.churn)


def test_retention_and_churn_month_by_month(shop, people):
    periods = month_periods(shop, months=3, through=date(2026, 4, 1))

    rows = retention(shop, periods)

    assert [(r.start, r.end) for r in rows] == [
        (at(2026, 2, 1, 0), at(2026, 3, 1, 0)),
        (at(2026, 3, 1, 0), at(2026, 4, 1, 0)),
        (at(2026, 4, 1, 0), at(2026, 5, 1, 0)),
    ]
    # February: nobody active on 1 February (E's December purchase is too old): undefined, not an error.
    assert as_tuple(rows[0]) == (0, 2, 2, 0, 0, None, None)
    # March: A and B active at the start (D's February purchase was returned); A, C and D at the end, C and D
    # new. (3 - 2) / 2.
    assert as_tuple(rows[1]) == (2, 3, 2, 1, 0, 0.5, 0.5)
    # April: A, C, D at the start; A, C, E, F, G, H at the end; F, G and H new; E reactivated. (6 - 3) / 3:
    # the formula counts E as kept although D lapsed.
    assert as_tuple(rows[2]) == (3, 6, 3, 2, 1, 1.0, 0.0)


def test_retention_of_one_custom_period_in_one_query(shop, people, django_assert_num_queries):
    with django_assert_num_queries(2):  # whether a return is dated after as_of, then the figures
        (row,) = retention(shop, [Period(at(2026, 3, 1, 0), at(2026, 5, 1, 0))])

    # Active on 1 May: A, C, E, F, G, H; new in March-April: C, D (not active), F, G, H.
    assert as_tuple(row) == (2, 6, 4, 1, 1, 1.0, 0.0)


def test_retention_filtered_by_acquisition_channel(shop, people):
    periods = month_periods(shop, months=2, through=date(2026, 4, 1))

    rows = retention(shop, periods, MemberFilters(channel="facebook"))

    assert [as_tuple(r) for r in rows] == [(0, 2, 2, 0, 0, None, None), (2, 1, 0, 1, 0, 0.5, 0.5)]


def test_cohort_matrix_by_first_purchase_month(shop, people, django_assert_num_queries):
    with django_assert_num_queries(2):  # whether a return is dated after as_of, then the matrix
        cohorts = cohort_matrix(
            shop, first_month=date(2026, 1, 1), last_month=date(2026, 4, 1), offsets=3, as_of=at(2026, 11, 23)
        )

    assert [(c.month, c.size, c.shares) for c in cohorts] == [
        (date(2026, 2, 1), 2, [1.0, 0.5, 0.5, 0.0]),  # A, B: A bought again in March and April
        (date(2026, 3, 1), 2, [1.0, 0.5, 0.0, 0.0]),  # C, D (D's February purchase was returned): C in April
        (date(2026, 4, 1), 3, [1.0, 0.0, 0.0, 0.0]),  # F, G (April in Prague), H; E's cohort is December 2025
    ]


def test_cohort_cells_of_months_not_begun_are_null(shop, people):
    cohorts = cohort_matrix(
        shop, first_month=date(2026, 3, 1), last_month=date(2026, 4, 1), offsets=3, as_of=at(2026, 5, 15)
    )

    assert [c.shares for c in cohorts] == [[1.0, 0.5, 0.0, None], [1.0, 0.0, None, None]]


def test_cohort_of_december_counts_its_april_return(shop, people):
    (cohort,) = cohort_matrix(shop, first_month=date(2025, 12, 1), last_month=date(2025, 12, 1), offsets=5)

    assert (cohort.month, cohort.size, cohort.shares) == (date(2025, 12, 1), 1, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def test_order_figures(shop, people, django_assert_num_queries):
    with django_assert_num_queries(3):  # whether a return is dated after as_of, the totals, the repeat buyers
        figures = order_figures(shop, start=at(2026, 3, 1, 0), end=at(2026, 5, 1, 0))

    # 12 purchases (not D's returned February one, which is outside anyway) by A, C, D, E, F, G, H.
    # Revenue 150 (A) + 100 (C) + 50 (D: 80 less 30) + 20 (E) + 30 (F) + 10 (G) + 80 (H) = 440.
    # Gaps: A 15 March - 20 April = 36 days, C 10 March - 5 April = 26, H 2-14 April over 3 days = 12 / 2 = 6.
    assert figures.purchases == 12
    assert figures.purchasing_members == 7
    assert figures.revenue == Decimal("440.00")
    assert figures.average_order_value == Decimal("36.67")
    assert figures.purchase_frequency == 1.7143
    assert figures.repeat_members == 3
    assert figures.mean_days_between_purchases == 22.67


def test_order_figures_without_purchases_are_null(shop, people):
    figures = order_figures(shop, start=at(2025, 1, 1, 0), end=at(2025, 2, 1, 0))

    assert (figures.purchases, figures.revenue, figures.average_order_value) == (0, Decimal("0.00"), None)
    assert (figures.purchase_frequency, figures.mean_days_between_purchases, figures.repeat_members) == (None, None, 0)


def test_order_figures_filtered_by_channel_and_fully_returned_purchases_left_out(shop, people):
    figures = order_figures(
        shop, start=at(2026, 2, 1, 0), end=at(2026, 5, 1, 0), filters=MemberFilters(channel="facebook")
    )

    # C: 40 + 60; D: only the March purchase, 50 after its partial return.
    assert (figures.purchases, figures.purchasing_members, figures.revenue) == (3, 2, Decimal("150.00"))
    assert figures.mean_days_between_purchases == 26.0


def test_inactive_members(shop, people):
    late = MemberFactory(program=shop, enrolled_at=at(2026, 5, 1))  # enrolled after the cut-off: not yet
    suspended = MemberFactory(program=shop, enrolled_at=ENROLLED)
    member_suspend(member=suspended)

    inactive = inactive_members(shop, as_of=at(2026, 5, 15, 0))

    # Cut-off 15 April: A (20 April) and F (25 April) bought since; H's last purchase was on 14 April.
    assert sorted(m.first_name for m in inactive) == ["B", "C", "D", "E", "G", "H", "K"]
    assert late not in inactive and suspended not in inactive
    assert inactive_members(shop, as_of=at(2026, 5, 15, 0), filters=MemberFilters(channel="facebook")).count() == 2


def test_inactive_members_filtered_by_tier_and_segment(shop, people):
    gold = tier(shop, "Gold", rank=1, threshold=0)
    Account.objects.filter(member__in=[people["B"], people["A"]]).update(tier=gold)

    inactive = inactive_members(shop, as_of=at(2026, 5, 15, 0), filters=MemberFilters(tier_id=gold.pk))

    assert [m.first_name for m in inactive] == ["B"]
    assert not inactive_members(shop, as_of=at(2026, 5, 15, 0), filters=MemberFilters(segment="Champions")).exists()


# --- Liability, expiries, breakage --------------------------------------------------------------------------


@pytest.fixture
def bank(db):
    return ProgramFactory(point_value=Decimal("0.013"))


def test_liability_counts_pending_points_and_leaves_closed_accounts_out(bank, django_assert_num_queries):
    earned = at(2026, 10, 1)
    m1, m2, closed = (MemberFactory(program=bank, enrolled_at=ENROLLED) for _ in range(3))
    ledger_credit(member=m1, amount=1000, occurred_at=earned, expires_at=at(2026, 12, 15))
    ledger_credit(
        member=m1,
        amount=300,
        occurred_at=earned,
        available_at=timezone.now() + timedelta(days=10),
        expires_at=at(2027, 2, 10),
    )
    ledger_credit(member=m1, amount=5, occurred_at=earned, expires_at=at(2027, 11, 5))
    ledger_credit(member=m2, amount=200, occurred_at=earned, expires_at=None)
    ledger_debit(member=m2, amount=50, occurred_at=at(2026, 10, 2))
    ledger_credit(member=m2, amount=40, occurred_at=earned, expires_at=at(2026, 11, 30, 23, 30))
    ledger_credit(member=m2, amount=60, occurred_at=earned, expires_at=at(2026, 12, 1, 0, 30))
    ledger_credit(member=closed, amount=500, occurred_at=earned, expires_at=at(2026, 12, 20))
    member_close(member=closed)

    as_of = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with django_assert_num_queries(4):  # lots, debts, and for a past as_of what was taken and paid after it
        liability = points_liability(bank, as_of=as_of)

    # 1000 + 5 + 150 + 40 + 60 available, 300 pending: 1555 points at 0.013 = 20.215, rounded half up.
    assert (liability.available, liability.pending, liability.outstanding) == (1255, 300, 1555)
    assert (liability.value, liability.debt) == (Decimal("20.22"), 0)

    m2.acquisition_channel = "shop"
    m2.save(update_fields=["acquisition_channel"])
    assert points_liability(bank, as_of=as_of, filters=MemberFilters(channel="shop")).value == Decimal("3.25")

    with django_assert_num_queries(2):  # lots, and for a past as_of what was taken from them after it
        expiries = upcoming_expiries(bank, as_of=as_of)

    assert [e.month for e in expiries] == [date(2026, 11, 1)] + [date(2026, 12, 1)] + [
        date(2027, month, 1) for month in range(1, 11)
    ]
    assert {e.month: (e.points, e.value) for e in expiries if e.points} == {
        date(2026, 11, 1): (40, Decimal("0.52")),  # 30 November 23:30 in Prague
        date(2026, 12, 1): (1060, Decimal("13.78")),  # 1000 + 60 (1 December 00:30 in Prague, 30 November UTC)
        date(2027, 2, 1): (300, Decimal("3.90")),  # pending points expire too
    }  # the closed member's 500 and the lot expiring in November 2027 are left out


def test_expiries_leave_out_lots_already_due(bank):
    member = MemberFactory(program=bank, enrolled_at=ENROLLED)
    ledger_credit(member=member, amount=70, occurred_at=at(2026, 1, 1), expires_at=at(2026, 3, 1))

    expiries = upcoming_expiries(bank, months=3, as_of=at(2026, 3, 2))

    assert [(e.month, e.points) for e in expiries] == [
        (date(2026, 3, 1), 0),
        (date(2026, 4, 1), 0),
        (date(2026, 5, 1), 0),
    ]


def test_breakage(bank):
    x, y, z = (MemberFactory(program=bank, enrolled_at=ENROLLED) for _ in range(3))
    x.acquisition_channel = "shop"
    x.save(update_fields=["acquisition_channel"])
    ledger_credit(member=x, amount=1000, occurred_at=at(2026, 1, 10), expires_at=at(2026, 3, 1))
    ledger_debit(member=x, amount=300, occurred_at=at(2026, 2, 15))  # spent: not broken
    ledger_credit(member=y, amount=500, occurred_at=at(2026, 2, 1), expires_at=None)
    ledger_credit(member=z, amount=400, occurred_at=at(2026, 2, 1), expires_at=at(2026, 4, 1))
    lots_expire(now=at(2026, 3, 2))  # X's remaining 700
    lots_expire(now=at(2026, 4, 2))  # Z's 400
    adjust(x, 200, reason="Goodwill")  # issued now
    adjust(y, -100, reason="Correction")  # a removal issues nothing

    def figures(**kwargs):
        result = breakage(bank, **kwargs)
        return (result.issued, result.expired, result.rate)

    assert figures() == (2100, 1100, 0.5238)  # all time: 1000 + 500 + 400 + 200 issued
    assert figures(start=at(2026, 1, 1, 0), end=at(2026, 5, 1, 0)) == (1900, 1100, 0.5789)
    assert figures(start=at(2026, 1, 1, 0), end=at(2026, 3, 1, 0)) == (1900, 0, 0.0)
    assert figures(start=at(2026, 3, 1, 0), end=at(2026, 4, 1, 0)) == (0, 700, None)  # nothing issued: undefined
    assert figures(filters=MemberFilters(channel="shop")) == (1200, 700, 0.5833)
