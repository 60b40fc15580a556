"""The moved models keep their content types (and so the permissions granted on them): their app label
becomes `events`. A new database has no content types yet; Django creates them after migrating."""

from django.db import migrations

MODELS = ["outboxevent", "webhookendpoint", "webhookdelivery", "webhookattempt"]


def relabel(old: str, new: str):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        ContentType.objects.filter(app_label=old, model__in=MODELS).update(app_label=new)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_outbox_and_webhooks_from_members"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(relabel("members", "events"), relabel("events", "members"))]
