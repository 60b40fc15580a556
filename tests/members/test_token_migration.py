"""Migration members.0011: plain DRF tokens become digests that keep working; the plain keys are deleted."""

from datetime import timedelta
from importlib import import_module
from types import SimpleNamespace

from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import AccessToken
from members.tokens import token_digest

migration = import_module("members.migrations.0011_access_tokens_from_plain_tokens")

PLAIN_KEY = "0123456789abcdef0123456789abcdef01234567"


def test_plain_tokens_become_digests_and_keep_working(manager):
    created = timezone.now() - timedelta(days=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamptz)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [PLAIN_KEY, manager.pk, created])

    migration.plain_tokens_to_digests(apps, SimpleNamespace(connection=connection))

    token = AccessToken.objects.get(user=manager)
    assert (token.digest, token.created_at) == (token_digest(PLAIN_KEY), created)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {PLAIN_KEY}")
    assert client.get("/api/manage/v1/members/").status_code == 200


def test_without_the_plain_table_nothing_happens(db):
    migration.plain_tokens_to_digests(apps, SimpleNamespace(connection=connection))

    assert not AccessToken.objects.exists()
