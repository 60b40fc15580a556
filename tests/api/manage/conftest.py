import pytest
from django.contrib.auth.models import Permission

from tests.api.manage.catalog import PERMISSIONS


@pytest.fixture
def catalog_manager(manager):
    """`manager` with the permissions of the reward catalog and vouchers."""
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="rewards", codename__in=PERMISSIONS)
    )
    return manager
