"""Console-wide API endpoints: public info and token issue."""

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from . import __version__
from .apierrors import ApiError


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
            },
        ),
        400: OpenApiTypes.OBJECT,
        401: OpenApiTypes.OBJECT,
    },
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def issue_token(request):
    """``POST /api/v0/auth/token`` with username + password -> a bearer token."""
    from .models import ApiToken

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
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise ApiError({"base": ["Invalid username or password."]}, status.HTTP_401_UNAUTHORIZED)
    _, raw = ApiToken.issue(user, name="api")
    return Response({"access_token": raw, "token_type": "bearer", "username": user.username})
