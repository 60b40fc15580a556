"""Campaign vouchers: a manager gives a reward to a segment of members without spending points."""

import json
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, cast

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.bulk import bulk_insert
from events.outbox import EventType, events_emit
from events.payloads.rewards import voucher_issued_payload
from members.models import Member, Program
from rewards.codes import codes_generate, format_code
from rewards.exceptions import CampaignInvalid, RewardNotFound
from rewards.models import Reward, Voucher, VoucherStatus
from rewards.services.vouchers import reward_event_data

CAMPAIGN_BATCH = 2000
CODE_ATTEMPTS = 5  # 60-bit codes: a collision with the program's codes is already astronomically rare
Issued = tuple[int, int, str]  # voucher id, member id, code


def _new_voucher_ids(count: int) -> list[int] | None:
    """On PostgreSQL, `count` ids from the vouchers' sequence: the COPY writes them, and the events name them
    without reading the vouchers back (COPY returns nothing). Elsewhere None: the database numbers the rows."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Voucher._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _write_vouchers(ids: list[int] | None, member_ids: list[int], codes: list[str], fields: dict[str, Any]) -> None:
    names, values = ["member_id", "code", *fields], tuple(fields.values())
    rows: Iterable[tuple[Any, ...]] = ((pk, code, *values) for pk, code in zip(member_ids, codes, strict=True))
    if ids is not None:
        names, rows = ["id", *names], ((pk, *row) for pk, row in zip(ids, rows, strict=True))
    bulk_insert(Voucher, names, rows)


def _insert_batch(member_ids: list[int], fields: dict[str, Any]) -> list[Issued]:
    """One voucher per member with fresh codes; returns (voucher id, member id, code) of each. The unique
    (program, code) constraint is the guard: a collision rolls back this batch only (savepoint) and it is
    drawn again (with the same ids: the rolled-back rows never used them)."""
    ids = _new_voucher_ids(len(member_ids))
    for attempt in range(CODE_ATTEMPTS):
        codes = codes_generate(len(member_ids))
        try:
            with transaction.atomic():
                _write_vouchers(ids, member_ids, codes, fields)
        except IntegrityError:
            if attempt == CODE_ATTEMPTS - 1:
                raise
            continue
        if ids is None:
            numbered = Voucher.objects.filter(program_id=fields["program_id"], code__in=codes)
            return list(numbered.values_list("pk", "member_id", "code"))
        return list(zip(ids, member_ids, codes, strict=True))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _emit_issued(program: Program, reward: Reward, vouchers: list[Issued], fields: dict[str, Any]) -> None:
    """`voucher.issued` for each (voucher id, member id, code) of the batch, in one COPY (`events_emit`), with
    the payload of a voucher bought with points; `campaign` names the campaign."""
    reward_data = reward_event_data(reward)
    events = [
        (
            member_id,
            voucher_issued_payload(
                member_id=member_id,
                voucher_id=voucher_id,
                code=format_code(code),
                reward=reward_data,
                value=fields["value"],
                min_basket=fields["min_basket"],
                expires_at=fields["expires_at"],
                campaign=fields["campaign"],
            ),
        )
        for voucher_id, member_id, code in vouchers
    ]
    events_emit(program_id=program.pk, type=EventType.VOUCHER_ISSUED, events=events, occurred_at=fields["issued_at"])


def _json_value(value: Any) -> Any:
    """A JSON column's value for `bulk_insert`: COPY on PostgreSQL takes the JSON text; elsewhere the field
    prepares the value itself."""
    return json.dumps(value) if connection.vendor == "postgresql" else value


def _member_id_batches(members: QuerySet[Member]) -> Iterator[list[int]]:
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
    elsewhere), never a query per code. Each voucher gets its `voucher.issued` event in the same
    transaction: per batch, one COPY into the outbox (on PostgreSQL the vouchers' ids come from their
    sequence first, so nothing is read back).
    The reward's stock and per-member limit govern redemptions for points, not campaigns.
    """
    campaign = (campaign or "").strip()
    if not campaign or len(campaign) > cast(int, Voucher._meta.get_field("campaign").max_length):
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
        "scope_skus": _json_value(reward.scope_skus),
        "scope_categories": _json_value(reward.scope_categories),
        "status": str(VoucherStatus.ISSUED),
        "issued_at": now,
        "expires_at": now + timedelta(days=valid_days),
        "points_cost": 0,
        "redeemed_reference": "",
        "campaign": campaign,
    }
    issued = 0
    for member_ids in _member_id_batches(members_queryset.filter(program=program)):
        vouchers = _insert_batch(member_ids, fields)
        _emit_issued(program, reward, vouchers, fields)
        issued += len(member_ids)
    return issued
