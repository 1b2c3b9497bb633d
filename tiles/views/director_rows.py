"""The Director tile's row panes: Create Availability Zones, Create Networks, Assign AZ and
Network, VM Types.

Each shows its saved rows, adds a row with htmx (``?fragment=az|cluster|
network|subnet|vm``), and saves them all at once: saved, a redirect with a
message (and the vCenter check's warnings); refused, the rows as sent with
each error under its field, status 422. A stale save (409) goes up to
``tiles.views.director.director_tile_pane``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render

from opsconsole.errors import Conflict, ServiceError
from tiles import director_tile
from tiles.director_tile.checks import VCenterCheck
from tiles.forms import parse_availability_zones, parse_networks, parse_vm_types

from . import fielderrors
from .director_common import director_page, saved, vcenter_check, write_kw


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
            save(value, **write_kw(request))
        except Conflict:
            raise
        except ServiceError as exc:
            errors = errors_of(exc.errors, value)
            status = 422
        else:
            return saved(request, pane, check)
    else:
        value = read()
    ctx = {**context(value), "errors": errors}
    if check is not None:
        ctx["save_anyway"] = check.unchecked
    return director_page(request, pane, ctx, status=status)


def _with_cluster_rows(azs: list[dict]) -> dict:
    """An AZ without clusters shows one empty cluster row to fill in."""
    for az in azs:
        az.setdefault("clusters", [])
        if not az["clusters"]:
            az["clusters"] = [{}]
    return {"azs": azs}


def azs_pane(request, pane):
    check = vcenter_check(request)
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


def networks_pane(request, pane):
    check = vcenter_check(request)
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


def network_and_az_pane(request, pane):
    errors: list[str] = []
    status = 200
    current = director_tile.get_director().network_and_az or {}
    if request.method == "POST":
        current = {
            "network": request.POST.get("network", ""),
            "singleton_availability_zone": request.POST.get("singleton_availability_zone", ""),
        }
        try:
            director_tile.set_network_and_az(current, **write_kw(request))
        except Conflict:
            raise
        except ServiceError as exc:
            errors = fielderrors.top_lines(exc.errors)
            status = 422
        else:
            return saved(request, pane)
    return director_page(
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


def vm_types_pane(request, pane):
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
