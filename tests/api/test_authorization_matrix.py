"""Every endpoint, every method, every principal: who gets in, who is told what, and that nobody sees another
tenant's or another member's data.

The routes come from config.urls' resolver; ROUTES holds one row per route name with the request each method
sends and the outcomes that differ from its surface's conventions (SURFACES). A route without a row, or a row
without a route, fails the test. The victim's objects are named in every URL and body; each tenant's data
carries marker strings (authz_world.py) that must not appear in an answer to a principal who may not see them.

Outcomes: "2xx" a success (every request of the rightful principal succeeds); "ok" a 2xx, or a 400/409/422
problem (a member acting on their own account may lack the points, never the right); "401 not_authenticated"
the status and problem code; "404" a 404 problem of any code. HEAD answers as GET; OPTIONS as the first method
when that refuses, else 2xx (it shows no data).

Each write runs in a savepoint rolled back afterwards, with the cache (throttle counters) emptied, so every
principal meets the same world; one test, one world, about 2,000 requests.
"""

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.api.authz_world import PRINCIPALS, World, request, rightful_headers, verdict, world_seed

Call = Callable[[World], tuple[dict[str, Any], Any]]  # the URL's kwargs and the body (or the query)
PREFIXES = ("api/pos/v1/", "api/app/v1/", "api/manage/v1/", "api/schema/", "api/docs/", "health/")

KEYS = ("other_key", "inactive_key", "revoked_key")
TOKENS = ("member", "fellow_member", "other_member", "manager_without_permission", "other_manager", "superuser")
MEMBERS = ("member", "fellow_member", "other_member")
STAFF = ("manager_without_permission", "other_manager", "superuser")

SURFACES: dict[str, dict[str, str]] = {
    "pos": {
        "anonymous": "401 not_authenticated",
        "other_key": "404",  # another program's objects do not exist for it
        "inactive_key": "403 program_inactive",
        "revoked_key": "401 authentication_failed",
        **dict.fromkeys(TOKENS, "401 not_authenticated"),  # a user token is no API key
        "rightful": "2xx",
    },
    "manage": {
        "anonymous": "401 not_authenticated",
        **dict.fromkeys(KEYS, "401 not_authenticated"),
        **dict.fromkeys(MEMBERS, "403 permission_denied"),
        "manager_without_permission": "403 permission_denied",
        "other_manager": "404",  # objects of programs they do not manage do not exist for them
        "superuser": "2xx",
        "rightful": "2xx",
    },
    "app": {
        "anonymous": "401 not_authenticated",
        **dict.fromkeys(KEYS, "401 not_authenticated"),
        **dict.fromkeys(MEMBERS, "ok"),  # each on their own data: the member comes from the token
        **dict.fromkeys(STAFF, "403 permission_denied"),
        "rightful": "2xx",
    },
    "public": dict.fromkeys(PRINCIPALS, "2xx"),
}


@dataclass(frozen=True)
class Row:
    surface: str
    calls: dict[str, Call]  # method -> request
    expect: dict[str, str] = field(default_factory=dict)  # principal -> outcome, where the surface's differs


def at(**names: str) -> Call:
    """URL kwargs naming the victim's objects: at(member_id="member", hold_id="hold")."""
    return lambda w: ({kw: _victim_object(w, name).pk for kw, name in names.items()}, None)


def send(body: Callable[[World], Any], **names: str) -> Call:
    return lambda w: (at(**names)(w)[0], body(w))


def _victim_object(w: World, name: str) -> Any:
    return w.victim.member if name == "member" else w.victim.objects[name]


def slug(w: World) -> dict[str, str]:
    return {"program": w.victim.program.slug}


NONE: Call = at()
CARD = {"card": "400077770001"}
LINES = [{"sku": "BK-1", "category": "books", "quantity": 1, "amount": "100.00"}]


def purchase(w: World) -> dict[str, Any]:
    return {
        "external_id": "MATRIX-1",
        "member": CARD,
        "occurred_at": "2026-11-23T10:15:00+01:00",
        "currency": "EUR",
        "total": "100.00",
    }


def voucher(w: World, **extra: Any) -> dict[str, Any]:
    return {"code": w.victim.objects["voucher"].code, **extra}


