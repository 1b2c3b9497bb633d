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

This module routes a pane to its handler and holds the single-form panes
(one flow: ``_form_pane``); the row panes live in ``director_rows``, what
every pane needs (the menu, the page, the save) in ``director_common``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from opsconsole.errors import Conflict, ServiceError
from tiles import director_security, director_tile
from tiles.director_tile import hm_email, resource_config
from tiles.director_tile.checks import VCenterCheck
from tiles.forms import DirectorSettingsForm, VCenterForm
from tiles.forms.director_panes import CompilationForm, SecurityForm, SyslogForm
from tiles.forms.hm_email import HmEmailForm

from . import fielderrors
from .common import _error_lines, writer_required
from .director_common import (
    DIRECTOR_PANES,
    INVENTORY_SESSION_KEY,
    director_page,
    saved,
    vcenter_check,
    write_kw,
)
from .director_rows import azs_pane, network_and_az_pane, networks_pane, vm_types_pane


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
        "azs": azs_pane,
        "networks": networks_pane,
        "network-and-az": network_and_az_pane,
        "security": _director_security,
        "syslog": _director_syslog,
        "resource-config": _director_resource_config,
        "vm-types": vm_types_pane,
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


def _director_vcenter(request, pane):
    current = director_tile.director_properties()["iaas_configuration"]
    check = vcenter_check(request)
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
                save(shown, **write_kw(request))
            except Conflict:
                raise
            except ServiceError as exc:
                fielderrors.form_errors(shown, exc.errors)
            else:
                return saved(request, pane, check)
        status = 422
    else:
        shown, status = form(initial=initial), 200
    extra = dict(context or {})
    if check is not None:
        extra["save_anyway"] = check.unchecked
    return director_page(request, pane, {"form": shown, **extra}, status=status)


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
