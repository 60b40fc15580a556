"""Admin of earning rules (with "Test this rule"), tiers, purchases, returns, tier history and tier pins."""

import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.models import (
    Account,
    Award,
    EarningRule,
    Entry,
    Lot,
    Purchase,
    PurchaseLine,
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
from tests.admin.utils import grant, messages_of, rule_form, shown, url
from tests.factories import MemberFactory, ProgramFactory, StaffFactory
from tests.loyalty.rules_shop import rules_shop, sale, simulated_points, version

PRAGUE = zoneinfo.ZoneInfo("Europe/Prague")
RULE_PERMISSIONS = [
    "view_earningrule",
    "add_earningrule",
    "change_earningrule",
    "view_tier",
    "add_tier",
    "change_tier",
    "delete_tier",
    "view_purchase",
    "view_return",
    "view_tierhistory",
    "change_account",
]
BASKET = "BK-1, books, 1, 600.00\nGC-1, gift-cards, 1, 500.00\nTO-1, toys, 2, 134.50"


def change_form_data(response):
    """What the browser posts back from a change page, unchanged (split date/time widgets included)."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, datetime):
            local = value.astimezone(form.instance.program.tz)  # shown in the program's time zone
            data[f"{name}_0"], data[f"{name}_1"] = f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
        elif isinstance(value, list):
            data[name] = [str(item) for item in value]
        elif value is not None:
            data[name] = value
    return data


def database():
    """Everything a preview could write."""
    return {
        "purchases": Purchase.objects.count(),
        "lines": PurchaseLine.objects.count(),
        "entries": list(Entry.objects.values_list("pk", "amount")),
        "lots": list(Lot.objects.values_list("pk", "remaining")),
        "awards": Award.objects.count(),
        "accounts": list(Account.objects.values_list("pk", "available", "pending", "purchases", "tier_id")),
        "rules": list(EarningRule.objects.values_list("pk", "budget_used", "is_active", "updated_at")),
        "history": TierHistory.objects.count(),
        "versions": list(Program.objects.values_list("pk", "config_version")),
    }


@pytest.fixture
def rules_manager(manager):
    return grant(manager, *RULE_PERMISSIONS)


@pytest.fixture
def manager_client(client, rules_manager):
    client.force_login(rules_manager)
    return client


@pytest.fixture
def shop(program, member, superuser):
    """Two tiers and two rules; a purchase of 133 points, a partial return and a manager's pin."""
    shop = rules_shop(program)
    shop["purchase"] = purchase_record(program=program, member=member, data=sale("TILL-1", store="PRAGUE-01")).purchase
    shop["return"] = builders.return_(program, "TILL-1", "RET-1", lines=[builders.return_line("TO-1", "134.50")]).record
    tier_pin(member=member, tier=shop["silver"], until=timezone.now() + timedelta(days=30), actor=superuser, note="VIP")
    shop["history"] = TierHistory.objects.get(member=member)
    shop["member"] = member
    return shop


@pytest.fixture
def foreign(other_program, superuser):
    """The same in a program the manager does not manage."""
    shop = rules_shop(other_program)
    member = MemberFactory(program=other_program)
    shop["purchase"] = purchase_record(program=other_program, member=member, data=sale("FOREIGN-1")).purchase
    shop["return"] = builders.return_(
        other_program, "FOREIGN-1", "FOREIGN-RET", lines=[builders.return_line("TO-1", "134.50")]
    ).record
    tier_pin(member=member, tier=shop["gold"], until=timezone.now() + timedelta(days=30), actor=superuser, note="x")
    shop["history"] = TierHistory.objects.get(member=member)
    shop["member"] = member
    return shop


# --- Every page opens -----------------------------------------------------------------------------


def test_superuser_opens_every_new_page(su_client, shop):
    pages = [
        ("loyalty_earningrule", shop["books"].pk, "Books double"),
        ("loyalty_tier", shop["gold"].pk, "Gold"),
        ("loyalty_purchase", shop["purchase"].pk, "TILL-1"),
        ("loyalty_return", shop["return"].pk, "RET-1"),
        ("loyalty_tierhistory", shop["history"].pk, "VIP"),
    ]
    for name, pk, text in pages:
        changelist = su_client.get(url(f"{name}_changelist"))
        change = su_client.get(url(f"{name}_change", pk))

        assert (name, changelist.status_code, change.status_code) == (name, 200, 200)
        assert pk in shown(changelist)
        assert text in change.content.decode(), name
    for name in ["loyalty_earningrule_add", "loyalty_tier_add"]:
        assert su_client.get(url(name)).status_code == 200
    preview = su_client.get(url("loyalty_earningrule_preview", shop["books"].pk))
    assert preview.status_code == 200
    assert "Compute the points" in preview.content.decode()


def test_rule_page_links_to_the_preview_and_explains_the_kinds(su_client, shop):
    response = su_client.get(url("loyalty_earningrule_change", shop["books"].pk))

    html = response.content.decode()
    assert url("loyalty_earningrule_preview", shop["books"].pk) in html
    assert "Test this rule" in html
    assert "multiplies the base-rate points" in html
    assert [name for name, _ in response.context["adminform"].fieldsets][:5] == [
        "What",
        "When it applies",
        "Conditions",
        "Points",
        "Limits",
    ]
    assert response.context["kind_fields"]["by_kind"]["multiplier"][0] == "multiplier"


def test_rule_list_shows_kind_window_and_budget(su_client, shop, program):
    EarningRule.objects.filter(pk=shop["books"].pk).update(
        budget_total=1000, budget_used=250, active_from=datetime(2026, 12, 1, tzinfo=PRAGUE)
    )

    response = su_client.get(url("loyalty_earningrule_changelist"), {"kind__exact": "multiplier"})

    assert shown(response) == [shop["books"].pk]
    html = response.content.decode()
    assert "250 / 1000" in html
    assert "from 2026-12-01 00:00" in html


@pytest.mark.parametrize(
    "name", ["loyalty_earningrule", "loyalty_tier", "loyalty_purchase", "loyalty_return", "loyalty_tierhistory"]
)
def test_new_changelists_make_the_same_number_of_queries_for_more_rows(manager_client, rules_manager, program, name):
    ProgramFactory().managers.add(rules_manager)  # two programs: the program filter and column are shown

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = manager_client.get(url(f"{name}_changelist"))
        assert response.status_code == 200
        return len(queries), len(response.context["cl"].result_list)

    def add_rows(n):
        for _ in range(n):
            member = MemberFactory(program=program)
            rank = Tier.objects.filter(program=program).count() + 1
            tier = builders.tier(program, f"T{rank}", rank=rank, threshold=rank)
            builders.rule(program, name="R", kind="bonus", points=1, tiers=[tier])
            purchase_record(program=program, member=member, data=sale(f"P-{member.pk}"))
            return_record(
                program=program,
                external_id=f"R-{member.pk}",
                purchase_external_id=f"P-{member.pk}",
                amount=Decimal(10),
            )
            tier_pin(member=member, tier=tier, until=timezone.now() + timedelta(days=1), actor=rules_manager)

    add_rows(1)
    few, few_rows = count_queries()
    add_rows(4)
    many, many_rows = count_queries()

    assert many_rows > few_rows
    assert many == few


# --- Scoping --------------------------------------------------------------------------------------


def test_manager_sees_only_their_programs_rows(manager_client, shop, foreign):
    expected = {
        "loyalty_earningrule": sorted([shop["base"].pk, shop["books"].pk]),
        "loyalty_tier": sorted([shop["silver"].pk, shop["gold"].pk]),
        "loyalty_purchase": [shop["purchase"].pk],
        "loyalty_return": [shop["return"].pk],
        "loyalty_tierhistory": [shop["history"].pk],
    }
    for name, pks in expected.items():
        response = manager_client.get(url(f"{name}_changelist"))
        assert shown(response) == pks, name
        assert foreign["member"].program.name not in response.content.decode()


def test_manager_cannot_open_another_programs_rows(manager_client, foreign):
    for name, key in [
        ("loyalty_earningrule", "books"),
        ("loyalty_tier", "gold"),
        ("loyalty_purchase", "purchase"),
        ("loyalty_return", "return"),
        ("loyalty_tierhistory", "history"),
    ]:
        response = manager_client.get(url(f"{name}_change", foreign[key].pk))
        assert response.status_code in (302, 404), name
        if response.status_code == 302:
            assert response.url == url("index")
    preview = manager_client.post(url("loyalty_earningrule_preview", foreign["books"].pk), {"lines": BASKET})
    assert preview.status_code == 404


def test_manager_cannot_find_another_programs_purchase_by_search(manager_client, shop, foreign):
    response = manager_client.get(url("loyalty_purchase_changelist"), {"q": "FOREIGN-1"})

    assert shown(response) == []


def test_rule_form_offers_only_the_managers_programs_and_tiers(manager_client, program, other_program, shop, foreign):
    form = manager_client.get(url("loyalty_earningrule_add")).context["adminform"].form

    assert list(form.fields["program"].queryset) == [program]
    assert set(form.fields["tiers"].queryset) == {shop["silver"], shop["gold"]}

    sneaky = manager_client.post(url("loyalty_earningrule_add"), rule_form(other_program, name="Sneaky"))
    foreign_tier = manager_client.post(url("loyalty_earningrule_add"), rule_form(program, tiers=[foreign["gold"].pk]))

    assert "program" in sneaky.context["adminform"].form.errors
    assert "tiers" in foreign_tier.context["adminform"].form.errors
    assert not EarningRule.objects.filter(name__in=["Sneaky", "Weekend bonus"]).exists()


def test_rule_page_offers_only_the_rules_own_programs_tiers(su_client, shop, foreign):
    form = su_client.get(url("loyalty_earningrule_change", shop["books"].pk)).context["adminform"].form

    assert set(form.fields["tiers"].queryset) == {shop["silver"], shop["gold"]}


# --- Saving rules through the service -------------------------------------------------------------


def test_adding_a_rule_saves_it_with_its_tiers_and_bumps_the_config_version(manager_client, program, shop):
    member = shop["member"]  # pinned to Silver
    before_version, before_points = version(program), simulated_points(program, member)

    response = manager_client.post(
        url("loyalty_earningrule_add"), rule_form(program, weekdays="1, 2, 3, 4, 5, 6, 7", tiers=[shop["silver"].pk])
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    rule = EarningRule.objects.get(program=program, name="Weekend bonus")
    assert (rule.kind, rule.points, rule.priority) == ("bonus", 50, 300)
    assert list(rule.tiers.all()) == [shop["silver"]]
    assert version(program) == before_version + 1  # one bump for the rule and its tiers
    assert simulated_points(program, member) == before_points + 50
    assert simulated_points(program, MemberFactory(program=program)) == 133  # no Silver, no bonus


def test_editing_a_rule_changes_the_points_of_the_next_purchase(manager_client, program, shop):
    member = MemberFactory(program=program)
    assert simulated_points(program, member) == 73 + 60
    page = manager_client.get(url("loyalty_earningrule_change", shop["base"].pk))
    before = version(program)

    response = manager_client.post(
        url("loyalty_earningrule_change", shop["base"].pk), {**change_form_data(page), "rate": "0.2", "_save": "1"}
    )

    assert response.status_code == 302
    assert EarningRule.objects.get(pk=shop["base"].pk).rate == Decimal("0.2")
    assert version(program) == before + 1
    # base 734.50 x 0.2 = 146; books: (2 - 1) x 600 x 0.2 = 120
    assert simulated_points(program, member) == 146 + 120
    result = purchase_record(program=program, member=member, data=sale("TILL-NEW"))
    assert result.points == 266


def test_ending_a_rule_in_the_past_stops_it(manager_client, program, shop):
    page = manager_client.get(url("loyalty_earningrule_change", shop["books"].pk))
    data = {
        **change_form_data(page),
        "active_until_0": "2020-01-31",
        "active_until_1": "00:00:00",
        "_save": "1",
    }

    manager_client.post(url("loyalty_earningrule_change", shop["books"].pk), data)

    assert EarningRule.objects.get(pk=shop["books"].pk).active_until is not None
    assert simulated_points(program, MemberFactory(program=program)) == 73  # the multiplier ended


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"kind": "base_rate", "rate": "0", "points": "0"}, {"rate"}),
        ({"kind": "multiplier", "multiplier": "1", "points": "0"}, {"multiplier"}),
        ({"kind": "bonus", "points": "0"}, {"points"}),
        ({"kind": "bonus", "event": "signup"}, {"event"}),
        ({"kind": "event", "event": ""}, {"event"}),
        ({"weekdays": "6, 8"}, {"weekdays"}),
        ({"channels": "pos, shop"}, {"channels"}),
        (
            {
                "active_from_0": "2026-05-01",
                "active_from_1": "00:00",
                "active_until_0": "2026-04-01",
                "active_until_1": "0:00",
            },
            {"active_until"},
        ),
    ],
)
def test_an_invalid_rule_shows_errors_on_its_fields_and_saves_nothing(manager_client, program, shop, fields, errors):
    before = version(program)

    response = manager_client.post(url("loyalty_earningrule_add"), rule_form(program, **fields))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == errors
    assert not EarningRule.objects.filter(name="Weekend bonus").exists()
    assert version(program) == before


