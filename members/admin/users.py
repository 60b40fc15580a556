"""Users, groups and the admin sign-in records: superusers only.

Django's user admin is not scoped to programs: a manager with `auth.view_user`
would see every program's member logins and managers, and with
`auth.change_user` could set their passwords (or make themselves superuser).
Users and groups span programs, so only superusers manage them; the
permissions `auth.*_user` and `auth.*_group` grant nothing to anyone else.
The same holds for django-axes' records of admin sign-ins (usernames and
addresses of every program's managers).
"""

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest


class SuperuserOnlyAdmin:
    """Every admin permission of the model needs an active superuser."""

    @staticmethod
    def _superuser(request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Also guards the password form (UserAdmin.user_change_password asks this).
        return self._superuser(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)


class SuperuserUserAdmin(SuperuserOnlyAdmin, UserAdmin):
    pass


class SuperuserGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, SuperuserUserAdmin)
admin.site.register(Group, SuperuserGroupAdmin)


def _superusers_only(model: Any) -> None:
    """Re-registers the admin of `model` (registered by its app) for superusers only."""
    if not admin.site.is_registered(model):
        return
    registered = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(f"Superuser{registered.__name__}", (SuperuserOnlyAdmin, registered), {}))


for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    _superusers_only(_model)
