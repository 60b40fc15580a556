"""Moves the tokens of `rest_framework.authtoken` (stored in plain text) to AccessToken digests.

Existing tokens keep working: each row becomes the SHA-256 digest of its key, with the key's
creation time (so the lifetime counts from then). The plain keys are then deleted from
`authtoken_token`; the emptied table is left in place (drop it at leisure, docs/operations.md).
A database that never had the table has nothing to move.
"""

import hashlib

from django.db import migrations

PLAIN_TABLE = "authtoken_token"


def plain_tokens_to_digests(apps, schema_editor):
    connection = schema_editor.connection
    if PLAIN_TABLE not in connection.introspection.table_names():
        return
    AccessToken = apps.get_model("members", "AccessToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {PLAIN_TABLE}")  # noqa: S608 (a constant)
        rows = cursor.fetchall()
    AccessToken.objects.bulk_create(
        [AccessToken(digest=hashlib.sha256(key.encode()).hexdigest(), user_id=user_id, created_at=created)
         for key, user_id, created in rows],
        ignore_conflicts=True,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PLAIN_TABLE}")  # noqa: S608 (a constant)


class Migration(migrations.Migration):
    dependencies = [("members", "0010_access_tokens")]

    # Not reversible into plain keys (only digests are kept): going back leaves users to sign in again.
    operations = [migrations.RunPython(plain_tokens_to_digests, migrations.RunPython.noop)]
