"""Manager API: earning rules (with the preview), tiers, purchases, returns, tier history and tier pins."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from config.api.input import UNKNOWN_FIELD_MESSAGE
from loyalty.models import (
    Account,
    Award,
    EarningRule,
    Entry,
    Purchase,
    PurchaseLine,
    Return,
    Tier,
    TierChangeReason,
    TierHistory,
)
from loyalty.services.purchases import purchase_record
from loyalty.services.returns import return_record
from loyalty.services.rules import earning_rule_deactivate, earning_rule_save
from loyalty.services.tiers import tier_pin
from members.identifiers import format_card
from members.models import Program
from tests import builders
from tests.api.utils import MANAGE, assert_problem, db_state
from tests.clients import staff_client
from tests.factories import MemberFactory, StaffFactory
from tests.loyalty.rules_shop import rules_shop, sale, simulated_points, version

RULES_URL = f"{MANAGE}/rules/"
PREVIEW_URL = f"{MANAGE}/rules/preview/"
TIERS_URL = f"{MANAGE}/tiers/"
PURCHASES_URL = f"{MANAGE}/purchases/"
RETURNS_URL = f"{MANAGE}/returns/"
HISTORY_URL = f"{MANAGE}/tier-history/"
PERMISSIONS = [
    "view_earningrule",
    "add_earningrule",
    "change_earningrule",
    "view_tier",
    "add_tier",
    "change_tier",
    "view_purchase",
    "view_return",
    "view_tierhistory",
    "change_account",
]
LINES = [
    {"sku": "BK-1", "category": "books", "quantity": 1, "amount": "600.00"},
    {"sku": "GC-1", "category": "gift-cards", "quantity": 1, "amount": "500.00"},
    {"sku": "TO-1", "category": "toys", "quantity": 2, "unit_price": "67.25", "amount": "134.50"},
]


def rule_url(rule_id):
    return f"{RULES_URL}{rule_id}/"


def tier_url(tier_id):
    return f"{TIERS_URL}{tier_id}/"


def pin_url(member_id):
    return f"{MANAGE}/members/{member_id}/tier-pin/"


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def everything():
    """What any of these endpoints could write."""
    return {
        **db_state(),
        "rules": list(EarningRule.objects.order_by("pk").values_list("pk", "name", "rate", "is_active", "budget_used")),
        "rule_tiers": list(EarningRule.tiers.through.objects.order_by("pk").values_list("earningrule_id", "tier_id")),
        "tiers": list(Tier.objects.order_by("pk").values_list("pk", "name", "rank", "threshold")),
        "history": TierHistory.objects.count(),
        "purchases": Purchase.objects.count(),
        "lines": PurchaseLine.objects.count(),
        "awards": Award.objects.count(),
        "tier_of_accounts": list(Account.objects.order_by("pk").values_list("pk", "tier_id", "tier_pinned_until")),
        "versions": list(Program.objects.order_by("pk").values_list("pk", "config_version")),
    }


def _shop(program, member, actor):
    shop = rules_shop(program)
    purchase = purchase_record(program=program, member=member, data=sale(f"TILL-{program.pk}", store="PRAGUE-01"))
    returned = builders.return_(
        program, f"TILL-{program.pk}", f"RET-{program.pk}", lines=[builders.return_line("TO-1", "134.50")]
    )
    tier_pin(member=member, tier=shop["silver"], until=timezone.now() + timedelta(days=30), actor=actor, note="VIP")
    return {
        **shop,
        "member": member,
        "purchase": purchase.purchase,
        "return": returned.record,
        "history": TierHistory.objects.get(member=member),
    }


@pytest.fixture
def rules_manager(manager):
    manager.user_permissions.add(*Permission.objects.filter(codename__in=PERMISSIONS))
    return User.objects.get(pk=manager.pk)  # permissions are cached on the instance


@pytest.fixture
def api(rules_manager):
    return staff_client(rules_manager)


@pytest.fixture
def shop(program, member, rules_manager):
    return _shop(program, member, rules_manager)


@pytest.fixture
def foreign(other_program):
    return _shop(other_program, MemberFactory(program=other_program), StaffFactory())


# --- Earning rules --------------------------------------------------------------------------------


def test_rule_list_shows_the_managers_rules_with_every_field(api, program, shop, foreign):
    response = api.get(RULES_URL)

    assert ids(response) == [shop["base"].pk, shop["books"].pk]
    books = response.json()["results"][1]
    assert books == {
        **books,
        "id": shop["books"].pk,
        "program": program.slug,
        "name": "Books double",
        "kind": "multiplier",
        "kind_label": "Multiplier: × N on matching lines or baskets",
        "is_active": True,
        "priority": 200,
        "categories": ["books"],
        "skus": [],
        "weekdays": [],
        "tiers": [],
        "multiplier": "2.000",
        "rate": "0.0000",
        "budget_total": None,
        "budget_used": 0,
    }
    assert response.json()["results"][0]["excluded_categories"] == ["gift-cards"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "multiplier"}, ["books"]),
        ({"kind": ["multiplier", "base_rate"]}, ["base", "books"]),
        ({"is_active": "false"}, []),
        ({"is_active": "true"}, ["base", "books"]),
        ({"q": "BOOK"}, ["books"]),
    ],
)
def test_rule_list_filters(api, shop, params, expected):
    assert ids(api.get(RULES_URL, params)) == [shop[key].pk for key in expected]


def test_rule_list_filter_by_program_stays_within_managed_programs(api, program, shop, foreign, other_program):
    assert ids(api.get(RULES_URL, {"program": program.slug})) == [shop["base"].pk, shop["books"].pk]
    assert ids(api.get(RULES_URL, {"program": other_program.slug})) == []


def test_rule_list_makes_the_same_number_of_queries_for_more_rules(api, program, shop):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert api.get(RULES_URL).status_code == 200
        return len(queries)

    count()  # the user's permissions are read once per user
    few = count()
    for n in range(5):
        builders.rule(program, name=f"R{n}", kind="bonus", points=1, tiers=[shop["gold"]])

    assert count() == few


def test_creating_a_rule_applies_it_to_the_next_purchase(api, program, shop):
    member = MemberFactory(program=program)
    tier_pin(member=member, tier=shop["gold"], until=timezone.now() + timedelta(days=3), actor=None)
    before = version(program)
    body = {
        "program": program.slug,
        "name": "E-shop bonus",
        "kind": "bonus",
        "points": 40,
        "channels": ["eshop"],
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "tiers": [shop["gold"].pk],
        "stores": ["WEB", "WEB"],
        "priority": 50,
    }

    response = api.post(RULES_URL, body, format="json")

    assert response.status_code == 201, response.content
    rule = EarningRule.objects.get(name="E-shop bonus")
    assert response.json() == {
        **response.json(),
        "id": rule.pk,
        "program": program.slug,
        "kind": "bonus",
        "points": 40,
        "channels": ["eshop"],
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "stores": ["WEB"],
        "tiers": [shop["gold"].pk],
        "is_active": True,
        "budget_used": 0,
    }
    assert (rule.channels, rule.weekdays, rule.stores) == ("eshop", "1, 2, 3, 4, 5, 6, 7", "WEB")
    assert list(rule.tiers.all()) == [shop["gold"]]
    assert version(program) == before + 1  # one bump for the rule and its tiers
    assert simulated_points(program, member, channel="eshop", store="WEB") == int((133 + 40) * Decimal("1.5"))
    assert simulated_points(program, member, channel="pos", store="WEB") == int(133 * Decimal("1.5"))
    assert simulated_points(program, member, channel="eshop", store="PRAGUE-01") == int(133 * Decimal("1.5"))


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "base_rate"}, {"rate"}),
        ({"kind": "multiplier", "multiplier": "1"}, {"multiplier"}),
        ({"kind": "bonus", "points": 0}, {"points"}),
        ({"kind": "bonus", "points": 5, "event": "signup"}, {"event"}),
        ({"kind": "event", "points": 5}, {"event"}),
        (
            {
                "kind": "bonus",
                "points": 5,
                "active_from": "2026-05-01T00:00:00Z",
                "active_until": "2026-04-01T00:00:00Z",
            },
            {"active_until"},
        ),
        ({"kind": "bonus", "points": 5, "weekdays": [0, 8]}, {"weekdays"}),
        ({"kind": "bonus", "points": 5, "channels": ["shop"]}, {"channels"}),
        ({"kind": "bonus", "points": 5, "skus": ["A,B"]}, {"skus"}),
        ({"kind": "sometimes", "points": 5}, {"kind"}),
        ({"kind": "bonus", "points": -5}, {"points"}),
        ({"kind": "bonus", "points": 1_000_000_001}, {"points"}),  # more than one ledger entry may hold
    ],
)
def test_an_invalid_rule_answers_per_field_errors_and_writes_nothing(api, program, shop, body, fields):
    before = everything()

    response = api.post(RULES_URL, {"program": program.slug, "name": "Broken", **body}, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert set(problem["errors"]) == fields
    assert everything() == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "bonus", "points": 5, "budget_used": 5}, {"budget_used"}),
        ({"kind": "bonus", "points": 5, "config_version": 9, "id": 1}, {"config_version", "id"}),
        ({"kind": "sometimes", "points": -5, "budget_used": 5}, {"budget_used"}),  # before any other error
    ],
)
def test_server_owned_fields_of_a_rule_are_refused_as_unknown(api, program, shop, body, fields):
    before = everything()

    response = api.post(RULES_URL, {"program": program.slug, "name": "Broken", **body}, format="json")

    problem = assert_problem(response, 400, "unknown_field")
    assert problem["errors"] == {field: [UNKNOWN_FIELD_MESSAGE] for field in fields}
    assert everything() == before


def test_a_rule_for_another_program_or_its_tiers_is_refused(api, program, shop, foreign, other_program):
    before = everything()

    other = api.post(
        RULES_URL, {"program": other_program.slug, "name": "X", "kind": "bonus", "points": 1}, format="json"
    )
    foreign_tier = api.post(
        RULES_URL,
        {"program": program.slug, "name": "X", "kind": "base_rate", "tiers": [foreign["gold"].pk, shop["gold"].pk]},
        format="json",
    )

    assert assert_problem(other, 400, "validation_error")["errors"] == {
        "program": [f"You manage no program with the slug “{other_program.slug}”."]
    }
    # the model's own errors come with the API's
    assert assert_problem(foreign_tier, 400, "validation_error")["errors"] == {
        "tiers": [f"No tier of {program.slug} has the id {foreign['gold'].pk}."],
        "rate": ["A base rate rule needs a rate above 0."],
    }
    assert everything() == before


def test_rule_detail(api, shop):
    response = api.get(rule_url(shop["base"].pk))

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["rate"]) == ("Base rate", "0.1000")


def test_another_programs_rule_is_not_found(api, shop, foreign):
    before = everything()

    for response in [
        api.get(rule_url(foreign["books"].pk)),
        api.patch(rule_url(foreign["books"].pk), {"name": "Mine"}, format="json"),
        api.post(f"{rule_url(foreign['books'].pk)}deactivate/", {}, format="json"),
        api.get(rule_url(999999)),
    ]:
        assert_problem(response, 404, "not_found")
    assert everything() == before


def test_changing_a_rule_changes_the_next_purchase(api, program, shop):
    member = MemberFactory(program=program)
    assert simulated_points(program, member) == 73 + 60
    before = version(program)

    response = api.patch(rule_url(shop["base"].pk), {"rate": "0.2", "name": "Base rate 2x"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["rate"], response.json()["name"]) == ("0.2000", "Base rate 2x")
    assert response.json()["excluded_categories"] == ["gift-cards"]  # untouched
    assert version(program) == before + 1
    # base 734.50 x 0.2 = 146; books (2 - 1) x 600 x 0.2 = 120
    assert simulated_points(program, member) == 146 + 120
    assert purchase_record(program=program, member=member, data=sale("NEXT-1")).points == 266


def test_changing_a_rules_tiers_replaces_them(api, shop):
    api.patch(rule_url(shop["books"].pk), {"tiers": [shop["gold"].pk, shop["silver"].pk]}, format="json")
    response = api.patch(rule_url(shop["books"].pk), {"tiers": [shop["silver"].pk]}, format="json")

    assert response.json()["tiers"] == [shop["silver"].pk]
    assert list(EarningRule.objects.get(pk=shop["books"].pk).tiers.all()) == [shop["silver"]]


@pytest.mark.parametrize(
    ("body", "code", "errors"),
    [
        ({"kind": "bonus"}, "validation_error", {"points": ["Bonus and event rules need a number of points above 0."]}),
        ({"rate": "0"}, "validation_error", {"rate": ["A base rate rule needs a rate above 0."]}),
        ({"program": "elsewhere"}, "unknown_field", {"program": [UNKNOWN_FIELD_MESSAGE]}),
        ({"budget_used": 0}, "unknown_field", {"budget_used": [UNKNOWN_FIELD_MESSAGE]}),
        ({"name": ""}, "validation_error", {"name": ["This field may not be blank."]}),
    ],
)
def test_an_invalid_change_answers_per_field_errors_and_changes_nothing(api, shop, body, code, errors):
    before = everything()

    response = api.patch(rule_url(shop["base"].pk), body, format="json")

    assert assert_problem(response, 400, code)["errors"] == errors
    assert everything() == before


def test_a_budget_below_what_the_rule_gave_is_refused(api, program, shop):
    books = shop["books"]
    books.budget_total = 1000
    earning_rule_save(rule=books)
    EarningRule.objects.filter(pk=books.pk).update(budget_used=400)  # as purchases spend it
    before = everything()

    response = api.patch(rule_url(books.pk), {"budget_total": 300}, format="json")

    assert assert_problem(response, 400, "validation_error")["errors"] == {
        "budget_total": ["The rule has given 400 points already."]
    }
    assert everything() == before


def test_deactivating_a_rule_stops_its_points(api, program, shop):
    member = MemberFactory(program=program)
    before = version(program)

    response = api.post(f"{rule_url(shop['books'].pk)}deactivate/", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["is_active"] is False
    assert EarningRule.objects.get(pk=shop["books"].pk).is_active is False
    assert version(program) == before + 1
    assert simulated_points(program, member) == 73
    assert ids(api.get(RULES_URL, {"is_active": "false"})) == [shop["books"].pk]


def test_deactivation_takes_no_fields(api, shop):
    response = api.post(f"{rule_url(shop['books'].pk)}deactivate/", {"is_active": True}, format="json")

    assert assert_problem(response, 400, "unknown_field")["errors"] == {"is_active": [UNKNOWN_FIELD_MESSAGE]}
    assert EarningRule.objects.get(pk=shop["books"].pk).is_active


# --- Preview --------------------------------------------------------------------------------------


def preview(api, program, **fields):
    body = {"program": program.slug, "lines": LINES, "occurred_at": "2026-03-04T10:15:00+01:00", **fields}
    return api.post(PREVIEW_URL, body, format="json")


def test_preview_computes_the_points_of_every_rule_and_writes_nothing(api, program, shop):
    before = everything()

    response = preview(api, program)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "program": program.slug,
        "member_id": None,
        "total": "1234.50",
        "eligible_amount": "734.50",
        "points": 133,
        "awards": [
            {"rule": "Base rate", "rule_id": shop["base"].pk, "points": 73},
            {"rule": "Books double", "rule_id": shop["books"].pk, "points": 60},
        ],
        "rules": [
            {
                "id": shop["base"].pk,
                "name": "Base rate",
                "kind": "base_rate",
                "priority": 100,
                "is_active": True,
                "points": 73,
            },
            {
                "id": shop["books"].pk,
                "name": "Books double",
                "kind": "multiplier",
                "priority": 200,
                "is_active": True,
                "points": 60,
            },
        ],
        "notes": [],
    }
    assert everything() == before


def test_preview_for_a_member_applies_their_tier_and_caps(api, program, shop):
    gold = MemberFactory(program=program)
    tier_pin(member=gold, tier=shop["gold"], until=timezone.now() + timedelta(days=3), actor=None)
    capped = shop["books"]
    capped.cap_per_member_day = 70
    earning_rule_save(rule=capped)
    purchase_record(program=program, member=gold, data=sale("EARLIER-1", occurred_at=timezone.now()))  # 60 of 70 used
    before = everything()

    response = preview(api, program, member={"card": format_card(gold.card)}, occurred_at=timezone.now().isoformat())

    assert response.status_code == 200, response.content
    assert response.json()["member_id"] == gold.pk
    assert response.json()["awards"] == [
        {"rule": "Base rate", "rule_id": shop["base"].pk, "points": 73},
        {"rule": "Books double", "rule_id": shop["books"].pk, "points": 10},
        {"rule": "Gold tier x1.5", "rule_id": None, "points": 41},
    ]
    assert response.json()["points"] == 124
    assert everything() == before


def test_preview_includes_a_switched_off_rule_when_asked(api, program, shop):
    earning_rule_deactivate(rule=shop["books"])

    without = preview(api, program).json()
    with_rule = preview(api, program, rule_id=shop["books"].pk, channel="eshop", store="WEB").json()

    assert (without["points"], [row["name"] for row in without["rules"]]) == (73, ["Base rate"])
    assert with_rule["points"] == 133
    assert [(row["name"], row["is_active"], row["points"]) for row in with_rule["rules"]] == [
        ("Base rate", True, 73),
        ("Books double", False, 60),
    ]
    assert with_rule["notes"] == ["“Books double” is switched off: it is included here as if it were active."]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"lines": []}, {"lines"}),
        ({"total": "1.00"}, {"total"}),
        ({"channel": "fax"}, {"channel"}),
        ({"lines": [{"sku": "X", "amount": "-1"}]}, {"lines"}),
        ({"rule_id": 999999}, {"rule_id"}),
        ({"member": {"card": "1", "email": "a@b.c"}}, {"member"}),
        ({"budget_used": 1}, {"budget_used"}),
    ],
)
def test_preview_rejects_bad_input(api, program, shop, fields, errors):
    before = everything()

    response = preview(api, program, **fields)

    code = "unknown_field" if errors == {"budget_used"} else "validation_error"
    assert set(assert_problem(response, 400, code)["errors"]) == errors
    assert everything() == before


def test_preview_stays_within_managed_programs(api, program, shop, foreign, other_program):
    other = preview(api, other_program)
    foreign_rule = preview(api, program, rule_id=foreign["books"].pk)
    foreign_member = preview(api, program, member={"id": foreign["member"].pk})

    assert set(assert_problem(other, 400, "validation_error")["errors"]) == {"program"}
    assert set(assert_problem(foreign_rule, 400, "validation_error")["errors"]) == {"rule_id"}
    assert_problem(foreign_member, 404, "member_not_found")


# --- Tiers ----------------------------------------------------------------------------------------


def test_tier_list_counts_members(api, program, shop, foreign):
    response = api.get(TIERS_URL)

    assert ids(response) == [shop["silver"].pk, shop["gold"].pk]
    assert response.json()["results"][0] == {
        "id": shop["silver"].pk,
        "program": program.slug,
        "name": "Silver",
        "rank": 1,
        "threshold": "500.00",
        "earn_multiplier": "1.00",
        "benefits": "",
        "members": 1,
    }
    assert ids(api.get(TIERS_URL, {"program": foreign["member"].program.slug})) == []


def test_creating_a_tier(api, program, shop):
    before = version(program)
    body = {"program": program.slug, "name": "Platinum", "rank": 3, "threshold": "20000", "earn_multiplier": "2"}

    response = api.post(TIERS_URL, {**body, "benefits": "Lounge"}, format="json")

    assert response.status_code == 201, response.content
    tier = Tier.objects.get(program=program, name="Platinum")
    assert response.json() == {
        "id": tier.pk,
        "program": program.slug,
        "name": "Platinum",
        "rank": 3,
        "threshold": "20000.00",
        "earn_multiplier": "2.00",
        "benefits": "Lounge",
        "members": 0,
    }
    assert version(program) == before + 1


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"rank": 1}, {"rank": ["Another tier of this program has this rank."]}),
        ({"name": "Gold"}, {"name": ["Another tier of this program has this name."]}),
        ({"threshold": "-1"}, {"threshold": ["Ensure this value is greater than or equal to 0."]}),
        ({"earn_multiplier": "0.5"}, {"earn_multiplier": ["Ensure this value is greater than or equal to 1."]}),
        ({"members": 3}, {"members": [UNKNOWN_FIELD_MESSAGE]}),
    ],
)
def test_an_invalid_tier_answers_per_field_errors_and_writes_nothing(api, program, shop, body, errors):
    before = everything()
    tier = {"program": program.slug, "name": "Platinum", "rank": 3, "threshold": "20000"}

    response = api.post(TIERS_URL, {**tier, **body}, format="json")

    code = "unknown_field" if "members" in body else "validation_error"
    assert assert_problem(response, 400, code)["errors"] == errors
    assert everything() == before


def test_changing_a_tier(api, program, shop):
    before = version(program)

    response = api.patch(tier_url(shop["gold"].pk), {"threshold": "4000", "benefits": "Free delivery"}, format="json")
    taken = api.patch(tier_url(shop["gold"].pk), {"rank": 1}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["threshold"], response.json()["benefits"]) == ("4000.00", "Free delivery")
    assert Tier.objects.get(pk=shop["gold"].pk).threshold == Decimal(4000)
    assert version(program) == before + 1
    assert assert_problem(taken, 400, "validation_error")["errors"] == {
        "rank": ["Another tier of this program has this rank."]
    }
    assert Tier.objects.get(pk=shop["gold"].pk).rank == 2


def test_another_programs_tier_is_not_found(api, shop, foreign):
    before = everything()

    assert_problem(api.get(tier_url(foreign["gold"].pk)), 404, "not_found")
    assert_problem(api.patch(tier_url(foreign["gold"].pk), {"name": "Mine"}, format="json"), 404, "not_found")
    assert everything() == before


# --- Purchases and returns ------------------------------------------------------------------------


def test_purchase_list(api, program, member, shop, foreign):
    response = api.get(PURCHASES_URL)

    assert ids(response) == [shop["purchase"].pk]
    assert response.json()["results"][0] == {
        **response.json()["results"][0],
        "external_id": f"TILL-{program.pk}",
        "program": program.slug,
        "member_id": member.pk,
        "store": "PRAGUE-01",
        "channel": "pos",
        "currency": "EUR",
        "total": "1234.50",
        "eligible_amount": "734.50",
        "points_awarded": 133,
        "points_reversed": shop["return"].points_reversed,
        "returned_total": "134.50",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (lambda s: {"member": s["member"].pk}, ["purchase"]),
        (lambda s: {"member": s["other"].member_id}, ["other"]),
        (lambda s: {"channel": "eshop"}, ["other"]),
        (lambda s: {"channel": ["eshop", "pos"]}, ["purchase", "other"]),
        (lambda s: {"store": "PRAGUE-01"}, ["purchase"]),
        (lambda s: {"external_id": "ESHOP-9"}, ["other"]),
        (lambda s: {"occurred_after": (timezone.now() - timedelta(days=1)).isoformat()}, ["purchase"]),
        (lambda s: {"occurred_before": (timezone.now() - timedelta(days=1)).isoformat()}, ["other"]),
        (lambda s: {"program": s["member"].program.slug}, ["purchase", "other"]),
    ],
)
def test_purchase_filters(api, program, shop, params, expected):
    earlier = timezone.now() - timedelta(days=10)
    other = purchase_record(
        program=program,
        member=MemberFactory(program=program),
        data=sale("ESHOP-9", channel="eshop", store="WEB", occurred_at=earlier),
    ).purchase
    rows = {**shop, "other": other}

    response = api.get(PURCHASES_URL, params(rows))

    assert sorted(ids(response)) == sorted(rows[key].pk for key in expected)


@pytest.mark.parametrize("params", [{"member": "abc"}, {"member": "0"}, {"occurred_after": "yesterday"}])
def test_bad_purchase_filters_are_validation_errors(api, shop, params):
    assert_problem(api.get(PURCHASES_URL, params), 400, "validation_error")


def test_purchase_detail_has_lines_awards_and_returns(api, program, shop):
    response = api.get(f"{PURCHASES_URL}{shop['purchase'].pk}/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [(row["sku"], row["amount"], row["eligible"]) for row in body["lines"]] == [
        ("BK-1", "600.00", True),
        ("GC-1", "500.00", False),
        ("TO-1", "134.50", True),
    ]
    assert body["lines"][2]["returned_amount"] == "134.50"
    assert body["awards"] == [
        {"rule": "Base rate", "rule_id": shop["base"].pk, "points": 73},
        {"rule": "Books double", "rule_id": shop["books"].pk, "points": 60},
    ]
    [returned] = body["returns"]
    assert returned == {
        **returned,
        "id": shop["return"].pk,
        "external_id": f"RET-{program.pk}",
        "purchase_external_id": f"TILL-{program.pk}",
        "amount": "134.50",
        "points_reversed": shop["return"].points_reversed,
        "lines": [{"sku": "TO-1", "quantity": None, "amount": "134.50"}],
    }
    assert shop["return"].points_reversed > 0


def test_another_programs_purchase_is_not_found(api, shop, foreign):
    assert_problem(api.get(f"{PURCHASES_URL}{foreign['purchase'].pk}/"), 404, "not_found")


def test_return_list_and_filters(api, program, shop, foreign):
    second = purchase_record(program=program, member=MemberFactory(program=program), data=sale("TILL-B")).purchase
    other = return_record(program=program, external_id="RET-B", purchase_external_id="TILL-B", amount=Decimal(100))

    everyone = api.get(RETURNS_URL)
    by_purchase = api.get(RETURNS_URL, {"purchase": second.pk})
    by_member = api.get(RETURNS_URL, {"member": shop["member"].pk})
    by_id = api.get(RETURNS_URL, {"external_id": "RET-B"})

    assert sorted(ids(everyone)) == sorted([shop["return"].pk, other.record.pk])
    assert ids(by_purchase) == ids(by_id) == [other.record.pk]
    assert ids(by_member) == [shop["return"].pk]
    assert everyone.json()["results"][0]["program"] == program.slug


# --- Tier history and pins ------------------------------------------------------------------------


def test_tier_history_list_and_filters(api, rules_manager, program, shop, foreign):
    other = MemberFactory(program=program)
    tier_pin(member=other, tier=shop["gold"], until=timezone.now() + timedelta(days=3), actor=None, note="Match")

    everyone = api.get(HISTORY_URL)
    of_member = api.get(HISTORY_URL, {"member": shop["member"].pk})
    pins = api.get(HISTORY_URL, {"reason": "pin"})
    promotions = api.get(HISTORY_URL, {"reason": "promotion"})

    assert ids(everyone) == [TierHistory.objects.get(member=other).pk, shop["history"].pk]  # newest first
    assert ids(of_member) == [shop["history"].pk]
    assert len(ids(pins)) == 2 and ids(promotions) == []
    assert of_member.json()["results"][0] == {
        **of_member.json()["results"][0],
        "program": program.slug,
        "member_id": shop["member"].pk,
        "from_tier": None,
        "to_tier": {"id": shop["silver"].pk, "name": "Silver"},
        "reason": "pin",
        "reason_label": "Pinned by a manager",
        "note": "VIP",
        "actor": rules_manager.username,
    }


def test_pinning_a_tier(api, rules_manager, program, shop):
    member = MemberFactory(program=program)
    until = timezone.now() + timedelta(days=60)

    response = api.post(pin_url(member.pk), {"tier": shop["gold"].pk, "until": until.isoformat(), "note": " Match "})

    assert response.status_code == 200, response.content
    account = Account.objects.get(pk=member.pk)
    assert account.tier == shop["gold"]
    assert account.tier_pinned_until == until
    history = TierHistory.objects.get(member=member)
    assert (history.to_tier, history.reason, history.actor, history.note) == (
        shop["gold"],
        TierChangeReason.PIN,
        rules_manager,
        "Match",
    )
    body = response.json()
    assert body["member_id"] == member.pk
    assert body["tier"] == {"id": shop["gold"].pk, "name": "Gold"}
    assert datetime.fromisoformat(body["pinned_until"]) == until
    assert body["history"]["id"] == history.pk and body["history"]["actor"] == rules_manager.username
    assert simulated_points(program, member) == 199  # Gold's x1.5 at once


def test_pinning_no_tier(api, program, shop):
    member = shop["member"]  # Silver

    response = api.post(pin_url(member.pk), {"tier": None, "until": "2099-01-01T00:00:00Z", "note": "Fraud check"})

    assert response.status_code == 200, response.content
    assert response.json()["tier"] is None
    assert Account.objects.get(pk=member.pk).tier is None
    assert TierHistory.objects.filter(member=member).latest("created_at").from_tier == shop["silver"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (lambda s: {"tier": s["foreign"]["gold"].pk}, {"tier"}),
        (lambda s: {"tier": 999999}, {"tier"}),
        (lambda s: {"until": "2000-01-01T00:00:00Z"}, {"until"}),
        (lambda s: {"note": "  "}, {"note"}),
        (lambda s: {"note": None}, {"note"}),
        (lambda s: {"actor": 1}, {"actor"}),
    ],
)
def test_an_invalid_pin_answers_per_field_errors_and_writes_nothing(api, program, shop, foreign, body, errors):
    member = MemberFactory(program=program)
    valid = {"tier": shop["gold"].pk, "until": "2099-01-01T00:00:00Z", "note": "x"}
    before = everything()

    response = api.post(pin_url(member.pk), {**valid, **body({**shop, "foreign": foreign})}, format="json")

    code = "unknown_field" if errors == {"actor"} else "validation_error"
    assert set(assert_problem(response, 400, code)["errors"]) == errors
    assert everything() == before


def test_another_programs_member_cannot_be_pinned(api, shop, foreign):
    before = everything()

    response = api.post(
        pin_url(foreign["member"].pk), {"tier": foreign["gold"].pk, "until": "2099-01-01T00:00:00Z", "note": "x"}
    )

    assert_problem(response, 404, "member_not_found")
    assert everything() == before


# --- Permissions and authentication ---------------------------------------------------------------

ENDPOINTS = [
    ("get", lambda s: RULES_URL, None),
    ("post", lambda s: RULES_URL, lambda s: {"program": s["program"], "name": "X", "kind": "bonus", "points": 1}),
    ("get", lambda s: rule_url(s["books"].pk), None),
    ("patch", lambda s: rule_url(s["books"].pk), lambda s: {"name": "X"}),
    ("post", lambda s: f"{rule_url(s['books'].pk)}deactivate/", lambda s: {}),
    ("post", lambda s: PREVIEW_URL, lambda s: {"program": s["program"], "lines": LINES}),
    ("get", lambda s: TIERS_URL, None),
    ("post", lambda s: TIERS_URL, lambda s: {"program": s["program"], "name": "X", "rank": 9, "threshold": "1"}),
    ("get", lambda s: tier_url(s["gold"].pk), None),
    ("patch", lambda s: tier_url(s["gold"].pk), lambda s: {"name": "X"}),
    ("get", lambda s: PURCHASES_URL, None),
    ("get", lambda s: f"{PURCHASES_URL}{s['purchase'].pk}/", None),
    ("get", lambda s: RETURNS_URL, None),
    ("get", lambda s: HISTORY_URL, None),
    ("post", lambda s: pin_url(s["member"].pk), lambda s: {"tier": None, "until": "2099-01-01T00:00:00Z", "note": "x"}),
]


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_every_endpoint_needs_its_permission(program, shop, method, url, body):
    clerk = StaffFactory(programs=[program])  # members and ledger permissions only
    rows = {**shop, "program": program.slug}
    before = everything()

    response = getattr(staff_client(clerk), method)(url(rows), body(rows) if body else None, format="json")

    assert_problem(response, 403, "permission_denied")
    assert everything() == before


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_every_endpoint_needs_authentication(program, shop, method, url, body):
    rows = {**shop, "program": program.slug}
    before = everything()

    response = getattr(APIClient(), method)(url(rows), body(rows) if body else None, format="json")

    assert response.status_code in (401, 403)
    assert_problem(response, response.status_code, "not_authenticated")
    assert everything() == before


def test_view_permission_does_not_allow_writes(program, shop, rules_manager):
    viewer = StaffFactory(permissions=["view_earningrule", "view_tier"], programs=[program])
    client = staff_client(viewer)
    before = everything()

    assert client.get(RULES_URL).status_code == 200
    assert client.post(PREVIEW_URL, {"program": program.slug, "lines": LINES}, format="json").status_code == 200
    assert_problem(client.patch(rule_url(shop["base"].pk), {"rate": "9"}, format="json"), 403, "permission_denied")
    assert_problem(client.post(TIERS_URL, {"program": program.slug}, format="json"), 403, "permission_denied")
    assert everything() == before


def test_purchases_and_entries_untouched_by_reads(api, shop):
    before = (Purchase.objects.count(), Return.objects.count(), Entry.objects.count())

    for url in [PURCHASES_URL, RETURNS_URL, HISTORY_URL, f"{PURCHASES_URL}{shop['purchase'].pk}/"]:
        assert api.get(url).status_code == 200

    assert (Purchase.objects.count(), Return.objects.count(), Entry.objects.count()) == before


def test_a_preview_whose_lines_add_up_past_the_largest_purchase_is_refused(api, program, shop):
    lines = [{"sku": f"TV-{i}", "amount": "600000000000.00"} for i in range(2)]

    response = api.post(PREVIEW_URL, {"program": program.slug, "lines": lines}, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"] == {
        "lines": ["The lines add up to 1200000000000.00, more than a purchase may total (999999999999.99)."]
    }