def test_a_budget_below_what_the_rule_gave_is_a_field_error(manager_client, program, shop):
    books = shop["books"]
    books.budget_total = 1000
    earning_rule_save(rule=books)
    EarningRule.objects.filter(pk=books.pk).update(budget_used=400)  # as purchases spend it
    page = manager_client.get(url("loyalty_earningrule_change", shop["books"].pk))
    before = version(program)

    response = manager_client.post(
        url("loyalty_earningrule_change", shop["books"].pk),
        {**change_form_data(page), "budget_total": "300", "_save": "1"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["budget_total"] == ["The rule has given 400 points already."]
    assert EarningRule.objects.get(pk=shop["books"].pk).budget_total == 1000
    assert version(program) == before


def test_rules_cannot_be_deleted(su_client, shop):
    assert su_client.post(url("loyalty_earningrule_delete", shop["books"].pk), {"post": "yes"}).status_code == 403
    listing = su_client.get(url("loyalty_earningrule_changelist"))
    assert "delete_selected" not in [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert EarningRule.objects.filter(pk=shop["books"].pk).exists()


def test_deactivate_asks_then_switches_the_rule_off(manager_client, program, shop):
    member = MemberFactory(program=program)
    data = {"action": "deactivate", "_selected_action": [shop["books"].pk]}

    ask = manager_client.post(url("loyalty_earningrule_changelist"), data)
    still_active = EarningRule.objects.get(pk=shop["books"].pk).is_active
    before = version(program)
    done = manager_client.post(url("loyalty_earningrule_changelist"), {**data, "post": "yes"})

    assert ask.status_code == 200 and "stop giving points" in ask.content.decode()
    assert still_active
    assert done.status_code == 302
    assert not EarningRule.objects.get(pk=shop["books"].pk).is_active
    assert version(program) == before + 1
    assert messages_of(done) == ["Deactivated Books double."]
    assert simulated_points(program, member) == 73


def test_deactivate_needs_the_change_permission(client, manager, program, shop):
    client.force_login(grant(manager, "view_earningrule"))

    client.post(
        url("loyalty_earningrule_changelist"),
        {"action": "deactivate", "_selected_action": [shop["books"].pk], "post": "yes"},
    )

    assert EarningRule.objects.get(pk=shop["books"].pk).is_active


# --- Test this rule -------------------------------------------------------------------------------


def preview(client, rule, **fields):
    data = {"lines": BASKET, "channel": "pos", "store": "", "occurred_at": "2026-03-04T10:15", "member": "", **fields}
    return client.post(url("loyalty_earningrule_preview", rule.pk), data)


def test_preview_shows_the_points_of_every_rule_and_writes_nothing(manager_client, shop):
    before = database()

    response = preview(manager_client, shop["books"])

    assert response.status_code == 200
    result = response.context["preview"]
    # base: (600 + 134.50) x 0.1 = 73 (gift cards excluded); books: (2 - 1) x 600 x 0.1 = 60
    assert [(row.name, row.points) for row in result.rules] == [("Base rate", 73), ("Books double", 60)]
    assert (result.points, result.total, result.eligible_amount) == (133, Decimal("1234.50"), Decimal("734.50"))
    html = response.content.decode()
    assert '<tr class="tested">' in html and "(this rule)" in html
    assert "Points for this basket: 133" in html
    assert database() == before


def test_preview_for_a_member_applies_their_tier(manager_client, program, shop):
    gold = MemberFactory(program=program, card="400000009999")
    tier_pin(member=gold, tier=shop["gold"], until=timezone.now() + timedelta(days=5), actor=None)
    before = database()

    response = preview(manager_client, shop["base"], member="4000-0000-9999")

    result = response.context["preview"]
    assert [(award.rule, award.points) for award in result.awards] == [
        ("Base rate", 73),
        ("Books double", 60),
        ("Gold tier x1.5", 66),
    ]
    assert result.points == 199
    assert "Gold tier x1.5" in response.content.decode()
    assert database() == before


def test_preview_holds_rules_to_their_live_budget(manager_client, program, shop):
    books = shop["books"]
    books.budget_total = 100
    earning_rule_save(rule=books)
    EarningRule.objects.filter(pk=books.pk).update(budget_used=90)  # as purchases spend it

    response = preview(manager_client, books)

    assert [(row.name, row.points) for row in response.context["preview"].rules] == [
        ("Base rate", 73),
        ("Books double", 10),
    ]


def test_preview_of_a_switched_off_rule_includes_it(manager_client, program, shop):
    earning_rule_deactivate(rule=shop["books"])
    bonus = builders.rule(program, name="Store bonus", kind="bonus", points=25, stores="BRNO-1", is_active=False)

    elsewhere = preview(manager_client, bonus, store="PRAGUE-01").context["preview"]
    in_brno = preview(manager_client, bonus, store="BRNO-1").context["preview"]

    assert [(row.name, row.points, row.is_active) for row in in_brno.rules] == [
        ("Base rate", 73, True),
        ("Store bonus", 25, False),
    ]
    assert [(row.name, row.points) for row in elsewhere.rules] == [("Base rate", 73), ("Store bonus", 0)]
    assert in_brno.notes == ("“Store bonus” is switched off: it is included here as if it were active.",)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"lines": "BK-1, books, 600.00"}, "lines", "Row 1: give SKU, category, quantity and amount"),
        ({"lines": "BK-1, books, two, 600"}, "lines", "Row 1: the quantity and the amount must be numbers."),
        ({"lines": "TO-1, toys, 1, 10\n\nBK-1, books, 0, 600"}, "lines", "Row 3: the quantity must be above 0"),
        ({"lines": "BK-1, books, 1, 6.001"}, "lines", "Row 1: the amount has at most two decimals."),
        ({"member": "no-such-card"}, "member", "No member of this program matches."),
        ({"occurred_at": "tomorrow"}, "occurred_at", "Enter a valid date/time."),
    ],
)
def test_preview_reports_bad_input_on_its_fields(manager_client, shop, fields, field, message):
    response = preview(manager_client, shop["base"], **fields)

    assert response.status_code == 200
    assert response.context["preview"] is None
    assert any(error.startswith(message) for error in response.context["form"].errors[field])


