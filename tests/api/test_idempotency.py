"""Idempotency-Key on writes (DESIGN.md section 10): replay, reuse, in-flight, scoping, retries."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.models import Account, Entry, EntryKind
from members.models import IdempotencyRecord, Member
from members.services.idempotency import idempotency_keys_clean
from members.services.members import member_update
from tests.api.utils import ENROLL_URL, LOOKUP_URL, adjust_url, assert_problem, db_state, fingerprint
from tests.clients import key_client, staff_client
from tests.concurrency import run_at_once
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory, StaffFactory

KEY = "3f2c9a1e-0b7d-4c55-9a53-2f1e8e6b7c10"
ENROLL_BODY = {"external_id": "SHOP-1", "email": "jana@example.com", "first_name": "Jana"}


def _enroll(client, body=ENROLL_BODY, key=KEY):
    return client.post(ENROLL_URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _adjust(client, member, body, key=KEY):
    return client.post(adjust_url(member.pk), body, format="json", HTTP_IDEMPOTENCY_KEY=key)


# --- Enroll (integration API) ----------------------------------------------------------------


def test_enroll_replays_the_first_answer(pos_client, program):
    first = _enroll(pos_client)

    second = _enroll(pos_client)

    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Member.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.scope, record.key, record.state) == (f"pos:{program.pk}", KEY, "done")
    assert (record.response_status, record.response_body) == (201, first.json())


def test_enroll_replay_ignores_key_order(pos_client):
    first = _enroll(pos_client, {"email": "jana@example.com", "external_id": "SHOP-1"})

    second = _enroll(pos_client, {"external_id": "SHOP-1", "email": "jana@example.com"})

    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert Member.objects.count() == 1


def test_enroll_replay_returns_the_original_answer_even_after_changes(pos_client):
    first = _enroll(pos_client)
    member_update(member=Member.objects.get(), email="changed@example.com")

    second = _enroll(pos_client)

    assert second.json() == first.json()
    assert second.json()["email"] == "jana@example.com"
    assert Member.objects.count() == 1


def test_enroll_many_replays_write_once(pos_client):
    answers = [_enroll(pos_client) for _ in range(4)]

    assert {response.json()["id"] for response in answers} == {answers[0].json()["id"]}
    assert [response.get("Idempotent-Replayed") for response in answers] == [None, "true", "true", "true"]
    assert Member.objects.count() == 1
    assert Account.objects.count() == 1


def test_same_key_with_another_body_is_refused(pos_client):
    _enroll(pos_client)
    before = db_state()

    response = _enroll(pos_client, {**ENROLL_BODY, "email": "someone.else@example.com"})

    assert_problem(response, 422, "idempotency_key_reused")
    assert "Idempotent-Replayed" not in response
    assert db_state() == before


def test_without_a_key_each_request_is_new(pos_client):
    first = pos_client.post(ENROLL_URL, ENROLL_BODY, format="json")

    second = pos_client.post(ENROLL_URL, ENROLL_BODY, format="json")

    assert first.status_code == 201
    assert_problem(second, 409, "member_already_exists")
    assert IdempotencyRecord.objects.count() == 0


def test_failed_request_releases_its_key_for_a_corrected_retry(pos_client):
    # given: a first attempt that fails validation
    bad = _enroll(pos_client, {"email": "not-an-email"})
    assert_problem(bad, 400, "validation_error")
    assert IdempotencyRecord.objects.count() == 0

    # when: the till corrects the body and retries with the same key
    good = _enroll(pos_client, {"email": "jana@example.com"})

    # then
    assert good.status_code == 201, good.content
    assert "Idempotent-Replayed" not in good
    assert Member.objects.get().email == "jana@example.com"
    # the key now belongs to the corrected body
    assert _enroll(pos_client, {"email": "jana@example.com"})["Idempotent-Replayed"] == "true"
    assert_problem(_enroll(pos_client, {"email": "not-an-email"}), 422, "idempotency_key_reused")


def test_failed_request_is_not_replayed(pos_client):
    first = _enroll(pos_client, {"email": "not-an-email"})

    second = _enroll(pos_client, {"email": "not-an-email"})

    assert_problem(first, 400, "validation_error")
    assert_problem(second, 400, "validation_error")
    assert "Idempotent-Replayed" not in second
    assert IdempotencyRecord.objects.count() == 0


def test_conflict_releases_the_key(pos_client, program):
    MemberFactory(program=program, email="jana@example.com")
    assert_problem(_enroll(pos_client, {"email": "jana@example.com"}), 409, "member_already_exists")

    retry = _enroll(pos_client, {"email": "jana.novak@example.com"})

    assert retry.status_code == 201, retry.content
    assert Member.objects.filter(email="jana.novak@example.com").exists()


def test_keys_are_scoped_per_program(pos_client, other_pos_client, program, other_program):
    mine = _enroll(pos_client, {"email": "jana@example.com"})

    theirs = _enroll(other_pos_client, {"email": "petr@example.com"})

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert program.members.get().email == "jana@example.com"
    assert other_program.members.get().email == "petr@example.com"
    assert set(IdempotencyRecord.objects.values_list("scope", flat=True)) == {
        f"pos:{program.pk}",
        f"pos:{other_program.pk}",
    }


def test_same_key_and_body_in_two_programs_enrolls_twice(pos_client, other_pos_client, program, other_program):
    mine = _enroll(pos_client)

    theirs = _enroll(other_pos_client)

    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert (program.members.count(), other_program.members.count()) == (1, 1)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 256, id="256 chars"),
        pytest.param("k" * 1000, id="1000 chars"),
        pytest.param("", id="empty"),
        pytest.param("abc\x01def", id="control character"),
        pytest.param("abc\tdef", id="tab"),
        pytest.param(" abc", id="outer space"),
        # Headers travel as bytes read as Latin-1: a UTF-8 key would arrive mangled, so only ASCII is taken.
        pytest.param("order 42 – ünïcode", id="non-ASCII"),
    ],
)
def test_invalid_key_is_rejected(pos_client, key):
    before = db_state()

    response = _enroll(pos_client, key=key)

    assert_problem(response, 400, "idempotency_key_invalid")
    assert db_state() == before


@pytest.mark.parametrize("key", ["k" * 255, "a", "order 42 / till 7", "~!@#$%^&*()_+{}|:<>?"])
def test_valid_keys_are_accepted(pos_client, key):
    first = _enroll(pos_client, key=key)
    second = _enroll(pos_client, key=key)

    assert first.status_code == 201, first.content
    assert second["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get().key == key
    assert Member.objects.count() == 1


def test_reads_ignore_the_key(pos_client, member):
    response = pos_client.get(LOOKUP_URL, {"card": member.card}, HTTP_IDEMPOTENCY_KEY="k" * 300)

    assert response.status_code == 200
    assert IdempotencyRecord.objects.count() == 0


def test_key_is_checked_only_after_authentication(client, program):
    response = client.post(ENROLL_URL, ENROLL_BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k" * 300)

    assert_problem(response, 401, "not_authenticated")
    assert IdempotencyRecord.objects.count() == 0


def _in_flight(scope, path, body, key=KEY, age=timedelta(0)):
    record = IdempotencyRecord.objects.create(scope=scope, key=key, request_hash=fingerprint("POST", path, body))
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - age)
    return record


def test_key_still_in_flight_is_a_conflict(pos_client, program):
    # given: the same request, still being processed by another worker
    record = _in_flight(f"pos:{program.pk}", ENROLL_URL, ENROLL_BODY)
    before = db_state()

    # when
    response = _enroll(pos_client)

    # then
    assert_problem(response, 409, "idempotency_in_flight")
    assert db_state() == before
    record.refresh_from_db()
    assert record.state == "in_flight"  # the 409 does not release the other request's key


def test_key_in_flight_with_another_body_is_reused(pos_client, program):
    _in_flight(f"pos:{program.pk}", ENROLL_URL, {"email": "other@example.com"})
    before = db_state()

    response = _enroll(pos_client)

    assert_problem(response, 422, "idempotency_key_reused")
    assert db_state() == before


def test_stale_in_flight_key_is_taken_over(pos_client, program):
    """A request that crashed never released its key; a retry minutes later may take it over."""
    record = _in_flight(f"pos:{program.pk}", ENROLL_URL, ENROLL_BODY, age=timedelta(minutes=5))

    response = _enroll(pos_client)

    assert response.status_code == 201, response.content
    assert Member.objects.count() == 1
    record.refresh_from_db()
    assert (record.state, record.response_status) == ("done", 201)


def test_keys_are_kept_at_least_24_hours(pos_client):
    first = _enroll(pos_client)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    idempotency_keys_clean()
    second = _enroll(pos_client)

    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Member.objects.count() == 1


# --- Simultaneous requests (PostgreSQL) ---------------------------------------------------------


def _enroll_at_once(program, bodies):
    api_key = ApiKeyFactory(program=program, name="Till").plain

    def send(i: int):
        client = key_client(api_key)
        return _enroll(client, bodies[i])

    responses = run_at_once(len(bodies), send)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    return responses


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_copies_with_one_key_enroll_once_and_replay():
    """Enrolling has no natural key: without the Idempotency-Key the copies would answer 409."""
    program = ProgramFactory()

    responses = _enroll_at_once(program, [ENROLL_BODY] * 12)

    assert [r.status_code for r in responses] == [201] * 12, [r.content for r in responses]
    assert sum(r.get("Idempotent-Replayed") != "true" for r in responses) == 1
    assert all(r.json() == responses[0].json() for r in responses)
    assert Member.objects.count() == Account.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.response_status, record.response_body) == ("done", 201, responses[0].json())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_requests_with_one_key_and_other_bodies_run_one():
    program = ProgramFactory()
    bodies = [{"email": f"member{i}@example.com"} for i in range(8)]

    responses = _enroll_at_once(program, bodies)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 422: 7}, statuses
    for response in responses:
        if response.status_code == 422:
            assert_problem(response, 422, "idempotency_key_reused")
    enrolled = Member.objects.get()
    winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
    assert enrolled.email == bodies[winner]["email"]
    assert IdempotencyRecord.objects.get().state == "done"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_failures_with_one_key_leave_the_key_free():
    program = ProgramFactory()
    MemberFactory(program=program, email="jana@example.com")

    responses = _enroll_at_once(program, [{"email": "jana@example.com"}] * 6)

    for response in responses:
        assert_problem(response, 409, "member_already_exists")
        assert "Idempotent-Replayed" not in response
    assert IdempotencyRecord.objects.count() == 0
    assert Member.objects.count() == 1


# --- Adjustments (manager API) -----------------------------------------------------------------

ADJUST_BODY = {"points": 25, "reason": "Goodwill"}


def test_adjustment_replays_the_first_answer(manage_client, manager, funded):
    first = _adjust(manage_client, funded, ADJUST_BODY)

    second = _adjust(manage_client, funded, ADJUST_BODY)

    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    entry = Entry.objects.get(kind=EntryKind.ADJUST)
    assert (entry.amount, entry.actor, entry.key) == (25, manager, f"manage:{manager.pk}:{KEY}")
    assert Account.objects.get(pk=funded.pk).available == 125


def test_adjustment_same_key_with_another_body_is_refused(manage_client, funded):
    assert _adjust(manage_client, funded, ADJUST_BODY).status_code == 201
    before = db_state()

    response = _adjust(manage_client, funded, {"points": 26, "reason": "Goodwill"})

    assert_problem(response, 422, "idempotency_key_reused")
    assert db_state() == before


def test_adjustment_same_key_for_another_member_is_refused(manage_client, program, funded):
    other = MemberFactory(program=program)
    assert _adjust(manage_client, funded, ADJUST_BODY).status_code == 201
    before = db_state()

    response = _adjust(manage_client, other, ADJUST_BODY)

    assert_problem(response, 422, "idempotency_key_reused")
    assert db_state() == before


def test_adjustment_refused_then_corrected(manage_client, funded):
    refused = _adjust(manage_client, funded, {"points": -500, "reason": "Correction"})
    assert_problem(refused, 422, "insufficient_points")

    corrected = _adjust(manage_client, funded, {"points": -50, "reason": "Correction"})

    assert corrected.status_code == 201, corrected.content
    assert "Idempotent-Replayed" not in corrected
    assert Account.objects.get(pk=funded.pk).available == 50
    assert Entry.objects.filter(kind=EntryKind.ADJUST).count() == 1


def test_adjustment_keys_are_scoped_per_manager(program, funded):
    first_manager, second_manager = StaffFactory(), StaffFactory()
    program.managers.add(first_manager, second_manager)

    first = _adjust(staff_client(first_manager), funded, ADJUST_BODY)
    second = _adjust(staff_client(second_manager), funded, ADJUST_BODY)

    assert first.status_code == second.status_code == 201, (first.content, second.content)
    assert "Idempotent-Replayed" not in second
    assert Entry.objects.filter(kind=EntryKind.ADJUST).count() == 2
    assert Account.objects.get(pk=funded.pk).available == 150


def test_adjustment_with_over_long_key_is_rejected(manage_client, funded):
    before = db_state()

    response = _adjust(manage_client, funded, ADJUST_BODY, key="k" * 256)

    assert_problem(response, 400, "idempotency_key_invalid")
    assert db_state() == before


def test_adjustment_with_the_longest_allowed_key(manage_client, funded):
    """255 characters is a valid key; the ledger stores it namespaced ("manage:<user>:<key>"),
    which must still fit (Entry.key is a varchar(255) on PostgreSQL)."""
    key = "k" * 255

    first = _adjust(manage_client, funded, ADJUST_BODY, key=key)
    second = _adjust(manage_client, funded, ADJUST_BODY, key=key)

    assert first.status_code == 201, first.content
    assert second["Idempotent-Replayed"] == "true"
    assert Entry.objects.filter(kind=EntryKind.ADJUST).count() == 1
    assert Account.objects.get(pk=funded.pk).available == 125


def test_adjustment_in_flight_is_a_conflict(manage_client, manager, funded):
    _in_flight(f"manage:{manager.pk}", adjust_url(funded.pk), ADJUST_BODY)
    before = db_state()

    response = _adjust(manage_client, funded, ADJUST_BODY)

    assert_problem(response, 409, "idempotency_in_flight")
    assert db_state() == before
