"""Rewards and vouchers in the admin: scoped to the manager's programs; cancelling goes through voucher_cancel."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse

from loyalty.models import Account, EntryKind
from rewards.models import Reward, Voucher, VoucherStatus
from tests.builders import fund, redeem
from tests.factories import MemberFactory, RewardFactory

CHANGELIST = "admin:rewards_voucher_changelist"


@pytest.fixture
def manager_client(client, manager):
    manager.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_voucher", "cancel_voucher", "view_reward", "add_reward", "change_reward"]
        )
    )
    client.force_login(manager)
    return client


@pytest.fixture
def voucher(program, funded_member, reward):
    return redeem(funded_member, reward).voucher


def test_cancel_action_gives_the_points_back(manager_client, manager, voucher, funded_member):
    response = manager_client.post(
        reverse(CHANGELIST), {"action": "cancel_vouchers", "_selected_action": [voucher.pk]}, follow=True
    )

    assert response.status_code == 200
    stored = Voucher.objects.get(pk=voucher.pk)
    assert (stored.status, stored.cancelled_by) == (VoucherStatus.CANCELLED, manager)
    assert stored.refund_entry.kind == EntryKind.REFUND and stored.refund_entry.actor == manager
    assert Account.objects.get(pk=funded_member.pk).available == 1000
    assert "Cancelled" in response.content.decode()


def test_a_manager_sees_and_cancels_only_their_programs_vouchers(manager_client, voucher, other_program):
    foreign_member = MemberFactory(program=other_program)
    fund(foreign_member, 500)
    foreign = redeem(foreign_member, RewardFactory(program=other_program)).voucher

    listing = manager_client.get(reverse(CHANGELIST))
    manager_client.post(reverse(CHANGELIST), {"action": "cancel_vouchers", "_selected_action": [foreign.pk]})

    assert [v.pk for v in listing.context["cl"].result_list] == [voucher.pk]
    assert Voucher.objects.get(pk=foreign.pk).status == VoucherStatus.ISSUED
    found = manager_client.get(reverse(CHANGELIST), {"q": voucher.display_code.lower()})
    assert [v.pk for v in found.context["cl"].result_list] == [voucher.pk]


def test_vouchers_are_read_only_and_a_reward_is_validated(manager_client, program, voucher):
    assert manager_client.get(reverse("admin:rewards_voucher_change", args=[voucher.pk])).status_code == 200
    assert manager_client.get(reverse("admin:rewards_voucher_add")).status_code == 403

    response = manager_client.post(
        reverse("admin:rewards_reward_add"),
        {
            "program": program.pk,
            "name": "Half off",
            "kind": "percent_discount",
            "value": "150",
            "points_cost": 100,
            "voucher_valid_days": 30,
            "is_active": "on",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "percent" in str(response.context["adminform"].form.errors["value"])
    assert not Reward.objects.filter(name="Half off").exists()


def test_the_reward_form_speaks_to_a_manager(manager_client):
    form = manager_client.get(reverse("admin:rewards_reward_add")).context["adminform"].form

    labels = {name: form.fields[name].label for name in ("sku", "scope_skus", "scope_categories")}

    assert labels == {"sku": "SKU", "scope_skus": "SKUs in scope", "scope_categories": "Categories in scope"}
    # the limit itself, not a pointer to the API guide a manager has not read
    assert form.fields["points_cost"].help_text == "Points the member spends on it; at most 1,000,000,000."


def test_the_reward_model_validates_its_kind():
    for fields, field in [
        ({"kind": "percent_discount", "value": Decimal(0)}, "value"),
        ({"kind": "fixed_discount", "value": None}, "value"),
        ({"kind": "free_product", "value": Decimal(2), "sku": ""}, "sku"),
    ]:
        with pytest.raises(ValidationError) as caught:
            Reward(name="R", points_cost=1, **fields).clean()
        assert field in caught.value.message_dict
    Reward(name="R", points_cost=1, kind="gift").clean()
