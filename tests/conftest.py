import os

import pytest
from django.conf import settings
from django.db import connection
from hypothesis import settings as hypothesis_settings

from tests.builders import fund
from tests.clients import pos_client_for, staff_client
from tests.factories import MemberFactory, ProgramFactory, RewardFactory, StaffFactory

hypothesis_settings.register_profile("ci", max_examples=60, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=30, deadline=None)
# A long local run (HYPOTHESIS_PROFILE=long): the ledger's stateful test runs 500 x 100 steps with it.
hypothesis_settings.register_profile("long", max_examples=500, stateful_step_count=100, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config, items):
    """PostgreSQL- and Redis-only tests skip during development but fail in CI."""
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.append("_require_postgres")
        if item.get_closest_marker("redis"):
            item.fixturenames.append("_require_redis")


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def _require_postgres():
    if connection.vendor != "postgresql":
        _missing("needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def _require_redis():
    if not settings.REDIS_URL:
        _missing("needs Redis: set REDIS_URL=redis://...")


@pytest.fixture
def program(db):
    return ProgramFactory()


@pytest.fixture
def other_program(db):
    return ProgramFactory()


@pytest.fixture
def member(program):
    return MemberFactory(program=program)


@pytest.fixture
def manager(program):
    return StaffFactory(programs=[program])


@pytest.fixture
def pos_client(program):
    """A till of `program`."""
    return pos_client_for(program, "Till 1")


@pytest.fixture
def other_pos_client(other_program):
    """A till of another program."""
    return pos_client_for(other_program, "Other till")


@pytest.fixture
def manage_client(manager):
    return staff_client(manager)


@pytest.fixture
def reward(program):
    """5 EUR off for 100 points."""
    return RewardFactory(program=program)


@pytest.fixture
def funded_member(member):
    """`member` with 1000 points earned yesterday, never expiring."""
    fund(member, 1000)
    return member


@pytest.fixture
def eager_tasks(monkeypatch):
    """Celery tasks run in the calling process, as in the embedded default (CI configures a Redis broker)."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


@pytest.fixture
def celery_worker(monkeypatch, tmp_path):
    """A real Celery worker process on Redis and the test database (tests/worker.py); stopped afterwards."""
    from config.celery import app
    from tests.concurrency import Worker

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    worker = Worker(tmp_path)
    yield worker
    worker.stop()
