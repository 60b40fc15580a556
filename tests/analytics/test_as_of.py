"""Figures as of a moment T see only what had happened by T (analytics.as_of): purchases made by T with
the returns made by T, NPS answers given by T, members enrolled (or buying) by T, the ledger's entries by T.

One live program, hand-computed, with rows before and after T; then the property: figures of a live program as
of T equal those of a program that only holds the same history up to T."""

import random
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.as_of import members_as_of
from analytics.dashboard.panels import dashboard_panels
from analytics.liability import breakage, points_liability, upcoming_expiries
from analytics.members import member_analytics_refresh
from analytics.metrics import (
    Period,
    cohort_matrix,
    inactive_members,
    month_periods,
    order_figures,
    retention,
)
from analytics.models import MemberAnalytics
from analytics.nps import nps_by_month, nps_summary
from loyalty.services.ledger import ledger_credit, ledger_debit
from rewards.services import hold_create, hold_release
from tests.builders import purchase, return_, rule
from tests.factories import MemberFactory, NpsAnswerFactory, ProgramFactory

pytestmark = pytest.mark.django_db

T = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)  # the end of 30 June 2025
JAN = datetime(2025, 1, 1, tzinfo=UTC)


def at(month, day, hour=12, year=2025):
    return datetime(year, month, day, hour, tzinfo=UTC)


def answer(member, score, when):
    NpsAnswerFactory(program=member.program, member=member, score=score, source="app", answered_at=when)


@pytest.fixture
def shop(db):
    return ProgramFactory(timezone="UTC", point_value=Decimal("0.01"))


@pytest.fixture
def live(shop):
    """ana: 100 on 10 May, 50 on 20 June returned on 5 July (after T), 80 on 10 July (after T).
    ben: 40 on 1 June, 10 of it returned on 2 June, the other 30 on 3 July (after T).
    cleo: enrolled 2 July, 20 on 5 July. dan: nothing bought.
    NPS: ana 9 (15 June) then 3 (2 July); ben 5 (10 June); cleo 10 (6 July).
    Points: ana 70 expiring 15 June (expired at T; the expiry is posted on 5 July, by the debit of 60 that day),
    100 expiring 10 May 2027; ben owed 20 on 1 May, then 50 on 1 June pending until 15 July (pays the 20 first);
    dan owed 15 on 10 June, paid by 40 credited on 3 July."""
    ana, ben, dan = (MemberFactory(program=shop, enrolled_at=JAN) for _ in range(3))
    cleo = MemberFactory(program=shop, enrolled_at=at(7, 2))
    ledger_credit(member=ana, amount=70, occurred_at=at(2, 1), expires_at=at(6, 15))
    ledger_debit(member=ben, amount=20, occurred_at=at(5, 1), allow_debt=True)
    ledger_credit(member=ana, amount=100, occurred_at=at(5, 10), expires_at=at(5, 10, year=2027))
    purchase(ana, "A1", "100.00", occurred_at=at(5, 10))
    purchase(ben, "B1", "40.00", occurred_at=at(6, 1))
    ledger_credit(member=ben, amount=50, occurred_at=at(6, 1), available_at=at(7, 15), expires_at=None)
    return_(shop, "B1", "R-B1a", amount="10.00", occurred_at=at(6, 2))
    answer(ben, 5, at(6, 10))
    ledger_debit(member=dan, amount=15, occurred_at=at(6, 10), allow_debt=True)
    answer(ana, 9, at(6, 15))
    purchase(ana, "A2", "50.00", occurred_at=at(6, 20))
    # --- after T ---
    answer(ana, 3, at(7, 2))
    ledger_credit(member=dan, amount=40, occurred_at=at(7, 3), expires_at=None)
    return_(shop, "B1", "R-B1b", amount="30.00", occurred_at=at(7, 3))
    return_(shop, "A2", "R-A2", amount="50.00", occurred_at=at(7, 5))
    purchase(cleo, "C1", "20.00", occurred_at=at(7, 5))
    ledger_debit(member=ana, amount=60, occurred_at=at(7, 5))
    answer(cleo, 10, at(7, 6))
    purchase(ana, "A3", "80.00", occurred_at=at(7, 10))
    return {"ana": ana, "ben": ben, "cleo": cleo, "dan": dan}


