from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.models import Account, Entry, EntryKind, Lot
from loyalty.services.ledger import ledger_credit, ledger_debit
from loyalty.services.lots import lots_activate, lots_expire, lots_warn_expiring
from loyalty.tasks import lots_activate_task, lots_expire_task, lots_warn_expiring_task
from tests.factories import MemberFactory, ProgramFactory

NOW = timezone.now()


def account(member):
    return Account.objects.get(pk=member.pk)


def test_activation_moves_due_pending_points_to_available_once(program):
    members = [MemberFactory(program=program) for _ in range(3)]
    for member in members:
        ledger_credit(member=member, amount=100, available_at=NOW + timedelta(days=14))
        ledger_credit(member=member, amount=5, available_at=NOW + timedelta(days=40))

    report = lots_activate(now=NOW + timedelta(days=15), batch_size=2)

    assert (report.members, report.lots, report.points, report.batches) == (3, 3, 300, 2)
    assert [(account(m).available, account(m).pending) for m in members] == [(100, 5)] * 3
    assert lots_activate(now=NOW + timedelta(days=15)).points == 0  # idempotent
    assert ledger_audit() == []


def test_expiry_posts_one_entry_per_member_with_allocations(program):
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=70, expires_at=NOW + timedelta(days=10))
    ledger_credit(member=member, amount=30, expires_at=NOW + timedelta(days=20))
    ledger_credit(member=member, amount=50, expires_at=NOW + timedelta(days=400))
    ledger_debit(member=member, amount=20)  # from the soonest lot: 50 of it are left to expire

    report = lots_expire(now=NOW + timedelta(days=30))

    assert (report.members, report.lots, report.points) == (1, 2, 80)
    entry = Entry.objects.get(member=member, kind=EntryKind.EXPIRE)
    assert entry.amount == -80
    assert sorted(a.amount for a in entry.allocations.all()) == [30, 50]
    assert (account(member).available, account(member).expired) == (50, 80)
    assert lots_expire(now=NOW + timedelta(days=30)).points == 0
    assert Entry.objects.filter(kind=EntryKind.EXPIRE).count() == 1
    assert ledger_audit() == []


def test_expiry_of_pending_points(program):
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=10, available_at=NOW + timedelta(days=30), expires_at=NOW + timedelta(days=5))

    lots_expire(now=NOW + timedelta(days=6))

    assert (account(member).pending, account(member).expired) == (0, 10)
    assert ledger_audit() == []


def test_warning_marks_lots_inside_each_programs_window_once(db):
    program = ProgramFactory(expiry_policy="days", expiry_period=365, expiry_warning_days=30)
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=40, expires_at=NOW + timedelta(days=10))
    ledger_credit(member=member, amount=60, expires_at=NOW + timedelta(days=25))
    ledger_credit(member=member, amount=99, expires_at=NOW + timedelta(days=90))

    report = lots_warn_expiring(now=NOW)

    assert report.details == [
        {"program_id": program.pk, "member_id": member.pk, "points": 100, "first_expiry": NOW + timedelta(days=10)}
    ]
    assert Lot.objects.filter(warned_at__isnull=False).count() == 2
    assert lots_warn_expiring(now=NOW).members == 0


@pytest.mark.parametrize(
    ("task", "job_name"),
    [(lots_activate_task, "activate"), (lots_expire_task, "expire"), (lots_warn_expiring_task, "warn")],
)
def test_tasks_run_the_jobs_and_report(program, task, job_name):
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=10, occurred_at=NOW - timedelta(days=3), expires_at=NOW - timedelta(days=1))

    report = task.apply().get()

    assert set(report) == {"members", "lots", "points", "batches"}
    if job_name == "expire":
        assert report["points"] == 10


def test_check_ledger_command_reports_a_tampered_balance(program, capsys):
    member = MemberFactory(program=program)
    ledger_credit(member=member, amount=10)
    call_command("check_ledger", "--program", program.slug)
    assert "consistent" in capsys.readouterr().out

    Account.objects.filter(pk=member.pk).update(available=11)

    with pytest.raises(CommandError, match="1 ledger mismatch|2 ledger mismatch"):
        call_command("check_ledger")
    out = capsys.readouterr()
    assert f"member #{member.pk}: cached available: expected 10, found 11" in out.out
    assert "credits - debits = available + pending - debt" in out.out
