"""Console-wide models: API tokens and user roles."""

import hashlib
import secrets

from django.conf import settings
from django.db import models


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the API; only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """Create a token; the raw value is returned once and never stored."""
        raw = secrets.token_urlsafe(32)
        return cls.objects.create(user=user, digest=_digest(raw), name=name), raw

    @classmethod
    def find(cls, raw: str) -> "ApiToken | None":
        return cls.objects.select_related("user").filter(digest=_digest(raw)).first()


class UserProfile(models.Model):
    """The console role of a user (see ``opsconsole.auth``)."""

    ROLE_CHOICES = [
        (r, r)
        for r in ("admin", "full_control", "restricted_control", "full_view", "restricted_view")
    ]
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES, default="full_view")
