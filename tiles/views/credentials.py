"""A product tile's Credentials tab (Ops Manager's): the deployed product's credential
references, and a value only when someone allowed to see credentials asks for it.

The page lists references only. Revealing one is a POST (CSRF-checked, never
prefetched), answered ``Cache-Control: no-store`` so no browser or proxy
keeps the value; each reveal is an audit event
(``tiles.services.reveal_credential``). Roles that may not see credentials
(restricted_control, restricted_view) see the references and no button, and
a reveal by them is refused (403) without an event.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from opsconsole.auth import can_see_credentials
from opsconsole.errors import NotFound
from tiles import services

from .common import _staged_or_404


@require_GET
def product_credentials(request, guid):
    staged = _staged_or_404(guid)
    refs = services.list_credentials(guid) if staged.is_deployed else []
    response = render(
        request,
        "tiles/product_credentials.html",
        {
            "staged": staged,
            "label": staged.product.label or staged.product.name,
            "refs": refs,
            "can_see": can_see_credentials(request.user),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def product_credential_reveal(request, guid, ref):
    if not can_see_credentials(request.user):
        raise PermissionDenied("Your role may not see credentials.")
    try:
        credential = services.reveal_credential(guid, ref, request.user.get_username())[
            "credential"
        ]
    except NotFound as exc:
        raise Http404("; ".join(m for ms in exc.errors.values() for m in ms)) from None
    value = credential.get("value")
    parts = [(k, v) for k, v in value.items()] if isinstance(value, dict) else [("value", value)]
    response = render(
        request,
        "tiles/fragments/credential_value.html",
        {"ref": ref, "type": credential.get("type"), "parts": parts},
    )
    response["Cache-Control"] = "no-store"
    return response
