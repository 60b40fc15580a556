"""When earned points expire, per the program's policy. Pure functions, no ORM.

Expiry instants are exclusive bounds: points expire at `expires_at`, which is
local midnight in the program's time zone for the calendar-based policies.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import models


class ExpiryPolicy(models.TextChoices):
    NEVER = "never", "Never"
    DAYS = "days", "N days after earning"
    MONTH_END = "month_end", "End of the Nth month after earning"
    YEAR_END = "year_end", "End of the calendar year after earning"


def _local_midnight(year: int, month: int, day: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(date(year, month, day), time.min, tzinfo=tz)


def expiry_date(*, policy: ExpiryPolicy, period: int, earned_at: datetime, tz: ZoneInfo) -> datetime | None:
    if policy == ExpiryPolicy.NEVER:
        return None
    if policy == ExpiryPolicy.DAYS:
        return earned_at + timedelta(days=period)
    local = earned_at.astimezone(tz)
    if policy == ExpiryPolicy.YEAR_END:
        return _local_midnight(local.year + 2, 1, 1, tz)
    # End of the Nth month after the earning month = first day of the month after it.
    months = local.year * 12 + (local.month - 1) + period + 1
    return _local_midnight(months // 12, months % 12 + 1, 1, tz)
