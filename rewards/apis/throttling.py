"""Slowing down voucher-code guessing at the tills.

Each `voucher_not_found` answer counts against the API key and against the
client's IP address within the key's program in the cache; after `GUESS_LIMIT`
failures within `GUESS_WINDOW_SECONDS` further voucher requests from that key,
or from that IP to that program, get 429 `throttled` until the window ends.
Counters never span programs: tills of several programs behind one address (a
mall, a franchise's NAT) do not lock each other out. Found codes do not count.
With 60-bit codes guessing is hopeless anyway; the limit keeps it from being
cheap noise.
"""

from rest_framework.request import Request

from config.api.throttling import FailureThrottle
from members.models import ApiKey

GUESS_LIMIT = 10
GUESS_WINDOW_SECONDS = 60


class VoucherGuessThrottle(FailureThrottle):
    """Refuses voucher requests from a key, or an IP within a program, with too many recent unknown codes."""

    limit = GUESS_LIMIT
    window = GUESS_WINDOW_SECONDS

    def cache_keys(self, request: Request) -> list[str]:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):  # voucher endpoints authenticate first: nothing to count
            return []
        return [
            f"voucher-guess:key:{api_key.pk}",
            f"voucher-guess:program:{api_key.program_id}:ip:{self.get_ident(request)}",
        ]
