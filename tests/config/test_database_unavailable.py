"""A database error in a view, in authentication or in a middleware answers 503 database_unavailable, never 500.
The real outage, on PostgreSQL: test_database_outage.py."""

import logging

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

PROBLEM = "application/problem+json"


class FailingMiddleware:
    """Raises what the `fail` query parameter names, after the view answered (as a session save would)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        failure = request.GET.get("fail")
        if failure == "database":
            raise OperationalError("server closed the connection unexpectedly")
        if failure == "bug":
            raise RuntimeError("boom")
        return response


@pytest.fixture
def failing_client(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.config.test_database_unavailable.FailingMiddleware"]
    return Client(raise_request_exception=False)


def assert_database_unavailable(response) -> None:
    assert (response.status_code, response["Content-Type"]) == (503, PROBLEM)
    body = response.json()
    assert (body["status"], body["code"]) == (503, "database_unavailable")
    assert body["type"] == "urn:loyalty:problem:database_unavailable"
    assert response["Retry-After"] == "2"


@pytest.mark.parametrize("path", ["/api/pos/v1/members/1/", "/admin/login/", "/health/live/"])
def test_a_database_error_in_a_middleware_answers_503(failing_client, path, caplog):
    response = failing_client.get(path, {"fail": "database"})

    assert_database_unavailable(response)
    assert any(r.levelno == logging.WARNING and "database unavailable" in r.getMessage() for r in caplog.records)


def test_other_errors_in_a_middleware_stay_500(failing_client):
    api = failing_client.get("/api/pos/v1/members/1/", {"fail": "bug"})
    page = failing_client.get("/admin/login/", {"fail": "bug"})

    assert (api.status_code, api["Content-Type"], api.json()["code"]) == (500, PROBLEM, "internal_error")
    assert b"boom" not in api.content
    assert (page.status_code, page["Content-Type"].split(";")[0]) == (500, "text/html")


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection already closed")])
def test_a_database_error_in_authentication_answers_503(client, monkeypatch, error):
    def down(plain):
        raise error

    monkeypatch.setattr("config.api.pos.api_key_authenticate", down)

    response = client.get("/api/pos/v1/members/1/", HTTP_AUTHORIZATION="Api-Key lk_abc_def")

    assert_database_unavailable(response)


@pytest.mark.django_db
def test_a_database_error_in_a_view_answers_503(pos_client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("config.api.idempotency.idempotent_transaction", down)

    response = pos_client.post("/api/pos/v1/members/", {"external_id": "NEW-1"}, HTTP_IDEMPOTENCY_KEY="key-1")

    assert_database_unavailable(response)


def _with_sqlstate(sqlstate: str, message: str) -> OperationalError:
    """An OperationalError as Django raises it from psycopg: the driver's error, with its SQLSTATE, as cause."""
    error = OperationalError(message)
    error.__cause__ = type("DriverError", (Exception,), {"sqlstate": sqlstate})(message)
    return error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("57P01", 503, "database_unavailable"),  # terminating connection due to administrator command
        ("08006", 503, "database_unavailable"),  # connection failure
        ("40P01", 409, "conflict"),  # deadlock detected: another request holds the rows; retry
        ("40001", 409, "conflict"),  # serialization failure
        ("57014", 500, "internal_error"),  # query cancelled (statement timeout): a bug to look at, not an outage
        ("53100", 500, "internal_error"),  # disk full: the database is there and says no
    ],
)
def test_only_a_lost_database_answers_503(pos_client, monkeypatch, sqlstate, status, code):
    def fails(*args, **kwargs):
        raise _with_sqlstate(sqlstate, f"SQLSTATE {sqlstate}")

    monkeypatch.setattr("config.api.idempotency.idempotent_transaction", fails)
    pos_client.raise_request_exception = False

    response = pos_client.post("/api/pos/v1/members/", {"external_id": "NEW-2"}, HTTP_IDEMPOTENCY_KEY="key-2")

    assert (response.status_code, response.json()["code"]) == (status, code)
