"""The admin's navigation (config/admin.py): the home page and the sidebar group the models by task, in order,
and show a user only what they may open; each model keeps its app's URLs."""

from config import admin as config_admin
from tests.admin.utils import grant, url

EVERYTHING = [
    (
        "Members",
        ["Members", "Purchases", "Returns", "Ledger entries", "Lots", "Tier history"],
    ),
    ("Earning and tiers", ["Earning rules", "Tiers"]),
    ("Rewards", ["Rewards", "Vouchers"]),
    (
        "Analytics",
        [
            "Analytics dashboard",
            "Reward attainability",
            "RFM segments",
            "Segment changes",
            "NPS answers",
            "Acquisition costs",
        ],
    ),
    ("Integrations", ["API keys", "Webhook endpoints", "Webhook deliveries", "Events"]),
    (
        "Programs and access",
        ["Programs", "Users", "Groups", "Access attempts", "Access logs", "Access failures"],
    ),
]


def groups(app_list):
    return [(group["name"], [str(model["name"]) for model in group["models"]]) for group in app_list]


def test_the_home_page_lists_every_model_of_a_superuser_in_its_group_in_order(client, superuser):
    client.force_login(superuser)

    response = client.get(url("index"))

    assert groups(response.context["app_list"]) == EVERYTHING
    page = response.content.decode()
    captions = [page.index(f'<span class="section">{name}</span>') for name, _ in EVERYTHING]
    assert captions == sorted(captions)


def test_a_manager_sees_only_the_models_and_pages_they_may_open(client, manager):
    manager = grant(manager, "view_memberanalytics", "view_earningrule", "view_npsanswer")
    client.force_login(manager)

    response = client.get(url("index"))

    assert groups(response.context["app_list"]) == [
        ("Members", ["Members", "Ledger entries", "Lots"]),
        ("Earning and tiers", ["Earning rules"]),
        ("Analytics", ["Analytics dashboard", "NPS answers"]),
        ("Integrations", ["API keys"]),
        ("Programs and access", ["Programs"]),
    ]
    page = response.content.decode()
    assert url("members_member_changelist") in page and "/admin/analytics/dashboard/" in page
    assert url("rewards_reward_attainability") not in page and url("auth_user_changelist") not in page


def test_the_sidebar_shows_the_same_groups(client, manager):
    client.force_login(manager)

    response = client.get(url("members_member_changelist"))

    assert groups(response.context["available_apps"]) == [
        ("Members", ["Members", "Ledger entries", "Lots"]),
        ("Integrations", ["API keys"]),
        ("Programs and access", ["Programs"]),
    ]


def test_an_apps_own_page_still_lists_its_models(client, superuser):
    client.force_login(superuser)

    response = client.get(url("app_list", "loyalty"))

    assert groups(response.context["app_list"]) == [
        (
            "Points, purchases and tiers",
            ["Earning rules", "Ledger entries", "Lots", "Purchases", "Returns", "Tier history", "Tiers"],
        )
    ]


def test_a_model_missing_from_the_groups_is_still_listed_under_its_app(client, superuser, monkeypatch):
    monkeypatch.setattr(config_admin, "GROUPS", [group for group in config_admin.GROUPS if group[0] != "Integrations"])
    client.force_login(superuser)

    response = client.get(url("index"))

    assert groups(response.context["app_list"])[-2:] == [
        ("Events and webhooks", ["Events", "Webhook deliveries", "Webhook endpoints"]),
        ("Programs and members", ["API keys"]),
    ]
