import csv
import io
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.imports import posting as import_posting
from loyalty.imports import writer as import_writer
from loyalty.models import Account, Award, EarningRule, Entry, Lot, Purchase, TierHistory
from members.models import Member
from members.services.members import member_create, member_suspend
from tests.builders import adjust, purchase, rule, tier
from tests.factories import MemberFactory, ProgramFactory, StaffFactory

HEADER = ["external_id", "occurred_at", "total", "purchase_id", "store", "channel", "currency"]


def write_csv(path, rows, header=HEADER, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path, program, *args):
    """Runs the command; returns (stdout, stderr, error message or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_purchases", str(path), "--program", program.slug, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), str(exc)
    return out.getvalue(), err.getvalue(), None


def ago(days=0, hours=0):
    return (timezone.now() - timedelta(days=days, hours=hours)).replace(microsecond=0)


def iso(moment):
    return moment.isoformat()


@pytest.fixture
def shop(db):
    program = ProgramFactory(currency="EUR", timezone="Europe/Prague")
    rule(program, name="Base", kind="base_rate", rate=Decimal("0.1"))
    return program


# -- columns, dates, members ----------------------------------------------------------------------------------------


def test_map_renames_columns_and_members_are_created_once(shop, tmp_path):
    rows = [
        ["C-1", iso(ago(3)), "100.00", "R-1"],
        ["C-2", iso(ago(2)), "50.00", "R-2"],
        ["C-1", iso(ago(1)), "30.00", "R-3"],
    ]
    path = write_csv(tmp_path / "p.csv", rows, header=["Customer", "Date", "Amount", "Receipt"])

    out, _, error = run(
        path, shop, "--map", "customer=external_id", "--map", "date=occurred_at", "--map", "amount=total",
        "--map", "receipt=purchase_id", "--batch-size", "1",
    )  # fmt: skip

    assert error is None, out
    members = {m.external_id: m for m in Member.objects.filter(program=shop)}
    assert set(members) == {"C-1", "C-2"}
    assert len({m.card for m in members.values()}) == 2 and all(len(m.card) == 12 for m in members.values())
    assert all(len(m.referral_code) == 8 for m in members.values())
    assert abs(members["C-1"].enrolled_at - ago(3)) < timedelta(seconds=5)  # at the first purchase
    purchases = {p.external_id: p for p in Purchase.objects.filter(program=shop)}
    assert {k: (p.member.external_id, p.total, p.points_awarded) for k, p in purchases.items()} == {
        "R-1": ("C-1", Decimal("100.00"), 10),
        "R-2": ("C-2", Decimal("50.00"), 5),
        "R-3": ("C-1", Decimal("30.00"), 3),
    }
    assert Account.objects.get(pk=members["C-1"].pk).purchases == 2
    assert "imported 3" in out and "2 new members" in out and "18 points awarded" in out


def test_dates_datetimes_and_time_zones(shop, tmp_path):
    rows = [
        ["C-1", "2024-03-01", "1.00", "winter-date"],
        ["C-1", "2024-07-01", "1.00", "summer-date"],
        ["C-1", "2024-03-01T10:00:00", "1.00", "naive"],
        ["C-1", "2024-03-01 10:00", "1.00", "naive-space"],
        ["C-1", "2024-03-01T10:00:00Z", "1.00", "utc"],
        ["C-1", "2024-03-01T10:00:00+05:00", "1.00", "offset"],
    ]
    _, _, error = run(write_csv(tmp_path / "p.csv", rows), shop, "--no-points")

    assert error is None
    times = dict(Purchase.objects.values_list("external_id", "occurred_at"))
    assert times == {
        "winter-date": datetime(2024, 2, 29, 23, 0, tzinfo=UTC),  # midnight in Prague (UTC+1)
        "summer-date": datetime(2024, 6, 30, 22, 0, tzinfo=UTC),  # summer time (UTC+2)
        "naive": datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
        "naive-space": datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
        "utc": datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
        "offset": datetime(2024, 3, 1, 5, 0, tzinfo=UTC),
    }


def test_store_channel_and_semicolons(shop, tmp_path):
    rows = [["C-1", iso(ago(1)), "12.50", "R-1", "PRAGUE-01", "ESHOP", "eur"]]
    path = write_csv(tmp_path / "p.csv", rows, delimiter=";")

    _, _, error = run(path, shop, "--delimiter", ";")

    assert error is None
    purchase = Purchase.objects.get()
    assert (purchase.store, purchase.channel, purchase.currency, purchase.total) == (
        "PRAGUE-01",
        "eshop",
        "EUR",
        Decimal("12.50"),
    )


def test_missing_columns_and_bad_maps_stop_before_anything(shop, tmp_path):
    path = write_csv(tmp_path / "p.csv", [["C-1", "5.00"]], header=["external_id", "total"])

    assert "no column for occurred_at" in run(path, shop)[2]
    assert "Unknown field(s) when" in run(path, shop, "--map", "total=when")[2]
    assert "does not have" in run(path, shop, "--map", "date=occurred_at")[2]
    assert "COLUMN=FIELD" in run(path, shop, "--map", "total")[2]
    assert "No program" in run(path, ProgramFactory.build(slug="nope"))[2]
    assert not Purchase.objects.exists() and not Member.objects.exists()


# -- validation -----------------------------------------------------------------------------------------------------


def test_every_invalid_row_is_reported_with_its_line_and_writes_nothing(shop, tmp_path):
    suspended = MemberFactory(program=shop, external_id="SUSP")
    member_suspend(member=suspended)
    future = timezone.now() + timedelta(hours=1)
    a_day_ago = iso(ago(1))  # one moment for every row and the assertions: the clock may pass a second meanwhile
    rows = [
        ["C-1", a_day_ago, "10.00", "OK-1"],  # line 2
        ["", a_day_ago, "10.00", "E-1"],  # 3
        ["C-1", "yesterday", "10.00", "E-2"],  # 4
        ["C-1", a_day_ago, "ten", "E-3"],  # 5
        ["C-1", a_day_ago, "-1.00", "E-4"],  # 6
        ["C-1", a_day_ago, "1.005", "E-5"],  # 7
        ["C-1", a_day_ago, "10.00", "E-6", "", "pos", "CZK"],  # 8
        ["C-1", iso(future), "10.00", "E-7"],  # 9
        ["C-1", a_day_ago, "10.00", "OK-1"],  # 10: repeats line 2
        ["C-1", a_day_ago, "10.00", "E-9", "", "fax"],  # 11
        ["SUSP", a_day_ago, "10.00", "E-10"],  # 12
        ["", "", "", "E-11"],  # 13: several reasons
        ["C-2", a_day_ago, "20.00", "OK-2"],  # 14
    ]
    errors_path = tmp_path / "errors.csv"

    out, _, error = run(write_csv(tmp_path / "p.csv", rows), shop, "--errors", str(errors_path))

    assert error == "11 row(s) rejected; the other rows were imported."
    with open(errors_path, newline="") as f:
        written = list(csv.reader(f))
    assert written[0] == ["line", "reason", *HEADER]
    reasons = {int(row[0]): row[1] for row in written[1:]}
    assert reasons == {
        3: "external_id is empty",
        4: "occurred_at 'yesterday' is not an ISO 8601 date or date and time",
        5: "total 'ten' is not a decimal number",
        6: "total -1.00 is negative",
        7: "total 1.005 has more than 2 decimal places",
        8: "currency CZK is not the program's (EUR)",
        9: f"occurred_at {iso(future)} is in the future",
        10: "purchase_id OK-1 repeats line 2",
        11: "channel 'fax' is not one of pos, eshop, app, other",
        12: "member SUSP is suspended",
        13: "external_id is empty; occurred_at '' is not an ISO 8601 date or date and time; "
        "total '' is not a decimal number",
    }
    assert written[1][2:6] == ["", a_day_ago, "10.00", "E-1"]  # the row as read, to fix and import again
    assert set(Purchase.objects.values_list("external_id", flat=True)) == {"OK-1", "OK-2"}
    assert not Purchase.objects.filter(member=suspended).exists()
    assert "       3  external_id is empty" in out
    assert ledger_audit(program=shop) == []


def test_suspended_members_history_imports_without_points(shop, tmp_path):
    suspended = MemberFactory(program=shop, external_id="SUSP")
    member_suspend(member=suspended)
    path = write_csv(tmp_path / "p.csv", [["SUSP", iso(ago(1)), "10.00", "R-1"]])

    _, _, error = run(path, shop, "--no-points")

    assert error is None
    assert Purchase.objects.get().member == suspended


def test_dry_run_validates_and_writes_nothing(shop, tmp_path):
    MemberFactory(program=shop, external_id="C-1")
    rows = [["C-1", iso(ago(1)), "10.00", "R-1"], ["C-2", iso(ago(1)), "5.00", "R-2"], ["C-3", "x", "5", "R-3"]]

    out, _, error = run(write_csv(tmp_path / "p.csv", rows), shop, "--dry-run")

    assert error == "1 row(s) rejected; the other rows would be imported."
    assert "would import 2" in out and "1 new members" in out
    assert not Purchase.objects.exists() and Member.objects.count() == 1 and not Account.objects.exists()


# -- idempotency and crashes ----------------------------------------------------------------------------------------


def test_running_the_same_file_again_imports_nothing_twice(shop, tmp_path):
    when = iso(ago(2))
    rows = [
        ["C-1", when, "10.00", ""],
        ["C-1", when, "10.00", ""],  # the same coffee twice: two purchases
        ["C-2", when, "10.00", "R-1"],
        ["C-2", iso(ago(1)), "70.00", ""],
    ]
    path = write_csv(tmp_path / "p.csv", rows)

    first, _, error = run(path, shop, "--batch-size", "2")
    ids = sorted(Purchase.objects.values_list("external_id", flat=True))
    balances = list(Account.objects.order_by("pk").values_list("available", "earned", "purchases"))
    second, _, error_again = run(path, shop, "--batch-size", "2")

    assert error is None and error_again is None
    assert "imported 4" in first and "imported 0, skipped 4 already imported" in second
    assert len(ids) == 4 and "R-1" in ids
    assert all(i.startswith("csv-") and i.endswith(("-1", "-2")) for i in ids if i != "R-1")
    assert sorted(Purchase.objects.values_list("external_id", flat=True)) == ids
    assert list(Account.objects.order_by("pk").values_list("available", "earned", "purchases")) == balances
    assert Member.objects.count() == 2 and Entry.objects.count() == 4


def test_a_crash_in_batch_two_keeps_batch_one_and_nothing_of_batch_two(shop, tmp_path, monkeypatch):
    rows = [[f"C-{i}", iso(ago(10 - i)), "10.00", f"R-{i}"] for i in range(5)]
    path = write_csv(tmp_path / "p.csv", rows)
    calls = []
    real_save = import_posting.accounts_save

    def failing_save(accounts, now):
        calls.append(1)
        if len(calls) == 2:  # after batch 2 inserted its members, entries, lots and purchases
            raise RuntimeError("disk full")
        real_save(accounts, now)

    monkeypatch.setattr(import_posting, "accounts_save", failing_save)

    out, _, error = run(path, shop, "--batch-size", "2")

    assert "Batch 2 (lines 4-5) failed and was rolled back" in error and "disk full" in error
    assert sorted(Purchase.objects.values_list("external_id", flat=True)) == ["R-0", "R-1"]
    assert sorted(Member.objects.values_list("external_id", flat=True)) == ["C-0", "C-1"]
    assert Entry.objects.count() == Lot.objects.count() == 2
    assert ledger_audit(program=shop) == []

    monkeypatch.setattr(import_posting, "accounts_save", real_save)
    out, _, error = run(path, shop, "--batch-size", "2")

    assert error is None and "imported 3, skipped 2" in out
    assert Purchase.objects.count() == 5 and ledger_audit(program=shop) == []


def test_check_ledger_is_clean_after_an_import(shop, tmp_path):
    shop.pending_days = 30
    shop.expiry_policy = "month_end"
    shop.expiry_period = 1
    shop.save()
    rows = [[f"C-{i % 7}", iso(ago(i * 3)), f"{10 + i}.00", f"R-{i}"] for i in range(40)]
    run(write_csv(tmp_path / "p.csv", rows), shop, "--batch-size", "9")

    out = io.StringIO()
    call_command("check_ledger", "--program", shop.slug, stdout=out)

    assert "Ledger is consistent" in out.getvalue()
    assert Lot.objects.filter(pending=True).exists() and Lot.objects.filter(pending=False).exists()


def test_no_points_writes_members_and_purchases_only(shop, tmp_path):
    rows = [["C-1", iso(ago(2)), "100.00", "R-1"], ["C-1", iso(ago(1)), "50.00", "R-2"]]

    out, _, error = run(write_csv(tmp_path / "p.csv", rows), shop, "--no-points")

    assert error is None and "points awarded" not in out
    assert list(Purchase.objects.order_by("occurred_at").values_list("points_awarded", "eligible_amount")) == [
        (0, Decimal("100.00")),
        (0, Decimal("50.00")),
    ]
    assert not Entry.objects.exists() and not Lot.objects.exists() and not Award.objects.exists()
    account = Account.objects.get()
    assert (account.available, account.earned, account.purchases) == (0, 0, 2)
    assert ledger_audit(program=shop) == []


def test_within_a_batch_purchases_count_in_time_order(shop, tmp_path):
    rule(shop, name="Welcome", kind="bonus", points=50, first_purchase=True)
    rows = [["C-1", iso(ago(1)), "10.00", "LATER"], ["C-1", iso(ago(5)), "10.00", "EARLIER"]]

    run(write_csv(tmp_path / "p.csv", rows), shop)

    assert dict(Purchase.objects.values_list("external_id", "points_awarded")) == {"EARLIER": 51, "LATER": 1}


@pytest.mark.postgres
def test_postgresql_writes_the_ledger_with_copy(shop, tmp_path, monkeypatch):
    copied = Counter()
    real_copy = import_writer._copy

    def counting_copy(model, objs):
        copied[model.__name__] += len(objs)
        real_copy(model, objs)

    monkeypatch.setattr(import_writer, "_copy", counting_copy)
    rows = [[f"C-{i % 3}", iso(ago(i)), "25.00", f"R-{i}"] for i in range(6)]

    _, _, error = run(write_csv(tmp_path / "p.csv", rows), shop, "--batch-size", "4")

    assert error is None and connection.vendor == "postgresql"
    assert copied == {"Entry": 6, "Lot": 6, "Award": 6, "Purchase": 6}
    assert Entry.objects.filter(amount=2, lot__amount=2, purchase__points_awarded=2).count() == 6
    assert ledger_audit(program=shop) == []


# -- the same points as purchase_record ---------------------------------------------------------------------------


def _same_rules(program):
    """Every purchase rule kind and limit, tiers and a referral rule."""
    program.pending_days = 14
    program.expiry_policy = "month_end"
    program.expiry_period = 2
    program.tier_metric = "qualifying_points"
    program.save()
    silver = tier(program, "Silver", rank=1, threshold=60, earn_multiplier=Decimal("1.5"))
    tier(program, "Bronze", rank=0, threshold=0)
    rule(program, name="Base", kind="base_rate", rate=Decimal("0.1"), priority=10)
    rule(program, name="E-shop double", kind="multiplier", multiplier=Decimal(2), channels="eshop", priority=20)
    rule(program, name="Store bonus", kind="bonus", points=7, stores="PRAGUE-01", cap_per_member_day=10, priority=30)
    rule(program, name="Big basket", kind="bonus", points=20, min_basket=Decimal(100), cap_per_member_month=30)
    rule(program, name="Welcome", kind="bonus", points=15, first_purchase=True, priority=40)
    rule(program, name="Third visit", kind="bonus", points=9, nth_purchase=3, priority=41)
    rule(program, name="Budgeted", kind="bonus", points=8, budget_total=30, priority=50)
    rule(program, name="Silver extra", kind="bonus", points=4, priority=60, tiers=[silver])
    rule(program, name="Capped base", kind="base_rate", rate=Decimal("0.05"), cap_per_purchase=3, priority=70)
    rule(program, name="Referral", kind="event", event="referral", points=25)


def _prepare_members(program, actor):
    """An existing member with purchases today, a member in debt, a referrer and a referee."""
    regular = member_create(program=program, external_id="REGULAR")
    purchase(regular, "BEFORE-1", 50, occurred_at=yesterday_at(program, 10), store="PRAGUE-01")
    debtor = member_create(program=program, external_id="DEBTOR")
    adjust(debtor, -40, reason="correction", actor=actor, allow_debt=True)
    referrer = member_create(program=program, external_id="REFERRER")
    member_create(program=program, external_id="REFEREE", referral_code=referrer.referral_code)


def yesterday_at(program, hour):
    day = timezone.now().astimezone(program.tz).date() - timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=program.tz)


def _rows(program):
    """Sorted by time: recording them in file order is recording them in time order."""
    stores = ["PRAGUE-01", "BRNO-01", ""]
    channels = ["pos", "eshop", "pos", "app"]
    customers = ["REGULAR", "NEW-1", "NEW-2", "DEBTOR", "REFEREE", "NEW-1", "NEW-3"]
    rows = []
    for i in range(60):
        when = ago(0, 2) - timedelta(hours=7 * (60 - i))  # oldest first, the last ones within the return window
        total = Decimal(15 + (i * 37) % 140)
        rows.append([customers[i % 7], iso(when), str(total), f"P-{i}", stores[i % 3], channels[i % 4]])
    # Yesterday's store bonus already gave 7 of its 10 a day: 3 left.
    rows.append(["REGULAR", iso(yesterday_at(program, 12)), "40", "SAME-DAY", "PRAGUE-01", "pos"])
    return sorted(rows, key=lambda row: datetime.fromisoformat(row[1]))


def _state(program):
    purchases = {
        p.external_id: (
            p.member.external_id,
            p.points_awarded,
            [(a["rule"], a["points"]) for a in p.awards],
            p.eligible_amount,
            p.outcome,
        )
        for p in Purchase.objects.filter(program=program)
    }
    accounts = {
        a.member.external_id: (a.available, a.pending, a.debt, a.earned, a.purchases, a.tier and a.tier.name)
        for a in Account.objects.filter(program=program).select_related("member", "tier")
    }
    awards = Counter(
        (a.member.external_id, a.rule_name, a.points, a.local_date) for a in Award.objects.filter(program=program)
    )
    lots = Counter(
        (lot.member.external_id, lot.amount, lot.remaining, lot.pending, lot.available_at, lot.expires_at)
        for lot in Lot.objects.filter(program=program)
    )
    budgets = dict(EarningRule.objects.filter(program=program).values_list("name", "budget_used"))
    promotions = Counter(
        (h.member.external_id, h.to_tier.name, h.reason) for h in TierHistory.objects.filter(program=program)
    )
    return purchases, accounts, awards, lots, budgets, promotions


@pytest.mark.parametrize("batch_size", ["1000", "8"])
def test_points_equal_recording_each_purchase_in_order(db, tmp_path, batch_size):
    actor = StaffFactory()
    imported, recorded = ProgramFactory(currency="EUR"), ProgramFactory(currency="EUR")
    for program in (imported, recorded):
        _same_rules(program)
        _prepare_members(program, actor)
    rows = _rows(imported)

    _, _, error = run(write_csv(tmp_path / "p.csv", rows), imported, "--batch-size", batch_size)
    for customer, when, total, purchase_id, store, channel in rows:
        member = Member.objects.filter(program=recorded, external_id=customer).first()
        member = member or member_create(program=recorded, external_id=customer, enrolled_at=ago(100))
        purchase(member, purchase_id, total, occurred_at=datetime.fromisoformat(when), store=store, channel=channel)

    assert error is None
    assert _state(imported) == _state(recorded)
    purchases, accounts, awards, lots, budgets, promotions = _state(imported)
    # The data exercise what they should: caps, budgets, tiers, debt, referral, pending lots.
    assert budgets["Budgeted"] == 30
    assert any(name == "Silver tier x1.5" for _, name, _, _ in awards)
    assert any(name == "Silver extra" for _, name, _, _ in awards)
    assert promotions[("NEW-1", "Silver", "promotion")] == 1
    assert accounts["DEBTOR"][2] == 0 and accounts["REFERRER"][3] == 25
    assert any(lot[3] for lot in lots) and any(not lot[3] for lot in lots)
    assert ("Store bonus", 3) in purchases["SAME-DAY"][2]
    assert ledger_audit(program=imported) == []


def test_no_points_history_still_promotes_by_spend(shop, tmp_path):
    shop.tier_metric = "spend"
    shop.save()
    tier(shop, "Silver", rank=1, threshold=100)
    rows = [["C-1", iso(ago(20)), "60.00", "R-1"], ["C-1", iso(ago(10)), "50.00", "R-2"]]

    run(write_csv(tmp_path / "p.csv", rows), shop, "--no-points")

    account = Account.objects.select_related("tier").get()
    assert account.tier.name == "Silver" and account.purchases == 2
    assert list(TierHistory.objects.values_list("to_tier__name", "reason", "metric_value")) == [
        ("Silver", "promotion", Decimal("110.00"))
    ]
    outcomes = dict(Purchase.objects.values_list("external_id", "outcome"))
    assert outcomes["R-1"]["tier"] == {"before": None, "after": None}
    assert outcomes["R-2"]["tier"] == {"before": None, "after": "Silver"}
    assert not Entry.objects.exists()


def test_an_unreadable_record_is_refused_and_the_rest_imported(shop, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "external_id,occurred_at,total\n"
        f"C-1,{iso(ago(2))},10.00\n"
        f"{'x' * 200_000},{iso(ago(2))},10.00\n"
        f"C-2,{iso(ago(1))},20.00\n"
    )
    errors = tmp_path / "errors.csv"

    out, _, error = run(path, shop, "--errors", str(errors))

    assert error == "1 row(s) rejected; the other rows were imported."
    assert "       3  unreadable CSV: field larger than field limit (131072)" in out
    assert sorted(Purchase.objects.values_list("member__external_id", flat=True)) == ["C-1", "C-2"]
