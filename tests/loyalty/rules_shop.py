"""The shop of the earning-rule tests, shared by the admin's and the manager API's: Silver from 500, Gold from 5000
(x1.5), a base rate of 0.1 point per EUR without gift cards, books double; and its sale of 1234.50 EUR (600.00 of
books, a 500.00 gift card, 134.50 of toys) that earns 133 points."""

from decimal import Decimal
from typing import Any

from loyalty.models import EarningRule, Tier
from loyalty.services.purchases import PurchaseInput, purchase_simulate
from members.models import Member, Program
from tests.builders import line, purchase_data, rule, tier

SALE_LINES = (line("BK-1", "600.00", "books"), line("GC-1", "500.00", "gift-cards"), line("TO-1", "134.50", "toys"))


def rules_shop(program: Program) -> dict[str, Tier | EarningRule]:
    """The shop's tiers and rules in `program`."""
    return {
        "silver": tier(program, "Silver", rank=1, threshold=500),
        "gold": tier(program, "Gold", rank=2, threshold=5000, earn_multiplier=Decimal("1.5")),
        "base": rule(program, name="Base rate", rate=Decimal("0.1"), excluded_categories="gift-cards"),
        "books": rule(
            program, name="Books double", kind="multiplier", multiplier=Decimal(2), categories="books", priority=200
        ),
    }


def sale(external_id: str, **fields: Any) -> PurchaseInput:
    """The shop's sale, now unless `occurred_at` says otherwise."""
    return purchase_data(external_id, lines=SALE_LINES, **fields)


def simulated_points(program: Program, member: Member, **fields: Any) -> int:
    """What the till would be told now (the program read afresh, as each request reads it)."""
    program = Program.objects.get(pk=program.pk)
    return purchase_simulate(program=program, member=member, data=sale("SIM-1", **fields)).points


def version(program: Program) -> int:
    """The program's config version as stored (every rule or tier change bumps it)."""
    return Program.objects.get(pk=program.pk).config_version
