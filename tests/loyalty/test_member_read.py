"""`member_with_balances`, the till's one-statement member read, against the ORM reads it replaced on the
lookup and detail endpoints (`member_get` and `member_balances`): the same member and the same balances."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.apis.serializers import MemberOutput
from loyalty.models import Account
from loyalty.selectors import member_balances, member_with_balances
from loyalty.services.ledger import ledger_credit, ledger_debit
from members.exceptions import MemberNotFound
from members.selectors import member_get
from tests.factories import MemberFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def _both(program, field, value):
    now = timezone.now()
    fast = member_with_balances(program=program, field=field, value=value, now=now)
    member = member_get(program=program, field=field, value=value)
    assert fast == member and fast.program == member.program
    assert fast._balances == member_balances(member=member, now=now)
    assert MemberOutput(fast).data == {**MemberOutput(member).data, "balances": MemberOutput(fast).data["balances"]}
    return fast


def test_balances_lots_and_debt_read_as_member_balances_reads_them():
    program = ProgramFactory(expiry_warning_days=30)
    member = MemberFactory(program=program, card="400000001234", email="jana@example.com")
    now = timezone.now()
    ledger_credit(member=member, amount=100, expires_at=now + timedelta(days=5))
    ledger_credit(member=member, amount=40, expires_at=now + timedelta(days=45))
    ledger_credit(member=member, amount=7, expires_at=None)
    ledger_credit(member=member, amount=30, available_at=now + timedelta(days=14), expires_at=now + timedelta(days=20))
    ledger_debit(member=member, amount=60)

    for field, value in (("id", member.pk), ("card", "4000-0000-1234"), ("email", "Jana@Example.com")):
        balances = _both(program, field, value)._balances
    assert (balances.available, balances.pending, balances.expiring_soon) == (87, 30, 70)


def test_a_member_without_an_account_has_empty_balances():
    program = ProgramFactory()
    member = MemberFactory(program=program)
    assert not Account.objects.filter(pk=member.pk).exists()

    assert _both(program, "id", member.pk)._balances.available == 0


def test_another_programs_member_is_not_found():
    member = MemberFactory()
    with pytest.raises(MemberNotFound):
        member_with_balances(program=ProgramFactory(), field="id", value=member.pk)
    with pytest.raises(MemberNotFound):
        member_with_balances(program=member.program, field="id", value="not-a-number")
