"""Admin API: export and import the installation, rotate the encryption key.

- ``GET /api/v0/installation_asset_collection`` with the passphrase in the
  ``X-Export-Passphrase`` header (or a JSON body ``{"passphrase"}``): the
  encrypted export, as a download.
- ``POST /api/v0/installation_asset_collection``, multipart
  ``installation[file]`` + ``passphrase`` (+ ``force=true`` to replace an
  existing installation): import it. 409 on a console that already has
  products or deployments; 422 naming ``passphrase`` or ``installation[file]``
  for a wrong passphrase or a corrupt file; nothing is changed by either.
- ``POST /api/v0/encryption_key/rotate``: re-encrypt every secret under a new
  key kept in the data dir; the answer never holds a key. 409 when the key
  comes from the environment (only ``manage.py rotate_encryption_key`` with
  the console stopped can rotate it).

Admins only (another role gets 403: an export holds every credential, an
import replaces users and roles). A passphrase in the URL is refused: URLs
end up in access logs.
"""

from __future__ import annotations

import datetime
import tempfile

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.decorators import parser_classes, permission_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from opsconsole.apierrors import ApiError
from opsconsole.apiguard import api_view
from opsconsole.auth import ROLE_ADMIN, role_of

from . import installation, keys
from .archive import FILE_FIELD, PASSPHRASE_FIELD

PASSPHRASE_HEADER = "X-Export-Passphrase"


class IsConsoleAdmin(permissions.BasePermission):
    """Only the admin role (superusers included)."""

    message = "Only admins may export, import or rotate keys."

    def has_permission(self, request, view):
        return role_of(request.user) == ROLE_ADMIN


def _refuse_passphrase_in_url(request) -> None:
    if any(name.lower() == PASSPHRASE_FIELD for name in request.query_params):
        raise ApiError(
            {
                PASSPHRASE_FIELD: [
                    "must not be given in the URL, which access logs keep: send it in the "
                    f"{PASSPHRASE_HEADER} header (export) or as a form field (import)"
                ]
            }
        )


def _body_value(request, name):
    data = request.data
    if hasattr(data, "get"):
        return data.get(name)
    return None


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


@extend_schema(
    methods=["GET"],
    operation_id="installation_asset_collection_export",
    parameters=[
        OpenApiParameter(
            PASSPHRASE_HEADER,
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="the passphrase the export is encrypted with (12 characters or more)",
        )
    ],
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, "the encrypted export"),
        400: OpenApiTypes.OBJECT,
        403: OpenApiTypes.OBJECT,
        409: OpenApiTypes.OBJECT,
        422: OpenApiTypes.OBJECT,
    },
)
@extend_schema(
    methods=["POST"],
    operation_id="installation_asset_collection_import",
    request={
        "multipart/form-data": {
            "type": "object",
            "properties": {
                FILE_FIELD: {"type": "string", "format": "binary"},
                PASSPHRASE_FIELD: {"type": "string"},
                "force": {"type": "boolean"},
            },
            "required": [FILE_FIELD, PASSPHRASE_FIELD],
        }
    },
    responses={
        200: OpenApiTypes.OBJECT,
        400: OpenApiTypes.OBJECT,
        403: OpenApiTypes.OBJECT,
        409: OpenApiTypes.OBJECT,
        422: OpenApiTypes.OBJECT,
    },
)
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
@permission_classes([IsConsoleAdmin])
def installation_asset_collection(request):
    """Export the installation (GET) or import one onto a fresh console (POST)."""
    _refuse_passphrase_in_url(request)
    if request.method == "GET":
        passphrase = request.headers.get(PASSPHRASE_HEADER) or _body_value(
            request, PASSPHRASE_FIELD
        )
        out = tempfile.TemporaryFile(dir=settings.DATA_DIR, prefix=".export-")
        try:
            installation.export_installation(out, passphrase, user=request.user.get_username())
            out.seek(0)
        except BaseException:
            out.close()
            raise
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        return FileResponse(
            out,
            as_attachment=True,
            filename=f"installation-{stamp}.zip",
            content_type="application/zip",
        )
    upload = request.FILES.get(FILE_FIELD)
    if upload is None:
        raise ApiError({FILE_FIELD: ["This field is required (the exported file)."]})
    passphrase = _body_value(request, PASSPHRASE_FIELD)
    force = _truthy(_body_value(request, "force"))
    summary = installation.import_installation(
        upload.file, passphrase, force=force, user=request.user.get_username()
    )
    return Response({"import": summary.as_dict()})


@extend_schema(
    request=None,
    responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
)
@api_view(["POST"])
@permission_classes([IsConsoleAdmin])
def rotate_encryption_key(request):
    """Re-encrypt every secret under a new data-dir key; the old key opens nothing afterwards."""
    result = keys.rotate_encryption_key(user=request.user.get_username())
    return Response(
        {
            "encryption_key": {
                "source": result.key_source,
                "values_reencrypted": result.values,
                "columns": result.columns,
                "finished_interrupted_rotation": result.finished_interrupted,
            }
        }
    )
