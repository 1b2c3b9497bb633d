"""Console pages for tiles (thin over ``tiles.services``).

- the **Installation Dashboard**: the BOSH Director tile and one tile per
  staged product (green configured, orange incomplete, red marked for
  deletion, "Missing stemcell"), Import a Product, Available Products with
  a "+" to stage, Delete unused products, Review Pending Changes, Revert;
- a **product tile**: a left menu of panes with check marks (the tile's
  ``form_types``, Assign AZs and Networks, Resource Config, Errands); each
  pane saves on its own and an invalid value shows its error beside the
  field with nothing saved;
- the **Director tile**: vCenter Config (with "Test connection", which
  fills datacenter, cluster, datastore and portgroup choices), Director
  Config, Create Availability Zones, Create Networks, Assign AZ and
  Network, VM Types;
- **Review Pending Changes**, **Apply Changes**, the installation page
  with its live log, and the **Change Log**.

One view per page; with ``request.htmx`` a view answers the fragment the
page asked for (``?fragment=...``): a selector's option fields, a new
collection/AZ/cluster/network/subnet row, the vCenter inventory, new log
lines. Plain forms work without JavaScript. Every write needs a control
role (``opsconsole.auth.can_write``), else 403.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from director.services import NotFound, ServiceError
from opsconsole.auth import can_write
from tiles import director_tile, services
from tiles import properties as props
from tiles.forms import (
    Catalogs,
    DirectorSettingsForm,
    ErrandsForm,
    NetworkAssignmentForm,
    ResourceConfigForm,
    TilePaneForm,
    VCenterForm,
    parse_availability_zones,
    parse_networks,
    parse_vm_types,
)
from tiles.formspec import FormSpec, build_form_spec, build_form_specs
from tiles.models import StagedProduct

#: htmx stops polling when a response has this status.
HTMX_STOP_POLLING = 286
INVENTORY_SESSION_KEY = "tiles.vcenter_inventory"


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


def _catalogs() -> Catalogs:
    return Catalogs(
        vm_types=[v["name"] for v in director_tile.vm_types()],
        disk_types=[d["name"] for d in director_tile.disk_types()],
        availability_zones=[a["name"] for a in director_tile.list_availability_zones()],
    )


# --------------------------------------------------------------------------- dashboard


def _tile_card(staged: StagedProduct) -> dict:
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
    }


def _director_card() -> dict:
    missing = director_tile.director_completeness()
    return {
        "state": "incomplete" if any(missing.values()) else "configured",
        "missing": {k: v for k, v in missing.items() if v},
        "deployed": director_tile.get_director().deployed_at is not None,
    }


@require_http_methods(["GET"])
def dashboard(request):
    staged = services.list_staged_products()
    staged_versions = {(s.product.name, s.product.version) for s in staged}
    available = []
    for p in services.list_available_products():
        available.append({"product": p, "staged": (p.name, p.version) in staged_versions})
    return render(
        request,
        "tiles/dashboard.html",
        {
            "director": _director_card(),
            "tiles": [_tile_card(s) for s in staged],
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
        for line in _error_lines(exc.errors):
            messages.error(request, f"{upload.name}: {line}")
        return redirect("dashboard")
    messages.success(request, f"Imported {product.label or product.name} {product.version}.")
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


# --------------------------------------------------------------------------- product tile


def _pane_complete(spec: FormSpec, missing: list[str]) -> bool:
    refs = [f.reference for f in spec.fields]
    return not any(m == r or m.startswith((f"{r}.", f"{r}[")) for m in missing for r in refs)


def _product_menu(staged: StagedProduct, current: str) -> list[dict]:
    template = services.product_template(staged)
    missing = props.completeness(template, staged.all_values())
    na = staged.network_and_azs or {}
    menu = [
        {
            "key": "networks",
            "label": "Assign AZs and Networks",
            "url": reverse("product-networks", args=[staged.guid]),
            "done": bool(na.get("network") and na.get("singleton_availability_zone")),
        }
    ]
    for spec in build_form_specs(template):
        menu.append(
            {
                "key": f"form:{spec.name}",
                "label": spec.label,
                "url": reverse("product-form", args=[staged.guid, spec.name]),
                "done": _pane_complete(spec, missing),
            }
        )
    if services.get_errands(staged):
        menu.append(
            {
                "key": "errands",
                "label": "Errands",
                "url": reverse("product-errands", args=[staged.guid]),
                "done": True,
            }
        )
    menu.append(
        {
            "key": "resources",
            "label": "Resource Config",
            "url": reverse("product-resources", args=[staged.guid]),
            "done": True,
        }
    )
    for item in menu:
        item["active"] = item["key"] == current
    return menu


def _product_page(request, staged, current, template_name, context, status=200):
    ctx = {
        "staged": staged,
        "label": staged.product.label or staged.product.name,
        "menu": _product_menu(staged, current),
        "can_write": can_write(request.user),
        **context,
    }
    return render(request, template_name, ctx, status=status)


def product(request, guid):
    """The tile page opens on its first pane, as Ops Manager's does."""
    staged = _staged_or_404(guid)
    return redirect(_product_menu(staged, "")[0]["url"])


