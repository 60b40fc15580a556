"""Celery application. Tasks run in-process unless REDIS_URL names a broker."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

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
        "task": "loyalty.tasks.analytics_refresh_all_task",
        "schedule": crontab(hour=1, minute=40),  # nightly, one task per active program
    },
    "clean-idempotency-keys": {
        "task": "members.tasks.idempotency_keys_clean_task",
        "schedule": crontab(hour=3, minute=30),
    },
}
