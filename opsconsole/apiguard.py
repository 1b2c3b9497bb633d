"""Request text the database cannot hold is refused where the request is read.

PostgreSQL refuses NUL characters in text and in ``jsonb``: a path
parameter (``/deployments/%00``), a query parameter or a JSON body string
carrying one would otherwise reach the ORM and come back as a 500. The
``api_view`` here is DRF's, with that check run first: 400 naming the
parameter, or the body path (``properties/.properties.x/value``). Every
API module (opsconsole's, the director's, the tiles', the console's) uses
it, so every route gets the check without one line per view.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from rest_framework.decorators import api_view as drf_api_view

from opsconsole.apierrors import ApiError

NUL = "\x00"
MESSAGE = "must not contain NUL characters"


def _nul_paths(value: Any, path: str, out: list[str], limit: int = 5) -> None:
    """Paths of body strings (keys or values) holding a NUL, depth-first, at most ``limit``."""
    stack = [(value, path)]
    while stack and len(out) < limit:
        node, where = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                out.append(where or "body")
        elif isinstance(node, Mapping):
            for k, v in node.items():
                key = str(k)
                child = f"{where}/{key}" if where else key
                if NUL in key:
                    out.append(child)
                stack.append((v, child))
        elif isinstance(node, list):
            stack.extend((v, f"{where}/{i}" if where else str(i)) for i, v in enumerate(node))


def refuse_nul(request, kwargs: Mapping[str, Any]) -> None:
    """Raise ApiError(400) naming each path/query parameter or JSON body node with a NUL."""
    errors: dict[str, list[str]] = {}
    for name, value in kwargs.items():
        if isinstance(value, str) and NUL in value:
            errors[name] = [MESSAGE]
    for name, values in request.query_params.lists():
        if NUL in name or any(NUL in v for v in values):
            errors[name.replace(NUL, "\\x00")] = [MESSAGE]
    if "json" in (request.content_type or "") and request.stream is not None:
        found: list[str] = []
        _nul_paths(request.data, "", found)
        for where in found:
            errors[where.replace(NUL, "\\x00")] = [MESSAGE]
    if errors:
        raise ApiError(errors)


def api_view(methods):
    """DRF's ``api_view`` with ``refuse_nul`` run before the view."""

    def decorator(func):
        @functools.wraps(func)
        def checked(request, *args, **kwargs):
            refuse_nul(request, kwargs)
            return func(request, *args, **kwargs)

        return drf_api_view(methods)(checked)

    return decorator
