"""Models of the loyalty app, one module per part: the ledger, purchases and returns, earning rules, tiers."""

from loyalty.models.ledger import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    MAX_POINTS_PER_ENTRY,
    Account,
    Allocation,
    Entry,
    EntryKind,
    Lot,
    lifetime_deltas,
)
from loyalty.models.purchases import FULLY_RETURNED, NET_THEN, Award, Channel, Purchase, PurchaseLine, Return
from loyalty.models.rules import EarningRule, EventName, split_list
from loyalty.models.tiers import Tier, TierChangeReason, TierHistory

__all__ = [
    "MAX_POINTS_PER_ENTRY",
    "Award",
    "FULLY_RETURNED",
    "NET_THEN",
    "Channel",
    "EarningRule",
    "EventName",
    "Purchase",
    "PurchaseLine",
    "Return",
    "Tier",
    "TierChangeReason",
    "TierHistory",
    "split_list",
    "CREDIT_KINDS",
    "DEBIT_KINDS",
    "Account",
    "Allocation",
    "Entry",
    "EntryKind",
    "Lot",
    "lifetime_deltas",
]
