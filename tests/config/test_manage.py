"""manage.py without a SECRET_KEY: the migrations check runs, anything that could serve or sign refuses."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "LOYALTY_ALLOW_INSECURE_KEY")}
    env["DATABASE_URL"] = "sqlite:///:memory:"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_migrations_check_needs_no_secret_key():
    result = manage("makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_other_commands_still_refuse_to_run_without_a_secret_key():
    result = manage("migrate", "--noinput")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
