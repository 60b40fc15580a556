from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from members.tokens import access_token_create


class Command(BaseCommand):
    help = (
        "Creates a manager API token for a user and prints it once (only its digest is stored). "
        "It lasts ACCESS_TOKEN_LIFETIME_HOURS, or until the user's password changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['username']!r}.")
        key = access_token_create(user=user)
        self.stderr.write(f"Created a token for {user.username}. It is shown only once:")
        self.stdout.write(key)
