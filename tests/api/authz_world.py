"""The world of the authorization matrix (test_authorization_matrix.py): three programs and every principal,
and how a request is sent and its answer judged.

The victim program holds one of each kind of object, every one carrying a marker string; the other tenant's
program holds the same under other markers; a deactivated program has a key. Principals are made once and
send their credentials on each request.
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from loyalty.services.ledger import ledger_credit
from members.app_auth import member_app_user_set
from members.models import Member, Program
from members.services.api_keys import api_key_revoke
from members.services.programs import program_settings_save
from members.tokens import access_token_create
from rewards.services import hold_create
from tests import builders
from tests.clients import PASSWORD
from tests.events.webhook_rows import answer, delivery_make
from tests.factories import (
    ApiKeyFactory,
    MemberFactory,
    ProgramFactory,
    RewardFactory,
    StaffFactory,
    SuperuserFactory,
    WebhookEndpointFactory,
)

PRINCIPALS = (
    "anonymous",
    "other_key",
    "inactive_key",
    "revoked_key",
    "member",
    "fellow_member",
    "other_member",
    "manager_without_permission",
    "other_manager",
    "superuser",
    "rightful",
)


@dataclass
class Tenant:
    """One program with one object of each kind; `markers` are strings found only in this tenant's data."""

    program: Program
    member: Member
    objects: dict[str, Any]
    personal: list[str] = field(default_factory=list)  # the member's own data
    markers: list[str] = field(default_factory=list)  # everything, the personal data included


def _card_forms(card: str) -> list[str]:
    return [card, f"{card[:4]}-{card[4:8]}-{card[8:]}"]


def tenant_seed(word: str, card: str) -> Tenant:
    """A program whose every name, reference and personal datum contains `word` (e.g. "Victim")."""
    upper = word.upper()
    program = ProgramFactory(name=f"{word} Program", currency="EUR")
    member = MemberFactory(
        program=program,
        card=card,
        email=f"{word.lower()}.member@example.com",
        first_name=f"{word}first",
        last_name=f"{word}last",
        external_id=f"{upper}-EXT-1",
        phone="+420601" + card[-6:],
    )
    member_app_user_set(member=member, password=PASSWORD)
    rule = builders.rule(program, name=f"{word} rule", kind="base_rate", rate=Decimal(1))
    tier = builders.tier(program, f"{word} tier", rank=1, threshold=0)
    ledger_credit(member=member, amount=5000)
    purchase = builders.purchase(
        member, f"{upper}-PURCHASE-1", "100.00", occurred_at=timezone.now() - timedelta(days=2), store=f"{upper}-STORE"
    ).purchase
    builders.return_(program, purchase.external_id, f"{upper}-RETURN-1", amount="10.00")
    reward = RewardFactory(program=program, name=f"{word} reward", points_cost=100)
    voucher = builders.redeem(member, reward).voucher
    hold = hold_create(member=member, basket_reference=f"{upper}-BASKET", basket_amount=Decimal(100), points=100).hold
    endpoint = WebhookEndpointFactory(program=program, description=f"{word} hook")
    delivery = delivery_make(endpoint, member, [answer(500, excerpt=f"{word} receiver error")])
    objects = {
        "rule": rule,
        "tier": tier,
        "purchase": purchase,
        "reward": reward,
        "voucher": voucher,
        "hold": hold,
        "endpoint": endpoint,
        "delivery": delivery,
    }
    personal = [
        member.email,
        member.first_name,
        member.last_name,
        member.external_id,
        member.phone,
        *_card_forms(card),
        voucher.display_code,
        hold.basket_reference,
    ]
    markers = [
        *personal,
        program.name,
        rule.name,
        tier.name,
        purchase.external_id,
        f"{upper}-RETURN-1",
        f"{upper}-STORE",
        reward.name,
        endpoint.description,
    ]
    return Tenant(program=program, member=member, objects=objects, personal=personal, markers=markers)


