from loyalty.audit import ledger_audit
from loyalty.services.ledger import ledger_credit, ledger_debit


def test_credit_then_debit(member):
    ledger_credit(member=member, amount=100)
    entry = ledger_debit(member=member, amount=30)
    assert entry.amount == -30
    member.account.refresh_from_db()
    assert member.account.available == 70
    assert ledger_audit() == []
