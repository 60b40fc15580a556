"""The --program and --as-of options of the analytics commands (analytics_refresh, clv_fit)."""

from datetime import datetime

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime

from analytics.selectors import day_end
from members.models import Program

AS_OF_HELP = "A date (the end of that day in the program's time zone) or a datetime; now when left out."


def as_of_parse(program: Program, text: str) -> datetime:
    """A date means the end of that day in the program's time zone; a datetime without a zone is local."""
    try:
        day = parse_date(text)
        if day is not None:
            return day_end(program, day)
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--as-of: not a date or datetime: {text!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=program.tz)


def program_option(slug: str) -> Program:
    """The program --program names, or a CommandError."""
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise CommandError(f"No program {slug!r}.")
    return program
