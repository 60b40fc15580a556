"""Sign-in tokens (member app and manager API): created, checked, revoked.

Only a digest of each token is stored (`AccessToken`). A token ends when it is
ACCESS_TOKEN_LIFETIME_HOURS old, at sign-out, and whenever its user's password
changes: the receivers below watch the user's password hash, so every way of
changing it (the admin's password form and reset, /admin/password_change/, the
member app's password, `changepassword`, GDPR erasure) signs the user out
everywhere, without each of them having to remember.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.db.models.signals import post_init, post_save
from django.utils import timezone

from members.models import AccessToken


class TokenExpired(Exception):
    """The token exists but is older than ACCESS_TOKEN_LIFETIME_HOURS."""


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(hours=settings.ACCESS_TOKEN_LIFETIME_HOURS)


def access_token_expires_at(token: AccessToken) -> Any:
    return token.created_at + _lifetime()


def access_token_create(*, user: Any) -> str:
    """A new token of `user`; the plain text is returned once and never stored. The user's expired
    tokens are deleted on the way, so they do not pile up."""
    now = timezone.now()
    AccessToken.objects.filter(user=user, created_at__lt=now - _lifetime()).delete()
    key = secrets.token_hex(20)
    AccessToken.objects.create(user=user, digest=token_digest(key), created_at=now)
    return key


def access_token_authenticate(key: str) -> AccessToken | None:
    """The token (with its user) whose digest matches `key`; None if unknown; TokenExpired if too old."""
    token = AccessToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None:
        return None
    if access_token_expires_at(token) <= timezone.now():
        raise TokenExpired()
    return token


def access_tokens_revoke(*, user: Any) -> int:
    """Deletes every token of the user: signed out on every device. The number deleted."""
    deleted, _ = AccessToken.objects.filter(user=user).delete()
    return deleted


# --- Password changes end every token ----------------------------------------------------------------


def _remember_password(sender: Any, instance: Any, **kwargs: Any) -> None:
    # The hash as loaded (absent when the field was deferred): compared when the user is saved.
    instance._loaded_password = instance.__dict__.get("password")


def _revoke_on_password_change(sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any) -> None:
    password = instance.__dict__.get("password")
    saved = update_fields is None or "password" in update_fields
    if saved and not created and password is not None and password != getattr(instance, "_loaded_password", None):
        # A new password comes through set_password (which leaves the raw password in `_password` until
        # the save ends) or makes the password unusable; a hash that changed without either is the same
        # password re-hashed by check_password (a stronger hasher): not a change, as Django says too.
        rehashed = instance._password is None and is_password_usable(password)
        if not rehashed:
            access_tokens_revoke(user=instance)
    if saved:
        instance._loaded_password = password


def connect_password_receivers() -> None:
    user_model = get_user_model()
    post_init.connect(_remember_password, sender=user_model, dispatch_uid="members.tokens.remember_password")
    post_save.connect(_revoke_on_password_change, sender=user_model, dispatch_uid="members.tokens.revoke")
