from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.exceptions import (
    CurrencyMismatch,
    OccurredInFuture,
    PurchaseConflict,
    PurchaseNotFound,
    ReturnExceedsPurchase,
    ReturnLineNotInPurchase,
    TotalMismatch,
)
from loyalty.models import Account, Award, EarningRule, Entry, EntryKind, Purchase, Return
from loyalty.services.ledger import ledger_debit
from loyalty.services.purchases import PurchaseInput, purchase_record, purchase_simulate
from loyalty.services.returns import ReturnLineInput, return_record
from loyalty.services.rules import earning_rule_save
from members.exceptions import MemberNotFound, MemberSuspended
from members.selectors import MemberRef
from members.services.members import member_suspend
from tests.builders import line, purchase, purchase_data, rule
from tests.factories import MemberFactory, ProgramFactory

NOW = timezone.now()
# Two books and a gift card: 100 points on 1000.00 eligible.
BASKET = (line("BK-1", "600.00", "books"), line("BK-2", "400.00", "books"), line("GC-1", "200.00", "gift-cards"))


def sale(external_id="TILL7-1", lines=(), **fields) -> PurchaseInput:
    """What the till sends: one book of 1000.00 EUR at NOW unless told otherwise."""
    lines = tuple(lines) or (line("BK-1", "1000.00", "books"),)
    return purchase_data(external_id, lines=lines, **{"occurred_at": NOW, **fields})


def balances(member):
    account = Account.objects.get(pk=member.pk)
    return (account.available, account.pending, account.debt)


@pytest.fixture
def shop(db):
    program = ProgramFactory(currency="EUR")
    rule(program, excluded_categories="gift-cards")
    return program


@pytest.fixture
def buyer(shop):
    return MemberFactory(program=shop)


def test_purchase_awards_points_by_rule_and_records_everything(shop, buyer):
    books = rule(shop, name="Books double", kind="multiplier", multiplier=Decimal(2), categories="books", priority=200)

    result = purchase_record(
        program=shop,
        member=buyer,
        data=sale(
            lines=[
                line("BK-1", "600.00", "books"),
                line("GC-1", "500.00", "gift-cards"),
                line("TO-1", "134.50", "toys"),
            ]
        ),
    )

    assert result.points == 73 + 60
    assert result.awards == [
        {"rule": "Base rate", "rule_id": EarningRule.objects.get(name="Base rate").pk, "points": 73},
        {"rule": "Books double", "rule_id": books.pk, "points": 60},
    ]
    record = Purchase.objects.get()
    assert (record.total, record.eligible_amount, record.points_awarded) == (Decimal("1234.50"), Decimal("734.50"), 133)
    assert [line.eligible for line in record.lines.order_by("position")] == [True, False, True]
    assert sorted(Award.objects.values_list("rule_name", "points")) == [("Base rate", 73), ("Books double", 60)]
    assert balances(buyer) == (133, 0, 0)
    assert Account.objects.get(pk=buyer.pk).purchases == 1
    assert Entry.objects.get(member=buyer).details["purchase"] == "TILL7-1"
    assert ledger_audit() == []


def test_points_are_pending_during_the_return_window(buyer, shop):
    shop.pending_days = 14
    shop.save()

    result = purchase_record(program=shop, member=buyer, data=sale())

    assert balances(buyer) == (0, 100, 0)
    assert result.outcome["pending_until"] == (NOW + timedelta(days=14)).isoformat()


def test_retry_returns_the_first_answer_and_awards_once(shop, buyer):
    first = purchase_record(program=shop, member=buyer, data=sale())
    again = purchase_record(program=shop, member=buyer, data=sale())

    assert again.replayed and (again.points, again.outcome, again.purchase.pk) == (
        first.points,
        first.outcome,
        first.purchase.pk,
    )
    assert Purchase.objects.count() == 1 and balances(buyer) == (100, 0, 0)
    with pytest.raises(PurchaseConflict):
        purchase_record(
            program=shop,
            member=buyer,
            data=sale(
                total=Decimal("1000.00"), lines=[line("X", "1000.00", "books")], occurred_at=NOW - timedelta(hours=1)
            ),
        )
    with pytest.raises(PurchaseConflict):
        purchase_record(program=shop, member=MemberFactory(program=shop), data=sale())


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (PurchaseInput(external_id="X", occurred_at=NOW, currency="CZK", total=Decimal(10)), CurrencyMismatch),
        (sale(total=Decimal("999.99")), TotalMismatch),
        (sale(occurred_at=NOW + timedelta(hours=1)), OccurredInFuture),
    ],
)
def test_bad_purchases_are_refused_and_write_nothing(shop, buyer, data, error):
    with pytest.raises(error):
        purchase_record(program=shop, member=buyer, data=data)
    assert (Purchase.objects.count(), Entry.objects.count()) == (0, 0)


