"""The scheduled ledger jobs run on a real Celery worker process through the Redis broker."""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.models import Account, Entry, EntryKind
from loyalty.services.ledger import ledger_credit
from loyalty.tasks import lots_expire_task
from tests.factories import MemberFactory, ProgramFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue(settings):
    """A worker process listening on a queue of its own, on the test database."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "LOYALTY_ALLOW_INSECURE_KEY": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield queue
    process.terminate()
    process.wait(timeout=20)


def test_expiry_task_runs_on_a_worker_through_redis(worker_queue):
    member = MemberFactory(program=ProgramFactory())
    past = timezone.now() - timedelta(days=40)
    ledger_credit(member=member, amount=75, occurred_at=past, expires_at=past + timedelta(days=30))

    lots_expire_task.apply_async(queue=worker_queue)

    deadline = time.monotonic() + 60
    while not Entry.objects.filter(member=member, kind=EntryKind.EXPIRE).exists():
        assert time.monotonic() < deadline, "the worker did not expire the points within 60 s"
        time.sleep(0.2)
    account = Account.objects.get(pk=member.pk)
    assert (account.available, account.expired) == (0, 75)
