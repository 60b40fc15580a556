"""URLs and a database snapshot of the manager API's reward catalog and vouchers (/api/manage/v1/rewards/...)."""

from typing import Any

from members.models import Program
from rewards.models import Reward, Voucher
from tests.api.utils import MANAGE, db_state

REWARDS_URL = f"{MANAGE}/rewards/"
VOUCHERS_URL = f"{MANAGE}/vouchers/"
PERMISSIONS = ["view_reward", "add_reward", "change_reward", "view_voucher", "cancel_voucher"]
REWARD_FIELDS = [f.attname for f in Reward._meta.concrete_fields]
VOUCHER_FIELDS = [f.attname for f in Voucher._meta.concrete_fields]


def reward_url(reward_id):
    return f"{REWARDS_URL}{reward_id}/"


def voucher_url(voucher_id):
    return f"{VOUCHERS_URL}{voucher_id}/"


def cancel_url(voucher_id):
    return f"{VOUCHERS_URL}{voucher_id}/cancel/"


def catalog_state() -> dict[str, Any]:
    """Everything these endpoints could write: rewards, vouchers and the ledger."""
    return {
        "rewards": list(Reward.objects.order_by("pk").values_list(*REWARD_FIELDS)),
        "vouchers": list(Voucher.objects.order_by("pk").values_list(*VOUCHER_FIELDS)),
        "programs": list(Program.objects.order_by("pk").values_list("pk", "config_version")),
        **db_state(),
    }