def test_preview_does_not_find_another_programs_member(manager_client, shop, foreign):
    response = preview(manager_client, shop["base"], member=format_card(foreign["member"].card))

    assert "member" in response.context["form"].errors


# --- Tiers ----------------------------------------------------------------------------------------


def test_adding_a_tier_saves_through_the_service(manager_client, program, shop):
    before = version(program)
    data = {"program": program.pk, "name": "Platinum", "rank": "3", "threshold": "20000", "earn_multiplier": "2"}

    response = manager_client.post(url("loyalty_tier_add"), {**data, "benefits": "Lounge", "_save": "1"})

    assert response.status_code == 302
    tier = Tier.objects.get(program=program, name="Platinum")
    assert (tier.rank, tier.threshold, tier.earn_multiplier) == (3, Decimal(20000), Decimal(2))
    assert version(program) == before + 1


def test_a_tier_with_a_taken_rank_or_name_shows_field_errors(manager_client, program, shop):
    page = manager_client.get(url("loyalty_tier_change", shop["gold"].pk))
    data = {field: page.context["adminform"].form[field].value() for field in ["name", "threshold", "earn_multiplier"]}
    before = version(program)

    taken_rank = manager_client.post(url("loyalty_tier_change", shop["gold"].pk), {**data, "rank": "1", "_save": "1"})
    taken_name = manager_client.post(
        url("loyalty_tier_add"),
        {"program": program.pk, "name": "Gold", "rank": "7", "threshold": "1", "earn_multiplier": "1", "_save": "1"},
    )

    assert taken_rank.context["adminform"].form.errors["rank"] == [f"Another tier of {program} has this rank."]
    assert taken_name.context["adminform"].form.errors["name"] == [f"Another tier of {program} has this name."]
    assert Tier.objects.get(pk=shop["gold"].pk).rank == 2
    assert version(program) == before