def test_suspended_member_cannot_earn(shop, buyer):
    member_suspend(member=buyer)
    with pytest.raises(MemberSuspended):
        purchase_record(program=shop, member=buyer, data=sale())
    assert Purchase.objects.count() == 0


def test_simulation_writes_nothing(shop, buyer):
    result = purchase_simulate(program=shop, member=buyer, data=sale())

    assert (result.points, result.purchase, result.outcome["balances"]) == (
        100,
        None,
        {"available": 100, "pending": 0, "debt": 0},
    )
    assert (Purchase.objects.count(), Entry.objects.count(), Award.objects.count()) == (0, 0, 0)


# --- returns -------------------------------------------------------------------------------------------------------


def test_full_return_reverses_all_points(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)  # 100 points on 1000.00 eligible

    result = return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("1200.00"))

    assert result.record.points_reversed == 100
    assert balances(buyer) == (0, 0, 0)
    assert Purchase.objects.get().points_reversed == 100
    assert ledger_audit() == []


def test_partial_returns_add_up_to_the_whole(shop, buyer):
    purchase(
        buyer,
        "P1",
        lines=[line("BK-1", "333.00", "books"), line("BK-2", "333.00", "books"), line("BK-3", "334.00", "books")],
        occurred_at=NOW,
    )  # 100 points

    reversed_ = [
        return_record(
            program=shop,
            external_id=f"R{i}",
            purchase_external_id="P1",
            lines=(ReturnLineInput(sku=sku, amount=Decimal(amount)),),
        ).record.points_reversed
        for i, (sku, amount) in enumerate([("BK-1", "333.00"), ("BK-2", "333.00"), ("BK-3", "334.00")])
    ]

    assert reversed_ == [33, 33, 34]
    assert balances(buyer) == (0, 0, 0)


def test_returning_an_excluded_line_reverses_nothing(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)

    result = return_record(
        program=shop,
        external_id="R1",
        purchase_external_id="P1",
        lines=(ReturnLineInput(sku="GC-1", amount=Decimal("200.00")),),
    )

    assert result.record.points_reversed == 0 and balances(buyer) == (100, 0, 0)


def test_return_after_spending_creates_debt(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)
    ledger_debit(member=buyer, amount=80)

    return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("1200.00"))

    assert balances(buyer) == (0, 0, 80)
    assert ledger_audit() == []


def test_repeated_return_does_nothing(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)
    first = return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("600.00"))
    again = return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("600.00"))

    assert again.replayed and again.record.pk == first.record.pk
    assert Return.objects.count() == 1 and balances(buyer) == (50, 0, 0)


def test_returns_larger_than_what_is_left_are_refused(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)
    return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("1000.00"))

    with pytest.raises(ReturnExceedsPurchase):
        return_record(program=shop, external_id="R2", purchase_external_id="P1", amount=Decimal("200.01"))
    with pytest.raises(ReturnLineNotInPurchase):
        return_record(
            program=shop,
            external_id="R3",
            purchase_external_id="P1",
            lines=(ReturnLineInput(sku="NOPE", amount=Decimal(1)),),
        )
    with pytest.raises(PurchaseNotFound):
        return_record(program=shop, external_id="R4", purchase_external_id="P404", amount=Decimal(1))
    assert Return.objects.count() == 1


def test_a_return_never_reverses_more_than_the_purchase_gave(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)
    for i, amount in enumerate(["700.00", "300.00", "200.00"]):
        return_record(program=shop, external_id=f"R{i}", purchase_external_id="P1", amount=Decimal(amount))
    assert Purchase.objects.get().points_reversed == 100
    assert Entry.objects.filter(kind=EntryKind.REVERSE).count() >= 2
    assert balances(buyer) == (0, 0, 0)


# --- bonuses, events and caps through the service --------------------------------------------------------------------


def test_first_purchase_bonus_and_referral_for_both_sides(shop):
    referrer = MemberFactory(program=shop)
    referee = MemberFactory(program=shop, referred_by=referrer)
    rule(shop, name="Welcome", kind="bonus", points=50, first_purchase=True)
    rule(shop, name="Referral", kind="event", event="referral", points=200)

    purchase_record(program=shop, member=referee, data=sale(external_id="A"))
    purchase_record(program=shop, member=referee, data=sale(external_id="B"))

    assert balances(referee) == (100 + 50 + 200 + 100, 0, 0)
    assert balances(referrer) == (200, 0, 0)


@pytest.mark.parametrize(
    "ref",
    [MemberRef("card", "4000-1111-2222"), MemberRef("email", " Jana@Example.com"), MemberRef("id", "member")],
    ids=["card", "email", "id"],
)
def test_a_member_named_by_reference_is_looked_up_by_the_lock(shop, ref):
    member = MemberFactory(program=shop, card="400011112222", email="jana@example.com")
    Account.objects.create(member=member, program=shop)
    ref = MemberRef("id", str(member.pk)) if ref.value == "member" else ref

    with CaptureQueriesContext(connection) as queries:
        result = purchase_record(program=shop, member=ref, data=sale())

    assert (result.member, result.purchase.member, balances(member)) == (member, member, (100, 0, 0))
    member_reads = [q["sql"] for q in queries.captured_queries if '"members_member"' in q["sql"]]
    assert len(member_reads) == 1 and '"loyalty_account"' in member_reads[0]


