"""python manage.py clv_fit --program SLUG [--as-of DATE] [--time-unit weeks] [--json]"""

import json

from django.core.management.base import BaseCommand, CommandError

from analytics.lifetime import clv_refresh
from analytics.management.as_of import AS_OF_HELP, as_of_parse, program_option
from analytics.members import member_analytics_refresh
from members.models import TimeUnit


class Command(BaseCommand):
    help = (
        "Fits the BG/NBD and Gamma-Gamma models on a program's purchases as of a date (maximum likelihood), "
        "prints the parameters, the members used and the log-likelihoods, and stores every member's predicted "
        "CLV, P(alive) and expected purchases (after refreshing the member figures as of that date)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="Program slug.")
        parser.add_argument("--as-of", help=AS_OF_HELP)
        parser.add_argument("--time-unit", choices=TimeUnit.values, help="days or weeks; the program's setting.")
        parser.add_argument("--json", action="store_true", help="Print the fit as JSON.")

    def handle(self, *args, **options):
        program = program_option(options["program"])
        as_of = as_of_parse(program, options["as_of"]) if options["as_of"] else None
        figures = member_analytics_refresh(program=program, as_of=as_of)
        result = clv_refresh(program=program, as_of=figures.as_of, time_unit=options["time_unit"])
        fit = result.fit
        summary = {
            "program": program.slug,
            "as_of": fit.as_of.isoformat(),
            "time_unit": fit.time_unit,
            "members_used": fit.members_used,
            "repeat_members": fit.repeat_members,
            "params": fit.params,
            "log_likelihood": fit.log_likelihood,
            "converged": fit.converged,
            "message": fit.message,
            "members_written": result.written,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            params = fit.params
            self.stdout.write(f"CLV fit of {program.slug} as of {summary['as_of']} ({fit.time_unit})")
            self.stdout.write(f"  members used: {fit.members_used:,} ({fit.repeat_members:,} with repeat purchases)")
            for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
                if params.get(name) is not None:
                    self.stdout.write(f"  {name:>6} = {params[name]:.6g}")
            self.stdout.write(f"  log-likelihood: {fit.log_likelihood}")
            self.stdout.write(f"  predictions written for {result.written:,} members")
        if not fit.converged:
            raise CommandError(f"The fit did not converge: {fit.message}")
