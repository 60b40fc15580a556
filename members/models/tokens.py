"""Sign-in tokens of the member app and the manager API."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessToken(models.Model):
    """A token a client sends as `Authorization: Token <token>`.

    Only its SHA-256 digest is stored: tokens are long random strings, so a
    leaked database (or backup) does not sign anyone in. A token lasts
    ACCESS_TOKEN_LIFETIME_HOURS from its creation, until sign-out, or until its
    user's password changes (`members.tokens`).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="accesstoken_user_created")]

    def __str__(self) -> str:
        return f"Token of {self.user_id} from {self.created_at:%Y-%m-%d %H:%M}"
