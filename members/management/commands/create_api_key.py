from django.core.management.base import BaseCommand, CommandError

from members.models import Program
from members.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Creates an API key for a program's tills or e-shop and prints it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="Program slug.")
        parser.add_argument("--name", default="API key", help="What the key is for, e.g. 'Prague store tills'.")
        parser.add_argument("--store", default="", help="Optional store code the key belongs to.")

    def handle(self, *args, **options):
        program = Program.objects.filter(slug=options["program"]).first()
        if program is None:
            raise CommandError(f"No program with slug {options['program']!r}.")
        api_key, plain = api_key_create(program=program, name=options["name"], store=options["store"])
        self.stderr.write(f"Created API key {api_key.prefix} for {program.slug}. It is shown only once:")
        self.stdout.write(plain)
