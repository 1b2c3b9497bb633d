"""The BOSH Director tile's pages.

vCenter Config (with "Test connection", which logs in and keeps the
datacenter, cluster, datastore and portgroup choices in the session),
Director Config, Create Availability Zones, Create Networks, Assign AZ and
Network, Security, Syslog, Resource Config (the compilation workers), VM
Types, Email Alerts (the health monitor's). Row editors add a row with htmx
(``?fragment=az|cluster|network|subnet|vm``). Each form carries the
version of its pane; a save based on a stale read is refused (409) naming
who saved the pane since, and the pane shows the saved values again
(``tiles.services.versions``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from opsconsole.auth import can_write
from opsconsole.errors import Conflict, ServiceError
from tiles import director_security, director_tile
from tiles.director_tile import hm_email, resource_config
from tiles.director_tile.checks import IGNORE_UNREACHABLE, VCenterCheck
from tiles.forms import (
    DirectorSettingsForm,
    VCenterForm,
    parse_availability_zones,
    parse_networks,
    parse_vm_types,
)
from tiles.forms.director_panes import CompilationForm, SecurityForm, SyslogForm
from tiles.forms.hm_email import HmEmailForm
from tiles.services import versions

from . import fielderrors
from .common import _error_lines, writer_required

INVENTORY_SESSION_KEY = "tiles.vcenter_inventory"


#: The part of the tile each pane writes (its version, ``tiles.services.versions``).
PANE_PARTS = {
    "vcenter": director_tile.PART_IAAS,
    "director": director_tile.PART_DIRECTOR,
    "azs": "availability_zones",
    "networks": "networks",
    "network-and-az": "network_and_az",
    "security": director_security.SECURITY,
    "syslog": director_security.SYSLOG,
    "resource-config": resource_config.PART_COMPILATION,
    "vm-types": "vm_types",
    "email": hm_email.PART_HM_EMAIL,
}

DIRECTOR_PANES = [
    ("vcenter", "vCenter Config"),
    ("director", "Director Config"),
    ("azs", "Create Availability Zones"),
    ("networks", "Create Networks"),
    ("network-and-az", "Assign AZ and Network"),
    ("security", "Security"),
    ("syslog", "Syslog"),
    ("resource-config", "Resource Config"),
    ("vm-types", "VM Types"),
    ("email", "Email Alerts"),
]


def _director_menu(current: str) -> list[dict]:
    missing = director_tile.director_completeness()
    na = director_tile.get_director().network_and_az or {}
    if not (na.get("network") and na.get("singleton_availability_zone")):
        missing["network_and_az"] = ["assign the director's network and AZ"]
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
    # A form re-shown with errors keeps the version it was read at.
    version = request.POST.get("version") if request.method == "POST" else None
    ctx = {
        "version": version or director_tile.version_of(PANE_PARTS[pane]),
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
        "security": _director_security,
        "syslog": _director_syslog,
        "resource-config": _director_resource_config,
        "vm-types": _director_vm_types,
        "email": _director_email,
    }[pane]
    try:
        return handler(request, pane)
    except Conflict as exc:
        for line in _error_lines(exc.errors):
            messages.error(request, line)
        messages.info(request, "The form shows the saved values now.")
        request.method = "GET"  # show the pane as it is saved now, with its version
        response = handler(request, pane)
        response.status_code = 409
        return response


def _write_kw(request) -> dict:
    """Who saves, and the version the form was read at (409 when stale)."""
    return {
        "user": request.user.get_username(),
        "version": versions.parse_if_match(request.POST.get("version"), "version"),
    }


def _saved(request, pane, check: VCenterCheck | None = None):
    messages.success(request, f"{dict(DIRECTOR_PANES)[pane]}: saved.")
    for line in check.warnings if check else []:
        messages.warning(request, line)
    return redirect(request.path)


def _check(request) -> VCenterCheck:
    """This save's check against vCenter; "Save anyway" skips what vCenter cannot answer."""
    return VCenterCheck(ignore_unreachable=bool(request.POST.get(IGNORE_UNREACHABLE)))


