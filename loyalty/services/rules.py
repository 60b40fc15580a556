"""Writes on earning rules (tiers: `loyalty.services.tiers`). Each one bumps the program's config version, so every
process recompiles the program's ruleset on its next purchase."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import F

from loyalty.models import EarningRule, Tier
from members.models import Program


def program_config_changed(*, program: Program) -> None:
    Program.objects.filter(pk=program.pk).update(config_version=F("config_version") + 1)


@transaction.atomic
def earning_rule_save(*, rule: EarningRule, tiers: Iterable[Tier] | None = None) -> EarningRule:
    """Validates and saves a rule (new or changed), with the tiers it is limited to.

    `budget_used` belongs to the purchases: it is re-read under the rule's lock and never
    written from here, so an edit made from a stale form cannot give a budget out twice."""
    if rule.pk is not None:
        rule.budget_used = EarningRule.objects.select_for_update().values_list("budget_used", flat=True).get(pk=rule.pk)
    rule.full_clean(exclude=["budget_used"])
    if rule.pk is None:
        rule.save()
    else:
        rule.save(
            update_fields=[
                f.name
                for f in EarningRule._meta.concrete_fields
                if not f.primary_key and f.name not in ("budget_used", "created_at")
            ]
        )
    if tiers is not None:
        rule.tiers.set(list(tiers))
    program_config_changed(program=rule.program)
    return rule


@transaction.atomic
def earning_rule_deactivate(*, rule: EarningRule) -> EarningRule:
    """Rules that gave points are kept for the record; they are switched off instead of deleted."""
    rule.is_active = False
    rule.save(update_fields=["is_active", "updated_at"])
    program_config_changed(program=rule.program)
    return rule
