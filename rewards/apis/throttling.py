"""Slowing down voucher-code guessing at the tills.

Each `voucher_not_found` answer counts against the API key and against the
client's IP address in the cache; after `GUESS_LIMIT` failures within
`GUESS_WINDOW_SECONDS` further voucher requests from that key or IP get 429
`throttled` until the window ends. Found codes do not count. With 60-bit
codes guessing is hopeless anyway; the limit keeps it from being cheap noise.
"""

from rest_framework.request import Request

from config.api import FailureThrottle
from members.models import ApiKey

GUESS_LIMIT = 10
GUESS_WINDOW_SECONDS = 60


class VoucherGuessThrottle(FailureThrottle):
    """Refuses voucher requests from a key or IP with too many recent unknown codes."""

    limit = GUESS_LIMIT
    window = GUESS_WINDOW_SECONDS

    def cache_keys(self, request: Request) -> list[str]:
        keys = [f"voucher-guess:ip:{self.get_ident(request)}"]
        if isinstance(request.auth, ApiKey):
            keys.append(f"voucher-guess:key:{request.auth.pk}")
        return keys