@dataclass
class World:
    victim: Tenant
    other: Tenant
    fellow: Member  # another member of the victim program
    headers: dict[str, dict[str, str]]  # principal -> request headers


def _key_header(program: Program, *, store: str = "") -> tuple[Any, dict[str, str]]:
    api_key = ApiKeyFactory(program=program, name="Till", store=store)
    plain = api_key.plain
    return api_key, {"HTTP_AUTHORIZATION": f"Api-Key {plain}"}


def _token_header(user: User) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {access_token_create(user=user)}"}


def _staff(*programs: Program, permissions: bool) -> User:
    user = StaffFactory(permissions=[])
    if permissions:
        user.user_permissions.add(*Permission.objects.all())
    for program in programs:
        program.managers.add(user)
    return user


def world_seed() -> World:
    victim = tenant_seed("Victim", "400077770001")
    other = tenant_seed("Othertenant", "400088880001")
    fellow = MemberFactory(program=victim.program, email="fellow@example.com")
    member_app_user_set(member=fellow, password=PASSWORD)
    inactive = ProgramFactory(name="Paused program")
    _, inactive_header = _key_header(inactive)
    inactive.is_active = False
    program_settings_save(program=inactive, fields=["is_active"])
    revoked, revoked_header = _key_header(victim.program)
    api_key_revoke(api_key=revoked)
    superuser = SuperuserFactory(password=PASSWORD)
    headers = {
        "anonymous": {},
        "other_key": _key_header(other.program)[1],
        "inactive_key": inactive_header,
        "revoked_key": revoked_header,
        "member": _token_header(victim.member.user),
        "fellow_member": _token_header(fellow.user),
        "other_member": _token_header(other.member.user),
        "manager_without_permission": _token_header(_staff(victim.program, permissions=False)),
        "other_manager": _token_header(_staff(other.program, permissions=True)),
        "superuser": _token_header(superuser),
    }
    return World(victim=victim, other=other, fellow=fellow, headers=headers)


def rightful_headers(world: World, surface: str) -> dict[str, str]:
    """Who may: the victim program's key, its member, or a manager of it with every permission."""
    if surface == "pos":
        return _key_header(world.victim.program)[1]
    if surface == "app":
        return world.headers["member"]
    return _token_header(_staff(world.victim.program, permissions=True))


# --- Sending and judging ---------------------------------------------------------------------------------

PROBLEM = "application/problem+json"


def verdict(response: Any, expected: str, method: str) -> str | None:
    """None if the response is the expected outcome, else what it was (HEAD has no body: status only)."""
    status = response.status_code
    is_problem = response.get("Content-Type", "").startswith(PROBLEM)
    code = _problem_code(response) if is_problem and method != "HEAD" else None
    if expected == "ok":
        fine = 200 <= status < 300 or (status in (400, 409, 422) and is_problem)
    elif expected == "2xx":
        fine = 200 <= status < 300
    else:
        want_status, _, want_code = expected.partition(" ")
        fine = status == int(want_status) and (not want_code or method == "HEAD" or (is_problem and code == want_code))
    return None if fine else f"{status} {code or ''}".strip()


def _problem_code(response: Any) -> str | None:
    try:
        return json.loads(response.content).get("code")
    except ValueError:  # the HTML docs page renders its errors as text
        return None


def request(client: Client, method: str, path: str, data: Any, headers: dict[str, str]) -> Any:
    if method in ("GET", "HEAD"):
        return client.generic(method, path, QUERY_STRING=urlencode(data or {}), **headers)
    if method == "OPTIONS":
        return client.options(path, **headers)
    # A write runs in a savepoint rolled back at once, with fresh throttle counters: every principal meets the
    # same world, and failed sign-ins or voucher guesses of one request do not throttle the next.
    cache.clear()
    with transaction.atomic():
        response = client.generic(method, path, json.dumps(data or {}), content_type="application/json", **headers)
        transaction.set_rollback(True)
    return response