ENROLLS = {"other_key": "2xx"}  # a key enrolls into its own program
FOREIGN_PROGRAM_INPUT = {"other_manager": "400 validation_error"}  # "you manage no program with the slug"
FOREIGN_PROGRAM = {"other_manager": "404 program_not_found"}
OWN_LIST = {"other_manager": "2xx"}  # their own programs' rows only
OWN_LIST_FOREIGN_INPUT = {"GET other_manager": "2xx", "POST other_manager": "400 validation_error"}
ANYONE_WITH_A_TOKEN = dict.fromkeys(TOKENS, "2xx")

ROUTES: dict[str, Row] = {
    # --- integration ---
    "pos:member-enroll": Row("pos", {"POST": send(lambda w: {"email": "matrix.new@example.com"})}, ENROLLS),
    "pos:member-lookup": Row("pos", {"GET": send(lambda w: CARD)}),
    "pos:member-detail": Row("pos", {"GET": at(member_id="member")}),
    "pos:member-ledger": Row("pos", {"GET": at(member_id="member")}),
    "pos:member-tier": Row("pos", {"GET": at(member_id="member")}),
    "pos:member-nps": Row("pos", {"POST": send(lambda w: {"score": 9}, member_id="member")}),
    "pos:purchase": Row("pos", {"POST": send(purchase)}),
    "pos:purchase-simulate": Row("pos", {"POST": send(purchase)}),
    "pos:return": Row(
        "pos",
        {
            "POST": send(
                lambda w: {"external_id": "MATRIX-R", "purchase_external_id": "VICTIM-PURCHASE-1", "amount": "5"}
            )
        },
    ),
    "pos:event": Row("pos", {"POST": send(lambda w: {"member": CARD, "event": "app_review", "external_id": "E-1"})}),
    "pos:member-redemption": Row(
        "pos", {"POST": send(lambda w: {"reward_id": w.victim.objects["reward"].pk}, member_id="member")}
    ),
    "pos:voucher-validate": Row("pos", {"POST": send(voucher)}),
    "pos:voucher-redeem": Row("pos", {"POST": send(lambda w: voucher(w, reference="MATRIX-REF"))}),
    "pos:member-hold": Row(
        "pos",
        {
            "POST": send(
                lambda w: {"basket_reference": "B-1", "basket_amount": "100.00", "points": 10}, member_id="member"
            )
        },
    ),
    "pos:hold-capture": Row("pos", {"POST": send(lambda w: {}, hold_id="hold")}),
    "pos:hold-release": Row("pos", {"POST": send(lambda w: {}, hold_id="hold")}),
    # --- manager ---
    "manage:member-list": Row("manage", {"GET": NONE}, OWN_LIST),
    "manage:member-detail": Row("manage", {"GET": at(member_id="member")}),
    "manage:member-adjust": Row(
        "manage", {"POST": send(lambda w: {"points": 5, "reason": "Matrix"}, member_id="member")}
    ),
    "manage:member-tier-pin": Row(
        "manage",
        {
            "POST": send(
                lambda w: {"tier": w.victim.objects["tier"].pk, "until": "2099-01-01T00:00:00Z", "note": "Matrix"},
                member_id="member",
            )
        },
    ),
    "manage:rule-list": Row(
        "manage",
        {"GET": NONE, "POST": send(lambda w: {**slug(w), "name": "X", "kind": "bonus", "points": 1})},
        OWN_LIST_FOREIGN_INPUT,
    ),
    "manage:rule-preview": Row("manage", {"POST": send(lambda w: {**slug(w), "lines": LINES})}, FOREIGN_PROGRAM_INPUT),
    "manage:rule-detail": Row(
        "manage", {"GET": at(rule_id="rule"), "PATCH": send(lambda w: {"priority": 5}, rule_id="rule")}
    ),
    "manage:rule-deactivate": Row("manage", {"POST": send(lambda w: {}, rule_id="rule")}),
    "manage:tier-list": Row(
        "manage",
        {"GET": NONE, "POST": send(lambda w: {**slug(w), "name": "X", "rank": 9, "threshold": "1"})},
        OWN_LIST_FOREIGN_INPUT,
    ),
    "manage:tier-detail": Row(
        "manage", {"GET": at(tier_id="tier"), "PATCH": send(lambda w: {"name": "Y"}, tier_id="tier")}
    ),
    "manage:tier-history": Row("manage", {"GET": NONE}, OWN_LIST),
    "manage:purchase-list": Row("manage", {"GET": NONE}, OWN_LIST),
    "manage:purchase-detail": Row("manage", {"GET": at(purchase_id="purchase")}),
    "manage:return-list": Row("manage", {"GET": NONE}, OWN_LIST),
    "manage:analytics-retention": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-cohorts": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-orders": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-nps": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-liability": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-rfm": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-rfm-segments": Row(
        "manage",
        {
            "GET": send(slug),
            "PUT": send(
                lambda w: {
                    **slug(w),
                    "segments": [{"name": "All", "r_min": 1, "r_max": 5, "fm_min": 1, "fm_max": 5, "description": ""}],
                }
            ),
        },
        FOREIGN_PROGRAM,
    ),
    "manage:analytics-refresh": Row("manage", {"GET": send(slug), "POST": send(slug)}, FOREIGN_PROGRAM),
    "manage:analytics-clv": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:webhook-list": Row(
        "manage",
        {"GET": NONE, "POST": send(lambda w: {**slug(w), "url": "http://93.184.216.34/matrix", "event_types": []})},
        OWN_LIST_FOREIGN_INPUT,
    ),
    "manage:webhook-detail": Row(
        "manage",
        {
            "GET": at(webhook_id="endpoint"),
            "PATCH": send(lambda w: {"description": "Matrix"}, webhook_id="endpoint"),
            "DELETE": at(webhook_id="endpoint"),
        },
    ),
    "manage:webhook-rotate-secret": Row("manage", {"POST": send(lambda w: {}, webhook_id="endpoint")}),
    "manage:webhook-replay-failed": Row("manage", {"POST": send(lambda w: {}, webhook_id="endpoint")}),
    "manage:webhook-delivery-list": Row("manage", {"GET": at(webhook_id="endpoint")}),
    "manage:webhook-delivery-detail": Row("manage", {"GET": at(webhook_id="endpoint", delivery_id="delivery")}),
    "manage:webhook-delivery-replay": Row(
        "manage", {"POST": send(lambda w: {}, webhook_id="endpoint", delivery_id="delivery")}
    ),
    "manage:campaign-issue": Row(
        "manage",
        {"POST": send(lambda w: {**slug(w), "reward_id": w.victim.objects["reward"].pk, "campaign": "Matrix"})},
        FOREIGN_PROGRAM,
    ),
    "manage:attainability-report": Row("manage", {"GET": send(slug)}, FOREIGN_PROGRAM),
    "manage:attainability-what-if": Row(
        "manage", {"POST": send(lambda w: {**slug(w), "base_rate_multiplier": "2"})}, FOREIGN_PROGRAM
    ),
    "manage:reward-list": Row(
        "manage",
        {"GET": NONE, "POST": send(lambda w: {**slug(w), "name": "Tote", "kind": "gift", "points_cost": 1})},
        # the catalog answers a foreign slug in the body 404, where rules, tiers and webhooks answer 400
        {"GET other_manager": "2xx", "POST other_manager": "404 program_not_found"},
    ),
    "manage:reward-detail": Row(
        "manage", {"GET": at(reward_id="reward"), "PATCH": send(lambda w: {"points_cost": 2}, reward_id="reward")}
    ),
    "manage:voucher-list": Row("manage", {"GET": NONE}, OWN_LIST),
    "manage:voucher-detail": Row("manage", {"GET": at(voucher_id="voucher")}),
    "manage:voucher-cancel": Row("manage", {"POST": send(lambda w: {}, voucher_id="voucher")}),
    # --- member app ---
    "app:auth-token": Row(
        "public",  # anyone may try to sign in; the credentials are in the body (here a wrong password)
        {"POST": send(lambda w: {**slug(w), "email": w.victim.member.email, "password": "wrong-password-1"})},
        {**dict.fromkeys(PRINCIPALS, "401 invalid_credentials"), "OPTIONS": "2xx"},
    ),
    "app:auth-logout": Row("app", {"POST": send(lambda w: {})}, ANYONE_WITH_A_TOKEN),  # any token signs itself out
    "app:me": Row("app", {"GET": NONE, "PATCH": send(lambda w: {"first_name": "Changed"})}),
    "app:me-ledger": Row("app", {"GET": NONE}),
    "app:me-tier": Row("app", {"GET": NONE}),
    "app:me-export": Row("app", {"GET": NONE}),
    "app:me-nps": Row("app", {"POST": send(lambda w: {"score": 9})}),
    "app:me-rewards": Row("app", {"GET": NONE}),
    "app:me-reward-redeem": Row("app", {"POST": at(reward_id="reward")}, {"other_member": "404 reward_not_found"}),
    "app:me-vouchers": Row("app", {"GET": NONE}),
    # --- public ---
    "schema": Row("public", {"GET": send(lambda w: {"format": "json"})}),
    "docs": Row("public", {"GET": NONE}, {"OPTIONS": "405"}),
    "health-live": Row("public", {"GET": NONE}, {"OPTIONS": "405"}),  # plain views: GET and HEAD only
    "health-ready": Row("public", {"GET": NONE}, {"OPTIONS": "405"}),
}


