"""Query-string serializers the surfaces share: `?program=<slug>`, the program a manager's report is about.

Resolve the slug with `members.access.access_program_by_slug` (ManageAPIView.managed_program): 404
program_not_found for a program the user does not manage, whether it exists or not. List filters take the
same parameter through `config.api.filters.program_filter`.
"""

from rest_framework import serializers

PROGRAM_SLUG_MAX_LENGTH = 64  # Program.slug's column


def program_slug(*, max_length: int | None = PROGRAM_SLUG_MAX_LENGTH) -> serializers.SlugField:
    if max_length is None:
        return serializers.SlugField(help_text="Program slug.")
    return serializers.SlugField(max_length=max_length, help_text="Program slug.")


class ProgramQuery(serializers.Serializer):
    program = program_slug()


class UnboundedProgramQuery(ProgramQuery):
    # The RFM, refresh and attainability endpoints (and the bodies built on this class) published `program`
    # without a maxLength; the schema is a contract, so a longer slug stays a 404 there instead of a 400.
    program = program_slug(max_length=None)
