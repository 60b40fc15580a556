"""Asking for an analytics refresh of one program (the manager API's POST analytics/refresh/): marked queued
now, run by a worker (`analytics.tasks.analytics_refresh_task`) once the request's transaction commits.

Apart from `analytics.services.refresh`, which the task runs: this module imports the task, that one is
imported by it.
"""

from datetime import datetime
from typing import Any

from django.db import transaction

from analytics.selectors import analytics_refresh_pending, analytics_refresh_status
from analytics.services.refresh import analytics_refresh_queued
from analytics.tasks import analytics_refresh_task
from members.models import Program


def analytics_refresh_request(*, program: Program, as_of: datetime | None = None) -> dict[str, Any]:
    """Queues a refresh of the program as of `as_of` (now when None) unless one is queued or running already;
    returns the refresh's status."""
    if not analytics_refresh_pending(program):
        analytics_refresh_queued(program, as_of)
        at = as_of.isoformat() if as_of else None
        transaction.on_commit(lambda: analytics_refresh_task.delay(program.pk, at))
    return analytics_refresh_status(program)
