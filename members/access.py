"""Access checks: which programs and rows a signed-in user may see and change. Every surface and the admin ask
here (as Zulip's `access_*` functions), so a rule of access has one place."""

from typing import Any

from django.db.models import QuerySet

from members.exceptions import ProgramNotFound
from members.models import Program


def managed_programs(user: Any) -> QuerySet[Program]:
    """The programs a staff user may see: all for superusers, else those assigned."""
    if user.is_superuser:
        return Program.objects.all()
    return Program.objects.filter(managers=user)


def access_program_by_slug(user: Any, slug: str) -> Program:
    """The program with this slug if `user` manages it, else ProgramNotFound: 404 whether or not it exists, so
    the answer does not tell another program's slug from an unknown one. The manager API's `?program=` and
    `program` fields resolve here."""
    program = managed_programs(user).filter(slug=slug).first()
    if program is None:
        raise ProgramNotFound()
    return program


def access_program_chosen(user: Any, chosen: str | None) -> tuple[list[Program], Program | None]:
    """The programs `user` manages, by name, and the one an admin page shows: `chosen` (`?program=<id>`) when it
    is one of them, else the first (None when the user manages none)."""
    programs = list(managed_programs(user).order_by("name"))
    program = next((p for p in programs if str(p.pk) == chosen), programs[0] if programs else None)
    return programs, program