def figures(shop):
    rows = MemberAnalytics.objects.filter(program=shop).values_list("member__first_name", "purchases", "monetary")
    return {row[0]: (row[1], row[2]) for row in rows}


def test_member_figures_as_of_t_see_purchases_and_returns_made_by_t(shop, live):
    for name, member in live.items():
        member.first_name = name
        member.save(update_fields=["first_name"])

    member_analytics_refresh(program=shop, as_of=T)
    # ana: A1 and A2 (returned only later): 150; ben: B1 less the 10 returned by T; cleo and dan: nothing by T.
    assert figures(shop) == {
        "ana": (2, Decimal("150.00")),
        "ben": (1, Decimal("30.00")),
        "cleo": (0, Decimal("0.00")),
        "dan": (0, Decimal("0.00")),
    }
    assert MemberAnalytics.objects.get(member=live["ana"]).last_purchase_at == at(6, 20)

    member_analytics_refresh(program=shop, as_of=at(7, 31))
    # ana: A1 and A3 (A2 fully returned); ben: B1 fully returned; cleo: C1.
    assert figures(shop) == {
        "ana": (2, Decimal("180.00")),
        "ben": (0, Decimal("0.00")),
        "cleo": (1, Decimal("20.00")),
        "dan": (0, Decimal("0.00")),
    }


def test_members_as_of_t_are_those_enrolled_or_buying_by_t(shop, live):
    assert set(members_as_of(shop, T)) == {live["ana"], live["ben"], live["dan"]}
    imported = MemberFactory(program=shop, enrolled_at=at(8, 1))  # enrolled later, history imported since
    purchase(imported, "I1", "10.00", occurred_at=at(3, 1))
    assert set(members_as_of(shop, T)) == {live["ana"], live["ben"], live["dan"], imported}


def test_orders_and_cohorts_as_of_t(shop, live):
    orders = order_figures(shop, start=JAN, end=at(8, 1, 0), as_of=T)
    assert (orders.purchases, orders.purchasing_members, orders.revenue) == (3, 2, Decimal("180.00"))
    later = order_figures(shop, start=JAN, end=at(8, 1, 0), as_of=at(7, 31))
    assert (later.purchases, later.purchasing_members, later.revenue) == (3, 2, Decimal("200.00"))  # A1, A3, C1

    cohorts = cohort_matrix(shop, first_month=date(2025, 5, 1), last_month=date(2025, 7, 1), offsets=2, as_of=T)
    # ana's May cohort bought again in June (A2 not yet returned); July is after T. ben: June.
    assert [(c.month, c.size, c.shares) for c in cohorts] == [
        (date(2025, 5, 1), 1, [1.0, 1.0, None]),
        (date(2025, 6, 1), 1, [1.0, None, None]),
    ]
    cohorts = cohort_matrix(shop, first_month=date(2025, 5, 1), last_month=date(2025, 7, 1), offsets=2, as_of=at(8, 31))
    # A2 and B1 were returned in July: ana bought in May and July, ben has no purchase, cleo from July.
    assert [(c.month, c.size, c.shares) for c in cohorts] == [
        (date(2025, 5, 1), 1, [1.0, 0.0, 1.0]),
        (date(2025, 7, 1), 1, [1.0, 0.0, None]),
    ]


def test_nps_as_of_t_sees_answers_given_by_t(shop, live):
    summer = Period(at(6, 1, 0), at(8, 1, 0))
    # As of T: ana 9 (her 3 of 2 July is later), ben 5: one promoter, one detractor.
    as_of_t = nps_summary(shop, summer, as_of=T)
    assert (as_of_t.respondents, as_of_t.promoters, as_of_t.detractors, as_of_t.nps) == (2, 1, 1, 0.0)
    now = nps_summary(shop, summer)
    assert (now.respondents, now.promoters, now.detractors, now.nps) == (3, 1, 2, -33.3)
    june, july = Period(at(6, 1, 0), at(7, 1, 0)), Period(at(7, 1, 0), at(8, 1, 0))
    months = nps_by_month(shop, [june, july], as_of=T)
    assert [(m, f.respondents, f.nps) for m, f in months] == [
        (date(2025, 6, 1), 2, 0.0),
        (date(2025, 7, 1), None, None),
    ]


