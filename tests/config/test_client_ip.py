"""The one client address every per-IP throttle, the admin lockout and the request log use."""

import logging

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


@pytest.mark.parametrize(("num_proxies", "expected"), [(0, "10.0.0.9"), (1, "203.0.113.5")])
def test_the_request_log_names_the_same_client_address(client, caplog, settings, num_proxies, expected):
    settings.NUM_PROXIES = num_proxies
    caplog.set_level(logging.DEBUG, logger="loyalty.request")

    client.get("/health/live/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")

    (record,) = [record for record in caplog.records if record.name == "loyalty.request"]
    assert record.client_ip == expected
