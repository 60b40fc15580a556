"""Property test: any sequence of ledger operations keeps every invariant of the ledger."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.audit import ledger_audit
from loyalty.exceptions import InsufficientPoints
from loyalty.models import Account, EntryKind
from loyalty.services.ledger import ledger_adjust, ledger_credit, ledger_debit, ledger_transfer
from loyalty.services.lots import lots_activate, lots_expire
from tests.factories import MemberFactory, ProgramFactory, StaffFactory

points = st.integers(min_value=1, max_value=500)
who = st.integers(min_value=0, max_value=2)
days = st.integers(min_value=-30, max_value=60)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), who, points, days, st.one_of(st.none(), days)),
        st.tuples(st.just("spend"), who, points),
        st.tuples(st.just("reverse"), who, points),
        st.tuples(st.just("adjust"), who, st.integers(min_value=-300, max_value=300).filter(bool), st.booleans()),
        st.tuples(st.just("transfer"), who, who, points),
        st.tuples(st.just("activate"), days),
        st.tuples(st.just("expire"), days),
    ),
    max_size=25,
)


def _run(operation, members, actor, net):
    name, *args = operation
    now = timezone.now()
    if name == "earn":
        i, amount, pending_days, expiry_days = args
        expires = now + timedelta(days=expiry_days) if expiry_days is not None and expiry_days > 0 else None
        ledger_credit(
            member=members[i], amount=amount, available_at=now + timedelta(days=pending_days), expires_at=expires
        )
        net[i] += amount
    elif name == "spend":
        ledger_debit(member=members[args[0]], amount=args[1])
        net[args[0]] -= args[1]
    elif name == "reverse":
        ledger_debit(member=members[args[0]], amount=args[1], kind=EntryKind.REVERSE, allow_debt=True)
        net[args[0]] -= args[1]
    elif name == "adjust":
        i, amount, allow_debt = args
        ledger_adjust(member=members[i], points=amount, reason="property test", actor=actor, allow_debt=allow_debt)
        net[i] += amount
    elif name == "transfer":
        source, target, amount = args
        if source != target:
            ledger_transfer(source=members[source], target=members[target], amount=amount)
            net[source] -= amount
            net[target] += amount
    else:
        job = lots_activate if name == "activate" else lots_expire
        assert job(now=now + timedelta(days=args[0])).points >= 0


@pytest.mark.django_db
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=operations)
def test_any_sequence_of_operations_keeps_the_ledger_consistent(operations):
    program = ProgramFactory()
    members = [MemberFactory(program=program) for _ in range(3)]
    actor = StaffFactory()
    for member in members:
        ledger_credit(member=member, amount=1)
    net = [1, 1, 1]  # what the operations posted; expiry comes on top, from jobs and debits

    for operation in operations:
        try:
            _run(operation, members, actor, net)
        except InsufficientPoints:
            pass

    assert [str(m) for m in ledger_audit(program=program)] == []
    for member, posted in zip(members, net, strict=True):
        account = Account.objects.get(pk=member.pk)
        assert account.available >= 0 and account.pending >= 0 and account.debt >= 0
        assert account.available + account.pending - account.debt == posted - account.expired
