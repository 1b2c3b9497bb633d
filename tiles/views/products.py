"""A product tile: a left menu of panes with check marks, one page per pane.

The panes are the tile's ``form_types`` (forms built from its blueprints,
``tiles.forms.TilePaneForm``), Assign AZs and Networks, Resource Config and
Errands. Each pane saves on its own; an invalid value shows its error
beside the field and nothing is saved. Each form carries the version it
was read at (a hidden field): when someone else saved the same fields
since, the save is refused (409) naming who and when, and the pane shows
the saved values again (``tiles.services.versions``). With htmx a tile form answers a
fragment (``?fragment=selector`` for a selector's option fields,
``?fragment=row`` for a new collection row).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from opsconsole.auth import can_write
from opsconsole.errors import Conflict, ServiceError
from tiles import director_tile, services
from tiles.forms import (
    ErrandsForm,
    NetworkAssignmentForm,
    ResourceConfigForm,
    TilePaneForm,
)
from tiles.formspec import build_form_spec
from tiles.services import versions

from . import fielderrors
from .common import _error_lines, _staged_or_404, writer_required
from .product_menu import catalogs, product_menu


def _network_errors(form, errors) -> None:
    """The service's errors on the Assign AZs and Networks field they name
    (``other_availability_zones/1`` -> Balance other jobs in); the rest above
    the form, the path in words."""
    for key, msgs in errors.items():
        field = key.split("/", 1)[0]
        for m in msgs:
            if field in form.fields:
                form.add_error(field, m)
            else:
                form.add_error(None, fielderrors.sentence(fielderrors.describe(key), m))


def _posted_version(request) -> int | None:
    """The version the form was read at (its hidden field); None for a form without one."""
    return versions.parse_if_match(request.POST.get("version"), "version")


def _refused(request, exc: Conflict) -> None:
    """Say why a stale save was refused; the page then shows what is saved now."""
    for line in _error_lines(exc.errors):
        messages.error(request, line)
    messages.info(request, "The form shows the saved values now.")


def _manifest_errors(staged) -> list[str]:
    """What stops the tile's manifest from rendering (an accessor that cannot
    resolve, naming it and the tile it needs), shown on every pane of the tile.
    An unassigned network is left to the Assign AZs and Networks pane's mark."""
    try:
        services.render_manifest(staged, require_stemcell=False)
    except ServiceError as exc:
        errors = {k: v for k, v in exc.errors.items() if k != "networks_and_azs"}
        return _error_lines(errors)
    return []


def _product_page(request, staged, current, template_name, context, status=200):
    ctx = {
        "staged": staged,
        "label": staged.product.label or staged.product.name,
        "menu": product_menu(staged, current),
        "can_write": can_write(request.user),
        "manifest_errors": _manifest_errors(staged),
        **context,
    }
    return render(request, template_name, ctx, status=status)


