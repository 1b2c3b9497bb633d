"""The Director tile's names checked against vCenter when a pane is saved.

A wrong vCenter password, a mistyped cluster (``DC0_C9_typo``) or
portgroup (``VM Netwrk``) used to be saved and fail only at Apply Changes.
Saving the vCenter Config, Create Availability Zones and Create Networks
panes now logs in with the connection check of "Test connection"
(``iaas.test_vcenter_connection``: the director logs in and reads the
names in two round trips) and refuses, naming the field:

- vCenter Config: a refused login (``vcenter_password``), an untrusted
  certificate, an unknown datacenter, a datastore the datacenter lacks;
- AZs: a cluster the datacenter lacks, a resource pool its cluster lacks;
- networks: a portgroup the datacenter lacks (``switch/portgroup`` is
  checked by its portgroup name).

When the names cannot be checked (vCenter does not answer, or, for the AZ
and network panes, the saved vCenter Config does not log in), the save is
refused too, saying why, unless the operator asks to save anyway: the
"Save anyway" checkbox of the pane, ``?ignore_unreachable_vcenter=true``
in the API. Then the save goes through with a warning saying what was not
checked. It never passes silently.

A ``VCenterCheck`` is one save's check: the pane setters (``settings``,
``azs``, ``networks``) call it (their ``check`` hook) with the normalised
pane, after their own validation, so that format errors and name errors
come back together and nothing is written while either is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from director.vcenter import VCenterUnreachable
from opsconsole.errors import ServiceError

from .iaas import test_vcenter_connection

#: The API's query flag (and the pane's checkbox) to save when vCenter cannot check.
IGNORE_UNREACHABLE = "ignore_unreachable_vcenter"


def _first(errors: Mapping[str, list[str]]) -> str:
    return next((m for msgs in errors.values() for m in msgs), "vCenter did not answer")


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


class VCenterCheck:
    """One save's check. ``warnings``: what was not checked because the operator said so;
    ``unchecked``: the names could not be checked (the pane offers "Save anyway")."""

    def __init__(self, *, ignore_unreachable: bool = False):
        self.ignore_unreachable = ignore_unreachable
        self.warnings: list[str] = []
        self.unchecked = False

    def _cannot_check(self, key: str, reason: str, what: str) -> dict[str, list[str]]:
        self.unchecked = True
        if self.ignore_unreachable:
            self.warnings.append(f"Saved without checking {what} against vCenter: {reason}")
            return {}
        return {
            key: [
                f"{reason}. The {what} could not be checked, so nothing was saved. "
                f"Check “Save anyway” (API: {IGNORE_UNREACHABLE}=true) to save them unchecked."
            ]
        }

    def _inventory(self, iaas: Mapping | None, key: str, what: str):
        """``(inventory, errors)``: the names, or why the pane cannot be checked."""
        try:
            return test_vcenter_connection(iaas), {}
        except VCenterUnreachable as exc:
            return None, self._cannot_check(key, _first(exc.errors), what)
        except ServiceError as exc:
            if iaas is not None:  # the vCenter pane itself: its fields are wrong
                return None, exc.errors
            reason = "the saved vCenter Config does not log in: " + _first(exc.errors)
            return None, self._cannot_check(key, reason, what)

    # -- the panes ---------------------------------------------------------------

    def iaas(self, iaas: Mapping, password: str) -> dict[str, list[str]]:
        """vCenter Config: log in with the new settings; the datastores must exist."""
        p = "iaas_configuration"
        inv, errors = self._inventory(
            {**iaas, "vcenter_password": password}, f"{p}/vcenter_host", "vCenter settings"
        )
        if inv is None:
            return errors
        have = set(inv["datastores"])
        for key in ("ephemeral_datastores_string", "persistent_datastores_string"):
            for name in str(iaas.get(key) or "").split(","):
                name = name.strip()
                if name and name not in have:
                    errors.setdefault(f"{p}/{key}", []).append(
                        f"Datacenter {inv['datacenter']} has no datastore “{name}” "
                        f"(it has: {_listing(inv['datastores'])})."
                    )
        return errors

    def availability_zones(self, azs: list[Mapping[str, Any]]) -> dict[str, list[str]]:
        """AZs (normalised): each cluster in the datacenter, each resource pool in its cluster."""
        if not any(az.get("clusters") for az in azs):
            return {}
        inv, errors = self._inventory(None, "availability_zones", "clusters")
        if inv is None:
            return errors
        clusters = set(inv["clusters"])
        pools = set(inv["resource_pools"])
        for az in azs:
            for i, c in enumerate(az.get("clusters") or []):
                path = f"availability_zones/{az['name']}/clusters/{i}"
                name = c.get("cluster")
                if name not in clusters:
                    errors.setdefault(f"{path}/cluster", []).append(
                        f"Datacenter {inv['datacenter']} has no cluster “{name}” "
                        f"(it has: {_listing(inv['clusters'])})."
                    )
                    continue
                pool = c.get("res_pool")
                if pool and f"{name}/{pool}" not in pools:
                    mine = [
                        p.split("/", 1)[1]
                        for p in inv["resource_pools"]
                        if p.startswith(f"{name}/")
                    ]
                    errors.setdefault(f"{path}/res_pool", []).append(
                        f"Cluster {name} has no resource pool “{pool}” (it has: {_listing(mine)})."
                    )
        return errors

    def networks(self, nets: list[Mapping[str, Any]]) -> dict[str, list[str]]:
        """Networks (normalised): each subnet's portgroup in the datacenter."""
        wanted = [
            (n["name"], j, sn["iaas_identifier"])
            for n in nets
            for j, sn in enumerate(n.get("subnets") or [])
            if sn.get("iaas_identifier")
        ]
        if not wanted:
            return {}
        inv, errors = self._inventory(None, "networks", "portgroups")
        if inv is None:
            return errors
        have = set(inv["portgroups"])
        for net, j, ident in wanted:
            if ident not in have and ident.rsplit("/", 1)[-1] not in have:
                errors.setdefault(f"networks/{net}/subnets/{j}/iaas_identifier", []).append(
                    f"Datacenter {inv['datacenter']} has no network “{ident}” "
                    f"(it has: {_listing(inv['portgroups'])})."
                )
        return errors
