"""Returns reverse per line what each line earned and take back bonuses the rest no longer earns (DESIGN.md 4).

Every example is computed by hand. The program gives 0.1 point per CZK; the book/coffee basket is the one
of the issue: BOOK 500.00 (books x2) and COFFEE 500.00, a 50-point bonus from 1,000 CZK: 50 + 50 base,
50 for the books multiplier, 50 bonus = 200 points. The coffee alone would earn 50.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.models import Account, Award, EarningRule, Purchase, Return
from loyalty.services.ledger import ledger_debit
from loyalty.services.returns import ReturnLineInput, return_record
from loyalty.services.rules import earning_rule_save
from tests.builders import line, purchase, return_, return_line, rule, tier
from tests.factories import MemberFactory, ProgramFactory

NOW = timezone.now() - timedelta(minutes=1)


def buy(member, external_id, *lines) -> Purchase:
    """A purchase of `lines` at NOW (a minute ago: the returns come after it)."""
    return purchase(member, external_id, lines=lines, occurred_at=NOW).purchase


def give_back(program, external_id, purchase="P1", *returned, amount=None) -> int:
    """Returns lines given as (sku, amount) or (sku, amount, quantity), or an amount; the points reversed."""
    lines = [return_line(*item) for item in returned]
    return return_(program, purchase, external_id, lines=lines, amount=amount).record.points_reversed


def balances(member):
    account = Account.objects.get(pk=member.pk)
    return (account.available, account.pending, account.debt)


@pytest.fixture
def shop(db):
    program = ProgramFactory(currency="CZK")
    rule(program)
    return program


@pytest.fixture
def member(shop):
    return MemberFactory(program=shop)


@pytest.fixture
def cafe_bookshop(shop):
    rule(shop, name="Books x2", kind="multiplier", multiplier=Decimal(2), categories="books", priority=200)
    rule(shop, name="Big basket", kind="bonus", points=50, min_basket=Decimal(1000), priority=300)
    return shop


@pytest.fixture
def book_and_coffee(cafe_bookshop, member):
    bought = buy(member, "P1", line("BOOK", "500.00", "books"), line("COFFEE", "500.00", "drinks"))
    assert bought.points_awarded == 200
    return bought


def test_returning_the_book_takes_back_its_points_and_the_basket_bonus(cafe_bookshop, member, book_and_coffee):
    # the book earned 50 base + 50 multiplier; 500.00 left is under the 1,000 of the bonus: 50 more
    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "500.00")) == 150
    assert balances(member) == (50, 0, 0)  # what the coffee alone earns

    assert give_back(cafe_bookshop, "R2", "P1", ("COFFEE", "500.00")) == 50
    assert balances(member) == (0, 0, 0)
    assert Purchase.objects.get().points_reversed == 200
    assert ledger_audit() == []


def test_returning_the_coffee_keeps_the_books_multiplier(cafe_bookshop, member, book_and_coffee):
    # the coffee earned 50 base; the bonus goes too (500.00 left)
    assert give_back(cafe_bookshop, "R1", "P1", ("COFFEE", "500.00")) == 100
    assert balances(member) == (100, 0, 0)  # what the book alone earns: 50 x 2


def test_several_partial_returns_add_up_to_the_award(cafe_bookshop, member):
    buy(member, "P1", line("BOOK", "500.00", "books", quantity=2), line("COFFEE", "600.00", "drinks"))
    # 50 + 60 base, 50 books x2, 50 bonus = 210
    # one book: 25 base + 25 multiplier; 850.00 left, under 1,000: the bonus goes
    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "250.00", 1)) == 100
    assert give_back(cafe_bookshop, "R2", "P1", ("BOOK", "250.00", 1)) == 50
    assert give_back(cafe_bookshop, "R3", "P1", ("COFFEE", "600.00")) == 60
    assert Purchase.objects.get().points_reversed == 210
    assert balances(member) == (0, 0, 0)


def test_a_bonus_stays_while_the_rest_still_meets_its_minimum(cafe_bookshop, member):
    buy(member, "P1", line("BOOK", "300.00", "books"), line("COFFEE", "1000.00", "drinks"))
    # 30 + 100 base, 30 books x2, 50 bonus = 210; without the book 1,000.00 is left: the bonus stays
    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "300.00")) == 60
    assert balances(member) == (150, 0, 0)


def test_nth_purchase_bonus_stays_until_the_whole_purchase_is_returned(shop, member):
    rule(shop, name="Second visit", kind="bonus", points=30, nth_purchase=2, priority=300)
    buy(member, "P0", line("TEA", "10.00"))  # 1 point
    buy(member, "P1", line("A", "600.00"), line("B", "400.00"))  # 100 base + 30 = 130

    # the rest is still the member's second purchase: A gives back its 60, the bonus stays
    assert give_back(shop, "R1", "P1", ("A", "600.00")) == 60
    assert balances(member) == (71, 0, 0)
    assert give_back(shop, "R2", "P1", ("B", "400.00")) == 70
    assert balances(member) == (1, 0, 0)


def test_sku_in_basket_bonus_goes_with_its_last_line(shop, member):
    rule(shop, name="Promo in basket", kind="bonus", points=40, skus="PROMO", priority=300)
    buy(member, "P1", line("PROMO", "200.00"), line("OTHER", "800.00"))  # 100 base + 40 = 140

    assert give_back(shop, "R1", "P1", ("OTHER", "800.00")) == 80  # PROMO is still in the basket
    assert give_back(shop, "R2", "P1", ("PROMO", "100.00")) == 10  # half of it is still there
    assert give_back(shop, "R3", "P1", ("PROMO", "100.00")) == 50  # its last 10, and the bonus
    assert balances(member) == (0, 0, 0)


def test_return_by_amount_falls_back_to_proportional_reversal(cafe_bookshop, member, book_and_coffee):
    # 250.00 of 1,000.00 without lines: a quarter of 200
    assert give_back(cafe_bookshop, "R1", "P1", amount="250.00") == 50
    # the book by line: 150 in all by lines (as above); the 250.00 by amount takes 250/500 of the other 50: 25
    assert give_back(cafe_bookshop, "R2", "P1", ("BOOK", "500.00")) == 175 - 50
    # the last 250.00 returns everything
    assert give_back(cafe_bookshop, "R3", "P1", amount="250.00") == 25
    assert Purchase.objects.get().points_reversed == 200
    assert balances(member) == (0, 0, 0)


def test_return_after_spending_creates_debt_for_the_whole_reversal(cafe_bookshop, member, book_and_coffee):
    ledger_debit(member=member, amount=180)

    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "500.00")) == 150

    assert balances(member) == (0, 0, 130)
    assert ledger_audit() == []


def test_repeating_a_return_does_nothing(cafe_bookshop, member, book_and_coffee):
    first = give_back(cafe_bookshop, "R1", "P1", ("BOOK", "500.00"))
    again = return_record(
        program=cafe_bookshop,
        external_id="R1",
        purchase_external_id="P1",
        lines=(ReturnLineInput(sku="BOOK", amount=Decimal("500.00")),),
    )

    assert (first, again.replayed, again.record.points_reversed) == (150, True, 150)
    assert Return.objects.count() == 1 and balances(member) == (50, 0, 0)
    assert Purchase.objects.get().points_reversed == 150


def test_rules_changed_after_the_purchase_do_not_change_what_a_return_takes_back(
    cafe_bookshop, member, book_and_coffee
):
    bonus = EarningRule.objects.get(name="Big basket")
    bonus.min_basket = Decimal(100)
    earning_rule_save(rule=bonus)
    books = EarningRule.objects.get(name="Books x2")
    books.multiplier = Decimal(5)
    earning_rule_save(rule=books)

    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "500.00")) == 150


def test_tier_award_on_top_goes_back_in_the_same_proportion(shop, member):
    tier(shop, "Gold", rank=1, threshold=1, earn_multiplier=Decimal("1.5"))
    buy(member, "P0", line("TEA", "10.00"))  # 1 point: Gold
    assert buy(member, "P1", line("A", "600.00"), line("B", "400.00")).points_awarded == 100 + 50

    assert give_back(shop, "R1", "P1", ("A", "600.00")) == 60 + 30
    assert give_back(shop, "R2", "P1", ("B", "400.00")) == 40 + 20


def test_tier_qualification_drops_by_what_was_reversed(cafe_bookshop, member, book_and_coffee):
    tier(cafe_bookshop, "Silver", rank=1, threshold=80)
    buy(member, "P2", line("TEA", "0.50"))  # 0 points; the member qualifies with 200: Silver
    assert Account.objects.get(pk=member.pk).tier.name == "Silver"

    result = return_record(
        program=cafe_bookshop,
        external_id="R1",
        purchase_external_id="P1",
        lines=(ReturnLineInput(sku="BOOK", amount=Decimal("500.00")),),
    )

    # 200 - 150 = 50 qualifying points are left, under Silver's 80
    assert result.tier == {"before": "Silver", "after": None}
    assert Account.objects.get(pk=member.pk).tier is None


def test_awards_recorded_without_their_basis_reverse_in_proportion_to_eligible_lines(
    cafe_bookshop, member, book_and_coffee
):
    Award.objects.update(basis={})  # as purchases recorded awards before the basis was kept

    assert give_back(cafe_bookshop, "R1", "P1", ("BOOK", "500.00")) == 100
    assert give_back(cafe_bookshop, "R2", "P1", ("COFFEE", "500.00")) == 100


def test_each_award_row_records_what_it_was_given_for(cafe_bookshop, member, book_and_coffee):
    basis = dict(Award.objects.values_list("rule_name", "basis"))

    assert basis == {
        "Base rate": {"lines": ["50", "50"], "min_basket": None, "needs": []},
        "Books x2": {"lines": ["50", "0"], "min_basket": None, "needs": []},
        "Big basket": {"lines": [], "min_basket": "1000.00", "needs": []},
    }


def test_recording_what_returns_need_adds_no_query_per_line_to_a_purchase(cafe_bookshop):
    def queries(external_id, lines):
        member = MemberFactory(program=cafe_bookshop)
        buy(member, f"warm-{external_id}", line("TEA", "1.00"))  # the account exists
        with CaptureQueriesContext(connection) as captured:
            buy(member, external_id, *lines)
        return len(captured)

    one = queries("Q1", [line("BOOK", "1200.00", "books")])
    twelve = queries("Q12", [line(f"BOOK-{i}", "100.00", "books") for i in range(12)])

    assert one == twelve
    assert Award.objects.filter(entry__purchase__external_id="Q12").count() == 3
