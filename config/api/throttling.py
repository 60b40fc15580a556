"""Throttles every surface shares: client addresses as the proxy reports them, and the throttle of failed
sign-ins."""

from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from config.observability import client_ip


class ClientIpMixin:
    """Throttles that key on an address use the one trusted client address (`client_ip`), never DRF's
    default, which takes the whole client-written X-Forwarded-For when NUM_PROXIES is unset."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class FailureThrottle(ClientIpMixin, BaseThrottle):
    """Counts failures only (unknown voucher codes, wrong passwords) under the cache keys a subclass
    names; once any key reaches `limit` within `window` seconds, requests under it get 429."""

    limit = 10
    window = 60

    def cache_keys(self, request: Request) -> list[str]:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        counts = cache.get_many(self.cache_keys(request))
        return all(count < self.limit for count in counts.values())

    def wait(self) -> float:
        return float(self.window)

    def record_failure(self, request: Request) -> None:
        for key in self.cache_keys(request):
            # add() starts the window on the first failure; incr() never extends it.
            if not cache.add(key, 1, timeout=self.window):
                try:
                    cache.incr(key)
                except ValueError:  # expired between add() and incr()
                    cache.add(key, 1, timeout=self.window)
