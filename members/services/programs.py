"""Creating programs and saving their settings."""

from typing import Any

from members.models import Program
from members.services.api_keys import api_keys_uncache


def program_settings_save(*, program: Program, fields: list[str]) -> Program:
    """Saves changed settings of a program. Its keys carry the program in the authentication cache: they are
    dropped from it, so a deactivation (or any other setting) reaches the tills as a key revocation does."""
    program.save(update_fields=fields)
    api_keys_uncache(list(program.api_keys.values_list("key_hash", flat=True)))
    return program


def program_create(
    *, slug: str, name: str, currency: str, managers: list[Any] | None = None, **settings_: Any
) -> Program:
    program = Program(slug=slug, name=name, currency=currency.upper(), **settings_)
    program.full_clean()
    program.save()
    if managers:
        program.managers.add(*managers)
    return program
