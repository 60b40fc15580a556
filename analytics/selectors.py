"""Reads of the analytics refresh's state (kept in the cache by `analytics.services.refresh`): the as-of of the
last finished refresh, the status of the current one, and what "as of a date" means."""

from datetime import date, datetime, time
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from members.models import Program

STALE_SECONDS = 3600  # a queued or running refresh without news for this long is taken as dead


def status_key(program_id: int) -> str:
    return f"analytics-refresh:{program_id}"


def as_of_key(program_id: int) -> str:
    return f"analytics-refresh:{program_id}:as-of"


def day_end(program: Program, day: date) -> datetime:
    """The last moment of `day` in the program's time zone: what "as of a date" means."""
    return datetime.combine(day, time.max, tzinfo=program.tz)


def analytics_as_of(program: Program) -> datetime | None:
    """The as-of of the program's last finished refresh (None before the first one)."""
    value = cache.get(as_of_key(program.pk))
    return datetime.fromisoformat(value) if value else None


def analytics_refresh_status(program: Program) -> dict[str, Any]:
    """The status of the program's last refresh: {"state": "idle"} when none is known."""
    return cache.get(status_key(program.pk)) or {"state": "idle", "step": None, "steps": []}


def analytics_refresh_pending(program: Program) -> bool:
    """Whether a refresh of the program is queued or running (and has reported within the last hour: a
    worker that died leaves a status that stops blocking new refreshes)."""
    status = analytics_refresh_status(program)
    if status["state"] not in ("queued", "running"):
        return False
    updated = datetime.fromisoformat(status["updated_at"])
    return (timezone.now() - updated).total_seconds() < STALE_SECONDS
