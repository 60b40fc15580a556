"""python manage.py analytics_refresh --program SLUG [--as-of DATE]"""

from django.core.management.base import BaseCommand, CommandError

from analytics.management.as_of import AS_OF_HELP, as_of_parse, program_option
from analytics.selectors import analytics_refresh_pending
from analytics.services.refresh import analytics_refresh


class Command(BaseCommand):
    help = (
        "Refreshes a program's analytics now, in this process: member figures, RFM scores and segments, the CLV "
        "fit and predictions, and the dashboard's charts, all as of one moment. After an import of history, give "
        "--as-of the import's last day so that every figure (and the manager API's default windows) is as of it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="Program slug.")
        parser.add_argument("--as-of", help=AS_OF_HELP)

    def handle(self, *args, **options):
        program = program_option(options["program"])
        if analytics_refresh_pending(program):
            raise CommandError(f"A refresh of {program.slug} is already queued or running.")
        as_of = as_of_parse(program, options["as_of"]) if options["as_of"] else None
        status = analytics_refresh(program=program, as_of=as_of)
        self.stdout.write(f"Analytics of {program.slug} refreshed as of {status['as_of']}")
        for name, result in status["results"].items():
            self.stdout.write(f"  {name}: {result}")
