"""Request ids (X-Request-ID), one log line per request, JSON logs (config/observability.py)."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from celery import signals
from django.conf import settings
from django.utils.module_loading import import_string

from config.observability import RequestIdFilter, request_id_var
from tests.clients import key_client
from tests.factories import ApiKeyFactory

REQUEST_FIELDS = {"method", "path", "status", "duration_ms", "request_id"}


def request_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "loyalty.request"]


@pytest.fixture
def till(program):
    """A till's client and its API key."""
    api_key = ApiKeyFactory(program=program, name="Till 7")
    client = key_client(api_key.plain)
    return client, api_key


def json_formatter() -> logging.Formatter:
    """The formatter settings.LOGGING configures for LOG_FORMAT=json."""
    options = dict(settings.LOGGING["formatters"]["json"])
    return import_string(options.pop("()"))(**options)


@pytest.mark.django_db
def test_a_request_keeps_the_callers_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="loyalty.request")

    response = client.get("/api/pos/v1/members/1/", HTTP_X_REQUEST_ID="till-7.req_0042")

    assert response["X-Request-ID"] == "till-7.req_0042"
    (record,) = request_records(caplog)
    assert record.request_id == "till-7.req_0042"
    assert (record.method, record.path, record.status) == ("GET", "/api/pos/v1/members/1/", 401)
    assert isinstance(record.duration_ms, float) and record.duration_ms >= 0


@pytest.mark.parametrize("given", [None, "", "has spaces", "new\nline", "x" * 201, "ünïcode"])
def test_a_request_without_a_sane_id_gets_a_new_one(client, caplog, given):
    caplog.set_level(logging.INFO, logger="loyalty.request")
    headers = {} if given is None else {"HTTP_X_REQUEST_ID": given}

    first = client.get("/health/live/", **headers)["X-Request-ID"]
    second = client.get("/health/live/", **headers)["X-Request-ID"]

    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_health_probes_are_logged_at_debug(client, caplog):
    caplog.set_level(logging.DEBUG, logger="loyalty.request")

    client.get("/health/live/")

    (record,) = request_records(caplog)
    assert (record.levelno, record.status) == (logging.DEBUG, 200)


def test_a_till_request_logs_its_program_and_api_key_prefix(till, member, program, caplog):
    client, api_key = till
    caplog.set_level(logging.INFO, logger="loyalty.request")

    response = client.get(f"/api/pos/v1/members/{member.pk}/")

    assert response.status_code == 200
    (record,) = request_records(caplog)
    assert (record.program, record.api_key) == (program.slug, api_key.prefix)
    assert not hasattr(record, "user_id")


@pytest.mark.django_db
def test_a_manager_request_logs_the_user_id(manage_client, manager, program, caplog):
    caplog.set_level(logging.INFO, logger="loyalty.request")

    manage_client.get(f"/api/manage/v1/members/?program={program.slug}")

    (record,) = request_records(caplog)
    assert record.user_id == manager.pk
    assert not hasattr(record, "program")


@pytest.mark.django_db
def test_an_anonymous_request_logs_no_user_and_reads_no_session(client, caplog, django_assert_num_queries):
    caplog.set_level(logging.INFO, logger="loyalty.request")

    with django_assert_num_queries(0):
        client.get("/api/pos/v1/members/1/", HTTP_COOKIE="sessionid=abc")

    (record,) = request_records(caplog)
    assert not {"user_id", "program", "api_key"} & set(vars(record))


def test_every_record_gets_the_current_request_id():
    record = logging.LogRecord("loyalty", logging.INFO, __file__, 1, "hello", None, None)
    outside = logging.LogRecord("loyalty", logging.INFO, __file__, 1, "hello", None, None)

    token = request_id_var.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    RequestIdFilter().filter(outside)

    assert (record.request_id, outside.request_id) == ("abc123", "-")


def test_djangos_own_line_about_a_failed_request_gets_its_request_id(client, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")

    client.post("/health/live/", HTTP_X_REQUEST_ID="req-405")  # 405: Django logs it after the middleware ran

    (record,) = [record for record in caplog.records if record.name == "django.request"]
    RequestIdFilter().filter(record)
    assert (record.status_code, record.request_id) == (405, "req-405")


def test_a_task_logs_under_its_task_id_and_an_eager_task_under_its_request():
    signals.task_prerun.send(sender=None, task_id="task-1", task=None)
    in_worker = request_id_var.get()
    signals.task_postrun.send(sender=None, task_id="task-1", task=None)
    after = request_id_var.get()

    token = request_id_var.set("request-9")
    signals.task_prerun.send(sender=None, task_id="task-2", task=None)
    in_request = request_id_var.get()
    signals.task_postrun.send(sender=None, task_id="task-2", task=None)
    request_id_var.reset(token)

    assert (in_worker, after, in_request) == ("task-1", None, "request-9")


def test_the_request_line_is_one_json_object_with_the_request_fields(till, member, program):
    client, api_key = till
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("loyalty.request")
    logger.addHandler(handler)
    try:
        client.get(f"/api/pos/v1/members/{member.pk}/", HTTP_X_REQUEST_ID="req-1")
    finally:
        logger.removeHandler(handler)

    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert REQUEST_FIELDS | {"time", "level", "logger", "message", "program", "api_key"} <= set(entry)
    assert (entry["level"], entry["logger"], entry["request_id"]) == ("INFO", "loyalty.request", "req-1")
    assert (entry["method"], entry["status"]) == ("GET", 200)
    assert (entry["program"], entry["api_key"]) == (program.slug, api_key.prefix)
    assert entry["message"].startswith(f"GET /api/pos/v1/members/{member.pk}/ 200 ")


def test_json_logs_carry_exceptions_as_text():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("loyalty").makeRecord("loyalty", logging.ERROR, __file__, 1, "failed", None, None)
        record.exc_info = sys.exc_info()
    RequestIdFilter().filter(record)

    entry = json.loads(json_formatter().format(record))

    assert entry["message"] == "failed" and entry["request_id"] == "-"
    assert "ValueError: boom" in entry["exc_info"]


def _log_format(**env: str) -> str:
    """settings.LOG_FORMAT in a fresh process with these variables (the settings read them once, at start)."""
    environment = {name: value for name, value in os.environ.items() if name not in {"DEBUG", "LOG_FORMAT"}}
    environment |= {"DJANGO_SETTINGS_MODULE": "config.settings", "LOYALTY_ALLOW_INSECURE_KEY": "1", **env}
    command = [sys.executable, "-c", "from django.conf import settings; print(settings.LOG_FORMAT)"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=settings.BASE_DIR)
    return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


def test_logs_are_json_unless_debug_or_asked_for_text():
    assert _log_format() == "json"
    assert _log_format(DEBUG="1") == "text"
    assert _log_format(DEBUG="1", LOG_FORMAT="json") == "json"
    assert "LOG_FORMAT must be json or text" in _log_format(LOG_FORMAT="xml")