def test_liability_as_of_t_is_rebuilt_from_the_ledger(shop, live):
    # As of T: ana's 100 (the 70 expired on 15 June; the 60 were spent on 5 July), ben's 50 less the 20 of
    # debt it paid, pending until 15 July; dan's 15 of debt, paid only on 3 July.
    liability = points_liability(shop, as_of=T)
    assert (liability.available, liability.pending, liability.debt) == (100, 30, 15)
    assert liability.value == Decimal("1.30")
    # Now: ana 40, ben 30 (available since 15 July), dan 25; no debt.
    now = points_liability(shop)
    assert (now.available, now.pending, now.debt) == (95, 0, 0)

    expiries = {e.month: e.points for e in upcoming_expiries(shop, months=24, as_of=T) if e.points}
    assert expiries == {date(2027, 5, 1): 100}
    # Issued by T: 70 + 100 + 50 (dan's 40 came later); the 70 expired by T but the expiry was posted on 5 July.
    assert breakage(shop, as_of=T) == breakage(shop, end=T + timedelta(microseconds=1))
    as_of_t = breakage(shop, as_of=T)
    assert (as_of_t.issued, as_of_t.expired, as_of_t.rate) == (220, 0, 0.0)
    now_breakage = breakage(shop)
    assert (now_breakage.issued, now_breakage.expired) == (260, 70)


# --- The property: as of T, a live program looks like a copy that only holds its history up to T ---------------


def history(seed: int) -> list[tuple]:
    """A random history of 8 members around T, as (time, order, action, member index, arguments) in time order
    (a return after its purchase, an answer and ledger moves anywhere from the member's enrolment on)."""
    rng = random.Random(seed)
    events: list[tuple] = []

    def moment(start: datetime, days: int) -> datetime:
        return start + timedelta(minutes=rng.randrange(days * 24 * 60))

    for i in range(8):
        enrolled = moment(T - timedelta(days=200), 220)
        events.append((enrolled, 0, "enrol", i, {}))
        for n in range(rng.randrange(5)):
            when, total = moment(enrolled, 60), Decimal(rng.choice([0, 1, 5, 20, 35])) * Decimal("2.50")
            events.append((when, 1, "buy", i, {"external_id": f"P{i}-{n}", "total": total}))
            left = total
            for r in range(rng.randrange(3) if total else 0):
                amount = min(left, Decimal(rng.randrange(1, 60)))
                if amount > 0:
                    left -= amount
                    args = {"external_id": f"R{i}-{n}-{r}", "purchase": f"P{i}-{n}", "amount": amount}
                    events.append((when + timedelta(days=rng.randrange(20), minutes=r + 1), 2, "return", i, args))
        for _ in range(rng.randrange(3)):
            events.append((moment(enrolled, 60), 3, "answer", i, {"score": rng.randrange(11)}))
        for _ in range(rng.randrange(4)):
            when = moment(enrolled, 80)
            expires = rng.choice([None, when + timedelta(days=rng.randrange(10, 120))])
            available = when + timedelta(days=rng.choice([0, 0, 14]))
            args = {"amount": rng.randrange(10, 200), "available_at": available, "expires_at": expires}
            events.append((when, 4, "credit", i, args))
        for _ in range(rng.randrange(3)):
            events.append((moment(enrolled, 80), 5, "debit", i, {"amount": rng.randrange(1, 120)}))
    return sorted(events, key=lambda event: event[:2])


