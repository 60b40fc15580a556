import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty.admin import LEDGER_ENTRIES_ON_MEMBER_PAGE
from loyalty.models import Account, Allocation, Entry, EntryKind, Lot
from loyalty.services.ledger import ledger_credit, ledger_debit
from members.identifiers import format_card
from members.models import ApiKey, Member, MemberStatus, Program
from members.services.api_keys import api_key_authenticate
from tests.admin.utils import grant, messages_of, shown, url
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory, StaffFactory

TOKEN = "0123456789abcdef0123456789abcdef"
PLAIN_KEY = re.compile(r"lk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def available(member):
    return Account.objects.get(pk=member.pk).available


def change_form_data(response):
    """What the browser would post back from a change page, unchanged."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return data


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def ledger(member):
    """A credit of 100 and a debit of 30 that consumed part of its lot."""
    credit = ledger_credit(member=member, amount=100, reason="Welcome")
    debit = ledger_debit(member=member, amount=30)
    return credit, debit


@pytest.fixture
def foreign(other_program):
    """A member with points and an API key in a program the manager does not manage."""
    member = MemberFactory(program=other_program, first_name="Foreign")
    entry = ledger_credit(member=member, amount=40)
    api_key = ApiKeyFactory(program=other_program, name="Foreign till")
    return member, entry, api_key


def adjust(client, member, **form):
    data = {"action": "adjust_points", "_selected_action": [member.pk], "post": "yes", "token": TOKEN, **form}
    return client.post(url("members_member_changelist"), data)


# --- Every page opens ------------------------------------------------------------------


def test_superuser_opens_every_changelist_and_change_page(su_client, member, ledger):
    credit, debit = ledger
    api_key = ApiKeyFactory(program=member.program, name="Till 9", store="PRAGUE-01")
    pages = [
        ("members_program", member.program.pk, member.program.name),
        ("members_member", member.pk, format_card(member.card)),
        ("members_apikey", api_key.pk, "Till 9"),
        ("loyalty_entry", debit.pk, f"lot #{credit.lot.pk}".lower()),
        ("loyalty_lot", credit.lot.pk, str(debit)),
    ]
    for name, pk, text in pages:
        changelist = su_client.get(url(f"{name}_changelist"))
        change = su_client.get(url(f"{name}_change", pk))

        assert (name, changelist.status_code, change.status_code) == (name, 200, 200)
        assert pk in shown(changelist)
        assert text.lower() in change.content.decode().lower(), name
    for name in ["members_program", "members_member", "members_apikey"]:
        assert su_client.get(url(f"{name}_add")).status_code == 200


def test_member_list_shows_formatted_card_and_balances_from_the_account(su_client, member, ledger):
    response = su_client.get(url("members_member_changelist"))

    html = response.content.decode()
    assert format_card(member.card) in html
    assert '<td class="field-available">70</td>' in html
    assert '<td class="field-pending">0</td>' in html
    assert '<td class="field-debt">0</td>' in html


def managed_program_with_a_member(program, manager):
    other = ProgramFactory()
    other.managers.add(manager)
    MemberFactory(program=other)


@pytest.mark.parametrize(
    ("name", "make_row"),
    [
        ("members_member", lambda program, manager: ledger_credit(member=MemberFactory(program=program), amount=5)),
        ("members_apikey", lambda program, manager: ApiKeyFactory(program=program, name="Till", created_by=manager)),
        ("members_program", managed_program_with_a_member),
        ("loyalty_entry", lambda program, manager: ledger_credit(member=MemberFactory(program=program), amount=5)),
        ("loyalty_lot", lambda program, manager: ledger_credit(member=MemberFactory(program=program), amount=5)),
    ],
)
def test_changelists_make_the_same_number_of_queries_for_more_rows(client, manager, program, name, make_row):
    client.force_login(manager)
    ProgramFactory().managers.add(manager)  # two programs: the program filter is shown too

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(f"{name}_changelist"))
        assert response.status_code == 200
        return len(queries), len(response.context["cl"].result_list)

    make_row(program, manager)
    few, few_rows = count_queries()
    for _ in range(5):
        make_row(program, manager)
    many, many_rows = count_queries()

    assert many_rows > few_rows
    assert many == few


# --- Manager scoping --------------------------------------------------------------------


def test_manager_sees_only_their_programs_rows(manager_client, manager, member, ledger, foreign):
    foreign_member, foreign_entry, foreign_key = foreign
    own_key = ApiKeyFactory(program=member.program, name="Own till")

    members = manager_client.get(url("members_member_changelist"))
    entries = manager_client.get(url("loyalty_entry_changelist"))
    keys = manager_client.get(url("members_apikey_changelist"))
    programs = manager_client.get(url("members_program_changelist"))

    assert shown(members) == [member.pk]
    assert shown(entries) == sorted(entry.pk for entry in ledger)
    assert shown(keys) == [own_key.pk]
    assert shown(programs) == [member.program.pk]
    for response in (members, entries, keys, programs):
        assert foreign_member.program.name not in response.content.decode()
    assert "program" not in members.context["cl"].list_display  # one program: no column repeating it


def test_manager_cannot_open_another_programs_rows(manager_client, foreign):
    foreign_member, foreign_entry, foreign_key = foreign

    for name, pk in [
        ("members_member", foreign_member.pk),
        ("loyalty_entry", foreign_entry.pk),
        ("members_apikey", foreign_key.pk),
        ("members_program", foreign_member.program.pk),
    ]:
        response = manager_client.get(url(f"{name}_change", pk))
        assert response.status_code in (302, 404), name
        if response.status_code == 302:
            assert response.url == url("index")


def test_manager_cannot_find_another_programs_member_by_search(manager_client, member, foreign):
    foreign_member, _, _ = foreign

    response = manager_client.get(url("members_member_changelist"), {"q": foreign_member.card})

    assert shown(response) == []


def test_manager_program_choices_are_limited_to_their_programs(client, manager, program, other_program):
    client.force_login(grant(manager, "add_member", "add_apikey"))

    for name in ["members_member_add", "members_apikey_add"]:
        form = client.get(url(name)).context["adminform"].form
        assert list(form.fields["program"].queryset) == [program]

    response = client.post(url("members_apikey_add"), {"program": other_program.pk, "name": "Sneaky", "_save": "1"})

    assert response.status_code == 200
    assert "program" in response.context["adminform"].form.errors
    assert not ApiKey.objects.filter(program=other_program).exists()


def test_manager_cannot_act_on_another_programs_member(manager_client, member, foreign):
    foreign_member, _, _ = foreign

    adjust(manager_client, foreign_member, points=500, reason="Not mine")

    assert available(foreign_member) == 40
    assert Entry.objects.filter(member=foreign_member).count() == 1


# --- Member search and editing -------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "4000-0000-0777",
        "4000 0000 0777",
        "400000000777",
        "Eliška",
        "novotná",
        "ELISKA@example.com",
        "SHOP-42",
        "+420 777 123 456",
    ],
)
def test_member_search_finds_by_card_name_email_phone_and_external_id(su_client, program, query):
    wanted = MemberFactory(
        program=program,
        card="400000000777",
        first_name="Eliška",
        last_name="Novotná",
        email="eliska@example.com",
        external_id="SHOP-42",
        phone="+420777123456",
    )
    MemberFactory(program=program, card="400000000778")

    response = su_client.get(url("members_member_changelist"), {"q": query})

    assert shown(response) == [wanted.pk]


def test_member_search_by_id(su_client, member):
    # No digits in the other searchable fields, so only the id can match.
    digitless = {"external_id": None, "phone": None, "first_name": "Jana", "last_name": "Novak"}
    Member.objects.filter(pk=member.pk).update(card="CARDAAAA", email="a@example.com", **digitless)
    other = MemberFactory(program=member.program, card="CARDBBBB", email="b@example.com", **digitless)

    response = su_client.get(url("members_member_changelist"), {"q": str(other.pk)})

    assert shown(response) == [other.pk]


def test_member_change_form_normalises_through_the_service(manager_client, member):
    page = manager_client.get(url("members_member_change", member.pk))
    data = change_form_data(page)
    data.update(email="  New.Address@Example.COM ", card="abcd-1234-efgh", phone="+420 601 000 111", _save="1")

    response = manager_client.post(url("members_member_change", member.pk), data)

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.email, member.card, member.phone) == ("new.address@example.com", "ABCD1234EFGH", "+420601000111")


def test_member_change_form_refuses_another_members_email(manager_client, member):
    other = MemberFactory(program=member.program, email="taken@example.com")
    page = manager_client.get(url("members_member_change", member.pk))
    data = {**change_form_data(page), "email": "TAKEN@example.com", "_save": "1"}
    before = member.email

    response = manager_client.post(url("members_member_change", member.pk), data)

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.email == before != other.email


def test_superuser_enrolls_a_member_with_an_account(su_client, program):
    data = {"program": program.pk, "card": "", "first_name": "Petr", "last_name": "Dvořák", "email": "P@Example.com"}

    response = su_client.post(url("members_member_add"), {**data, "_save": "1"})

    assert response.status_code == 302
    member = Member.objects.get(program=program, email="p@example.com")
    assert (member.first_name, member.status, len(member.card)) == ("Petr", MemberStatus.ACTIVE, 12)
    assert Account.objects.get(pk=member.pk).available == 0


def test_member_page_shows_balances_and_latest_entries_with_allocations(manager_client, member, ledger):
    credit, debit = ledger
    lot = credit.lot

    response = manager_client.get(url("members_member_change", member.pk))

    html = response.content.decode()
    assert '<td class="balance-available">70</td>' in html
    assert f"30 from lot #{lot.pk}" in html
    assert f"Lot #{lot.pk}: 70 of 100 left" in html
    assert [entry.pk for entry in response.context["ledger_entries"]] == [debit.pk, credit.pk]
    assert 'value="adjust_points"' in html  # the manager may adjust points


def test_member_page_lists_only_the_latest_entries(manager_client, member):
    entries = [ledger_credit(member=member, amount=1) for _ in range(LEDGER_ENTRIES_ON_MEMBER_PAGE + 3)]

    response = manager_client.get(url("members_member_change", member.pk))

    newest_first = [entry.pk for entry in reversed(entries)][:LEDGER_ENTRIES_ON_MEMBER_PAGE]
    assert [entry.pk for entry in response.context["ledger_entries"]] == newest_first


# --- Adjust points ----------------------------------------------------------------------------


def test_adjust_points_action_first_asks_for_the_adjustment(manager_client, member):
    response = manager_client.post(
        url("members_member_changelist"), {"action": "adjust_points", "_selected_action": [member.pk]}
    )

    assert response.status_code == 200
    assert set(response.context["form"].fields) == {"points", "reason", "allow_debt", "token"}
    assert f"{member}: 0 available" in response.content.decode()
    assert not Entry.objects.filter(member=member).exists()


def test_adjust_points_posts_an_entry_with_actor_and_reason(manager_client, manager, member, ledger):
    response = adjust(manager_client, member, points=250, reason="Goodwill for complaint 42")

    assert response.status_code == 302
    entry = Entry.objects.get(member=member, kind=EntryKind.ADJUST)
    assert (entry.amount, entry.actor, entry.reason) == (250, manager, "Goodwill for complaint 42")
    assert available(member) == 70 + 250
    assert messages_of(response) == [f"Added 250 points to {member}."]


def test_adjust_points_removal_consumes_lots(manager_client, member, ledger):
    credit, _ = ledger

    adjust(manager_client, member, points=-20, reason="Duplicate purchase")

    entry = Entry.objects.get(member=member, kind=EntryKind.ADJUST)
    assert entry.amount == -20
    assert list(Allocation.objects.filter(entry=entry).values_list("lot_id", "amount")) == [(credit.lot.pk, 20)]
    assert available(member) == 50


def test_adjust_points_without_reason_shows_the_form_again_and_writes_nothing(manager_client, member, ledger):
    entries_before = Entry.objects.count()

    response = adjust(manager_client, member, points=100, reason="   ")

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert Entry.objects.count() == entries_before
    assert available(member) == 70


@pytest.mark.parametrize("points", ["0", "abc", ""])
def test_adjust_points_refuses_a_zero_or_missing_number(manager_client, member, ledger, points):
    response = adjust(manager_client, member, points=points, reason="Typo")

    assert response.status_code == 200
    assert "points" in response.context["form"].errors
    assert available(member) == 70


def test_adjust_points_too_large_removal_is_an_error_message_and_writes_nothing(manager_client, member, ledger):
    entries_before = Entry.objects.count()

    response = adjust(manager_client, member, points=-1000, reason="Fraud")

    assert response.status_code == 302
    [message] = messages_of(response)
    assert "1000 points requested, 70 available" in message
    assert Entry.objects.count() == entries_before
    assert Account.objects.filter(pk=member.pk).values_list("available", "debt").get() == (70, 0)


def test_adjust_points_removal_with_allow_debt_records_debt(manager_client, member, ledger):
    adjust(manager_client, member, points=-100, reason="Returned goods", allow_debt="on")

    assert Account.objects.filter(pk=member.pk).values_list("available", "debt").get() == (0, 30)


def test_adjust_points_form_submitted_twice_posts_once(manager_client, member, ledger):
    first = adjust(manager_client, member, points=10, reason="Birthday")
    assert messages_of(first) == [f"Added 10 points to {member}."]
    second = adjust(manager_client, member, points=10, reason="Birthday")

    assert Entry.objects.filter(member=member, kind=EntryKind.ADJUST).count() == 1
    assert available(member) == 80
    assert messages_of(second) == [f"{member}: this adjustment was already posted."]


def test_adjust_points_on_several_members_reports_each_failure(manager_client, member, ledger):
    poor = MemberFactory(program=member.program)

    response = manager_client.post(
        url("members_member_changelist"),
        {
            "action": "adjust_points",
            "_selected_action": [member.pk, poor.pk],
            "post": "yes",
            "token": TOKEN,
            "points": "-10",
            "reason": "Correction",
        },
    )

    assert available(member) == 60
    assert not Entry.objects.filter(member=poor).exists()
    assert messages_of(response) == [
        f"{poor}: nothing changed. 10 points requested, 0 available. "
        "Tick “Allow debt” to record the shortfall as debt.",
        f"Removed 10 points from {member}.",
    ]


def test_adjust_points_from_the_member_page_returns_to_it(manager_client, member, ledger):
    response = adjust(manager_client, member, points=5, reason="Visit", _from_object="1")

    assert response.url == url("members_member_change", member.pk)
    assert available(member) == 75


def test_adjust_points_needs_the_permission(client, member, ledger):
    clerk = StaffFactory(permissions=["view_member", "change_member"], programs=[member.program])
    client.force_login(clerk)

    listing = client.get(url("members_member_changelist"))
    page = client.get(url("members_member_change", member.pk))
    adjust(client, member, points=1000, reason="Please")

    assert "adjust_points" not in [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert 'value="adjust_points"' not in page.content.decode()
    assert not Entry.objects.filter(member=member, kind=EntryKind.ADJUST).exists()
    assert available(member) == 70


# --- Member status and erasure ----------------------------------------------------------------


def test_suspend_asks_for_confirmation_then_suspends(manager_client, member):
    ask = manager_client.post(url("members_member_changelist"), {"action": "suspend", "_selected_action": [member.pk]})
    member.refresh_from_db()
    status_after_asking = member.status

    done = manager_client.post(
        url("members_member_changelist"), {"action": "suspend", "_selected_action": [member.pk], "post": "yes"}
    )

    assert ask.status_code == 200 and "can neither earn nor spend" in ask.content.decode()
    assert status_after_asking == MemberStatus.ACTIVE
    assert done.status_code == 302
    member.refresh_from_db()
    assert member.status == MemberStatus.SUSPENDED
    assert messages_of(done) == [f"Suspended {member}."]


def test_suspend_several_members_at_once(manager_client, member):
    other = MemberFactory(program=member.program)
    data = {"action": "suspend", "_selected_action": [member.pk, other.pk], "post": "yes"}

    response = manager_client.post(url("members_member_changelist"), data)

    assert messages_of(response) == ["Suspended 2 members."]
    assert set(Member.objects.values_list("status", flat=True)) == {MemberStatus.SUSPENDED}


def test_reactivate_and_close(manager_client, member):
    def run(action):
        data = {"action": action, "_selected_action": [member.pk], "post": "yes"}
        return manager_client.post(url("members_member_changelist"), data)

    assert messages_of(run("suspend")) == [f"Suspended {member}."]
    assert messages_of(run("reactivate")) == [f"Reactivated {member}."]
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    assert messages_of(run("close")) == [f"Closed {member}."]
    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED

    refused = run("reactivate")

    member.refresh_from_db()
    assert member.status == MemberStatus.CLOSED
    assert messages_of(refused) == [f"{member}: A closed member cannot become active."]


def test_erase_anonymises_the_member_and_keeps_the_ledger(su_client, member, ledger):
    data = {"action": "erase", "_selected_action": [member.pk], "post": "yes"}

    su_client.post(url("members_member_changelist"), data)

    member.refresh_from_db()
    assert (member.email, member.first_name, member.external_id) == (None, "", None)
    assert member.status == MemberStatus.CLOSED and member.erased_at is not None
    assert sorted(Entry.objects.filter(member=member).values_list("amount", flat=True)) == [-30, 100]
    assert available(member) == 70


def test_erase_needs_the_delete_member_permission(manager_client, member):
    email = member.email

    manager_client.post(
        url("members_member_changelist"), {"action": "erase", "_selected_action": [member.pk], "post": "yes"}
    )
    listing = manager_client.get(url("members_member_changelist"))

    member.refresh_from_db()
    assert (member.email, member.erased_at) == (email, None)
    assert "erase" not in [name for name, _ in listing.context["action_form"].fields["action"].choices]


def test_members_cannot_be_deleted(su_client, member):
    assert su_client.get(url("members_member_delete", member.pk)).status_code == 403
    assert Member.objects.filter(pk=member.pk).exists()


# --- API keys ------------------------------------------------------------------------------------


def test_creating_an_api_key_shows_the_plain_key_once(su_client, superuser, program):
    response = su_client.post(
        url("members_apikey_add"), {"program": program.pk, "name": "Till 3", "store": "BRNO-02", "_save": "1"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    [plain] = set(PLAIN_KEY.findall(html))
    assert "Copy the key now" in html
    api_key = ApiKey.objects.get(program=program, name="Till 3")
    assert (api_key.store, api_key.created_by) == ("BRNO-02", superuser)
    assert api_key.key_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain.startswith(f"lk_{api_key.prefix}_")
    assert api_key_authenticate(plain) == api_key
    for page in [url("members_apikey_change", api_key.pk), url("members_apikey_changelist")]:
        assert plain not in su_client.get(page).content.decode()
        assert api_key.key_hash not in su_client.get(page).content.decode()


def test_api_key_hash_and_prefix_cannot_be_edited(su_client, program):
    api_key = ApiKeyFactory(program=program, name="Till 4")
    plain = api_key.plain
    data = {"name": "Till 4 renamed", "store": "", "prefix": "deadbeef", "key_hash": "0" * 64, "_save": "1"}

    response = su_client.post(url("members_apikey_change", api_key.pk), data)

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.name == "Till 4 renamed"
    assert api_key_authenticate(plain) == api_key
    assert api_key.prefix != "deadbeef" and api_key.key_hash != "0" * 64


def test_revoke_asks_then_revokes(su_client, program):
    api_key = ApiKeyFactory(program=program, name="Till 5")
    plain = api_key.plain
    changelist = url("members_apikey_changelist")

    ask = su_client.post(changelist, {"action": "revoke", "_selected_action": [api_key.pk]})
    still_valid = api_key_authenticate(plain)
    done = su_client.post(changelist, {"action": "revoke", "_selected_action": [api_key.pk], "post": "yes"})

    assert ask.status_code == 200 and "refused from the moment you confirm" in ask.content.decode()
    assert still_valid == api_key
    assert done.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_key_authenticate(plain) is None
    assert messages_of(done) == [f"Revoked {api_key}."]


def test_manager_without_change_permission_cannot_revoke(manager_client, program):
    api_key = ApiKeyFactory(program=program, name="Till 6")
    plain = api_key.plain

    manager_client.post(
        url("members_apikey_changelist"), {"action": "revoke", "_selected_action": [api_key.pk], "post": "yes"}
    )

    assert api_key_authenticate(plain) == api_key


def test_api_keys_cannot_be_deleted(su_client, program):
    api_key = ApiKeyFactory(program=program, name="Till 7")

    assert su_client.get(url("members_apikey_delete", api_key.pk)).status_code == 403
    assert ApiKey.objects.filter(pk=api_key.pk).exists()


# --- The ledger is read-only ------------------------------------------------------------------------


def test_ledger_entries_admin_refuses_add_change_and_delete(su_client, member, ledger):
    credit, debit = ledger

    add = su_client.post(url("loyalty_entry_add"), {"member": member.pk, "kind": "earn", "amount": 5})
    change = su_client.post(url("loyalty_entry_change", debit.pk), {"amount": -1, "reason": "edited"})
    delete = su_client.post(url("loyalty_entry_delete", debit.pk), {"post": "yes"})
    listing = su_client.get(url("loyalty_entry_changelist"))

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert list(Entry.objects.order_by("pk").values_list("amount", "reason")) == [(100, "Welcome"), (-30, "")]
    assert listing.context["action_form"] is None  # no bulk delete
    assert "Add ledger entry" not in listing.content.decode()


def test_lots_admin_is_read_only(su_client, ledger):
    credit, _ = ledger
    lot = credit.lot

    assert su_client.get(url("loyalty_lot_add")).status_code == 403
    assert su_client.post(url("loyalty_lot_change", lot.pk), {"remaining": 100}).status_code == 403
    assert su_client.post(url("loyalty_lot_delete", lot.pk), {"post": "yes"}).status_code == 403
    assert Lot.objects.get(pk=lot.pk).remaining == 70


def test_entry_page_shows_the_lots_a_debit_consumed(manager_client, ledger):
    credit, debit = ledger

    response = manager_client.get(url("loyalty_entry_change", debit.pk))

    [inline] = response.context["inline_admin_formsets"]
    assert [(form.original.lot_id, form.original.amount) for form in inline] == [(credit.lot.pk, 30)]


def test_entry_search_and_filters(manager_client, member, ledger):
    other = MemberFactory(program=member.program)
    other_entry = ledger_credit(member=other, amount=7)

    by_card = manager_client.get(url("loyalty_entry_changelist"), {"q": format_card(other.card)})
    by_id = manager_client.get(url("loyalty_entry_changelist"), {"q": str(other.pk)})
    debits = manager_client.get(url("loyalty_entry_changelist"), {"kind__exact": "redeem"})
    of_member = manager_client.get(url("loyalty_entry_changelist"), {"member__id__exact": member.pk})

    assert shown(by_card) == [other_entry.pk]
    assert shown(by_id) == [other_entry.pk]
    assert shown(debits) == [ledger[1].pk]
    assert shown(of_member) == sorted(entry.pk for entry in ledger)  # the link on the member page


# --- Programs -----------------------------------------------------------------------------------------


def test_superuser_creates_a_program_with_settings_and_managers(su_client, manager):
    defaults = change_form_data(su_client.get(url("members_program_add")))
    data = {
        **defaults,
        "name": "Bookshop Club",
        "slug": "bookshop-club",
        "is_active": "on",
        "currency": "czk",
        "point_value": "0.10",
        "points_name": "stars",
        "timezone": "Europe/Prague",
        "pending_days": "14",
        "expiry_policy": "days",
        "expiry_period": "365",
        "expiry_warning_days": "30",
        "tier_metric": "spend",
        "managers": [manager.pk],
        "_save": "1",
    }

    response = su_client.post(url("members_program_add"), data)

    assert response.status_code == 302
    program = Program.objects.get(slug="bookshop-club")
    assert (program.currency, program.points_name, program.pending_days, program.expiry_period) == (
        "CZK",
        "stars",
        14,
        365,
    )
    assert (program.tier_metric, program.tier_window_days) == ("spend", 365)
    assert list(program.managers.all()) == [manager]


def test_manager_with_change_permission_edits_settings_but_not_managers(client, manager, program):
    client.force_login(grant(manager, "change_program"))
    page = client.get(url("members_program_change", program.pk))
    data = {**change_form_data(page), "expiry_policy": "days", "expiry_period": "90", "_save": "1"}

    response = client.post(url("members_program_change", program.pk), data)

    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.expiry_policy, program.expiry_period) == ("days", 90)
    assert "managers" not in page.context["adminform"].form.fields
    assert list(program.managers.all()) == [manager]


def test_program_list_counts_members(su_client, program):
    MemberFactory.create_batch(3, program=program)

    response = su_client.get(url("members_program_changelist"))

    [row] = [p for p in response.context["cl"].result_list if p.pk == program.pk]
    assert row.member_count == 3
    assert f"?program={program.pk}" in response.content.decode()


def test_manager_views_their_program_without_the_managers_field(manager_client, program):
    response = manager_client.get(url("members_program_change", program.pk))

    assert response.status_code == 200
    fields = [field for _, options in response.context["adminform"].fieldsets for field in options["fields"]]
    assert "expiry_policy" in fields and "managers" not in fields
    assert manager_client.get(url("members_program_add")).status_code == 403