def test_tier_list_counts_members_and_offers_no_bulk_delete(manager_client, shop):
    response = manager_client.get(url("loyalty_tier_changelist"))

    counts = {tier.name: tier.member_count for tier in response.context["cl"].result_list}
    assert counts == {"Silver": 1, "Gold": 0}
    assert response.context["action_form"] is None  # no bulk delete, which would skip the in-use check


def test_a_tier_members_hold_cannot_be_deleted(manager_client, shop):
    response = manager_client.post(url("loyalty_tier_delete", shop["silver"].pk), {"post": "yes"})

    assert response.status_code == 302
    assert response.url == url("loyalty_tier_change", shop["silver"].pk)
    assert messages_of(response) == [
        "“Silver” cannot be deleted: it is held by 1 member. A tier can be deleted only when nobody holds it."
    ]
    assert Tier.objects.filter(pk=shop["silver"].pk).exists()


def test_a_tier_rules_are_limited_to_cannot_be_deleted(manager_client, program, shop):
    builders.rule(program, name="Gold bonus", kind="bonus", points=5, tiers=[shop["gold"]])

    response = manager_client.post(url("loyalty_tier_delete", shop["gold"].pk), {"post": "yes"})

    assert messages_of(response) == [
        "“Gold” cannot be deleted: it limits 1 earning rule, which would apply to every member without it."
    ]
    assert Tier.objects.filter(pk=shop["gold"].pk).exists()


