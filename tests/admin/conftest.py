import pytest

from tests.factories import SuperuserFactory


@pytest.fixture
def superuser(db):
    return SuperuserFactory(password="not-a-real-password")


@pytest.fixture
def su_client(client, superuser):
    """The admin signed in as a superuser."""
    client.force_login(superuser)
    return client
