"""Console-wide API endpoints: public info, and API tokens (issue, list, revoke).

``POST /api/v0/auth/token`` logs in through the login throttle
(``opsconsole.throttle``): a locked user name or address gets 429 with
``Retry-After``. A token's secret is in the issue answer only; the lists
show its id, name, owner and dates. A user lists and revokes their own
tokens, an admin anyone's.
"""

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from . import __version__, throttle
from .apierrors import ApiError, Pagination
from .apiguard import api_view as guarded_api_view
from .auth import ROLE_ADMIN, role_of
from .models import ApiToken


@extend_schema(
    responses=inline_serializer(
        name="Info",
        fields={
            "info": serializers.DictField(help_text='{"version": "..."}'),
            "setup_completed": serializers.BooleanField(),
        },
    )
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def info(request):
    """Public: the version and whether setup is done."""
    return Response(
        {
            "info": {"version": __version__},
            "setup_completed": get_user_model().objects.filter(is_superuser=True).exists(),
        }
    )


@extend_schema(
    request=inline_serializer(
        name="TokenRequest",
        fields={"username": serializers.CharField(), "password": serializers.CharField()},
    ),
    responses={
        200: inline_serializer(
            name="Token",
            fields={
                "access_token": serializers.CharField(),
                "token_type": serializers.CharField(default="bearer"),
                "username": serializers.CharField(),
                "id": serializers.IntegerField(help_text="for DELETE /api/v0/auth/tokens/{id}"),
                "expires_in": serializers.IntegerField(help_text="seconds"),
                "expires_at": serializers.DateTimeField(),
            },
        ),
        400: OpenApiTypes.OBJECT,
        401: OpenApiTypes.OBJECT,
        429: OpenApiResponse(
            OpenApiTypes.OBJECT, description="too many failed logins; see Retry-After"
        ),
    },
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def issue_token(request):
    """``POST /api/v0/auth/token`` with username + password -> a bearer token."""
    if not isinstance(request.data, dict):
        raise ApiError({"base": ["the body must be an object with username and password"]})
    username, password = request.data.get("username"), request.data.get("password")
    errors = {
        field: ["This field is required."] if value in (None, "") else ["must be text"]
        for field, value in (("username", username), ("password", password))
        if not isinstance(value, str) or not value or "\x00" in value
    }
    if errors:
        raise ApiError(errors)
    try:
        user = throttle.authenticate(request, username, password)
    except throttle.LockedOut as locked:
        # Throttled carries Retry-After; its detail is our message alone (it says how long).
        throttled = exceptions.Throttled(wait=locked.retry_after)
        throttled.detail = exceptions.ErrorDetail(locked.message, code="locked_out")
        raise throttled from None
    if user is None:
        raise ApiError({"base": ["Invalid username or password."]}, status.HTTP_401_UNAUTHORIZED)
    token, raw = ApiToken.issue(user, name="api")
    return Response(
        {
            "access_token": raw,
            "token_type": "bearer",
            "username": user.username,
            "id": token.pk,
            "expires_in": max(0, round((token.expires_at - timezone.now()).total_seconds())),
            "expires_at": token.expires_at.isoformat(),
        }
    )


class ApiTokenSerializer(serializers.Serializer):
    """A token as lists show it: never its secret nor its digest."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    username = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "expired", "revoked"])
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiTokenPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ApiTokenSerializer(many=True)


def token_json(token) -> dict:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": token.pk,
        "name": token.name,
        "username": token.user.get_username(),
        "state": token.state,
        "created_at": when(token.created_at),
        "expires_at": when(token.expires_at),
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
    }


def _tokens_visible_to(request):
    """The tokens the caller may see: their own, or anyone's for an admin (``?username=``)."""
    tokens = ApiToken.objects.select_related("user")
    username = request.query_params.get("username")
    if role_of(request.user) != ROLE_ADMIN:
        if username not in (None, request.user.get_username()):
            raise ApiError(
                {"username": ["only an admin may see another user's tokens"]},
                status.HTTP_403_FORBIDDEN,
            )
        return tokens.filter(user=request.user)
    if username is not None:
        return tokens.filter(user__username=username)
    return tokens


USERNAME_PARAM = OpenApiParameter(
    "username", str, required=False, description="whose tokens (admins: anyone's; default: yours)"
)
STATE_PARAM = OpenApiParameter(
    "state", str, required=False, enum=["active", "expired", "revoked"], description="only these"
)


@extend_schema(
    methods=["GET"],
    parameters=[
        USERNAME_PARAM,
        STATE_PARAM,
        OpenApiParameter("limit", int, required=False),
        OpenApiParameter("offset", int, required=False),
    ],
    responses={200: ApiTokenPageSerializer, 403: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    operation_id="auth_tokens_list",
)
@extend_schema(
    methods=["DELETE"],
    parameters=[USERNAME_PARAM],
    responses={
        200: inline_serializer(
            name="TokensRevoked", fields={"revoked": serializers.IntegerField()}
        ),
        403: OpenApiTypes.OBJECT,
    },
    description="Revoke every active token of a user (yours unless an admin names another).",
    operation_id="auth_tokens_revoke_all",
)
@guarded_api_view(["GET", "DELETE"])
@permission_classes([IsAuthenticated])
def tokens(request):
    """``GET`` the caller's tokens (an admin: anyone's), newest first; ``DELETE`` revokes them all."""
    visible = _tokens_visible_to(request)
    now = timezone.now()
    if request.method == "DELETE":
        if role_of(request.user) != ROLE_ADMIN or "username" not in request.query_params:
            visible = visible.filter(user=request.user)
        revoked = visible.filter(revoked_at__isnull=True, expires_at__gt=now).update(revoked_at=now)
        return Response({"revoked": revoked})
    state = request.query_params.get("state")
    if state == "active":
        visible = visible.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif state == "expired":
        visible = visible.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        visible = visible.filter(revoked_at__isnull=False)
    elif state is not None:
        raise ApiError(
            {"state": ["must be one of active, expired, revoked"]},
            status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    paginator = Pagination()
    page = paginator.paginate_queryset(visible.order_by("-id"), request)
    return paginator.get_paginated_response([token_json(t) for t in page])


@extend_schema(
    methods=["GET"],
    responses={200: ApiTokenSerializer, 404: OpenApiTypes.OBJECT},
    operation_id="auth_tokens_read",
)
@extend_schema(
    methods=["DELETE"],
    responses={200: ApiTokenSerializer, 404: OpenApiTypes.OBJECT},
    description="Revoke one token: it answers 401 from now on.",
    operation_id="auth_tokens_revoke",
)
@guarded_api_view(["GET", "DELETE"])
@permission_classes([IsAuthenticated])
def token_detail(request, token_id: int):
    """One token of the caller's (an admin: anyone's); ``DELETE`` revokes it."""
    # Another user's token is "not found" to a non-admin: ids tell nothing.
    token = _tokens_visible_to(request).filter(pk=token_id).first() if token_id < 2**63 else None
    if token is None:
        raise ApiError({"id": [f"no token {token_id}"]}, status.HTTP_404_NOT_FOUND)
    if request.method == "DELETE":
        token.revoke()
    return Response(token_json(token))