def test_an_unused_tier_is_deleted_and_the_rules_recompiled(manager_client, program, shop):
    unused = builders.tier(program, "Bronze", rank=0, threshold=0)
    before = version(program)

    ask = manager_client.get(url("loyalty_tier_delete", unused.pk))
    done = manager_client.post(url("loyalty_tier_delete", unused.pk), {"post": "yes"})

    assert ask.status_code == 200
    assert done.status_code == 302
    assert not Tier.objects.filter(pk=unused.pk).exists()
    assert version(program) == before + 1


# --- Purchases, returns and tier history are read-only --------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "post"),
    [
        ("loyalty_purchase", "purchase", {"total": "1"}),
        ("loyalty_return", "return", {"amount": "1"}),
        ("loyalty_tierhistory", "history", {"note": "edited"}),
    ],
)
def test_read_only_admins_refuse_add_change_and_delete(su_client, shop, name, key, post):
    obj = shop[key]
    before = database()

    add = su_client.post(url(f"{name}_add"), post)
    change = su_client.post(url(f"{name}_change", obj.pk), post)
    delete = su_client.post(url(f"{name}_delete", obj.pk), {"post": "yes"})
    listing = su_client.get(url(f"{name}_changelist"))

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert listing.context["action_form"] is None
    assert database() == before
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_purchase_page_shows_lines_returns_and_awards(manager_client, shop):
    response = manager_client.get(url("loyalty_purchase_change", shop["purchase"].pk))

    lines, returns = response.context["inline_admin_formsets"]
    assert [form.original.sku for form in lines] == ["BK-1", "GC-1", "TO-1"]
    assert [form.original.external_id for form in returns] == ["RET-1"]
    html = response.content.decode()
    rule_url = url("loyalty_earningrule_change", shop["books"].pk)
    assert f'<a href="{rule_url}">Books double</a></td><td>60</td>' in html
    assert "<strong>133</strong>" in html


