"""A product tile's left menu: its panes, each ticked only when complete.

A form pane is complete when nothing it requires is empty and nothing it
stores would be refused by a save now (``tiles.properties``: a VM type,
disk type or AZ the Director tile no longer has); Assign AZs and Networks
when its AZs and network exist in the Director tile, the network with a
subnet in each chosen AZ; Resource Config when every VM type a job names is
in the catalog. ``catalogs()`` is what the tile's forms choose from.
"""

from __future__ import annotations

from django.urls import reverse

from tiles import director_tile, services
from tiles import properties as props
from tiles.forms import Catalogs
from tiles.formspec import FormSpec, build_form_specs
from tiles.models import StagedProduct


def catalogs() -> Catalogs:
    return Catalogs(
        vm_types=[v["name"] for v in director_tile.vm_types()],
        disk_types=[d["name"] for d in director_tile.disk_types()],
        availability_zones=[a["name"] for a in director_tile.list_availability_zones()],
    )


def pane_complete(spec: FormSpec, missing: list[str]) -> bool:
    refs = [f.reference for f in spec.fields]
    return not any(m == r or m.startswith((f"{r}.", f"{r}[")) for m in missing for r in refs)


def networks_complete(na: dict) -> bool:
    """Assigned, and to AZs and a network the Director tile still has, the
    network with a subnet in each of those AZs."""
    azs = {a["name"] for a in director_tile.list_availability_zones()}
    nets = {n["name"]: n for n in director_tile.get_networks()["networks"]}
    chosen = [na.get("singleton_availability_zone"), *(na.get("other_availability_zones") or [])]
    net = nets.get(na.get("network"))
    if net is None or not na.get("singleton_availability_zone") or not set(chosen) <= azs:
        return False
    covered = {
        az for sn in net.get("subnets") or [] for az in sn.get("availability_zone_names") or []
    }
    return set(chosen) <= covered


def resources_complete(staged: StagedProduct) -> bool:
    """Every VM type a job names is still in the Director tile's catalog."""
    catalog = {t["name"] for t in director_tile.vm_types()}
    chosen = {(rc or {}).get("instance_type") for rc in (staged.resource_config or {}).values()}
    return chosen - {None} <= catalog


def product_menu(staged: StagedProduct, current: str) -> list[dict]:
    """The panes, each ticked only when complete: nothing required left
    empty and nothing stored that a save would now refuse (a VM type or AZ
    the Director tile no longer has)."""
    template = services.product_template(staged)
    values = staged.all_values()
    missing = props.completeness(template, values)
    deployed = staged.deployed_state or {}
    previous = {**(deployed.get("values") or {}), **(deployed.get("secrets") or {})}
    _, invalid = props.validate_values(
        template,
        {r: v for r, v in values.items() if template.blueprint(r) is not None},
        catalogs().context(previous),
    )
    menu = [
        {
            "key": "networks",
            "label": "Assign AZs and Networks",
            "url": reverse("product-networks", args=[staged.guid]),
            "done": networks_complete(staged.network_and_azs or {}),
        }
    ]
    for spec in build_form_specs(template):
        menu.append(
            {
                "key": f"form:{spec.name}",
                "label": spec.label,
                "url": reverse("product-form", args=[staged.guid, spec.name]),
                "done": pane_complete(spec, [*missing, *invalid]),
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
            "done": resources_complete(staged),
        }
    )
    for item in menu:
        item["active"] = item["key"] == current
    return menu
