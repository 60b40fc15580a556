"""A deactivated program's API keys and members are refused (403 program_inactive), at once, cache or not."""

from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.admin.sites import site
from django.core.cache import cache

from loyalty.models import Purchase
from members.models import ApiKey
from members.services.programs import program_settings_save
from tests.api.app.utils import ME_URL
from tests.api.app.utils import state as app_state
from tests.api.utils import ENROLL_URL, LOOKUP_URL, POS, assert_problem, db_state
from tests.clients import app_client_for, pos_client_for
from tests.factories import ApiKeyFactory, MemberFactory, ProgramFactory

PURCHASE = {
    "external_id": "R-1",
    "member": {"card": "400012345678"},
    "occurred_at": "2026-11-23T10:15:00+01:00",
    "currency": "EUR",
    "total": "100.00",
}
REQUESTS = [
    pytest.param("get", LOOKUP_URL, {"card": "400012345678"}, id="lookup"),
    pytest.param("post", f"{POS}/purchases/", PURCHASE, id="purchase"),
    pytest.param("post", ENROLL_URL, {"email": "new@example.com"}, id="enroll"),
    pytest.param("post", f"{POS}/vouchers/validate/", {"code": "ZZZZ-ZZZZ-ZZZZ"}, id="validate"),
]


@pytest.fixture
def till(db):
    """A till of an EUR program whose key was used (so it sits in the cache) before the program is deactivated."""
    program = ProgramFactory(currency="EUR")
    MemberFactory(program=program, card="400012345678")
    client = pos_client_for(program)
    assert client.get(LOOKUP_URL, {"card": "400012345678"}).status_code == 200
    return program, client


def deactivate(program):
    program.is_active = False
    program_settings_save(program=program, fields=["is_active"])


@pytest.mark.parametrize(("method", "url", "data"), REQUESTS)
def test_a_deactivated_programs_key_is_refused_at_once(till, method, url, data):
    program, client = till
    deactivate(program)
    before = db_state()

    response = getattr(client, method)(url, data, format="json") if method == "post" else client.get(url, data)

    body = assert_problem(response, 403, "program_inactive")
    assert "400012345678" not in response.content.decode()
    assert body["title"] == "The program is deactivated"
    assert db_state() == before
    assert not Purchase.objects.exists()


def test_a_key_of_a_program_deactivated_elsewhere_is_refused_once_the_cache_forgets_it(till):
    program, client = till
    program.is_active = False
    program.save(update_fields=["is_active"])  # not through the service: the cached key still says active
    cache.clear()  # API_KEY_CACHE_SECONDS later

    response = client.post(f"{POS}/purchases/", PURCHASE, format="json")

    assert_problem(response, 403, "program_inactive")
    assert not Purchase.objects.exists()


def test_reactivating_the_program_lets_its_keys_in_again(till):
    program, client = till
    deactivate(program)
    assert_problem(client.get(LOOKUP_URL, {"card": "400012345678"}), 403, "program_inactive")
    program.is_active = True

    program_settings_save(program=program, fields=["is_active"])

    assert client.get(LOOKUP_URL, {"card": "400012345678"}).status_code == 200


def test_other_programs_keys_are_not_affected(till):
    program, _ = till
    other = ProgramFactory()
    other_till = pos_client_for(other)
    deactivate(program)

    response = other_till.post(ENROLL_URL, {"email": "new@example.com"}, format="json")

    assert response.status_code == 201, response.content
    assert other.members.filter(email="new@example.com").exists()


def test_saving_a_setting_drops_the_programs_keys_from_the_cache(till):
    program, client = till
    other_key = ApiKeyFactory(program=ProgramFactory(), name="Other")
    cached = {key.key_hash: f"api-key:{key.key_hash}" for key in ApiKey.objects.all()}
    cache.set_many({cache_key: "cached" for cache_key in cached.values()})
    program.point_value = Decimal("0.05")

    program_settings_save(program=program, fields=["point_value"])

    assert [cache.get(cache_key) for key_hash, cache_key in cached.items() if key_hash != other_key.key_hash] == [None]
    assert cache.get(cached[other_key.key_hash]) == "cached"
    assert client.get(LOOKUP_URL, {"card": "400012345678"}).status_code == 200


def test_the_member_app_refuses_a_deactivated_programs_member_alike(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    member = MemberFactory(program=ProgramFactory(), email="jana@example.com")
    client = app_client_for(member)
    assert client.get(ME_URL).status_code == 200
    deactivate(member.program)
    before = app_state()

    response = client.patch(ME_URL, {"first_name": "Changed"}, format="json")

    assert_problem(response, 403, "program_inactive")
    assert_problem(client.get(ME_URL), 403, "program_inactive")
    assert app_state() == before


def test_unticking_active_in_the_admin_refuses_the_keys_at_once(till, rf):
    program, client = till
    program.is_active = False  # as the change form sets it before saving
    request = rf.post("/admin/")
    request.user = SimpleNamespace(is_superuser=True)

    site._registry[type(program)].save_model(request, program, SimpleNamespace(changed_data=["is_active"]), True)

    assert_problem(client.get(LOOKUP_URL, {"card": "400012345678"}), 403, "program_inactive")
