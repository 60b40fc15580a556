#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands that only read the code and the migration files sign nothing, so they run without a SECRET_KEY
# (e.g. `makemigrations --check` in a checkout); everything else still needs one outside DEBUG.
KEYLESS_COMMANDS = frozenset({"makemigrations", "showmigrations", "sqlmigrate"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        os.environ.setdefault("LOYALTY_ALLOW_INSECURE_KEY", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
