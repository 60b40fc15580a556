"""Every API surface reads its input strictly (config.api.input): a key no field reads, at any depth, is refused
with 400 `unknown_field` naming it, and a timestamp without a UTC offset with 400 `validation_error` on its
field; nothing is written either way."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone
from rest_framework.test import APIClient

from config.api.input import NAIVE_MESSAGE, UNKNOWN_FIELD_MESSAGE
from loyalty.models import Purchase
from loyalty.services.ledger import ledger_credit
from members.app_auth import member_app_login, member_app_user_set
from members.models import ApiKey
from rewards.models import RewardKind
from rewards.services import hold_create
from tests.builders import redeem, rule, tier
from tests.clients import PASSWORD
from tests.events.webhook_rows import delivery_make
from tests.factories import MemberFactory, RewardFactory, StaffFactory, WebhookEndpointFactory

# Every write with a body, by surface: (method, path as the schema names it). A new one must be added here:
# `test_the_list_holds_every_write_endpoint_of_the_schema` compares it with the schema.
WRITES = [
    ("pos", "POST", "/api/pos/v1/members/"),
    ("pos", "POST", "/api/pos/v1/members/{member_id}/nps/"),
    ("pos", "POST", "/api/pos/v1/members/{member_id}/redemptions/"),
    ("pos", "POST", "/api/pos/v1/members/{member_id}/holds/"),
    ("pos", "POST", "/api/pos/v1/holds/{hold_id}/capture/"),
    ("pos", "POST", "/api/pos/v1/holds/{hold_id}/release/"),
    ("pos", "POST", "/api/pos/v1/purchases/"),
    ("pos", "POST", "/api/pos/v1/purchases/simulate/"),
    ("pos", "POST", "/api/pos/v1/returns/"),
    ("pos", "POST", "/api/pos/v1/events/"),
    ("pos", "POST", "/api/pos/v1/vouchers/validate/"),
    ("pos", "POST", "/api/pos/v1/vouchers/redeem/"),
    ("anonymous", "POST", "/api/app/v1/auth/token/"),
    ("app", "POST", "/api/app/v1/auth/logout/"),
    ("app", "PATCH", "/api/app/v1/me/"),
    ("app", "POST", "/api/app/v1/me/nps/"),
    ("app", "POST", "/api/app/v1/me/rewards/{reward_id}/redeem/"),
    ("manage", "POST", "/api/manage/v1/members/{member_id}/adjustments/"),
    ("manage", "POST", "/api/manage/v1/members/{member_id}/tier-pin/"),
    ("manage", "POST", "/api/manage/v1/rules/"),
    ("manage", "PATCH", "/api/manage/v1/rules/{rule_id}/"),
    ("manage", "POST", "/api/manage/v1/rules/{rule_id}/deactivate/"),
    ("manage", "POST", "/api/manage/v1/rules/preview/"),
    ("manage", "POST", "/api/manage/v1/tiers/"),
    ("manage", "PATCH", "/api/manage/v1/tiers/{tier_id}/"),
    ("manage", "POST", "/api/manage/v1/rewards/"),
    ("manage", "PATCH", "/api/manage/v1/rewards/{reward_id}/"),
    ("manage", "POST", "/api/manage/v1/vouchers/{voucher_id}/cancel/"),
    ("manage", "POST", "/api/manage/v1/campaigns/"),
    ("manage", "POST", "/api/manage/v1/analytics/refresh/"),
    ("manage", "PUT", "/api/manage/v1/analytics/rfm/segments/"),
    ("manage", "POST", "/api/manage/v1/analytics/attainability/what-if/"),
    ("manage", "POST", "/api/manage/v1/webhooks/"),
    ("manage", "PATCH", "/api/manage/v1/webhooks/{webhook_id}/"),
    ("manage", "POST", "/api/manage/v1/webhooks/{webhook_id}/rotate-secret/"),
    ("manage", "POST", "/api/manage/v1/webhooks/{webhook_id}/replay-failed/"),
    ("manage", "POST", "/api/manage/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay/"),
]


def everything() -> dict[str, list]:
    """Every row of the project's tables (API keys without their last use, which a request stamps)."""
    state = {}
    for label in ("members", "loyalty", "rewards"):
        for model in apps.get_app_config(label).get_models():
            rows = model.objects.order_by("pk").values()
            if model is ApiKey:
                rows = rows.values("pk", "revoked_at", "program_id")
            state[model._meta.label] = list(rows)
    return state


