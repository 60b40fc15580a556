import pytest

from tests.events.receiver import Receiver, receiver_start


@pytest.fixture
def receiver(settings):
    """A real HTTP server on 127.0.0.1 (webhook endpoints may point at it in tests)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    receiver = Receiver()
    server = receiver_start(receiver)
    yield receiver
    server.shutdown()
    server.server_close()
