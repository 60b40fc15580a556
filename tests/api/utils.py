"""Helpers shared by the HTTP tests: problem documents, database snapshots, request fingerprints."""

import hashlib
import json
from typing import Any

from events.models import OutboxEvent
from loyalty.models import Account, Allocation, Entry, Lot
from members.models import IdempotencyRecord, Member
from rewards.models import Hold, Reward, Voucher

PROBLEM = "application/problem+json"

POS = "/api/pos/v1"
MANAGE = "/api/manage/v1"
ENROLL_URL = f"{POS}/members/"
LOOKUP_URL = f"{POS}/members/lookup/"
MANAGE_MEMBERS_URL = f"{MANAGE}/members/"
REFRESH_URL = f"{MANAGE}/analytics/refresh/"
# What a manager needs to read analytics, change the RFM grid and refresh.
ANALYST = ["view_memberanalytics", "change_rfmsegment", "view_member"]


def pos_member_url(member_id: Any) -> str:
    return f"{POS}/members/{member_id}/"


def pos_ledger_url(member_id: Any) -> str:
    return f"{POS}/members/{member_id}/ledger/"


def manage_member_url(member_id: Any) -> str:
    return f"{MANAGE}/members/{member_id}/"


def adjust_url(member_id: Any) -> str:
    return f"{MANAGE}/members/{member_id}/adjustments/"


ZERO_BALANCES = {"available": 0, "pending": 0, "debt": 0, "expiring_soon": 0, "earned": 0, "redeemed": 0, "expired": 0}


def balances_without_until(body: dict[str, Any]) -> dict[str, Any]:
    """A member's balances without `expiring_soon_until`, which moves with the clock."""
    return {name: value for name, value in body["balances"].items() if name != "expiring_soon_until"}


def assert_problem(response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with `status` and `code`; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:loyalty:problem:{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def db_state() -> dict[str, Any]:
    """Everything a request could write: compared before and after a rejected request."""
    return {
        "members": list(
            Member.objects.order_by("pk").values_list(
                "pk", "card", "external_id", "email", "phone", "status", "referred_by_id"
            )
        ),
        "accounts": list(
            Account.objects.order_by("pk").values_list(
                "pk", "available", "pending", "debt", "earned", "redeemed", "expired"
            )
        ),
        "entries": list(Entry.objects.order_by("pk").values_list("pk", "amount", "uncovered")),
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "remaining", "pending")),
        "allocations": Allocation.objects.count(),
        "idempotency_records": list(IdempotencyRecord.objects.order_by("pk").values_list("pk", "state")),
        "events": list(OutboxEvent.objects.order_by("pk").values_list("pk", "type")),
    }


def state_with_holds() -> dict[str, Any]:
    """db_state() and the holds' statuses."""
    return {**db_state(), "holds": list(Hold.objects.order_by("pk").values_list("pk", "status"))}


def state_with_vouchers() -> dict[str, Any]:
    """db_state(), the vouchers' statuses and till references, and the rewards' stock."""
    return {
        **db_state(),
        "vouchers": list(Voucher.objects.order_by("pk").values_list("pk", "status", "redeemed_reference")),
        "stock": list(Reward.objects.order_by("pk").values_list("pk", "stock")),
    }


def fingerprint(method: str, path: str, data: Any) -> str:
    """The request hash config.api.idempotency stores with an idempotency key (method, path and canonical JSON body)."""
    body = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def schema_operations(schema):
    """(path, method, operation) of every operation of the OpenAPI schema."""
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation
