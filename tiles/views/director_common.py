"""What every Director tile pane needs: the panes and the parts they write, the menu with
its check marks, the page around a pane, who saves and the version read, the
message after a save, the save's check against vCenter.

The vCenter inventory "Test connection" found is kept in the session
(``INVENTORY_SESSION_KEY``): the AZ and network panes offer its names.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from opsconsole.auth import can_write
from tiles import director_security, director_tile
from tiles.director_tile import hm_email, resource_config
from tiles.director_tile.checks import IGNORE_UNREACHABLE, VCenterCheck
from tiles.services import versions

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


def director_menu(current: str) -> list[dict]:
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


def director_page(request, pane, context, status=200):
    # A form re-shown with errors keeps the version it was read at.
    version = request.POST.get("version") if request.method == "POST" else None
    ctx = {
        "version": version or director_tile.version_of(PANE_PARTS[pane]),
        "menu": director_menu(pane),
        "pane": pane,
        "pane_label": dict(DIRECTOR_PANES)[pane],
        "can_write": can_write(request.user),
        "inventory": request.session.get(INVENTORY_SESSION_KEY) or {},
        **context,
    }
    return render(request, f"tiles/director_{pane.replace('-', '_')}.html", ctx, status=status)


def write_kw(request) -> dict:
    """Who saves, and the version the form was read at (409 when stale)."""
    return {
        "user": request.user.get_username(),
        "version": versions.parse_if_match(request.POST.get("version"), "version"),
    }


def saved(request, pane, check: VCenterCheck | None = None):
    messages.success(request, f"{dict(DIRECTOR_PANES)[pane]}: saved.")
    for line in check.warnings if check else []:
        messages.warning(request, line)
    return redirect(request.path)


def vcenter_check(request) -> VCenterCheck:
    """This save's check against vCenter; "Save anyway" skips what vCenter cannot answer."""
    return VCenterCheck(ignore_unreachable=bool(request.POST.get(IGNORE_UNREACHABLE)))
