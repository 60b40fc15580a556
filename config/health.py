"""Health endpoints for load balancers and orchestrators.

`GET /health/live/`: the process answers (never touches the database): restart it when this fails.
`GET /health/ready/`: the database and the Celery broker answer: send it traffic only while this is 200.

Plain Django views, outside `/api/`: no authentication, no throttling, not in the OpenAPI schema.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu import Connection

from config.api.problems import PROBLEM_CONTENT_TYPE, problem

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


def database_check() -> None:
    """A `SELECT 1` on the default connection (connecting, if needed, within DB_CONNECT_TIMEOUT)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_check() -> None:
    """Connects to the Celery broker; without REDIS_URL tasks run in-process and there is none to ask."""
    if not settings.REDIS_URL:
        return
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)


CHECKS: dict[str, Callable[[], None]] = {"database": database_check, "broker": broker_check}


def checks_run() -> dict[str, str]:
    """Each check's outcome, "ok" or "unavailable"; the reason of a failure is logged, not answered."""
    outcomes = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means not ready; the probe must answer, not crash
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            outcomes[name] = UNAVAILABLE
        else:
            outcomes[name] = OK
    return outcomes


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    checks = checks_run()
    failing = [name for name, outcome in checks.items() if outcome != OK]
    if not failing:
        return JsonResponse({"status": OK, "checks": checks})
    body = problem(
        503, "not_ready", "The service is not ready", f"Failing checks: {', '.join(failing)}.", checks=checks
    )
    return JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
