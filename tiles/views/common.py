"""What every tiles page needs: the write check, error lines, a staged product or 404.

Reads are for every role; a write (any method but GET/HEAD) needs a
control role (``opsconsole.auth.can_write``), else 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from opsconsole.auth import can_write
from opsconsole.errors import NotFound
from tiles import services
from tiles.models import StagedProduct


def _error_lines(errors: Mapping[str, Any]) -> list[str]:
    out = []
    for key, msgs in errors.items():
        for m in msgs if isinstance(msgs, list | tuple) else [msgs]:
            out.append(f"{key}: {m}" if key else str(m))
    return out


def writer_required(view: Callable) -> Callable:
    """POST (and other writes) need a control role; reads are for every role."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") and not can_write(request.user):
            raise PermissionDenied("Your role may not change the configuration.")
        return view(request, *args, **kwargs)

    return wrapped


def _staged_or_404(guid: str) -> StagedProduct:
    try:
        return services.get_staged_product(guid)
    except NotFound:
        raise Http404(f"No staged product {guid}") from None
