"""A worker killed in the middle of the nightly expiry job: the job comes back to the next worker, which
finishes it, and every point is expired exactly once. Real Redis broker, real worker process, PostgreSQL."""

import csv
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from events.models import OutboxEvent
from events.outbox import EventType
from loyalty.audit import ledger_audit
from loyalty.models import Account, Entry, EntryKind, Lot
from loyalty.tasks import lots_expire_task
from tests.builders import rule
from tests.concurrency import VISIBILITY_TIMEOUT, wait_until
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MEMBERS = 600


def program_with_expired_points(tmp_path):
    """MEMBERS members, each with points earned 800 days ago that expired after 365 days (imported in bulk)."""
    program = ProgramFactory(expiry_policy="days", expiry_period=365)
    rule(program, name="Base", kind="base_rate", rate=Decimal("1"))
    long_ago = (timezone.now() - timedelta(days=800)).replace(microsecond=0)
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["external_id", "occurred_at", "total", "purchase_id"])
        rows.writerows([f"C{n}", long_ago.isoformat(), f"{10 + n % 90}.00", f"P{n}"] for n in range(MEMBERS))
    call_command("import_purchases", str(path), "--program", program.slug, stdout=open("/dev/null", "w"))
    return program


def expiries() -> int:
    return Entry.objects.filter(kind=EntryKind.EXPIRE).count()


def test_the_expiry_job_cut_off_by_a_killed_worker_expires_every_point_once(tmp_path, celery_worker):
    # given members whose points are past their expiry date
    program = program_with_expired_points(tmp_path)
    earned = Lot.objects.filter(program=program).aggregate(total=Sum("remaining"))["total"]
    assert Lot.objects.filter(program=program, remaining__gt=0, expires_at__lte=timezone.now()).count() == MEMBERS
    celery_worker.env["LOYALTY_JOB_BATCH_SIZE"] = "3"  # many small transactions: the kill lands between them

    # when the worker running the job is killed halfway
    celery_worker.start()
    celery_worker.send(lots_expire_task)
    wait_until(lambda: expiries() >= 30, 60, f"the job did not start: {celery_worker.log()}")
    celery_worker.kill()
    done_when_killed = expiries()
    assert 0 < done_when_killed < MEMBERS, "the job was not cut off halfway"

    # and the next worker starts after the broker's visibility timeout
    time.sleep(VISIBILITY_TIMEOUT + 1)
    celery_worker.start()
    wait_until(lambda: expiries() == MEMBERS, 120, f"the job was not finished: {celery_worker.log()}")
    time.sleep(0.5)  # anything done twice would show up now

    # then every member's points expired exactly once, with one event each, and the ledger adds up
    assert expiries() == MEMBERS
    assert Entry.objects.filter(kind=EntryKind.EXPIRE).aggregate(total=Sum("amount"))["total"] == -earned
    assert not Lot.objects.filter(program=program, remaining__gt=0).exists()
    assert set(Account.objects.filter(program=program).values_list("available", flat=True)) == {0}
    expired = OutboxEvent.objects.filter(type=EventType.POINTS_EXPIRED)
    assert expired.count() == expired.values("member").distinct().count() == MEMBERS
    assert ledger_audit(program=program) == []
