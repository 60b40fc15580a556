"""An API key limited to a store: its writes may name that store only, and a purchase without a store is its."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.models import Purchase, Return
from loyalty.services.ledger import ledger_credit
from members.services.api_keys import api_key_update
from rewards.models import Voucher, VoucherStatus
from tests.api.utils import POS, assert_problem, db_state
from tests.builders import purchase, redeem, rule
from tests.clients import key_client
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory, RewardFactory

CARD = "400012345678"


def purchase_body(**fields):
    return {
        "external_id": "TILL7-1",
        "member": {"card": CARD},
        "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "currency": "EUR",
        "total": "100.00",
        **fields,
    }


@pytest.fixture
def shop(db):
    program = ProgramFactory(currency="EUR")
    member = MemberFactory(program=program, card=CARD)
    rule(program, name="Base", kind="base_rate", rate=Decimal("0.1"))
    rule(program, name="Brno bonus", kind="bonus", points=500, stores="BRNO-1")
    api_key = ApiKeyFactory(program=program, name="Prague till", store="PRAGUE-01")
    plain = api_key.plain
    client = key_client(plain)
    return program, member, api_key, client


def state():
    return {
        **db_state(),
        "purchases": list(Purchase.objects.values_list("pk", "store")),
        "returns": Return.objects.count(),
        "vouchers": list(Voucher.objects.order_by("pk").values_list("pk", "status")),
    }


def test_a_purchase_for_another_store_is_refused_and_earns_no_store_bonus(shop):
    _, member, _, client = shop
    before = state()

    response = client.post(f"{POS}/purchases/", purchase_body(store="BRNO-1"), format="json")

    body = assert_problem(response, 403, "store_not_allowed")
    assert body["store"] == "PRAGUE-01"
    assert state() == before


def test_a_simulation_for_another_store_is_refused(shop):
    _, _, _, client = shop

    response = client.post(f"{POS}/purchases/simulate/", purchase_body(store="BRNO-1"), format="json")

    assert_problem(response, 403, "store_not_allowed")


@pytest.mark.parametrize("store", [None, ""])
def test_a_purchase_without_a_store_takes_the_keys_store(shop, store):
    _, _, _, client = shop
    body = purchase_body() if store is None else purchase_body(store=store)

    response = client.post(f"{POS}/purchases/", body, format="json")

    assert response.status_code == 201, response.content
    assert list(Purchase.objects.values_list("store", flat=True)) == ["PRAGUE-01"]
    assert response.json()["points_awarded"] == 10


@pytest.mark.parametrize("store", ["PRAGUE-01", " PRAGUE-01 "])
def test_a_purchase_for_the_keys_store_is_recorded(shop, store):
    _, _, _, client = shop

    response = client.post(f"{POS}/purchases/", purchase_body(store=store), format="json")

    assert response.status_code == 201, response.content
    assert list(Purchase.objects.values_list("store", flat=True)) == ["PRAGUE-01"]


def test_a_key_without_a_store_may_name_any_store(shop):
    program, _, _, _ = shop
    plain = ApiKeyFactory(program=program, name="Head office").plain
    client = key_client(plain)

    response = client.post(f"{POS}/purchases/", purchase_body(store="BRNO-1"), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["points_awarded"] == 510
    assert list(Purchase.objects.values_list("store", flat=True)) == ["BRNO-1"]


def _other_writes(program, member):
    purchase(member, "P-1", 100, occurred_at=timezone.now() - timedelta(days=1))
    ledger_credit(member=member, amount=1000)
    voucher = redeem(member, RewardFactory(program=program)).voucher
    return {
        "return": ("returns/", {"external_id": "RET-1", "purchase_external_id": "P-1", "amount": "10.00"}),
        "event": ("events/", {"member": {"card": CARD}, "event": "app_review", "external_id": "E-1"}),
        "validate": ("vouchers/validate/", {"code": voucher.code}),
        "redeem": ("vouchers/redeem/", {"code": voucher.code, "reference": "R-1"}),
    }


@pytest.mark.parametrize("endpoint", ["return", "event", "validate", "redeem"])
def test_other_writes_naming_another_store_are_refused(shop, endpoint):
    program, member, _, client = shop
    path, body = _other_writes(program, member)[endpoint]
    before = state()

    response = client.post(f"{POS}/{path}", {**body, "store": "BRNO-1"}, format="json")

    assert_problem(response, 403, "store_not_allowed")
    assert state() == before
    assert Voucher.objects.get().status == VoucherStatus.ISSUED


def test_changing_a_keys_store_binds_the_till_at_once(shop):
    _, _, api_key, client = shop
    assert client.post(f"{POS}/purchases/", purchase_body(store="PRAGUE-01"), format="json").status_code == 201
    api_key.store = "BRNO-1"

    api_key_update(api_key=api_key, fields=["store"])
    response = client.post(f"{POS}/purchases/", purchase_body(external_id="TILL7-2", store="PRAGUE-01"), format="json")

    assert_problem(response, 403, "store_not_allowed")
    assert Purchase.objects.count() == 1