@require_http_methods(["GET", "POST"])
@writer_required
def product_form(request, guid, form_name):
    staged = _staged_or_404(guid)
    template = services.product_template(staged)
    try:
        spec = build_form_spec(template, form_name)
    except KeyError:
        raise Http404(f"{staged.guid} has no form {form_name}") from None
    values = staged.all_values()
    kw = {"catalogs": _catalogs(), "url": request.path}
    fragment = request.GET.get("fragment")
    if request.method == "GET" and fragment:
        return _product_form_fragment(request, spec, template, values, fragment, kw)
    if request.method == "POST":
        form = TilePaneForm(spec, template, values, request.POST, **kw)
        if form.is_valid():
            try:
                services.set_properties(staged, form.values)
            except ServiceError as exc:
                form.add_reference_errors(exc.errors)
            else:
                messages.success(request, f"{spec.label}: saved.")
                return redirect(request.path)
        elif form.rerender_only:
            form.quiet()
            messages.info(request, "Not saved yet: fill in the fields shown, then Save.")
        status = 200 if form.rerender_only else 422
    else:
        form = TilePaneForm(spec, template, values, **kw)
        status = 200
    return _product_page(
        request,
        staged,
        f"form:{spec.name}",
        "tiles/product_form.html",
        {"form": form, "pane": spec},
        status=status,
    )


def _product_form_fragment(request, spec, template, values, fragment, kw):
    if fragment == "none":  # a removed row: htmx deletes the target itself
        return HttpResponse("")
    form = TilePaneForm(spec, template, values, **kw)
    if fragment == "selector":
        name = request.GET.get("selector", "")
        item = form.item(name)
        if item is None or item.kind != "selector":
            raise Http404(f"no selector {name}")
        chosen = request.GET.get(name)
        form = TilePaneForm(spec, template, values, selected={item.reference: chosen}, **kw)
        return render(
            request,
            "partials/tile_selector_option.html",
            {"form": form, "item": form.item(name), "can_write": can_write(request.user)},
        )
    if fragment == "row":
        name = request.GET.get("collection", "")
        item = form.item(name)
        try:
            index = int(request.GET.get("row", ""))
        except ValueError:
            index = None
        if item is None or item.kind != "collection" or index is None or index < 0:
            raise Http404("no such collection row")
        row = form.record_row(item.spec, name, index)
        item.next_index = index + 1
        return render(
            request,
            "tiles/fragments/collection_row.html",
            {"form": form, "item": item, "row": row},
        )
    raise Http404(f"unknown fragment {fragment}")


