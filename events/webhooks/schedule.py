"""When a failed delivery is tried again: exponential backoff with jitter, then dead."""

import random
from collections.abc import Callable

from django.conf import settings


def retry_delay(failures: int, *, uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """Seconds to wait after the `failures`-th failed attempt, or None when the delivery is dead.

    The n-th wait is drawn between half and all of min(BASE x 2^(n-1), MAX) ("equal jitter"), so receivers that
    failed together are not retried together, and a wait is never less than half its step."""
    if failures >= settings.WEBHOOK_MAX_ATTEMPTS:
        return None
    step = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (failures - 1), settings.WEBHOOK_RETRY_MAX_SECONDS)
    return uniform(step / 2, step)


def retry_window() -> tuple[float, float]:
    """The shortest and longest time from the first attempt to the last (for docs and the admin)."""
    steps = [
        min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (n - 1), settings.WEBHOOK_RETRY_MAX_SECONDS)
        for n in range(1, settings.WEBHOOK_MAX_ATTEMPTS)
    ]
    return sum(steps) / 2, float(sum(steps))
