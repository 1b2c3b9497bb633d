"""Console-wide models: API tokens, user roles and the login throttle."""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


#: How long an expired or revoked token's row stays to explain a 401.
TOKEN_ROW_RETENTION = datetime.timedelta(days=7)


class ApiToken(models.Model):
    """A bearer token for the API; only its SHA-256 is stored.

    A token lives ``settings.API_TOKEN_LIFETIME`` seconds (12 h by default, as
    a UAA access token) and may be revoked before that. Expired and revoked
    rows are kept a while so a caller is told why its token stopped working.
    """

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """Create a token; the raw value is returned once and never stored."""
        raw = secrets.token_urlsafe(32)
        now = timezone.now()
        expires_at = now + datetime.timedelta(seconds=settings.API_TOKEN_LIFETIME)
        # Rows a caller can no longer be told about are dropped as new ones are issued.
        cls.objects.filter(expires_at__lt=now - TOKEN_ROW_RETENTION).delete()
        token = cls.objects.create(user=user, digest=_digest(raw), name=name, expires_at=expires_at)
        return token, raw

    @classmethod
    def find(cls, raw: str) -> "ApiToken | None":
        return cls.objects.select_related("user").filter(digest=_digest(raw)).first()

    def touch(self) -> None:
        """Note the token's use, at most once a minute (not a write per request)."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > datetime.timedelta(minutes=1):
            self.last_used_at = now
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)

    def revoke(self) -> bool:
        """Revoke the token; False if it already was."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = timezone.now()
        type(self).objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=self.revoked_at
        )
        return True

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return self.REVOKED
        if self.expires_at <= timezone.now():
            return self.EXPIRED
        return self.ACTIVE


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


class LoginThrottle(models.Model):
    """Failed logins counted for one user name or one client address.

    Shared by the login page and ``POST /api/v0/auth/token`` and kept in the
    database so that every web server worker sees the same count. ``failures``
    counts from ``window_started_at``; reaching the limit sets ``locked_until``
    and starts a new count. See ``opsconsole.throttle``.
    """

    USER = "user"
    ADDRESS = "address"
    SCOPE_CHOICES = [(USER, "user name"), (ADDRESS, "client address")]

    scope = models.CharField(max_length=16, choices=SCOPE_CHOICES)
    key = models.CharField(max_length=255)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="login_throttle_scope_key")
        ]
        indexes = [models.Index(fields=["window_started_at"], name="login_throttle_window_idx")]
