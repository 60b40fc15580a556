from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from members.expiry import ExpiryPolicy
from members.models import Program
from members.services.programs import program_create


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise CommandError(f"{value!r} is not a number") from exc


class Command(BaseCommand):
    help = "Creates a loyalty program (a tenant) with its settings."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Short unique name used in URLs and commands, e.g. acme-cz.")
        parser.add_argument("--name", required=True, help="Display name.")
        parser.add_argument("--currency", required=True, help="ISO 4217 code, e.g. CZK.")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Europe/Prague.")
        parser.add_argument("--points-name", default="points")
        parser.add_argument("--point-value", default="0.01", type=_decimal, help="Money value of one point.")
        parser.add_argument("--pending-days", type=int, default=0, help="Return window before points are spendable.")
        parser.add_argument("--expiry-policy", choices=ExpiryPolicy.values, default=ExpiryPolicy.NEVER)
        parser.add_argument("--expiry-period", type=int, default=12, help="N for the days/month_end policies.")
        parser.add_argument("--expiry-warning-days", type=int, default=30)
        parser.add_argument("--manager", action="append", default=[], help="Username of a manager (repeatable).")

    def handle(self, *args, **options):
        if Program.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"A program with slug {options['slug']!r} already exists.")
        users = get_user_model().objects.filter(username__in=options["manager"])
        missing = set(options["manager"]) - {user.username for user in users}
        if missing:
            raise CommandError(f"No such user: {', '.join(sorted(missing))}")
        try:
            program = program_create(
                slug=options["slug"],
                name=options["name"],
                currency=options["currency"],
                timezone=options["timezone"],
                points_name=options["points_name"],
                point_value=options["point_value"],
                pending_days=options["pending_days"],
                expiry_policy=options["expiry_policy"],
                expiry_period=options["expiry_period"],
                expiry_warning_days=options["expiry_warning_days"],
                managers=list(users),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(self.style.SUCCESS(f"Created program {program.slug} (id {program.pk})."))