@pytest.fixture
def world(program, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    member = MemberFactory(program=program, email="jana@example.com")
    member_app_user_set(member=member, password=PASSWORD)
    ledger_credit(member=member, amount=5000)
    reward = RewardFactory(
        program=program, name="5 off", kind=RewardKind.FIXED_DISCOUNT, value=Decimal(5), points_cost=100
    )
    voucher = redeem(member, reward).voucher
    hold = hold_create(member=member, basket_reference="cart-1", basket_amount=Decimal(100), points=100).hold
    endpoint = WebhookEndpointFactory(program=program)
    return {
        "program": program,
        "member": member,
        "member_id": member.pk,
        "reward_id": reward.pk,
        "voucher_id": voucher.pk,
        "voucher": voucher,
        "hold_id": hold.pk,
        "rule_id": rule(program, name="Base", kind="base_rate", rate=1).pk,
        "tier_id": tier(program, "Silver", rank=1, threshold=500).pk,
        "webhook_id": endpoint.pk,
        "delivery_id": delivery_make(endpoint, member).pk,
    }


def client_of(surface: str, world: dict, pos_client: APIClient) -> APIClient:
    if surface == "pos":
        return pos_client
    client = APIClient()
    if surface == "app":
        _, token = member_app_login(program_slug=world["program"].slug, email="jana@example.com", password=PASSWORD)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    elif surface == "manage":
        client.force_authenticate(StaffFactory(is_superuser=True))
    return client


def send(client: APIClient, method: str, path: str, body: dict):
    return getattr(client, method.lower())(path, body, format="json")


def assert_refused(response, errors: dict) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["type"]) == ("unknown_field", "urn:loyalty:problem:unknown_field")
    assert problem["errors"] == errors
    return problem


def test_the_list_holds_every_write_endpoint_of_the_schema(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    with_body = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }

    assert with_body == {(method, path) for _, method, path in WRITES}
    undocumented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and "400" not in operation["responses"]
    }
    assert undocumented == set()  # unknown_field and validation_error are 400s
    request_bodies = {name: c for name, c in schema["components"]["schemas"].items() if name.endswith("Request")}
    assert {name for name, c in request_bodies.items() if not _closed(c)} == set()


def _closed(component: dict) -> bool:
    """additionalProperties is false on the object, or on each branch of its oneOf (the member reference)."""
    branches = component.get("oneOf", [component]) if "properties" not in component else [component]
    return all(branch.get("additionalProperties") is False for branch in branches)


@pytest.mark.parametrize(("surface", "method", "path"), WRITES, ids=[f"{m} {p}" for _, m, p in WRITES])
def test_every_write_endpoint_refuses_an_unknown_field_and_writes_nothing(world, pos_client, surface, method, path):
    client = client_of(surface, world, pos_client)
    url = path.format(**world)
    before = everything()

    response = send(client, method, url, {"storeid": "PRAGUE-01"})

    problem = assert_refused(response, {"storeid": [UNKNOWN_FIELD_MESSAGE]})
    assert "storeid" in problem["detail"]
    assert everything() == before


# --- A valid body with one typo: refused whole, where without the typo it is carried out ---------------


def purchase(world, **fields) -> dict:
    body = {
        "external_id": "R-1",
        "member": {"id": world["member_id"]},
        "store": "PRAGUE-01",
        "occurred_at": "2026-03-28T23:30:00+01:00",
        "currency": "EUR",
        "total": "100.00",
        "lines": [{"sku": "A", "quantity": "1", "unit_price": "100.00", "amount": "100.00"}],
    }
    return {**body, **fields}