@pytest.mark.parametrize(
    "params",
    [
        {"q": "TILL-1"},
        {"channel__exact": "pos"},
        {"store": "PRAGUE-01"},
        {"occurred_at__gte": (timezone.now() - timedelta(days=1)).isoformat()},
    ],
)
def test_purchase_search_and_filters(manager_client, program, shop, params):
    earlier = timezone.now() - timedelta(days=10)
    other = purchase_record(
        program=program,
        member=MemberFactory(program=program),
        data=sale("ESHOP-9", channel="eshop", store="WEB", occurred_at=earlier),
    ).purchase

    response = manager_client.get(url("loyalty_purchase_changelist"), params)

    assert shown(response) == [shop["purchase"].pk]
    assert shown(manager_client.get(url("loyalty_purchase_changelist"), {"q": "ESHOP-9"})) == [other.pk]


def test_purchases_returns_and_history_are_found_by_the_members_card(manager_client, shop):
    card = format_card(shop["member"].card)

    for name, key in [
        ("loyalty_purchase", "purchase"),
        ("loyalty_return", "return"),
        ("loyalty_tierhistory", "history"),
    ]:
        assert shown(manager_client.get(url(f"{name}_changelist"), {"q": card})) == [shop[key].pk], name
    assert shown(manager_client.get(url("loyalty_return_changelist"), {"q": "TILL-1"})) == [shop["return"].pk]
    assert shown(manager_client.get(url("loyalty_tierhistory_changelist"), {"reason__exact": "pin"})) == [
        shop["history"].pk
    ]