@require_http_methods(["GET", "POST"])
@writer_required
def product_networks(request, guid):
    staged = _staged_or_404(guid)
    azs = [a["name"] for a in director_tile.list_availability_zones()]
    networks = [n["name"] for n in director_tile.get_networks()["networks"]]
    na = staged.network_and_azs or {}
    if request.method == "POST":
        form = NetworkAssignmentForm(request.POST, azs=azs, networks=networks)
        if form.is_valid():
            try:
                services.set_networks_and_azs(staged, form.cleaned_data)
            except ServiceError as exc:
                for key, msgs in exc.errors.items():
                    for m in msgs:
                        form.add_error(key if key in form.fields else None, m)
            else:
                messages.success(request, "Assign AZs and Networks: saved.")
                return redirect(request.path)
        status = 422
    else:
        form = NetworkAssignmentForm(initial=na, azs=azs, networks=networks)
        status = 200
    return _product_page(
        request,
        staged,
        "networks",
        "tiles/product_networks.html",
        {"form": form, "no_director_networks": not azs or not networks},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@writer_required
def product_resources(request, guid):
    staged = _staged_or_404(guid)
    template = services.product_template(staged)
    jobs = [{"name": n, **j} for n, j in template.job_types.items()]
    kw = {
        "jobs": jobs,
        "vm_types": director_tile.vm_types(),
        "disk_sizes": [d["size_mb"] for d in director_tile.disk_types()],
    }
    if request.method == "POST":
        form = ResourceConfigForm(request.POST, **kw)
        if form.is_valid():
            errors: dict[str, list[str]] = {}
            for job, rc in form.job_values().items():
                try:
                    services.set_resource_config(staged, job, **rc)
                except ServiceError as exc:
                    for k, msgs in exc.errors.items():
                        errors[f"{job}/{k}"] = msgs
            if not errors:
                messages.success(request, "Resource Config: saved.")
                return redirect(request.path)
            form.add_job_errors(errors)
        status = 422
    else:
        initial = {}
        for job in jobs:
            rc = (staged.resource_config or {}).get(job["name"]) or {}
            initial[f"{job['name']}__instances"] = rc.get("instances")
            initial[f"{job['name']}__instance_type"] = rc.get("instance_type") or ""
            disk = rc.get("persistent_disk_mb")
            initial[f"{job['name']}__persistent_disk"] = str(disk) if disk is not None else ""
        form = ResourceConfigForm(initial=initial, **kw)
        status = 200
    automatic = {
        j["name"]: services.get_resource_config(staged, j["name"])["automatic"] for j in jobs
    }
    return _product_page(
        request,
        staged,
        "resources",
        "tiles/product_resources.html",
        {"form": form, "automatic": automatic},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@writer_required
def product_errands(request, guid):
    staged = _staged_or_404(guid)
    errands = [e for e in services.get_errands(staged) if "post_deploy" in e]
    if request.method == "POST":
        form = ErrandsForm(request.POST, errands=errands)
        if form.is_valid():
            try:
                services.set_errands(
                    staged,
                    [{"name": n, "post_deploy": v} for n, v in form.errand_values().items()],
                )
            except ServiceError as exc:
                for line in _error_lines(exc.errors):
                    form.add_error(None, line)
            else:
                messages.success(request, "Errands: saved.")
                return redirect(request.path)
        status = 422
    else:
        form = ErrandsForm(
            initial={
                e["name"]: ErrandsForm.initial_for(
                    None if e["post_deploy"] == "default" else e["post_deploy"]
                )
                for e in errands
            },
            errands=errands,
        )
        status = 200
    defaults = {e["name"]: e.get("default_post_deploy") for e in errands}
    return _product_page(
        request,
        staged,
        "errands",
        "tiles/product_errands.html",
        {"form": form, "defaults": defaults},
        status=status,
    )


# --------------------------------------------------------------------------- the Director tile

DIRECTOR_PANES = [
    ("vcenter", "vCenter Config"),
    ("director", "Director Config"),
    ("azs", "Create Availability Zones"),
    ("networks", "Create Networks"),
    ("network-and-az", "Assign AZ and Network"),
    ("vm-types", "VM Types"),
]


def _director_menu(current: str) -> list[dict]:
    missing = director_tile.director_completeness()
    done_keys = {
        "vcenter": "iaas_configuration",
        "director": "director_configuration",
        "azs": "availability_zones",
        "networks": "networks",
        "network-and-az": "network_and_az",
    }
    return [
        {
            "key": key,
            "label": label,
            "url": reverse("director-tile", args=[key]),
            "done": not missing.get(done_keys.get(key, ""), []),
            "active": key == current,
        }
        for key, label in DIRECTOR_PANES
    ]


def _director_page(request, pane, context, status=200):
    ctx = {
        "menu": _director_menu(pane),
        "pane": pane,
        "pane_label": dict(DIRECTOR_PANES)[pane],
        "can_write": can_write(request.user),
        "inventory": request.session.get(INVENTORY_SESSION_KEY) or {},
        **context,
    }
    return render(request, f"tiles/director_{pane.replace('-', '_')}.html", ctx, status=status)


def director_tile_home(request):
    return redirect("director-tile", pane="vcenter")


@require_http_methods(["GET", "POST"])
@writer_required
def director_tile_pane(request, pane):
    if pane not in dict(DIRECTOR_PANES):
        raise Http404(f"no pane {pane}")
    handler = {
        "vcenter": _director_vcenter,
        "director": _director_settings,
        "azs": _director_azs,
        "networks": _director_networks,
        "network-and-az": _director_network_and_az,
        "vm-types": _director_vm_types,
    }[pane]
    return handler(request, pane)


def _saved(request, pane):
    messages.success(request, f"{dict(DIRECTOR_PANES)[pane]}: saved.")
    return redirect(request.path)


def _director_vcenter(request, pane):
    current = director_tile.director_properties()["iaas_configuration"]
    stored = current.get("vcenter_password") == director_tile.MASK
    errors: list[str] = []
    if request.method == "POST":
        form = VCenterForm(request.POST, password_stored=stored)
        if form.is_valid():
            try:
                director_tile.set_iaas_configuration(form.iaas())
            except ServiceError as exc:
                for key, msgs in exc.errors.items():
                    field = key.rpartition("/")[2]
                    for m in msgs:
                        form.add_error(field if field in form.fields else None, m)
            else:
                return _saved(request, pane)
        status = 422
    else:
        initial = {k: v for k, v in current.items() if k != "vcenter_password"}
        form = VCenterForm(initial=initial, password_stored=stored)
        status = 200
    return _director_page(
        request,
        pane,
        {"form": form, "prefilled": current.get("prefilled"), "errors": errors},
        status=status,
    )


@require_POST
@writer_required
def director_test_connection(request):
    """Log in to the vCenter of the form (or the stored one) and list its inventory.

    The inventory is kept in the session: the AZ and network panes offer its
    clusters, resource pools and portgroups.
    """
    fields = (
        "vcenter_host",
        "vcenter_username",
        "vcenter_password",
        "datacenter",
        "vcenter_ca_certificate",
    )
    iaas = {k: request.POST.get(k) for k in fields if request.POST.get(k)}
    if "vcenter_host" in request.POST:
        iaas["ssl_verification_enabled"] = bool(request.POST.get("ssl_verification_enabled"))
    try:
        inventory = director_tile.test_vcenter_connection(iaas)
    except ServiceError as exc:
        ctx = {"ok": False, "errors": _error_lines(exc.errors), "inventory": {}}
    else:
        request.session[INVENTORY_SESSION_KEY] = inventory
        ctx = {"ok": True, "errors": [], "inventory": inventory}
    if request.htmx:
        return render(request, "tiles/fragments/vcenter_inventory.html", ctx)
    if ctx["ok"]:
        messages.success(
            request,
            "Connected: "
            + ", ".join(
                f"{len(inventory[k])} {k}" for k in ("clusters", "datastores", "portgroups")
            ),
        )
    else:
        for line in ctx["errors"]:
            messages.error(request, line)
    return redirect("director-tile", pane="vcenter")


def _director_settings(request, pane):
    current = director_tile.director_properties()["director_configuration"]
    if request.method == "POST":
        form = DirectorSettingsForm(request.POST)
        if form.is_valid():
            try:
                director_tile.set_director_configuration(form.cleaned_data)
            except ServiceError as exc:
                for key, msgs in exc.errors.items():
                    field = key.rpartition("/")[2]
                    for m in msgs:
                        form.add_error(field if field in form.fields else None, m)
            else:
                return _saved(request, pane)
        status = 422
    else:
        form = DirectorSettingsForm(initial=current)
        status = 200
    return _director_page(request, pane, {"form": form}, status=status)


def _rows_fragment(request, pane, context_builder):
    """htmx: one new row (AZ, cluster, network, subnet, VM type)."""
    kind = request.GET.get("fragment")
    try:
        index = int(request.GET.get("row", ""))
        parent = int(request.GET.get("parent", "0"))
    except ValueError:
        raise Http404("bad row") from None
    ctx = context_builder()
    ctx.update({"i": parent, "j": index, "index": index, "oob": True, "can_write": True})
    templates = {
        "az": "tiles/fragments/az_row.html",
        "cluster": "tiles/fragments/cluster_row.html",
        "network": "tiles/fragments/network_row.html",
        "subnet": "tiles/fragments/subnet_row.html",
        "vm": "tiles/fragments/vm_type_row.html",
    }
    if kind == "none":
        return HttpResponse("")
    if kind not in templates:
        raise Http404(f"unknown fragment {kind}")
    if kind == "az":
        ctx["az"] = {"name": "", "clusters": [{}]}
        ctx["i"] = index
    elif kind == "network":
        ctx["net"] = {"name": "", "subnets": [{}]}
        ctx["i"] = index
    elif kind == "vm":
        ctx["vm"] = {}
    else:
        ctx["c"] = ctx["sn"] = {}
    return render(request, templates[kind], ctx)


def _az_context():
    return {"az_names": [a["name"] for a in director_tile.list_availability_zones()]}


def _director_azs(request, pane):
    if request.method == "GET" and request.GET.get("fragment"):
        return _rows_fragment(request, pane, dict)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        azs = parse_availability_zones(request.POST)
        try:
            director_tile.set_availability_zones(azs)
        except ServiceError as exc:
            errors = _error_lines(exc.errors)
            status = 422
        else:
            return _saved(request, pane)
    else:
        azs = director_tile.list_availability_zones()
    for az in azs:
        az.setdefault("clusters", [])
        if not az["clusters"]:
            az["clusters"] = [{}]
    return _director_page(request, pane, {"azs": azs, "errors": errors}, status=status)


def _director_networks(request, pane):
    if request.method == "GET" and request.GET.get("fragment"):
        return _rows_fragment(request, pane, _az_context)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        data = parse_networks(request.POST)
        try:
            director_tile.set_networks(data)
        except ServiceError as exc:
            errors = _error_lines(exc.errors)
            status = 422
        else:
            return _saved(request, pane)
    else:
        data = director_tile.get_networks()
    return _director_page(
        request,
        pane,
        {
            "networks": data["networks"],
            "icmp": data["icmp_checks_enabled"],
            "errors": errors,
            **_az_context(),
        },
        status=status,
    )


def _director_network_and_az(request, pane):
    errors: list[str] = []
    status = 200
    current = director_tile.get_director().network_and_az or {}
    if request.method == "POST":
        current = {
            "network": request.POST.get("network", ""),
            "singleton_availability_zone": request.POST.get("singleton_availability_zone", ""),
        }
        try:
            director_tile.set_network_and_az(current)
        except ServiceError as exc:
            errors = _error_lines(exc.errors)
            status = 422
        else:
            return _saved(request, pane)
    return _director_page(
        request,
        pane,
        {
            "current": current,
            "errors": errors,
            "network_names": [n["name"] for n in director_tile.get_networks()["networks"]],
            **_az_context(),
        },
        status=status,
    )


def _director_vm_types(request, pane):
    if request.method == "GET" and request.GET.get("fragment"):
        return _rows_fragment(request, pane, dict)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        types = [] if request.POST.get("builtin") else parse_vm_types(request.POST)
        try:
            director_tile.set_vm_types(types)
        except ServiceError as exc:
            errors = _error_lines(exc.errors)
            status = 422
            vm_types = types
        else:
            return _saved(request, pane)
    else:
        vm_types = director_tile.vm_types()
    return _director_page(request, pane, {"vm_types": vm_types, "errors": errors}, status=status)


# --------------------------------------------------------------------------- pending changes, apply


@require_http_methods(["GET", "POST"])
@writer_required
def pending_changes(request):
    if request.method == "POST":
        deploy = request.POST.getlist("deploy_products")
        errands: dict[str, dict] = {}
        for key, value in request.POST.items():
            if key.startswith("errand:") and value in ("true", "false", "default"):
                _, guid, name = key.split(":", 2)
                if value != "default":
                    errands.setdefault(guid, {}).setdefault("run_post_deploy", {})[name] = (
                        value == "true"
                    )
        try:
            installation = services.apply_changes(
                user=request.user.get_username(),
                deploy_products=deploy or "none",
                errands=errands,
                ignore_warnings=bool(request.POST.get("ignore_warnings")),
            )
        except ServiceError as exc:
            for line in _error_lines(exc.errors):
                messages.error(request, line)
            return redirect("pending-changes")
        return redirect("installation", installation_id=installation.id)
    changes = services.pending_changes()["product_changes"]
    for change in changes:
        change["diffs"] = [
            (title, _diff_lines(change.get(key) or ""))
            for key, title in (
                ("manifest_diff", "Manifest"),
                ("cloud_config_diff", "Cloud config"),
                ("cpi_config_diff", "CPI config"),
            )
            if key in change
        ]
        change["plan_rows"] = _plan_rows(change.get("plan"))
    return render(
        request,
        "tiles/pending_changes.html",
        {"changes": changes, "can_write": can_write(request.user)},
    )


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as ``(css class, line)``: ``add``, ``del``, ``hunk`` or ``""``."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        elif line.startswith("@@"):
            cls = "hunk"
        else:
            cls = ""
        out.append((cls, line))
    return out


def _plan_rows(plan: Any) -> dict:
    """The director's plan (``director.execution.preview``) as table rows.

    ``{"rows": [{"group", "name", "az", "change", "reasons"}], "summary",
    "errors", "warnings"}``; instances without a change are left out.
    """
    if not isinstance(plan, Mapping):
        return {"rows": [], "errors": [], "summary": {}, "warnings": []}
    errors = _error_lines(plan.get("errors") or {})
    if plan.get("error"):
        errors.append(str(plan["error"]))
    rows = []
    groups = [*(plan.get("instance_groups") or []), *(plan.get("obsolete_instance_groups") or [])]
    for g in groups:
        for inst in [*(g.get("instances") or []), *(g.get("obsolete") or [])]:
            if inst.get("change") in (None, "none") or inst.get("ignored"):
                continue
            rows.append(
                {
                    "group": g.get("name"),
                    "name": inst.get("label") or inst.get("name"),
                    "az": inst.get("az") or "",
                    "change": inst.get("change"),
                    "reasons": "; ".join(map(str, inst.get("reasons") or [])),
                }
            )
    return {
        "rows": rows,
        "errors": errors,
        "summary": plan.get("summary") or {},
        "warnings": list(plan.get("warnings") or []),
    }


def _digest(lines: list[str]) -> str:
    return hashlib.sha1("".join(lines).encode()).hexdigest()[:16]


def installation(request, installation_id):
    """The installation and its live log.

    The page polls ``?fragment=log&after=<lines>&digest=<hash of them>``:
    when the first ``after`` lines are still what the page shows, only the
    new lines are appended; when a step's header line changed (its state),
    the whole log is replaced. Once the installation is terminal the server
    answers 286 and htmx stops polling.
    """
    try:
        inst = services.get_installation(installation_id)
    except NotFound:
        raise Http404(f"No installation {installation_id}") from None
    lines = services.installation_logs(inst.id).splitlines(keepends=True)
    terminal = inst.status != "running"
    ctx = {
        "inst": inst,
        "steps": list(inst.steps.all()),
        "log": "".join(lines),
        "terminal": terminal,
        "after": len(lines),
        "digest": _digest(lines),
        "poll_url": reverse("installation", args=[inst.id]),
    }
    if request.htmx and request.GET.get("fragment") == "log":
        try:
            after = max(0, int(request.GET.get("after", "0")))
        except ValueError:
            after = 0
        same_prefix = after <= len(lines) and _digest(lines[:after]) == request.GET.get("digest")
        ctx["append"] = "".join(lines[after:]) if same_prefix else None
        response = render(request, "tiles/fragments/installation_poll.html", ctx)
        if terminal:
            response.status_code = HTMX_STOP_POLLING
        return response
    return render(request, "tiles/installation.html", ctx)


def _duration(start, end) -> str:
    if not start or not end:
        return ""
    seconds = int((end - start).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def changelog(request):
    installations = list(services.list_installations()[:100])
    for inst in installations:
        inst.duration_text = _duration(inst.started_at, inst.finished_at)
        inst.product_steps = [
            {"step": st, "duration": _duration(st.started_at, st.finished_at)}
            for st in inst.steps.all()
            if st.kind in ("configs", "deploy", "delete")
        ]
    return render(request, "tiles/changelog.html", {"installations": installations})
