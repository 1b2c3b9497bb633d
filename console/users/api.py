"""``/api/v0/users``: list and create users; ``/api/v0/users/{username}``: read one,
change its role, state or password, delete it.

Admins only (the admin role, which superusers have): another role gets 403,
an anonymous caller 401. Errors are ``{"errors": {field: [messages]}}``:
422 for a bad value (unknown role, weak password), 409 for a duplicate user
name, a change that would leave no active admin or an admin deleting
themselves, 404 naming an unknown user, 400 for a body that is not an
object. Passwords are write-only: no answer carries one. A new password
revokes the user's API tokens; a deleted user's tokens and sessions are gone.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import update_session_auth_hash
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import permission_classes
from rest_framework.response import Response

from opsconsole.apierrors import ApiError, Pagination
from opsconsole.apiguard import api_view
from opsconsole.auth import ROLE_ADMIN, ROLES, role_of

from . import services


class IsConsoleAdmin(permissions.BasePermission):
    """Only the admin role (superusers included) may read or change users."""

    message = "Only admins may manage users."

    def has_permission(self, request, view):
        return role_of(request.user) == ROLE_ADMIN


class UserSerializer(serializers.Serializer):
    """A user as the API shows it (never a password)."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    active = serializers.BooleanField()
    superuser = serializers.BooleanField()
    date_joined = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True, help_text="checked by the password rules")
    role = serializers.ChoiceField(choices=ROLES)


class UserUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES, required=False)
    active = serializers.BooleanField(required=False, help_text="false disables the user")
    password = serializers.CharField(required=False, write_only=True, help_text="a new password")


class UserPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = UserSerializer(many=True)


def user_json(user) -> dict:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "role": role_of(user),
        "active": user.is_active,
        "superuser": user.is_superuser,
        "date_joined": user.date_joined.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def _body(request) -> Mapping:
    if not isinstance(request.data, Mapping):
        raise ApiError({"body": ["must be a JSON object"]})
    return request.data


ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="body not an object"),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="not an admin"),
    409: OpenApiResponse(OpenApiTypes.OBJECT, description="duplicate name, or no admin left"),
    422: OpenApiResponse(OpenApiTypes.OBJECT, description="a field is wrong (named)"),
}


@extend_schema(
    methods=["GET"],
    responses={200: UserPageSerializer, 403: OpenApiTypes.OBJECT},
    parameters=[
        OpenApiParameter("search", str, required=False, description="part of the user name"),
        OpenApiParameter("limit", int, required=False),
        OpenApiParameter("offset", int, required=False),
    ],
    operation_id="users_list",
)
@extend_schema(
    methods=["POST"],
    request=UserCreateSerializer,
    responses={201: UserSerializer, **ERRORS},
    operation_id="users_create",
)
@api_view(["GET", "POST"])
@permission_classes([IsConsoleAdmin])
def users(request):
    """``GET`` every user, paginated (``?search=`` part of the name); ``POST`` creates one."""
    if request.method == "POST":
        data = _body(request)
        user = services.create_user(
            request.user.get_username(),
            data.get("username"),
            data.get("password"),
            data.get("role"),
        )
        return Response(user_json(user), status=status.HTTP_201_CREATED)
    search = request.query_params.get("search", "")
    paginator = Pagination()
    page = paginator.paginate_queryset(services.list_users(search), request)
    return paginator.get_paginated_response([user_json(u) for u in page])


NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="no such user (named)")


@extend_schema(methods=["GET"], responses={200: UserSerializer, 404: NOT_FOUND})
@extend_schema(
    methods=["PATCH"],
    request=UserUpdateSerializer,
    responses={200: UserSerializer, 404: NOT_FOUND, **ERRORS},
    description="A new ``password`` revokes the user's API tokens and ends their sessions.",
)
@extend_schema(
    methods=["DELETE"],
    responses={
        204: None,
        403: ERRORS[403],
        404: NOT_FOUND,
        409: OpenApiResponse(OpenApiTypes.OBJECT, description="yourself, or the last admin"),
    },
    description="Deletes the user with their API tokens and sessions; events about them stay.",
)
@api_view(["GET", "PATCH", "DELETE"])
@permission_classes([IsConsoleAdmin])
def user(request, username: str):
    """``GET`` one user; ``PATCH`` any of ``role``, ``active`` (false disables), ``password``;
    ``DELETE`` removes them."""
    target = services.get_user_named(username)
    actor = request.user.get_username()
    if request.method == "DELETE":
        services.delete_user(actor, target.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        changes = _body(request)
        target = services.update_user(actor, target.pk, changes)
        if target.pk == request.user.pk and "password" in changes and request.auth is None:
            # A session caller who reset their own password stays logged in.
            update_session_auth_hash(request._request, target)
        return Response(user_json(target))
    return Response(user_json(target))