# --- Pinning a tier and the member page -----------------------------------------------------------


def pin(client, member, **form):
    data = {"action": "pin_tier", "_selected_action": [member.pk], "post": "yes", **form}
    return client.post(url("members_member_changelist"), data)


def test_pin_tier_first_asks_for_the_tier_the_day_and_a_note(manager_client, program, shop, foreign):
    member = MemberFactory(program=program)

    response = manager_client.post(
        url("members_member_changelist"), {"action": "pin_tier", "_selected_action": [member.pk]}
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.fields) == {"tier", "until", "note"}
    assert list(form.fields["tier"].queryset) == [shop["silver"], shop["gold"]]
    assert f"{member}: no tier" in response.content.decode()
    assert not TierHistory.objects.filter(member=member).exists()


def test_pin_tier_sets_the_tier_until_the_end_of_the_day_with_history(manager_client, rules_manager, program, shop):
    member = MemberFactory(program=program)

    response = pin(
        manager_client, member, tier=shop["gold"].pk, until="2099-12-31", note="Status match", _from_object="1"
    )

    assert response.status_code == 302
    assert response.url == url("members_member_change", member.pk)
    account = Account.objects.get(pk=member.pk)
    assert account.tier == shop["gold"]
    assert account.tier_pinned_until == datetime(2100, 1, 1, tzinfo=PRAGUE)
    history = TierHistory.objects.get(member=member)
    assert (history.from_tier, history.to_tier, history.reason) == (None, shop["gold"], TierChangeReason.PIN)
    assert (history.actor, history.note) == (rules_manager, "Status match")
    assert messages_of(response) == [f"Pinned {member} to Gold until 2099-12-31."]
    assert simulated_points(program, member) == 133 + 66  # Gold's x1.5 applies at once


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"until": "2000-01-01", "note": "Late"}, "until"),
        ({"until": "2099-01-01", "note": "   "}, "note"),
        ({"until": "2099-01-01", "note": "x", "tier": "0"}, "tier"),
    ],
)
def test_pin_tier_with_bad_answers_asks_again_and_writes_nothing(manager_client, program, shop, form, field):
    member = MemberFactory(program=program)

    response = pin(manager_client, member, **{"tier": shop["gold"].pk, **form})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not TierHistory.objects.filter(member=member).exists()
    assert not Account.objects.filter(pk=member.pk, tier__isnull=False).exists()


