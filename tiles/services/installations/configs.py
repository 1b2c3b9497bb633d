"""The director configs step's task: the reviewed configs, runtime configs and switches.

``update_director_configs`` is a director task (run inline by the
installation's worker) that stores the reviewed cpi-config and
cloud-config, the chosen tiles' runtime configs, the resurrector and
meltdown switches, VM security and syslog, and remembers which config
versions it wrote (``TILE_CONFIGS_ATTRIBUTE``) so Review Pending Changes can
tell a config someone else uploaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.utils import timezone

from director import runner, vm_security
from director import syslog as director_syslog
from director.execution.variables import store_vars
from director.models import DirectorAttribute
from director.services import configs as director_configs
from director.services import resurrection
from tiles import director_tile

from .. import runtime_configs
from ..director_changes import TILE_CONFIGS_ATTRIBUTE
from .snapshot import _snapshot_of

CONFIG_TASK_TYPE = "update_director_configs"


def _record_tile_config(type: str, config_id: int) -> None:
    """Remember which version of ``(type, "default")`` the Director tile wrote.

    Review Pending Changes compares the director's current version with it:
    a different one was uploaded by someone else, and the next Apply
    Changes replaces it (``director_changes.config_replacements``).
    """
    ids = json.loads(DirectorAttribute.get(TILE_CONFIGS_ATTRIBUTE) or "{}")
    ids[f"{type}/default"] = config_id
    DirectorAttribute.set(TILE_CONFIGS_ATTRIBUTE, json.dumps(ids, sort_keys=True))


@runner.task_handler(CONFIG_TASK_TYPE)
def _update_configs(ctx) -> str:
    """Store the reviewed cpi-config and cloud-config, and the resurrector switch.

    They come from the installation's snapshot (``args.installation_id``),
    rendered at the click: a Director tile edit saved since is not applied.
    """
    user = ctx.task.username
    snap = _snapshot_of(ctx.args.get("installation_id"))["director"]
    d = director_tile.get_director()
    stage = ctx.stage("Updating director configs", total=4)
    changed = []
    with stage.track("cpi-config"):
        update = director_configs.update_config("cpi", "default", snap["cpi_config"], user)
        _record_tile_config("cpi", update.config.id)
        if update.changed:
            changed.append("cpi-config")
    ctx.checkpoint()
    with stage.track("cloud-config"):
        update = director_configs.update_config("cloud", "default", snap["cloud_config"], user)
        _record_tile_config("cloud", update.config.id)
        if update.changed:
            changed.append("cloud-config")
    ctx.checkpoint()
    changed += _update_runtime_configs(
        ctx, _snapshot_of(ctx.args.get("installation_id"))["products"], user
    )
    with stage.track("resurrector"):
        cfg = snap["settings"]
        if resurrection.resurrection_enabled() != bool(cfg["resurrector_enabled"]):
            resurrection.set_resurrection(bool(cfg["resurrector_enabled"]), user)
            changed.append("resurrection")
        DirectorAttribute.set(
            "hm_meltdown",
            json.dumps(
                {
                    "minimum_down_jobs": cfg["minimum_down_jobs"],
                    "percent_threshold": cfg["percent_threshold"],
                    "time_threshold": cfg["time_threshold"],
                }
            ),
        )
    with stage.track("security and syslog"):
        # Snapshots taken before these panes existed carry neither: nothing to change.
        if "vm_security" in snap and vm_security.set_vm_security(
            snap["vm_security"]["trusted_certs"], snap["vm_security"]["generate_vm_passwords"]
        ):
            changed.append("VM security")
        if "syslog" in snap and director_syslog.set_syslog(snap["syslog"]):
            changed.append("syslog")
    d.deployed_state = snap["state"]
    d.deployed_at = timezone.now()
    d.save(update_fields=["deployed_state", "deployed_at", "updated_at"])
    return ("updated " + ", ".join(changed)) if changed else "configs unchanged"


def _update_runtime_configs(ctx, products: Mapping[str, Mapping], user: str) -> list[str]:
    """Upload the reviewed tiles' runtime configs; delete those a tile no longer has.

    Only products whose snapshot entry carries ``runtime_configs`` (chosen
    at the click; ``{}`` for a deleted tile) are touched. The values of the
    secrets they reference go to the director's variable store first, so
    every deployment their addons reach can resolve them.
    """
    work: list[tuple[str, str | None]] = []
    for guid, entry in products.items():
        if "runtime_configs" not in entry:
            continue
        store_vars("", entry.get("runtime_credentials") or {})  # absolute names: no deployment
        old = runtime_configs.current(guid)
        new = entry["runtime_configs"]
        work += [(name, text) for name, text in new.items() if old.get(name) != text]
        work += [(name, None) for name in old if name not in new]
    if not work:
        return []
    stage = ctx.stage("Updating runtime configs", total=len(work))
    changed = []
    for name, text in work:
        with stage.track(name):
            if text is None:
                director_configs.delete_config(runtime_configs.RUNTIME, name, user)
                changed.append(f"runtime-config {name} (deleted)")
            else:
                director_configs.update_config(runtime_configs.RUNTIME, name, text, user)
                changed.append(f"runtime-config {name}")
    return changed