def product(request, guid):
    """The tile page opens on its first pane, as Ops Manager's does."""
    staged = _staged_or_404(guid)
    return redirect(product_menu(staged, "")[0]["url"])


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
    kw = {"catalogs": catalogs(), "url": request.path}
    refs = [f.reference for f in spec.fields]
    version = versions.version(staged, versions.properties_part(refs))
    fragment = request.GET.get("fragment")
    if request.method == "GET" and fragment:
        return _product_form_fragment(request, spec, template, values, fragment, kw)
    if request.method == "POST":
        form = TilePaneForm(spec, template, values, request.POST, **kw)
        if form.is_valid():
            try:
                services.set_properties(
                    staged,
                    form.values,
                    user=request.user.get_username(),
                    version=_posted_version(request),
                    version_covers=refs,
                )
            except Conflict as exc:
                _refused(request, exc)
                staged = _staged_or_404(guid)
                version = versions.version(staged, versions.properties_part(refs))
                form = TilePaneForm(spec, template, staged.all_values(), **kw)
                return _product_page(
                    request,
                    staged,
                    f"form:{spec.name}",
                    "tiles/product_form.html",
                    {"form": form, "pane": spec, "version": version},
                    status=409,
                )
            except ServiceError as exc:
                form.add_reference_errors(exc.errors)
            else:
                messages.success(request, f"{spec.label}: saved.")
                return redirect(request.path)
        elif form.rerender_only:
            form.quiet()
            messages.info(request, "Not saved yet: fill in the fields shown, then Save.")
        status = 200 if form.rerender_only else 422
        if status == 422:
            fielderrors.field_sentences(form)
        # Still the version the operator read: what they type next is based on that read.
        version = request.POST.get("version", version)
    else:
        form = TilePaneForm(spec, template, values, **kw)
        status = 200
    return _product_page(
        request,
        staged,
        f"form:{spec.name}",
        "tiles/product_form.html",
        {"form": form, "pane": spec, "version": version},
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
    version = versions.version(staged, [versions.NETWORKS_AND_AZS])
    if request.method == "POST":
        form = NetworkAssignmentForm(request.POST, azs=azs, networks=networks)
        status = 422
        if form.is_valid():
            try:
                services.set_networks_and_azs(
                    staged,
                    form.cleaned_data,
                    user=request.user.get_username(),
                    version=_posted_version(request),
                )
            except Conflict as exc:
                _refused(request, exc)
                staged = _staged_or_404(guid)
                version = versions.version(staged, [versions.NETWORKS_AND_AZS])
                form = NetworkAssignmentForm(
                    initial=staged.network_and_azs or {}, azs=azs, networks=networks
                )
                status = 409
            except ServiceError as exc:
                _network_errors(form, exc.errors)
            else:
                messages.success(request, "Assign AZs and Networks: saved.")
                return redirect(request.path)
        if status == 422:
            version = request.POST.get("version", version)
            # The form's own messages are sentences; the service's follow no label.
            fielderrors.field_sentences(form, labels=dict.fromkeys(form.fields, ""))
    else:
        form = NetworkAssignmentForm(initial=na, azs=azs, networks=networks)
        status = 200
    return _product_page(
        request,
        staged,
        "networks",
        "tiles/product_networks.html",
        {"form": form, "no_director_networks": not azs or not networks, "version": version},
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
    parts = [versions.resource_config_part(j["name"]) for j in jobs]
    version = versions.version(staged, parts)

    def stored_form(staged):
        initial = {}
        for job in jobs:
            rc = (staged.resource_config or {}).get(job["name"]) or {}
            initial[f"{job['name']}__instances"] = rc.get("instances")
            initial[f"{job['name']}__instance_type"] = rc.get("instance_type") or ""
            disk = rc.get("persistent_disk_mb")
            initial[f"{job['name']}__persistent_disk"] = str(disk) if disk is not None else ""
        return ResourceConfigForm(initial=initial, **kw)

    if request.method == "POST":
        form = ResourceConfigForm(request.POST, **kw)
        status = 422
        if form.is_valid():
            errors: dict[str, list[str]] = {}
            user = request.user.get_username()
            try:
                posted = _posted_version(request)
                # Every job first: a stale page saves none of its jobs, not some.
                versions.check_fresh(staged, posted, parts)
                for job, rc in form.job_values().items():
                    try:
                        services.set_resource_config(staged, job, **rc, user=user, version=posted)
                    except Conflict:
                        raise
                    except ServiceError as exc:
                        for k, msgs in exc.errors.items():
                            errors[f"{job}/{k}"] = msgs
            except Conflict as exc:
                _refused(request, exc)
                staged = _staged_or_404(guid)
                version = versions.version(staged, parts)
                form = stored_form(staged)
                status = 409
            except ServiceError as exc:  # a malformed version field
                errors.update(exc.errors)
            if status != 409:
                if not errors:
                    messages.success(request, "Resource Config: saved.")
                    return redirect(request.path)
                form.add_job_errors(errors)
                version = request.POST.get("version", version)
        if status == 422:
            fielderrors.field_sentences(form)
    else:
        form = stored_form(staged)
        status = 200
    automatic = {
        j["name"]: services.get_resource_config(staged, j["name"])["automatic"] for j in jobs
    }
    return _product_page(
        request,
        staged,
        "resources",
        "tiles/product_resources.html",
        {"form": form, "automatic": automatic, "version": version},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@writer_required
def product_errands(request, guid):
    staged = _staged_or_404(guid)
    errands = [e for e in services.get_errands(staged) if "post_deploy" in e]
    version = versions.version(staged, [versions.ERRANDS])

    def stored_form(errands):
        return ErrandsForm(
            initial={
                e["name"]: ErrandsForm.initial_for(
                    None if e["post_deploy"] == "default" else e["post_deploy"]
                )
                for e in errands
            },
            errands=errands,
        )

    if request.method == "POST":
        form = ErrandsForm(request.POST, errands=errands)
        status = 422
        if form.is_valid():
            try:
                services.set_errands(
                    staged,
                    [{"name": n, "post_deploy": v} for n, v in form.errand_values().items()],
                    user=request.user.get_username(),
                    version=_posted_version(request),
                )
            except Conflict as exc:
                _refused(request, exc)
                staged = _staged_or_404(guid)
                errands = [e for e in services.get_errands(staged) if "post_deploy" in e]
                version = versions.version(staged, [versions.ERRANDS])
                form = stored_form(errands)
                status = 409
            except ServiceError as exc:
                for line in _error_lines(exc.errors):
                    form.add_error(None, line)
            else:
                messages.success(request, "Errands: saved.")
                return redirect(request.path)
        if status == 422:
            version = request.POST.get("version", version)
    else:
        form = stored_form(errands)
        status = 200
    defaults = {e["name"]: e.get("default_post_deploy") for e in errands}
    return _product_page(
        request,
        staged,
        "errands",
        "tiles/product_errands.html",
        {"form": form, "defaults": defaults, "version": version},
        status=status,
    )
