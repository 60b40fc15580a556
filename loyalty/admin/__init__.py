"""The loyalty part of the admin, one module per subject:

- `members`: the member page's balances, ledger, tier and tier history; the
  "Adjust points" and "Pin a tier" actions.
- `ledger`: ledger entries and lots, read-only.
- `rules`: earning rules, with the "Test this rule" preview; `tiers`: tiers. Both
  save through `loyalty.services.rules`, so every change invalidates the compiled rules.
- `purchases`: purchases, returns and tier history, read-only.

Scoping follows `members.admin`: a manager sees and chooses only their programs' rows.
"""

from loyalty.admin import ledger, members, purchases, rules, tiers
from loyalty.admin.ledger import EntryAdmin, LotAdmin
from loyalty.admin.members import LEDGER_ENTRIES_ON_MEMBER_PAGE, TIER_HISTORY_ON_MEMBER_PAGE, LoyaltyMemberAdmin
from loyalty.admin.purchases import PurchaseAdmin, ReturnAdmin, TierHistoryAdmin
from loyalty.admin.rules import EarningRuleAdmin
from loyalty.admin.tiers import TierAdmin

__all__ = [
    "LEDGER_ENTRIES_ON_MEMBER_PAGE",
    "TIER_HISTORY_ON_MEMBER_PAGE",
    "EarningRuleAdmin",
    "EntryAdmin",
    "LotAdmin",
    "LoyaltyMemberAdmin",
    "PurchaseAdmin",
    "ReturnAdmin",
    "TierAdmin",
    "TierHistoryAdmin",
    "ledger",
    "members",
    "purchases",
    "rules",
    "tiers",
]
