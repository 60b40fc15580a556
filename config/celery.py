"""Celery application. Tasks run in-process unless REDIS_URL names a broker."""

import os
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun

from config import observability  # noqa: F401  (connects the signals: task ids in logs, workers log as settings.LOGGING)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes the database connections before and after every task unless this is set: a
# new PostgreSQL connection per task (about 20 ms, three times a webhook delivery's own work, and the prepared
# statements lost). Tasks keep their connections instead and treat each task as Django treats a request:
app.conf.CELERY_DB_REUSE_MAX = 2**62
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402  (after DJANGO_SETTINGS_MODULE is set)
from django.db import close_old_connections  # noqa: E402


@task_prerun.connect
@task_postrun.connect
def _connections_as_for_a_request(task: Any = None, **kwargs: Any) -> None:
    """Closes connections past DB_CONN_MAX_AGE or broken, and has the next query check the connection first
    (CONN_HEALTH_CHECKS): a worker reconnects after a database restart instead of failing a task. Not for
    tasks run in-process (the embedded default, tests): they share their caller's connection and transaction."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


app.conf.beat_schedule = {
    "activate-pending-points": {
        "task": "loyalty.tasks.lots_activate_task",
        "schedule": crontab(minute="*/5"),
    },
    "expire-points": {
        "task": "loyalty.tasks.lots_expire_task",
        "schedule": crontab(minute=7),
    },
    "warn-expiring-points": {
        "task": "loyalty.tasks.lots_warn_expiring_task",
        "schedule": crontab(hour=6, minute=15),
    },
    "review-tiers": {
        "task": "loyalty.tasks.tier_review_task",
        "schedule": crontab(hour=2, minute=10),
    },
    "birthday-bonuses": {
        "task": "loyalty.tasks.birthday_bonuses_task",
        "schedule": crontab(minute=5),  # hourly: each program's local day; once a year per member
    },
    "expire-vouchers": {
        "task": "rewards.tasks.vouchers_expire_task",
        "schedule": crontab(minute=20),
    },
    "expire-holds": {
        "task": "rewards.tasks.holds_expire_task",
        "schedule": crontab(minute="*/5"),
    },
    "refresh-analytics": {
        "task": "analytics.tasks.analytics_refresh_all_task",
        "schedule": crontab(hour=1, minute=40),  # nightly, one task per active program
    },
    "deliver-webhooks": {
        "task": "events.tasks.webhooks_run_task",
        "schedule": timedelta(seconds=settings.WEBHOOK_POLL_SECONDS),
        "options": {"expires": 2 * settings.WEBHOOK_POLL_SECONDS},  # ticks missed while no worker ran are dropped
    },
    "member-timing-events": {
        "task": "analytics.tasks.member_timing_events_task",
        "schedule": crontab(minute=50),  # hourly: each program's local day comes when it comes; once per member anyway
    },
    "clean-idempotency-keys": {
        "task": "members.tasks.idempotency_keys_clean_task",
        "schedule": crontab(hour=3, minute=30),
    },
}
