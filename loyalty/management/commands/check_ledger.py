from django.core.management.base import BaseCommand, CommandError

from loyalty.audit import ledger_audit
from members.models import Program


class Command(BaseCommand):
    help = "Verifies every invariant of the points ledger; exits non-zero when any is broken."

    def add_arguments(self, parser):
        parser.add_argument("--program", help="Program slug (default: all programs).")
        parser.add_argument("--limit", type=int, default=100, help="Print at most this many mismatches.")

    def handle(self, *args, **options):
        program = None
        if options["program"]:
            program = Program.objects.filter(slug=options["program"]).first()
            if program is None:
                raise CommandError(f"No program with slug {options['program']!r}.")
        mismatches = ledger_audit(program=program)
        for mismatch in mismatches[: options["limit"]]:
            self.stdout.write(str(mismatch))
        scope = program.slug if program else "all programs"
        if mismatches:
            raise CommandError(f"{len(mismatches)} ledger mismatch(es) in {scope}.")
        self.stdout.write(self.style.SUCCESS(f"Ledger is consistent ({scope})."))
