"""A database restart under load: 503 database_unavailable while it is down, never a 500, and every
purchase retried with its Idempotency-Key posts exactly once (DESIGN.md 10, 12)."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.audit import ledger_audit
from loyalty.models import Account, Purchase
from tests.builders import rule
from tests.config.utils import database_outage, database_restart, wsgi_get
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROBLEM = "application/problem+json"
TILLS = 4
POINTS_PER_PURCHASE = 10  # 100.00 at the base rate of 0.1


@dataclass
class Answer:
    status: int
    content_type: str
    retry_after: str | None
    body: Any


@dataclass
class Sent:
    url: str
    api_key: str
    idempotency_key: str
    body: dict
    answer: Answer


def post_json(url: str, api_key: str, idempotency_key: str, body: dict) -> Answer:
    """POST over real HTTP; an error status is an answer too."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Api-Key {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return _answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return _answer(error.code, error.headers, error.read())


def _answer(status: int, headers: Any, content: bytes) -> Answer:
    try:
        body = json.loads(content)
    except ValueError:
        body = content.decode(errors="replace")
    return Answer(status, headers.get("Content-Type", ""), headers.get("Retry-After"), body)


def purchase(member, external_id: str) -> dict:
    return {
        "external_id": external_id,
        "member": {"card": member.card},
        "store": "PRAGUE-01",
        "occurred_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "currency": "EUR",
        "total": "100.00",
        "lines": [{"sku": "BK-1", "category": "books", "quantity": "1", "unit_price": "100.00", "amount": "100.00"}],
    }


class Tills:
    """Threads that post purchases of one member until stopped, each with its own Idempotency-Key."""

    def __init__(self, url: str, api_key: str, member) -> None:
        self.url, self.api_key, self.member = url, api_key, member
        self.sent: list[Sent] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(till,)) for till in range(TILLS)]

    def __enter__(self) -> "Tills":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self, till: int) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            key, body = uuid.uuid4().hex, purchase(self.member, f"TILL{till}-{number:05d}")
            answer = post_json(self.url, self.api_key, key, body)
            with self._lock:
                self.sent.append(Sent(self.url, self.api_key, key, body, answer))
            time.sleep(0.01)

    def count(self, *, succeeded: bool) -> int:
        with self._lock:
            return sum(1 for sent in self.sent if (sent.answer.status == 201) == succeeded)

    def wait_for(self, *, succeeded: bool, at_least: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count(succeeded=succeeded) < at_least:
            assert time.monotonic() < deadline, f"fewer than {at_least} answers (succeeded={succeeded}) in {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def till_setup(db):
    program = ProgramFactory()
    rule(program, name="Base rate", kind="base_rate", rate=Decimal("0.1"))
    api_key = ApiKeyFactory(program=program, name="Till").plain
    return program, MemberFactory(program=program), api_key


def test_purchases_during_a_database_restart_get_503_and_post_once_when_retried(live_server, till_setup):
    program, member, api_key = till_setup
    url = f"{live_server.url}/api/pos/v1/purchases/"

    # given tills posting purchases; when the database goes down for a while and comes back
    with Tills(url, api_key, member) as tills:
        tills.wait_for(succeeded=True, at_least=TILLS)
        with database_outage():
            tills.wait_for(succeeded=False, at_least=TILLS)
            time.sleep(0.3)
        tills.wait_for(succeeded=True, at_least=tills.count(succeeded=True) + TILLS)
    sent = tills.sent

    # then nothing answered 500: during the outage requests got 503 database_unavailable
    assert {s.answer.status for s in sent} == {201, 503}, [s.answer for s in sent if s.answer.status not in (201, 503)]
    failed = [s for s in sent if s.answer.status == 503]
    for s in failed:
        assert s.answer.content_type == PROBLEM
        assert s.answer.body["code"] == "database_unavailable"
        assert s.answer.body["status"] == 503
        assert 1 <= int(s.answer.retry_after) <= 5

    # when every failed purchase is retried with its key, then each succeeds
    retries = [post_json(s.url, s.api_key, s.idempotency_key, s.body) for s in failed]
    assert [r.status for r in retries] == [201] * len(failed), retries

    # and each purchase posted exactly once: points, balance and the ledger agree
    answers = [s.answer for s in sent if s.answer.status == 201] + retries
    assert [a.body["points_awarded"] for a in answers] == [POINTS_PER_PURCHASE] * len(sent)
    assert Purchase.objects.filter(member=member).count() == len(sent)
    account = Account.objects.get(pk=member.pk)
    assert account.available + account.pending == POINTS_PER_PURCHASE * len(sent)
    assert account.debt == 0
    assert ledger_audit(program=program) == []
    call_command("check_ledger", program=program.slug)


def test_a_connection_dropped_by_a_restart_is_replaced_by_the_next_request(till_setup):
    _, member, api_key = till_setup
    path = f"/api/pos/v1/members/{member.pk}/"
    headers = {"Authorization": f"Api-Key {api_key}"}
    assert wsgi_get(path, **headers)[0] == 200  # the connection is kept (CONN_MAX_AGE)

    # when the server restarted between two requests, the kept connection is dead; the next request replaces it
    database_restart()
    assert wsgi_get(path, **headers)[0] == 200

    # while it is down: 503; once it is back the next request succeeds
    with database_outage():
        status, response_headers, body = wsgi_get(path, **headers)
    assert (status, response_headers["Content-Type"]) == (503, PROBLEM)
    assert json.loads(body)["code"] == "database_unavailable"
    assert response_headers["Retry-After"] == "2"
    assert wsgi_get(path, **headers)[0] == 200
