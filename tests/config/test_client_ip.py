"""The one client address every per-IP throttle, the admin lockout and the request log use."""

import pytest
from django.test import RequestFactory

from config.observability import client_ip


@pytest.mark.parametrize(
    ("num_proxies", "forwarded", "expected"),
    [
        (0, None, "10.0.0.1"),
        (0, "203.0.113.5", "10.0.0.1"),  # no proxy: the header is the client's own text
        (1, None, "10.0.0.1"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # the client wrote 6.6.6.6
        (2, "6.6.6.6, 203.0.113.5, 10.1.1.1", "203.0.113.5"),
        (3, "203.0.113.5", "203.0.113.5"),  # fewer hops than proxies: the leftmost
        (1, " , ", "10.0.0.1"),
    ],
)
def test_the_client_address_trusts_forwarded_for_only_behind_proxies(settings, num_proxies, forwarded, expected):
    settings.NUM_PROXIES = num_proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", **headers)

    assert client_ip(request) == expected
