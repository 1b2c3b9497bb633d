"""What the click deploys: the snapshot taken by Apply Changes, read back by its steps.

At the click the cpi-config, cloud-config and every chosen product's
manifest are rendered and kept, with the staged configuration they came
from, in the encrypted ``Installation.snapshot``; the worker deploys that,
so an edit saved after the click waits for the next Apply Changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from opsconsole.errors import ServiceError
from tiles import director_security, director_tile
from tiles.models import Installation, StagedProduct

from ..rendering import manifest_credentials


def _snapshot(plans: list[tuple[StagedProduct, str, list[str]]], rendered: Mapping) -> dict:
    """What the click deploys (``Installation.snapshot``), rendered now.

    ``{"director": {"guid", "cpi_config", "cloud_config", "settings",
    "state"}, "products": {guid: {"product_id", "name", "version", "action",
    "manifest", "state"}}}``: configs and manifests as the YAML text the
    director gets, ``settings`` the resurrector and meltdown switches,
    ``state`` the staged configuration the deployed snapshot will record,
    ``credentials`` the values of the manifest's secret references
    (``tiles.services.manifest_credentials``), handed to the deploy as vars.
    An edit saved after the click changes none of it.
    """
    d = director_tile.get_director()
    cfg = {**director_tile.DIRECTOR_DEFAULTS, **d.director_configuration}
    products: dict[str, dict] = {}
    for sp, action, _ in plans:
        entry: dict[str, Any] = {
            "product_id": sp.product_id,
            "name": sp.product.name,
            "version": sp.product.version,
            "action": action,
        }
        if action != "delete":
            entry["manifest"] = rendered[sp.guid]
            entry["credentials"] = manifest_credentials(sp)
            entry["state"] = {
                "values": sp.values,
                "secrets": sp.secrets,
                "network_and_azs": sp.network_and_azs,
                "resource_config": sp.resource_config,
                "errands": sp.errands,
            }
        products[sp.guid] = entry
    return {
        "director": {
            "guid": d.guid,
            "cpi_config": yaml.safe_dump(
                director_tile.render_cpi_config(d), default_flow_style=False, sort_keys=False
            ),
            "cloud_config": yaml.safe_dump(
                director_tile.render_cloud_config(d), default_flow_style=False, sort_keys=False
            ),
            "settings": {
                k: cfg[k]
                for k in (
                    "resurrector_enabled",
                    "minimum_down_jobs",
                    "percent_threshold",
                    "time_threshold",
                )
            },
            "state": director_tile.director_state(d),
            # The Security and Syslog panes, as the director takes them.
            "vm_security": director_security.director_vm_security(d),
            "syslog": director_security.director_syslog(d),
        },
        "products": products,
    }


class SnapshotMissing(ServiceError):
    """An installation without the snapshot of what was reviewed (queued by an older console)."""


def _snapshot_of(installation: Installation | int | None) -> dict:
    if not isinstance(installation, Installation):
        installation = Installation.objects.filter(id=installation).first()
    if installation is None or not installation.snapshot:
        raise SnapshotMissing(
            {
                "install": [
                    "this installation holds no snapshot of the reviewed configuration "
                    "(it was queued by an older console): review the pending changes and "
                    "apply again"
                ]
            }
        )
    return installation.snapshot