def _director_vcenter(request, pane):
    current = director_tile.director_properties()["iaas_configuration"]
    check = _check(request)
    return _form_pane(
        request,
        pane,
        form=partial(
            VCenterForm, password_stored=current.get("vcenter_password") == director_tile.MASK
        ),
        initial={k: v for k, v in current.items() if k != "vcenter_password"},
        save=lambda f, **kw: director_tile.set_iaas_configuration(f.iaas(), check=check, **kw),
        context={"prefilled": current.get("prefilled")},
        check=check,
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
    return _form_pane(
        request,
        pane,
        form=DirectorSettingsForm,
        initial=director_tile.director_properties()["director_configuration"],
        save=lambda f, **kw: director_tile.set_director_configuration(f.cleaned_data, **kw),
    )


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


def _rows_pane(
    request,
    pane,
    *,
    read: Callable[[], Any],
    parse: Callable[[Any], Any],
    save: Callable[..., Any],
    errors_of: Callable[[dict, Any], list[str]],
    context: Callable[[Any], dict],
    fragment_context: Callable[[], dict] = dict,
    check: VCenterCheck | None = None,
):
    """The flow of the row panes (AZs, networks, VM types).

    GET shows the saved rows (``read``), or with ``?fragment=`` one new row
    for htmx. POST ``parse``s the form's rows and ``save``s them all: saved,
    it redirects with a message (and the ``check``'s warnings); refused, the
    pane shows the rows as sent with each error under its field
    (``errors_of`` attaches them, the rest are listed on top), status 422.
    A stale save (409) goes up to ``director_tile_pane``. With a ``check``
    (the names against vCenter), a pane whose names vCenter could not check
    offers "Save anyway".
    """
    if request.method == "GET" and request.GET.get("fragment"):
        return _rows_fragment(request, pane, fragment_context)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        value = parse(request.POST)
        try:
            save(value, **_write_kw(request))
        except Conflict:
            raise
        except ServiceError as exc:
            errors = errors_of(exc.errors, value)
            status = 422
        else:
            return _saved(request, pane, check)
    else:
        value = read()
    ctx = {**context(value), "errors": errors}
    if check is not None:
        ctx["save_anyway"] = check.unchecked
    return _director_page(request, pane, ctx, status=status)


def _with_cluster_rows(azs: list[dict]) -> dict:
    """An AZ without clusters shows one empty cluster row to fill in."""
    for az in azs:
        az.setdefault("clusters", [])
        if not az["clusters"]:
            az["clusters"] = [{}]
    return {"azs": azs}


def _director_azs(request, pane):
    check = _check(request)
    return _rows_pane(
        request,
        pane,
        read=director_tile.list_availability_zones,
        parse=parse_availability_zones,
        save=partial(director_tile.set_availability_zones, check=check),
        errors_of=lambda errors, azs: fielderrors.attach_rows(errors, azs, "availability_zones"),
        context=_with_cluster_rows,
        check=check,
    )


def _director_networks(request, pane):
    check = _check(request)
    return _rows_pane(
        request,
        pane,
        read=director_tile.get_networks,
        parse=parse_networks,
        save=partial(director_tile.set_networks, check=check),
        errors_of=lambda errors, data: fielderrors.attach_rows(
            errors, data["networks"], "networks"
        ),
        context=lambda data: {
            "networks": data["networks"],
            "icmp": data["icmp_checks_enabled"],
            **_az_context(),
        },
        fragment_context=_az_context,
        check=check,
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
            director_tile.set_network_and_az(current, **_write_kw(request))
        except Conflict:
            raise
        except ServiceError as exc:
            errors = fielderrors.top_lines(exc.errors)
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
    # "Use the built-in types" saves an empty catalog, which restores them.
    return _rows_pane(
        request,
        pane,
        read=director_tile.vm_types,
        parse=lambda post: [] if post.get("builtin") else parse_vm_types(post),
        save=director_tile.set_vm_types,
        errors_of=lambda errors, types: fielderrors.top_lines(errors),
        context=lambda types: {"vm_types": types},
    )


def _form_pane(
    request,
    pane,
    *,
    form: Callable[..., Any],
    initial: dict,
    save: Callable[..., Any],
    context: dict | None = None,
    check: VCenterCheck | None = None,
):
    """The flow of a single-form pane (vCenter Config, Director Config, Security, Syslog,
    Resource Config, Email Alerts).

    GET shows the saved values (``initial``); POST hands the bound, valid
    form to ``save`` (which calls the API's service function) with who saves
    and the version read: saved, a redirect with a message (and the
    ``check``'s warnings); refused, the form as sent with each error under
    its field, status 422. A stale save (409) goes up to
    ``director_tile_pane``. ``context`` is what the pane's template needs
    besides the form; with a ``check`` (names against vCenter), a pane whose
    names vCenter could not check offers "Save anyway".
    """
    if request.method == "POST":
        shown = form(request.POST)
        if shown.is_valid():
            try:
                save(shown, **_write_kw(request))
            except Conflict:
                raise
            except ServiceError as exc:
                fielderrors.form_errors(shown, exc.errors)
            else:
                return _saved(request, pane, check)
        status = 422
    else:
        shown, status = form(initial=initial), 200
    extra = dict(context or {})
    if check is not None:
        extra["save_anyway"] = check.unchecked
    return _director_page(request, pane, {"form": shown, **extra}, status=status)


def _director_security(request, pane):
    return _form_pane(
        request,
        pane,
        form=SecurityForm,
        initial=SecurityForm.initial_of(
            director_security.security_configuration(director_tile.get_director())
        ),
        save=lambda f, **kw: director_security.set_security_and_syslog(security=f.security(), **kw),
    )


def _director_syslog(request, pane):
    return _form_pane(
        request,
        pane,
        form=SyslogForm,
        initial=SyslogForm.initial_of(
            director_security.syslog_configuration(director_tile.get_director())
        ),
        save=lambda f, **kw: director_security.set_security_and_syslog(syslog=f.syslog(), **kw),
    )


def _director_resource_config(request, pane):
    current = resource_config.compilation_resource_config()
    return _form_pane(
        request,
        pane,
        form=partial(
            CompilationForm,
            vm_types=director_tile.vm_types(),
            automatic=current["automatic"]["instance_type"],
            saved=request.POST.get("instance_type") or current["instance_type"],
        ),
        initial={k: current[k] for k in ("instances", "instance_type")},
        save=lambda f, **kw: resource_config.set_compilation_resource_config(
            f.cleaned_data["instances"], f.cleaned_data["instance_type"], **kw
        ),
    )


def _director_email(request, pane):
    saved = hm_email.hm_email_settings()
    return _form_pane(
        request,
        pane,
        form=partial(HmEmailForm, password_stored=saved["password_stored"]),
        initial=HmEmailForm.initial_of(saved),
        save=lambda f, **kw: hm_email.set_hm_email_settings(f.hm_email(), **kw),
    )