def api_routes() -> Iterator[tuple[str, Any]]:
    """(route name, view) of every endpoint under PREFIXES."""

    def walk(patterns: list, prefix: str, namespace: str | None) -> Iterator[tuple[str, str, Any]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield prefix + str(pattern.pattern), name, pattern.callback

    for route, name, view in walk(get_resolver().url_patterns, "", None):
        if route.startswith(PREFIXES):
            yield name, view


def view_methods(view: Any) -> set[str]:
    """The methods a view answers other than HEAD and OPTIONS (which every class-based view adds)."""
    cls = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if cls is None:  # a plain function view (health): GET only
        return {"GET"}
    return {m.upper() for m in cls.http_method_names if hasattr(cls, m) and m not in ("head", "options")}


# --- Judging -----------------------------------------------------------------------------------------------


def expectation(row: Row, method: str, principal: str) -> str:
    """The outcome the table gives: "METHOD principal", then "principal", then the surface's convention.
    HEAD answers as GET; OPTIONS as the row's first method when that refuses (401/403), else 2xx."""
    if method == "OPTIONS":
        if "OPTIONS" in row.expect:
            return row.expect["OPTIONS"]
        first = expectation(row, next(iter(row.calls)), principal)
        return first if first.startswith(("401", "403")) else "2xx"
    method = "GET" if method == "HEAD" else method
    return row.expect.get(f"{method} {principal}", row.expect.get(principal, SURFACES[row.surface][principal]))


def forbidden_markers(world: World, principal: str) -> list[str]:
    """What this principal must never see."""
    victim, other = world.victim.markers, world.other.markers
    return {
        "other_key": victim,
        "other_member": victim,
        "other_manager": victim,
        "member": other,
        "rightful": other,
        "fellow_member": [*other, *world.victim.personal],
        "superuser": [],
    }.get(principal, [*victim, *other])


def requests_of(world: World, name: str, row: Row) -> Iterator[tuple[str, str, Any]]:
    """(method, path, data) of every method the route answers: the row's, HEAD as GET, OPTIONS."""
    for method, call in row.calls.items():
        kwargs, data = call(world)
        path = reverse(name, kwargs=kwargs)
        yield method, path, data
        if method == "GET":
            yield "HEAD", path, data
    kwargs, _ = next(iter(row.calls.values()))(world)
    yield "OPTIONS", reverse(name, kwargs=kwargs), None


def outcomes(world: World, client: Client, name: str, row: Row) -> Iterator[str]:
    for method, path, data in requests_of(world, name, row):
        sent = path + json.dumps(data)  # what the caller sent may come back (an echo is no leak)
        for principal in PRINCIPALS:
            headers = rightful_headers(world, row.surface) if principal == "rightful" else world.headers[principal]
            expected = expectation(row, method, principal)
            response = request(client, method, path, data, headers)
            if (got := verdict(response, expected, method)) is not None:
                yield f"{method} {name} as {principal}: expected {expected}, got {got}: {response.content[:160]!r}"
            text = response.content.decode(errors="replace")
            if leaked := [m for m in forbidden_markers(world, principal) if m in text and m not in sent]:
                yield f"{method} {name} as {principal}: {response.status_code} shows {leaked}"


@pytest.fixture
def _quiet_logs():
    """A thousand requests' access and refusal logs would only bury a failure."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.django_db
def test_every_route_has_a_row_and_every_row_a_route():
    routes = dict(api_routes())

    assert sorted(set(routes) - set(ROUTES)) == [], "new endpoints need a row in ROUTES"
    assert sorted(set(ROUTES) - set(routes)) == [], "rows of endpoints that are gone"
    assert {name: view_methods(view) for name, view in routes.items()} == {
        name: set(row.calls) for name, row in ROUTES.items()
    }


@pytest.mark.django_db
def test_every_endpoint_answers_every_principal_as_the_table_says(settings, _quiet_logs):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = world_seed()
    client = Client(raise_request_exception=False)

    failures = [failure for name, _ in api_routes() for failure in outcomes(world, client, name, ROUTES[name])]

    assert failures == []