def replay(program, events) -> None:
    members = {}
    for when, _, action, i, args in events:
        if action == "enrol":
            members[i] = MemberFactory(program=program, enrolled_at=when, first_name=f"m{i}")
        elif action == "buy":
            purchase(members[i], args["external_id"], args["total"], occurred_at=when)
        elif action == "return":
            return_(program, args["purchase"], args["external_id"], amount=args["amount"], occurred_at=when)
        elif action == "answer":
            answer(members[i], args["score"], when)
        elif action == "credit":
            ledger_credit(member=members[i], occurred_at=when, **args)
        else:
            ledger_debit(member=members[i], amount=args["amount"], occurred_at=when, allow_debt=True)


FIGURE_FIELDS = (
    "first_purchase_at",
    "last_purchase_at",
    "purchases",
    "purchase_days",
    "monetary",
    "average_order_value",
    "mean_days_between",
    "recency_days",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "clv_historical",
)


def everything_as_of(program, as_of) -> dict:
    member_analytics_refresh(program=program, as_of=as_of)
    rows = MemberAnalytics.objects.filter(program=program, purchases__gt=0).values_list(
        "member__first_name", *FIGURE_FIELDS
    )
    months = month_periods(program, months=7, through=date(2025, 7, 1))
    year = Period(as_of - timedelta(days=365), at(8, 1, 0))
    return {
        "members": sorted(members_as_of(program, as_of).values_list("first_name", flat=True)),
        "figures": sorted(rows),
        "retention": [asdict(row) for row in retention(program, months, as_of=as_of)],
        "cohorts": cohort_matrix(
            program, first_month=date(2024, 12, 1), last_month=date(2025, 7, 1), offsets=7, as_of=as_of
        ),
        "orders": order_figures(program, start=year.start, end=year.end, as_of=as_of),
        "inactive": inactive_members(program, as_of=as_of).count(),
        "nps": (nps_summary(program, year, as_of=as_of), nps_by_month(program, months, as_of=as_of)),
        "liability": points_liability(program, as_of=as_of),
        "expiries": upcoming_expiries(program, months=8, as_of=as_of),
        "breakage": breakage(program, as_of=as_of),
        "dashboard": dashboard_panels(program, as_of),
    }


def earning_program():
    """A program whose purchases earn a point per euro (so that returns take points back)."""
    program = ProgramFactory(timezone="Europe/Prague")
    rule(program, name="Base rate", kind="base_rate", rate=Decimal(1))
    return program


@pytest.mark.parametrize("seed", range(1, 9))
def test_figures_as_of_t_equal_those_of_a_copy_holding_only_the_history_up_to_t(seed):
    events = history(seed)
    live, copy = earning_program(), earning_program()
    replay(live, events)
    replay(copy, [event for event in events if event[0] <= T])
    assert any(event[0] > T for event in events) and any(event[0] <= T for event in events)

    assert everything_as_of(live, T) == everything_as_of(copy, T)


def test_a_return_made_by_t_takes_its_points_back_as_of_t():
    program = earning_program()
    member = MemberFactory(program=program, enrolled_at=JAN)
    purchase(member, "P1", "100.00", occurred_at=at(6, 1))  # 100 points
    return_(program, "P1", "R1", amount="40.00", occurred_at=at(6, 2))  # 40 back, on 2 June

    liability = points_liability(program, as_of=T)

    assert liability.outstanding == 60


@pytest.mark.parametrize("spent_before", [False, True])
def test_points_given_back_after_the_as_of_are_not_owed_twice_as_of_it(spent_before):
    # given: 1,000 points, a hold of 100 taken before or after T, released after T
    program = ProgramFactory()
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=1000, occurred_at=timezone.now() - timedelta(days=10), expires_at=None)
    hold = None
    if spent_before:
        hold = hold_create(member=member, basket_reference="B-1", basket_amount=Decimal("1000.00"), points=100).hold
    as_of = timezone.now()
    if not spent_before:
        hold = hold_create(member=member, basket_reference="B-1", basket_amount=Decimal("1000.00"), points=100).hold

    # when: the hold is released (a refund lot with the old lot's dates)
    hold_release(hold=hold)

    # then: as of T the member held what they held then, not that plus the refund
    liability = points_liability(program, as_of=as_of)
    assert (liability.available, liability.pending) == (900 if spent_before else 1000, 0)
    assert points_liability(program).available == 1000
