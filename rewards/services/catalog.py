"""Writes on the reward catalog. The manager API and the admin both save rewards here."""

from collections.abc import Iterable

from django.db import transaction

from rewards.models import Reward

# What a manager edits. The program is fixed at creation (vouchers and tiers hang on it);
# the timestamps belong to the server.
EDITABLE_FIELDS = frozenset(
    field.name
    for field in Reward._meta.concrete_fields
    if not field.primary_key and field.name not in ("program", "created_at", "updated_at")
)


@transaction.atomic
def reward_save(*, reward: Reward, fields: Iterable[str] | None = None) -> Reward:
    """Validates a new or changed reward by the model's own rules (field validators, `clean()`,
    the check constraints) and saves it; raises django's ValidationError and saves nothing otherwise.

    For an existing reward, `fields` names what the caller changed (None: every editable field, as a
    full form does). The row is locked and every other field is read back from it, so an edit made
    from a stale copy never writes back a stock that redemptions have moved in the meantime."""
    if reward.pk is None:
        reward.full_clean()
        reward.save()
        return reward
    changed = EDITABLE_FIELDS if fields is None else frozenset(fields)
    if unknown := changed - EDITABLE_FIELDS:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    current = Reward.objects.select_for_update().get(pk=reward.pk)
    for field in Reward._meta.concrete_fields:
        if field.name not in changed:
            setattr(reward, field.attname, getattr(current, field.attname))
    reward.full_clean()
    reward.save(update_fields=[*sorted(changed), "updated_at"])
    return reward