TYPOS = [
    pytest.param(
        "/api/pos/v1/purchases/",
        lambda w: purchase(w, externalId="R-1"),
        {"externalId": [UNKNOWN_FIELD_MESSAGE]},
        id="purchase-top-level",
    ),
    pytest.param(
        "/api/pos/v1/purchases/",
        lambda w: purchase(w, member={"id": w["member_id"], "storeid": "PRAGUE-01"}),
        {"member": {"storeid": [UNKNOWN_FIELD_MESSAGE]}},
        id="purchase-member",
    ),
    pytest.param(
        "/api/pos/v1/purchases/",
        lambda w: purchase(
            w,
            lines=[
                {"sku": "A", "quantity": "1", "unit_price": "50.00", "amount": "50.00"},
                {"sku": "B", "quantity": "1", "unit_price": "50.00", "amount": "50.00", "categroy": "books"},
            ],
        ),
        {"lines": [{}, {"categroy": [UNKNOWN_FIELD_MESSAGE]}]},
        id="purchase-line",
    ),
    pytest.param(
        "/api/pos/v1/events/",
        lambda w: {"member": {"id": w["member_id"], "cardd": "1"}, "event": "app_review", "external_id": "E-1"},
        {"member": {"cardd": [UNKNOWN_FIELD_MESSAGE]}},
        id="event-member",
    ),
    pytest.param(
        "/api/pos/v1/members/",
        lambda w: {"email": "new@example.com", "firstName": "Eva"},
        {"firstName": [UNKNOWN_FIELD_MESSAGE]},
        id="enroll",
    ),
]


@pytest.mark.parametrize(("path", "body", "errors"), TYPOS)
def test_a_typo_refuses_the_whole_request(world, pos_client, path, body, errors):
    before = everything()

    problem = assert_refused(pos_client.post(path, body(world), format="json"), errors)

    assert everything() == before
    assert problem["detail"].startswith("Unknown fields: ")


def test_the_detail_names_every_unknown_field_by_its_path(world, pos_client):
    body = purchase(world, member={"id": world["member_id"], "storeid": "X"}, externalId="R-1")
    body["lines"][0]["skuu"] = "A"

    problem = assert_refused(
        pos_client.post("/api/pos/v1/purchases/", body, format="json"),
        {
            "member": {"storeid": [UNKNOWN_FIELD_MESSAGE]},
            "lines": [{"skuu": [UNKNOWN_FIELD_MESSAGE]}],
            "externalId": [UNKNOWN_FIELD_MESSAGE],
        },
    )

    assert problem["detail"] == "Unknown fields: member.storeid, lines[0].skuu, externalId."


def test_the_same_purchase_without_the_typo_is_recorded(world, pos_client):
    response = pos_client.post("/api/pos/v1/purchases/", purchase(world), format="json")

    assert response.status_code == 201, response.content
    assert Purchase.objects.get().occurred_at == datetime(2026, 3, 28, 22, 30, tzinfo=UTC)


# --- Timestamps without an offset ------------------------------------------------------------------------

