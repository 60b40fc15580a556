"""GET /health/live/ and /health/ready/: no authentication, cheap, 503 not_ready with the failing checks."""

import time

import pytest

from tests.config.utils import database_outage

PROBLEM = "application/problem+json"
CLOSED_PORT = "redis://127.0.0.1:1/0"


def assert_not_ready(response, checks: dict[str, str]) -> None:
    assert (response.status_code, response["Content-Type"]) == (503, PROBLEM)
    body = response.json()
    assert (body["status"], body["code"], body["type"]) == (503, "not_ready", "urn:loyalty:problem:not_ready")
    assert body["checks"] == checks
    failing = [name for name, outcome in checks.items() if outcome != "ok"]
    assert body["detail"] == f"Failing checks: {', '.join(failing)}."


def test_live_answers_ok_without_touching_the_database(client):
    response = client.get("/health/live/")  # no django_db mark: a query would raise

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_without_a_broker_checks_the_database_only(client, settings, django_assert_num_queries):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = CLOSED_PORT  # not asked: without REDIS_URL tasks run in-process

    with django_assert_num_queries(1):
        response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.redis
@pytest.mark.django_db
def test_ready_when_the_database_and_redis_answer(client):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_ready_is_not_ready_when_the_broker_is_unreachable(client, settings):
    settings.REDIS_URL = settings.CELERY_BROKER_URL = CLOSED_PORT
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1

    started = time.monotonic()
    response = client.get("/health/ready/")

    assert_not_ready(response, {"database": "ok", "broker": "unavailable"})
    assert time.monotonic() - started < 5
    assert "127.0.0.1" not in response.content.decode()  # why it failed is logged, not told to anyone who asks


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ready_is_not_ready_while_the_database_is_unavailable(client, settings):
    settings.REDIS_URL = ""  # the database alone: the broker is in-process

    with database_outage():
        during = client.get("/health/ready/")
    after = client.get("/health/ready/")

    assert_not_ready(during, {"database": "unavailable", "broker": "ok"})
    assert after.status_code == 200


def test_health_endpoints_answer_reads_only(client):
    assert client.post("/health/live/").status_code == 405
    assert client.head("/health/live/").status_code == 200


@pytest.mark.django_db
def test_health_endpoints_are_not_in_the_api_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]

    assert paths and not [path for path in paths if "health" in path]
