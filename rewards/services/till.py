"""Vouchers at the till: validating a code against a basket and redeeming it on a sale.

The discount applies to the basket's lines in the voucher's scope (`rewards.discounts`); redeeming
records the discount given. A till using a voucher locks only that voucher's row (vouchers.py has the
lock order of the other voucher paths).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from events.outbox import EventType, event_emit
from events.payloads.rewards import voucher_redeemed_payload
from members.models import Member, Program
from rewards.codes import normalize_code
from rewards.discounts import BasketLine, Scope, discount_of
from rewards.exceptions import (
    VoucherAlreadyRedeemed,
    VoucherBasketRequired,
    VoucherCancelled,
    VoucherExpired,
    VoucherMinBasketNotMet,
    VoucherNotFound,
    VoucherOutOfScope,
    VoucherWrongMember,
)
from rewards.models import RewardKind, Voucher, VoucherStatus


@dataclass
class ValidationResult:
    valid: bool
    discount: Decimal | None  # None when the basket is needed to tell and was not given
    voucher: Voucher


@dataclass
class RedeemResult:
    voucher: Voucher
    discount: Decimal | None
    replayed: bool = False


def _voucher_find(*, program: Program, code: str, lock: bool = False) -> Voucher:
    """The program's voucher with this code; a code of another program is simply not found."""
    normalized = normalize_code(code)
    vouchers = Voucher.objects.filter(program=program, code=normalized)
    if lock:
        vouchers = vouchers.select_for_update()
    voucher = vouchers.first() if normalized else None
    if voucher is None:
        raise VoucherNotFound()
    return voucher


def _voucher_scope(voucher: Voucher) -> Scope:
    return Scope.of(voucher.scope_skus, voucher.scope_categories)


def _base(voucher: Voucher, basket_amount: Decimal | None, lines: Sequence[BasketLine] | None) -> Decimal | None:
    """The amount the voucher applies to: its lines in scope (every line without a scope); without lines,
    the basket amount, which only a voucher without scope can use. None: no basket was given."""
    scope = _voucher_scope(voucher)
    if lines is not None:
        base = scope.amount_in(lines)
        if base is None:
            raise VoucherOutOfScope(
                "No line of the basket is in the voucher's scope.",
                scope={"skus": voucher.scope_skus, "categories": voucher.scope_categories},
            )
        return base
    if scope and basket_amount is not None:
        raise VoucherBasketRequired("The voucher applies to some lines only: send the basket's lines.", needs="lines")
    return basket_amount


def voucher_discount(
    voucher: Voucher, basket_amount: Decimal | None = None, lines: Sequence[BasketLine] | None = None
) -> Decimal | None:
    """What the voucher takes off the basket (None: the basket is needed to tell). Errors: voucher_out_of_scope,
    voucher_basket_required (a scoped voucher given only an amount)."""
    return discount_of(voucher.kind, voucher.value, _base(voucher, basket_amount, lines))


def _check_usable(voucher: Voucher, *, member: Member | None, now: datetime) -> None:
    if voucher.status == VoucherStatus.REDEEMED:
        raise VoucherAlreadyRedeemed()
    if voucher.status == VoucherStatus.CANCELLED:
        raise VoucherCancelled()
    if voucher.status == VoucherStatus.EXPIRED or voucher.expires_at <= now:
        raise VoucherExpired(expires_at=voucher.expires_at.isoformat())
    if member is not None and voucher.member_id is not None and voucher.member_id != member.pk:
        raise VoucherWrongMember()


def _check_basket(
    voucher: Voucher, basket_amount: Decimal | None, lines: Sequence[BasketLine] | None
) -> Decimal | None:
    """The voucher's discount on the basket, once the basket meets its scope and minimum."""
    base = _base(voucher, basket_amount, lines)
    if voucher.min_basket is not None and base is not None and base < voucher.min_basket:
        raise VoucherMinBasketNotMet(
            f"The voucher needs {voucher.min_basket} in its scope; the basket has {base}.",
            min_basket=str(voucher.min_basket),
            amount_in_scope=str(base),
        )
    if base is None and _voucher_scope(voucher):
        return None  # what a voucher with a scope gives depends on the lines
    return discount_of(voucher.kind, voucher.value, base)


def _basket_needed(voucher: Voucher, basket_amount: Decimal | None, lines: Sequence[BasketLine] | None) -> str:
    """What a redemption must send for the discount to be known and the minimum basket checked ("" when
    nothing more is needed): a voucher with a scope needs the lines, a percent discount or a minimum basket at
    least the basket amount."""
    if lines is not None:
        return ""
    if _voucher_scope(voucher):
        return "lines"
    if basket_amount is None and (voucher.kind == RewardKind.PERCENT_DISCOUNT or voucher.min_basket):
        return "basket_amount or lines"
    return ""


def voucher_validate(
    *,
    program: Program,
    code: str,
    basket_amount: Decimal | None = None,
    lines: Sequence[BasketLine] | None = None,
    member: Member | None = None,
) -> ValidationResult:
    """Whether the voucher can be used now (on this basket, by this member), and its discount on the lines
    in its scope. Without a basket the discount is None where it depends on the basket. Writes nothing."""
    voucher = _voucher_find(program=program, code=code)
    _check_usable(voucher, member=member, now=timezone.now())
    discount = _check_basket(voucher, basket_amount, lines)
    return ValidationResult(valid=True, discount=discount, voucher=voucher)


@transaction.atomic
def voucher_redeem(
    *,
    program: Program,
    code: str,
    reference: str,
    basket_amount: Decimal | None = None,
    lines: Sequence[BasketLine] | None = None,
    member: Member | None = None,
) -> RedeemResult:
    """Uses the voucher on the till's sale `reference` and records the discount given on the basket's
    lines in scope. A discount that depends on the basket (a percent, or any voucher with a scope) needs
    it: voucher_basket_required otherwise. The voucher's row lock makes two tills presenting one code at
    once serialise: one redeems it, the other is refused. The same code sent again with the same
    reference replays the first answer."""
    voucher = _voucher_find(program=program, code=code, lock=True)
    if voucher.status == VoucherStatus.REDEEMED and voucher.redeemed_reference == reference:
        return RedeemResult(voucher=voucher, discount=voucher.redeemed_discount, replayed=True)
    now = timezone.now()
    _check_usable(voucher, member=member, now=now)
    if needs := _basket_needed(voucher, basket_amount, lines):
        raise VoucherBasketRequired(f"The voucher's discount depends on the basket: send {needs}.", needs=needs)
    discount = _check_basket(voucher, basket_amount, lines)
    assert discount is not None  # known once the basket is
    voucher.status = VoucherStatus.REDEEMED
    voucher.redeemed_at = now
    voucher.redeemed_reference = reference
    voucher.redeemed_discount = discount
    voucher.save(update_fields=["status", "redeemed_at", "redeemed_reference", "redeemed_discount"])
    event_emit(
        program_id=program.pk,
        member_id=voucher.member_id,
        type=EventType.VOUCHER_REDEEMED,
        occurred_at=now,
        data=voucher_redeemed_payload(
            member_id=voucher.member_id,
            voucher_id=voucher.pk,
            code=voucher.display_code,
            reward_id=voucher.reward_id,
            campaign=voucher.campaign,
            reference=reference,
            discount=discount,
        ),
    )
    return RedeemResult(voucher=voucher, discount=voucher.redeemed_discount)
