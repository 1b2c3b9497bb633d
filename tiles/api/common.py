"""What every console API view needs: body and ``If-Match`` parsing, the caller, ETags.

Bodies follow Ops Manager's shapes and are documented as objects (``JSON``);
a write honouring a version takes ``If-Match`` (``IF_MATCH``) and a read
answers the ``ETag`` of what it shows (``versioned``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

from opsconsole.apierrors import ApiError
from tiles import services
from tiles.services import versions

#: Bodies follow Ops Manager's shapes (see the docstrings and docs/API.md), documented as objects.
JSON = OpenApiTypes.OBJECT

#: The staged writes that honour a version (``tiles.services.versions``).
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "The ETag of the GET this write is based on. When what it covers changed since, the "
        "write is refused with 409 naming who changed it and when. Optional: without it the "
        "write is accepted (Ops Manager clients send none) and the last write wins."
    ),
)


def request_user(request) -> str:
    return request.user.get_username()


def body_of(request, key: str | None = None) -> Any:
    data = request.data
    if not isinstance(data, Mapping):
        raise ApiError({"body": ["must be a JSON object"]})
    if key is None:
        return data
    if key not in data:
        raise ApiError({key: ["is required"]})
    return data[key]


def staged_or_404(guid: str):
    return services.get_staged_product(guid)


def if_match(request) -> int | None:
    """The version a write is based on (``If-Match``), None when the client sent none."""
    return versions.parse_if_match(request.headers.get("If-Match"))


def versioned(data, sp, parts, status: int = 200) -> Response:
    """``data`` with the ``ETag`` of what it shows (``sp``: a staged product or the Director tile)."""
    return Response(
        data, status=status, headers={"ETag": versions.etag(versions.version(sp, parts))}
    )


def director_versioned(data, *parts: str, status: int = 200) -> Response:
    return versioned(data, services.get_director(), parts, status)


def iso_time(value) -> str | None:
    return value.isoformat() if value else None
