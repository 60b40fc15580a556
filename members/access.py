"""Access checks: which programs and rows a signed-in user may see and change. Every surface and the admin ask
here (as Zulip's `access_*` functions), so a rule of access has one place."""

from typing import Any

from django.db.models import QuerySet

from members.models import Program


def managed_programs(user: Any) -> QuerySet[Program]:
    """The programs a staff user may see: all for superusers, else those assigned."""
    if user.is_superuser:
        return Program.objects.all()
    return Program.objects.filter(managers=user)