NAIVE = ["2026-03-28T23:30:00", "2026-03-28T23:30", "2026-03-28 23:30:00.5", "2026-03-28"]
IN_A_YEAR = (timezone.now() + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S")
TIMESTAMPS = [
    pytest.param(
        "pos", "/api/pos/v1/purchases/", lambda w, t: purchase(w, occurred_at=t), "occurred_at", id="purchase"
    ),
    pytest.param(
        "pos",
        "/api/pos/v1/returns/",
        lambda w, t: {"external_id": "RET-1", "purchase_external_id": "R-0", "amount": "10.00", "occurred_at": t},
        "occurred_at",
        id="return",
    ),
    pytest.param(
        "pos",
        "/api/pos/v1/events/",
        lambda w, t: {"member": {"id": w["member_id"]}, "event": "app_review", "external_id": "E", "occurred_at": t},
        "occurred_at",
        id="event",
    ),
    pytest.param(
        "pos",
        "/api/pos/v1/members/{member_id}/nps/",
        lambda w, t: {"score": 9, "answered_at": t},
        "answered_at",
        id="pos-nps",
    ),
    pytest.param(
        "manage",
        "/api/manage/v1/rules/",
        lambda w, t: {"program": w["program"].slug, "name": "W", "kind": "bonus", "points": 5, "active_from": t},
        "active_from",
        id="rule-window",
    ),
    pytest.param(
        "manage",
        "/api/manage/v1/rewards/",
        lambda w, t: {
            "program": w["program"].slug,
            "name": "W",
            "kind": "fixed_discount",
            "value": "5.00",
            "points_cost": 10,
            "active_until": t,
        },
        "active_until",
        id="reward-window",
    ),
    pytest.param(
        "manage",
        "/api/manage/v1/campaigns/",
        lambda w, t: {
            "program": w["program"].slug,
            "reward_id": w["reward_id"],
            "campaign": "Spring",
            "filters": {"enrolled_before": t},
        },
        "filters",
        id="campaign-filter",
    ),
]


@pytest.mark.parametrize("moment", NAIVE)
@pytest.mark.parametrize(("surface", "path", "body", "field"), TIMESTAMPS)
def test_a_timestamp_without_an_offset_is_refused_and_nothing_written(
    world, pos_client, surface, path, body, field, moment
):
    client = client_of(surface, world, pos_client)
    before = everything()

    response = client.post(path.format(**world), body(world, moment), format="json")

    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error"
    message = "Give the time with its UTC offset, e.g. 2026-03-28T23:30:00+01:00 or 2026-03-28T22:30:00Z."
    expected = {"enrolled_before": [message]} if field == "filters" else [message]
    assert problem["errors"][field] == expected
    assert everything() == before


def test_a_tier_pin_until_without_an_offset_is_refused(world):
    client = client_of("manage", world, None)
    body = {"tier": world["tier_id"], "until": IN_A_YEAR, "note": "VIP"}
    before = everything()

    response = client.post(f"/api/manage/v1/members/{world['member_id']}/tier-pin/", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["until"]
    assert everything() == before


@pytest.mark.parametrize("moment", ["2026-03-28T22:30:00Z", "2026-03-28T23:30:00+01:00", "2026-03-28T22:30:00+00:00"])
def test_a_timestamp_with_an_offset_is_the_instant_it_names(world, pos_client, moment):
    response = pos_client.post("/api/pos/v1/purchases/", purchase(world, occurred_at=moment), format="json")

    assert response.status_code == 201, response.content
    assert Purchase.objects.get().occurred_at == datetime(2026, 3, 28, 22, 30, tzinfo=UTC)


FILTERS = [
    pytest.param("pos", "/api/pos/v1/members/{member_id}/ledger/", "occurred_after", id="pos-ledger"),
    pytest.param("app", "/api/app/v1/me/ledger/", "occurred_before", id="app-ledger"),
    pytest.param("manage", "/api/manage/v1/members/", "enrolled_after", id="manage-members"),
    pytest.param("manage", "/api/manage/v1/vouchers/", "issued_before", id="manage-vouchers"),
]


@pytest.mark.parametrize(("surface", "path", "name"), FILTERS)
def test_a_list_filter_refuses_a_timestamp_without_an_offset(world, pos_client, surface, path, name):
    client = client_of(surface, world, pos_client)
    url = path.format(**world)

    naive = client.get(url, {name: "2026-03-28T00:00:00"})
    aware = client.get(url, {name: "2026-03-28T00:00:00+01:00"})  # the client encodes + as %2B

    assert naive.status_code == 400, naive.content
    assert (naive.json()["code"], naive.json()["errors"]) == ("validation_error", {name: [NAIVE_MESSAGE]})
    assert aware.status_code == 200, aware.content
