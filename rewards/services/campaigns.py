"""Campaign vouchers: a manager gives a reward to a segment of members without spending points."""

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.bulk import bulk_insert
from members.models import Member, Program

from ..codes import codes_generate
from ..exceptions import CampaignInvalid, RewardNotFound
from ..models import Reward, Voucher, VoucherStatus

CAMPAIGN_BATCH = 2000
CODE_ATTEMPTS = 5  # 60-bit codes: a collision with the program's codes is already astronomically rare


def _insert_batch(member_ids: list[int], fields: dict[str, Any]) -> None:
    """One voucher per member with fresh codes. The unique (program, code) constraint is the
    guard: a collision rolls back this batch only (savepoint) and it is drawn again."""
    names, values = ["member_id", "code", *fields], tuple(fields.values())
    for attempt in range(CODE_ATTEMPTS):
        codes = codes_generate(len(member_ids))
        try:
            with transaction.atomic():
                bulk_insert(Voucher, names, ((pk, code, *values) for pk, code in zip(member_ids, codes, strict=True)))
            return
        except IntegrityError:
            if attempt == CODE_ATTEMPTS - 1:
                raise


def _member_id_batches(members: QuerySet[Member]):
    """The members' ids in primary-key order, a batch at a time (keyset, no OFFSET)."""
    ids = members.order_by("pk").values_list("pk", flat=True)
    last = 0
    while batch := list(ids.filter(pk__gt=last)[:CAMPAIGN_BATCH]):
        yield batch
        last = batch[-1]


@transaction.atomic
def campaign_issue(
    *,
    program: Program,
    reward: Reward,
    members_queryset: QuerySet[Member],
    campaign: str,
    valid_days: int | None = None,
    actor: Any = None,
) -> int:
    """Issues one voucher of `reward` to every member of `members_queryset` (only the program's
    members count), spending no points. All or nothing: one transaction. Returns how many.

    Codes come from `secrets` in Python; a batch is one COPY on PostgreSQL (one INSERT per 500 rows
    elsewhere), never a query per code.
    The reward's stock and per-member limit govern redemptions for points, not campaigns.
    """
    campaign = (campaign or "").strip()
    if not campaign or len(campaign) > Voucher._meta.get_field("campaign").max_length:
        raise CampaignInvalid("Give the campaign a name of 1 to 100 characters.", field="campaign")
    if reward.program_id != program.pk:
        raise RewardNotFound()
    valid_days = valid_days if valid_days is not None else reward.voucher_valid_days
    if valid_days < 1:
        raise CampaignInvalid("Vouchers must be valid for at least one day.", field="valid_days")
    now = timezone.now()
    fields = {  # every NOT NULL column of a voucher, as the database stores it
        "program_id": program.pk,
        "reward_id": reward.pk,
        "kind": str(reward.kind),
        "value": reward.value,
        "min_basket": reward.min_basket,
        "status": str(VoucherStatus.ISSUED),
        "issued_at": now,
        "expires_at": now + timedelta(days=valid_days),
        "points_cost": 0,
        "redeemed_reference": "",
        "campaign": campaign,
    }
    issued = 0
    for member_ids in _member_id_batches(members_queryset.filter(program=program)):
        _insert_batch(member_ids, fields)
        issued += len(member_ids)
    return issued
