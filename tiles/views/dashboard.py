"""The Installation Dashboard and its buttons.

The BOSH Director tile and one tile per staged product (green configured,
orange incomplete, red marked for deletion, "Missing stemcell"), each with
its deploy state: "Apply failed" (its step of the last installation that
had it failed, linked), "Pending changes" or "Deployed"; Import a
Product, Available Products with a "+" to stage, Delete unused products,
and Revert (staged changes back to the last installation).
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from opsconsole.auth import can_write
from opsconsole.errors import ServiceError
from tiles import director_tile, services
from tiles.models import StagedProduct
from tiles.services import installations

from .common import _error_lines, _staged_or_404, writer_required


def _deploy_state(last_step, deployed: bool, changed: bool) -> str:
    """``failed`` (its last apply failed), ``pending`` (staged differs) or ``deployed``."""
    if last_step is not None and last_step.state == "failed":
        return "failed"
    if not deployed or changed:
        return "pending"
    return "deployed"


def _staged_changed(staged: StagedProduct) -> bool:
    """Does the staged configuration differ from the deployed snapshot (cheap: no rendering)?"""
    if staged.marked_for_deletion or staged.deployed_version != staged.product.version:
        return True
    state = staged.deployed_state or {}
    return any(
        state.get(key) != getattr(staged, key)
        for key in ("values", "secrets", "network_and_azs", "resource_config", "errands")
    )


def _tile_card(staged: StagedProduct, last_step=None) -> dict:
    checks, warnings = services.product_checks(staged)
    if staged.marked_for_deletion:
        state = "deleting"
    elif checks["configuration_complete"] and checks["configurable_properties_valid"]:
        state = "configured"
    else:
        state = "incomplete"
    return {
        "staged": staged,
        "label": staged.product.label or staged.product.name,
        "version": staged.product.version,
        "state": state,
        "missing_stemcell": not checks["stemcell_present"],
        "warnings": warnings,
        "deploy_state": _deploy_state(last_step, staged.is_deployed, _staged_changed(staged)),
        "last_step": last_step,
    }


def _director_card(last_step=None) -> dict:
    d = director_tile.get_director()
    missing = director_tile.director_completeness(d)
    deployed = d.deployed_at is not None
    changed = d.deployed_state != director_tile.director_state(d)
    return {
        "state": "incomplete" if any(missing.values()) else "configured",
        "missing": {k: v for k, v in missing.items() if v},
        "deployed": deployed,
        "deploy_state": _deploy_state(last_step, deployed, changed),
        "last_step": last_step,
    }


@require_http_methods(["GET"])
def dashboard(request):
    staged = services.list_staged_products()
    staged_versions = {(s.product.name, s.product.version) for s in staged}
    available = []
    for p in services.list_available_products():
        available.append({"product": p, "staged": (p.name, p.version) in staged_versions})
    director_guid = director_tile.get_director().guid
    last = installations.last_steps([director_guid, *(s.guid for s in staged)])
    return render(
        request,
        "tiles/dashboard.html",
        {
            "director": _director_card(last.get(director_guid)),
            "tiles": [_tile_card(s, last.get(s.guid)) for s in staged],
            "available": available,
            "can_write": can_write(request.user),
        },
    )


@require_POST
@writer_required
def product_import(request):
    upload = request.FILES.get("product[file]") or request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a .pivotal file or a product template (.yml) to import.")
        return redirect("dashboard")
    try:
        product = services.import_product(upload, upload.name, request.user.get_username())
    except ServiceError as exc:
        # "product[file]" is the API's field name: here it is the file just chosen.
        for key, msgs in exc.errors.items():
            for m in msgs:
                where = "" if key in ("product[file]", "file", "base") else f"{key}: "
                messages.error(request, f"{upload.name}: {where}{m}")
        return redirect("dashboard")
    messages.success(request, f"Imported {product.label or product.name} {product.version}.")
    for line in product.warnings:  # quirks accepted as Ops Manager accepts them
        messages.warning(request, f"{upload.name}: {line}")
    return redirect("dashboard")


@require_POST
@writer_required
def product_stage(request):
    name, version = request.POST.get("name", ""), request.POST.get("version", "")
    try:
        staged = services.stage_product(name, version)
    except ServiceError as exc:
        for line in _error_lines(exc.errors):
            messages.error(request, line)
        return redirect("dashboard")
    messages.success(request, f"Staged {name} {version}.")
    return redirect("product", guid=staged.guid)


@require_POST
@writer_required
def product_unstage(request, guid):
    staged = _staged_or_404(guid)
    label = staged.product.label or staged.product.name
    try:
        left = services.unstage_product(guid)
    except ServiceError as exc:
        for line in _error_lines(exc.errors):
            messages.error(request, line)
        return redirect("dashboard")
    if left is None:
        messages.success(request, f"{label} was removed.")
    else:
        messages.success(request, f"{label} is marked for deletion; Apply Changes deletes it.")
    return redirect("dashboard")


@require_POST
@writer_required
def products_delete_unused(request):
    n = services.delete_unused_products()
    messages.success(request, f"Deleted {n} unused product{'s' if n != 1 else ''}.")
    return redirect("dashboard")


@require_POST
@writer_required
def revert(request):
    try:
        services.revert_staged()
    except ServiceError as exc:
        for line in _error_lines(exc.errors):
            messages.error(request, line)
        return redirect("dashboard")
    messages.success(request, "Staged changes were reverted to the last installation.")
    return redirect("dashboard")
