"""A manager sets a reward's scope (SKUs, categories) and minimum basket in the manager API and the admin."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from rewards.models import Reward
from tests.api.manage.catalog import REWARDS_URL, catalog_state, reward_url
from tests.clients import staff_client
from tests.factories import RewardFactory

BOOKS = {"scope_skus": ["ATLAS-2"], "scope_categories": ["books", "maps"], "min_basket": "200.00"}


@pytest.fixture
def api(catalog_manager):
    return staff_client(catalog_manager)


def test_create_a_reward_with_a_scope(api, program):
    payload = {"program": program.slug, "name": "10 % off books", "kind": "percent_discount", "value": "10"}

    response = api.post(REWARDS_URL, {**payload, "points_cost": 700, **BOOKS}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["scope_skus"], body["scope_categories"], body["min_basket"]) == (
        ["ATLAS-2"],
        ["books", "maps"],
        "200.00",
    )
    reward = Reward.objects.get()
    assert (reward.scope_skus, reward.scope_categories, reward.min_basket) == (
        ["ATLAS-2"],
        ["books", "maps"],
        Decimal("200.00"),
    )


def test_change_the_scope_of_a_reward(api, program):
    reward = RewardFactory(program=program, scope_categories=["books"])

    response = api.patch(reward_url(reward.pk), {"scope_skus": ["NOVEL-7", "NOVEL-7 "]}, format="json")

    assert response.status_code == 200, response.content
    reward.refresh_from_db()
    assert (reward.scope_skus, reward.scope_categories) == (["NOVEL-7"], ["books"])
    assert api.patch(reward_url(reward.pk), {"scope_categories": []}, format="json").status_code == 200
    assert Reward.objects.get(pk=reward.pk).scope_categories == []


@pytest.mark.parametrize(
    "scope",
    [{"scope_skus": ["ok", " "]}, {"scope_categories": "books"}, {"scope_skus": ["x" * 65]}, {"scope_skus": [None]}],
)
def test_a_bad_scope_is_refused_and_writes_nothing(api, program, scope):
    reward = RewardFactory(program=program)
    before = catalog_state()

    response = api.patch(reward_url(reward.pk), scope, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == set(scope)
    assert catalog_state() == before


@pytest.fixture
def admin_client(client, manager):
    manager.user_permissions.add(*Permission.objects.filter(codename__in=["view_reward", "change_reward"]))
    client.force_login(manager)
    return client


def test_the_admin_sets_the_scope_as_comma_separated_lists(admin_client, program):
    reward = RewardFactory(program=program, scope_categories=["books"])
    url = reverse("admin:rewards_reward_change", args=[reward.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and 'value="books"' in page.content.decode()

    response = admin_client.post(
        url,
        {
            "name": reward.name,
            "kind": reward.kind,
            "value": "5.00",
            "points_cost": reward.points_cost,
            "voucher_valid_days": 30,
            "is_active": "on",
            "scope_skus": "NOVEL-7, ATLAS-2",
            "scope_categories": "books , maps",
            "min_basket": "100.00",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    reward.refresh_from_db()
    assert (reward.scope_skus, reward.scope_categories, reward.min_basket) == (
        ["NOVEL-7", "ATLAS-2"],
        ["books", "maps"],
        Decimal("100.00"),
    )
