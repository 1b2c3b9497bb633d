"""API plumbing shared by every app: pagination and the error shape.

Every error is JSON ``{"errors": {...}}`` naming the field or manifest path;
bad input never yields a 500 with a traceback. Kept free of view imports:
DRF loads it while it reads its own settings.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from opsconsole.errors import ServiceError


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ApiError(exceptions.APIException):
    """An error with a status and an ``errors`` mapping (field or path -> messages)."""

    def __init__(self, errors, status_code=status.HTTP_400_BAD_REQUEST):
        if isinstance(errors, str):
            errors = {"base": [errors]}
        self.errors = {k: (v if isinstance(v, list) else [v]) for k, v in errors.items()}
        self.status_code = status_code
        super().__init__(detail=self.errors)


def exception_handler(exc, context):
    """Wrap every DRF error as ``{"errors": ...}``."""
    if isinstance(exc, ApiError):
        return Response({"errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, ServiceError):
        # Services (shared by pages, API and commands) say what is wrong and which status fits.
        return Response({"errors": exc.errors}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"base": exc.messages}
        return Response({"errors": errors}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        errors = {"base": [str(data["detail"])]}
    elif isinstance(data, dict):
        errors = {k: (v if isinstance(v, list) else [v]) for k, v in data.items()}
    else:
        errors = {"base": data if isinstance(data, list) else [str(data)]}
    response.data = {"errors": errors}
    return response
