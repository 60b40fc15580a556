from typing import Any

from members.models import Member
from rewards.models import Reward, Voucher
from tests.api.utils import db_state

APP = "/api/app/v1"
LOGIN_URL = f"{APP}/auth/token/"
LOGOUT_URL = f"{APP}/auth/logout/"
ME_URL = f"{APP}/me/"
LEDGER_URL = f"{APP}/me/ledger/"
TIER_URL = f"{APP}/me/tier/"
REWARDS_URL = f"{APP}/me/rewards/"
VOUCHERS_URL = f"{APP}/me/vouchers/"
EXPORT_URL = f"{APP}/me/export/"


def redeem_url(reward_id: Any) -> str:
    return f"{APP}/me/rewards/{reward_id}/redeem/"


def state() -> dict[str, Any]:
    """Everything an app request could write, for before/after comparisons."""
    return {
        **db_state(),
        "profiles": list(
            Member.objects.order_by("pk").values_list(
                "pk", "first_name", "last_name", "birth_date", "consent_email", "consent_sms", "user_id"
            )
        ),
        "vouchers": list(Voucher.objects.order_by("pk").values_list("pk", "member_id", "status")),
        "stock": list(Reward.objects.order_by("pk").values_list("pk", "stock")),
    }