def test_pin_tier_refuses_another_programs_tier(manager_client, program, shop, foreign):
    member = MemberFactory(program=program)

    response = pin(manager_client, member, tier=foreign["gold"].pk, until="2099-01-01", note="x")

    assert "tier" in response.context["form"].errors
    assert not TierHistory.objects.filter(member=member).exists()


def test_pin_tier_needs_the_change_account_permission(client, manager, program, shop):
    clerk = grant(manager, "view_tier")
    client.force_login(clerk)
    member = MemberFactory(program=program)

    listing = client.get(url("members_member_changelist"))
    page = client.get(url("members_member_change", member.pk))
    pin(client, member, tier=shop["gold"].pk, until="2099-01-01", note="Please")

    assert "pin_tier" not in [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert 'value="pin_tier"' not in page.content.decode()
    assert not TierHistory.objects.filter(member=member).exists()


def test_pin_tier_refuses_members_of_several_programs(su_client, shop, foreign):
    data = {"action": "pin_tier", "_selected_action": [shop["member"].pk, foreign["member"].pk]}

    response = su_client.post(url("members_member_changelist"), data)

    assert response.status_code == 302
    assert messages_of(response) == ["Pin members of one program at a time: tiers belong to a program."]


def test_member_page_shows_the_tier_review_date_pin_and_history(manager_client, shop):
    member = shop["member"]
    account = Account.objects.get(pk=member.pk)

    response = manager_client.get(url("members_member_change", member.pk))

    html = response.content.decode()
    assert '<td class="tier-current">Silver</td>' in html
    # ISO dates: Django's US default (12/07/2026) reads as the 12th of July in Europe. The admin shows a
    # program's times in its time zone: late in the UTC evening the review date is already tomorrow there.
    review = account.tier_review_at.astimezone(member.program.tz)
    assert f'<td class="tier-review">{review:%Y-%m-%d}</td>' in html
    assert '<td class="tier-pinned">ended' not in html
    assert [change.pk for change in response.context["tier_history"]] == [shop["history"].pk]
    assert "VIP" in html
    assert 'value="pin_tier"' in html
    assert f"{url('loyalty_tierhistory_changelist')}?member__id__exact={member.pk}" in html


def test_manager_cannot_pin_another_programs_member(manager_client, foreign):
    member = foreign["member"]
    before = Account.objects.get(pk=member.pk).tier_id

    pin(manager_client, member, tier=foreign["silver"].pk, until="2099-01-01", note="Not mine")

    assert Account.objects.get(pk=member.pk).tier_id == before
    assert TierHistory.objects.filter(member=member).count() == 1


def test_staff_without_rule_permissions_sees_nothing(client, program, shop):
    clerk = StaffFactory(programs=[program])
    client.force_login(clerk)

    for name in ["loyalty_earningrule", "loyalty_tier", "loyalty_purchase", "loyalty_return", "loyalty_tierhistory"]:
        assert client.get(url(f"{name}_changelist")).status_code == 403, name
    assert client.get(url("loyalty_earningrule_preview", shop["base"].pk)).status_code == 403