def test_a_referred_members_first_purchase_by_reference_pays_the_referral(shop):
    referrer = MemberFactory(program=shop)
    referee = MemberFactory(program=shop, referred_by=referrer, card="400011112222")
    Account.objects.create(member=referee, program=shop)  # an account, no purchase yet
    rule(shop, name="Referral", kind="event", event="referral", points=200)
    ref = MemberRef("card", "400011112222")

    purchase_record(program=shop, member=ref, data=sale(external_id="A"))
    purchase_record(program=shop, member=ref, data=sale(external_id="B"))

    assert balances(referee) == (100 + 200 + 100, 0, 0)
    assert balances(referrer) == (200, 0, 0)


@pytest.mark.parametrize(
    "ref",
    [MemberRef("card", "999999999999"), MemberRef("email", ""), MemberRef("id", "1.5"), MemberRef("id", "0")],
    ids=["unknown card", "empty email", "not an id", "zero id"],
)
def test_a_reference_to_no_member_is_not_found(shop, buyer, ref):
    with pytest.raises(MemberNotFound):
        purchase_record(program=shop, member=ref, data=sale())

    assert Purchase.objects.count() == 0


def test_a_reference_to_another_programs_member_is_not_found(shop, buyer):
    stranger = MemberFactory(program=ProgramFactory(currency="EUR"), card="400055556666")
    Account.objects.create(member=stranger, program=stranger.program)

    for ref in (MemberRef("id", stranger.pk), MemberRef("card", stranger.card)):
        with pytest.raises(MemberNotFound):
            purchase_record(program=shop, member=ref, data=sale())

    assert Purchase.objects.count() == 0


def test_daily_cap_counts_earlier_awards(shop, buyer):
    capped = rule(shop, name="Visit bonus", kind="bonus", points=30, cap_per_member_day=50)

    results = [purchase_record(program=shop, member=buyer, data=sale(external_id=f"V{i}")) for i in range(3)]

    assert [next((a["points"] for a in r.awards if a["rule_id"] == capped.pk), 0) for r in results] == [30, 20, 0]


def test_budget_is_never_overspent(shop):
    limited = rule(shop, name="Launch bonus", kind="bonus", points=40, budget_total=100)
    members = [MemberFactory(program=shop) for _ in range(4)]

    for i, member in enumerate(members):
        purchase_record(program=shop, member=member, data=sale(external_id=f"L{i}"))

    limited.refresh_from_db()
    assert limited.budget_used == 100
    assert sum(Award.objects.filter(rule=limited).values_list("points", flat=True)) == 100


def test_query_count_does_not_depend_on_the_number_of_rules(shop, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(member, external_id):
        purchase_record(program=shop, member=member, data=sale(external_id=f"warm-{external_id}"))
        with CaptureQueriesContext(connection) as captured:
            purchase_record(program=shop, member=member, data=sale(external_id=external_id))
        return len(captured)

    one = queries(MemberFactory(program=shop), "Q1")
    for i in range(49):
        rule(shop, name=f"Promo {i}", kind="multiplier", multiplier=Decimal(2), skus=f"PROMO-{i}", priority=300 + i)
    fifty = queries(MemberFactory(program=shop), "Q50")

    assert EarningRule.objects.filter(program=shop, is_active=True).count() == 50
    assert one == fifty


def test_check_ledger_sees_a_purchase_whose_reversals_do_not_match_its_returns(shop, buyer):
    purchase(buyer, "P1", lines=BASKET, occurred_at=NOW)
    return_record(program=shop, external_id="R1", purchase_external_id="P1", amount=Decimal("600.00"))
    assert ledger_audit() == []

    Purchase.objects.update(points_reversed=10)

    problems = [str(m) for m in ledger_audit()]
    assert problems == [
        f"member #{buyer.pk}: purchase points = entry, reversals = returns: expected 100 awarded, 50 reversed by "
        "returns, found 10 reversed (purchase P1)"
    ]


def test_saving_a_rule_from_a_stale_copy_keeps_its_budget_used(shop):
    from django.core.exceptions import ValidationError

    limited = rule(shop, name="Launch bonus", kind="bonus", points=40, budget_total=100)
    stale = EarningRule.objects.get(pk=limited.pk)
    purchase_record(program=shop, member=MemberFactory(program=shop), data=sale(external_id="B1"))

    stale.name = "Launch bonus (renamed)"
    earning_rule_save(rule=stale)

    assert EarningRule.objects.get(pk=limited.pk).budget_used == 40
    stale.budget_total = 30
    with pytest.raises(ValidationError) as error:
        earning_rule_save(rule=stale)
    assert "budget_total" in error.value.message_dict
