"""Seeds a small demo program for the schema fuzzing run (`make fuzz`) and prints the credentials of the
three API surfaces as shell assignments: a POS API key, a manager token and a member app sign-in."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo.management.commands.seed_demo import DEMO_SLUG
from members.app_auth import member_app_user_set
from members.models import Member, MemberStatus
from members.services.api_keys import api_key_create
from members.tokens import access_token_create

APP_PASSWORD = "fuzz-plum-harbour-42"


class Command(BaseCommand):
    help = "Seeds the demo program with a few members and prints FUZZ_* credentials for the three API surfaces."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=25)
        parser.add_argument("--admin-username", default="fuzz-admin")

    def handle(self, *args, **options):
        username = options["admin_username"]
        # The admin password is never used: the manager API is called with the admin's token.
        call_command("seed_demo", members=options["members"], admin_username=username, stdout=self.stderr)
        program = Member.objects.get(program__slug=DEMO_SLUG, external_id="CUST-000001").program
        admin = program.managers.get(username=username)
        token = access_token_create(user=admin)
        _, pos_key = api_key_create(program=program, name="Schema fuzzing")
        member = (
            Member.objects.filter(program=program, status=MemberStatus.ACTIVE, email__isnull=False)
            .order_by("pk")
            .first()
        )
        assert member is not None  # seed_demo enrols active members with an email
        member_app_user_set(member=member, password=APP_PASSWORD)
        for name, value in (
            ("FUZZ_POS_KEY", pos_key),
            ("FUZZ_MANAGE_TOKEN", token),
            ("FUZZ_PROGRAM", program.slug),
            ("FUZZ_APP_EMAIL", member.email),
            ("FUZZ_APP_PASSWORD", APP_PASSWORD),
        ):
            self.stdout.write(f"{name}={value}")
