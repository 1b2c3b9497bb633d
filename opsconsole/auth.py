"""Authentication and roles for pages and the API.

Pages need a Django session login (anonymous users are redirected to the
login page). The API under ``/api/`` authenticates itself: a session, or
``Authorization: Bearer <token>`` with a token from ``POST /api/v0/auth/token``;
an anonymous API call gets 401, a role without the right gets 403. A token
expires (``API_TOKEN_LIFETIME``) and may be revoked; either is a 401 saying
which. Failed logins are throttled (``opsconsole.throttle``).

Roles follow Ops Manager's: admin and full_control may change anything;
restricted_control may change but not read credentials; full_view and
restricted_view only read (restricted_view sees no credentials).
"""

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from rest_framework import authentication, exceptions, permissions

from .models import ApiToken

ROLE_ADMIN = "admin"
ROLE_FULL_CONTROL = "full_control"
ROLE_RESTRICTED_CONTROL = "restricted_control"
ROLE_FULL_VIEW = "full_view"
ROLE_RESTRICTED_VIEW = "restricted_view"
ROLES = [
    ROLE_ADMIN,
    ROLE_FULL_CONTROL,
    ROLE_RESTRICTED_CONTROL,
    ROLE_FULL_VIEW,
    ROLE_RESTRICTED_VIEW,
]
WRITE_ROLES = {ROLE_ADMIN, ROLE_FULL_CONTROL, ROLE_RESTRICTED_CONTROL}
CREDENTIAL_ROLES = {ROLE_ADMIN, ROLE_FULL_CONTROL, ROLE_FULL_VIEW}


def role_of(user) -> str | None:
    """The console role of a user; superusers are admins, others default to full_view."""
    if not user or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ROLE_ADMIN
    profile = getattr(user, "console_profile", None)
    return profile.role if profile else ROLE_FULL_VIEW


def can_write(user) -> bool:
    return role_of(user) in WRITE_ROLES


def can_see_credentials(user) -> bool:
    return role_of(user) in CREDENTIAL_ROLES


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's login-required middleware, except for the API, which answers 401 itself."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``; tokens are stored hashed."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = ApiToken.find(header[1].decode(errors="replace"))
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.state == ApiToken.REVOKED:
            raise exceptions.AuthenticationFailed(
                f"This token was revoked at {token.revoked_at.isoformat(timespec='seconds')}; "
                "get a new one from POST /api/v0/auth/token."
            )
        if token.state == ApiToken.EXPIRED:
            raise exceptions.AuthenticationFailed(
                f"This token expired at {token.expires_at.isoformat(timespec='seconds')}; "
                "get a new one from POST /api/v0/auth/token."
            )
        token.touch()
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class RolePermission(permissions.BasePermission):
    """Reads for every role; writes only for the control roles."""

    message = "Your role may not change this."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_write(request.user)
