"""The Director tile's entry in Review Pending Changes, and its configs' diff.

The diff of the cpi-config and cloud-config the tile renders against the
director's current configs, secrets ``((redacted))`` (``diffs``). Their
status compares the real values, so a changed password shows as
``different`` (with a note in place of a diff line) rather than ``same`` -
deliberately more than ``om`` tells.

A config uploaded through the director API under a name the Director tile
writes (``cloud``/``cpi`` ``default``) is replaced by the next Apply
Changes: ``config_replacements`` finds such a version (it is not the one
the last Apply Changes wrote, ``installations.configs`` remembers those)
and the Director tile's entry warns, naming the config, who uploaded it and
when, with the diff from it to what the tile will write.
"""

from __future__ import annotations

import json

import yaml
from django.utils import timezone

from director.models import Config, DirectorAttribute, Event
from director.services.configs import _config_object_type
from opsconsole.errors import ServiceError
from tiles import director_tile
from tiles.models import DIRECTOR_PRODUCT_NAME

from .diffs import _cpi_secrets, _redact_config, _status, _yaml, unified_diff

#: DirectorAttribute: ids of the config versions the Director tile wrote last
#: (written by Apply Changes' configs step, ``installations.configs``).
TILE_CONFIGS_ATTRIBUTE = "tile_configs"


def _director_configs() -> tuple[dict | None, dict | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    cloud = cpi = None
    try:
        cpi = director_tile.render_cpi_config()
    except ServiceError as exc:
        errors.update(exc.errors)
    try:
        cloud = director_tile.render_cloud_config()
    except ServiceError as exc:
        errors.update(exc.errors)
    return cpi, cloud, errors


def _current_config(type: str, name: str = "default") -> dict | None:
    config = Config.latest(type, name)
    if config is None:
        return None
    return yaml.safe_load(config.content) or {}


def director_diff() -> dict:
    """``GET /api/v0/director/diff``: Ops Manager's shape.

    ``{"manifest": {"status", "diff"}, "cloud_config": {"status", "diff"},
    "runtime_configs": [], "cpi_configs": [{"guid", "iaas_configuration_name",
    "status", "diff"}], "errors": {...}}``. Status is ``same``,
    ``different``, ``to_be_installed``. The director runs inside the console,
    so its own manifest never changes (``same``).
    """
    d = director_tile.get_director()
    cpi, cloud, errors = _director_configs()
    name = ((cpi or {}).get("cpis") or [{}])[0].get("name") or "default"
    cur_cpi = _current_config("cpi", "default")
    cur_cloud = _current_config("cloud", "default")
    hidden = _cpi_secrets(cpi, cur_cpi, cloud, cur_cloud)
    cpi_r, cur_cpi_r = _redact_config(cpi, hidden), _redact_config(cur_cpi, hidden)
    cloud_r, cur_cloud_r = _redact_config(cloud, hidden), _redact_config(cur_cloud, hidden)
    cpi_diff = unified_diff(_yaml(cur_cpi_r, True), _yaml(cpi_r, True), "cpi-config.yml")
    cpi_status = _status(cur_cpi, cpi)
    if cpi_status == "different" and not cpi_diff:
        # Only a secret changed: say so without showing it (om would show no change).
        cpi_diff = "# a secret value changed (vCenter password); values stay ((redacted))\n"
    return {
        "manifest": {"status": "same", "diff": ""},
        "cloud_config": {
            "status": _status(cur_cloud, cloud),
            "diff": unified_diff(
                _yaml(cur_cloud_r, True), _yaml(cloud_r, True), "cloud-config.yml"
            ),
        },
        "runtime_configs": [],
        "cpi_configs": [
            {
                "guid": d.guid,
                "iaas_configuration_name": name,
                "status": cpi_status,
                "diff": cpi_diff,
            }
        ],
        "errors": errors,
    }


def config_replacements() -> list[dict]:
    """Configs the next Apply Changes replaces that the Director tile did not write.

    ``[{"type", "name", "config_id", "uploaded_by", "uploaded_at",
    "message", "diff"}]``: the director's current ``cloud``/``cpi``
    ``default`` when it is not the version the last Apply Changes wrote
    (``installations.configs`` remembers those) and differs from what the tile
    renders now. ``uploaded_by``/``uploaded_at`` come from the director's
    event for that version. The diff goes from the uploaded config to the
    tile's, secrets ``((redacted))``.
    """
    written = json.loads(DirectorAttribute.get(TILE_CONFIGS_ATTRIBUTE) or "{}")
    d = director_tile.get_director()
    cpi, cloud, _ = _director_configs()
    out = []
    for type, rendered in (("cloud", cloud), ("cpi", cpi)):
        current = Config.latest(type, "default")
        if current is None or current.id == written.get(f"{type}/default"):
            continue
        if f"{type}/default" not in written and d.deployed_at is not None:
            continue  # applied before the console remembered what it wrote
        try:
            uploaded = yaml.safe_load(current.content) or {}
        except yaml.YAMLError:
            uploaded = {}
        if uploaded == rendered:
            continue  # the same config: replacing it changes nothing
        event = (
            Event.objects.filter(
                object_type=_config_object_type(type),
                object_name="default",
                context__id=current.id,
            )
            .order_by("-id")
            .first()
        )
        who = (event.user if event else "") or "an unknown user"
        when = event.timestamp if event else current.created_at
        hidden = _cpi_secrets(uploaded, rendered)
        diff = unified_diff(
            _yaml(_redact_config(uploaded, hidden), True),
            _yaml(_redact_config(rendered, hidden), True),
            f"{type}-config.yml",
        ).replace("--- deployed/", "--- uploaded/", 1)
        if not diff:
            diff = "# a secret value differs; values stay ((redacted))\n"
        out.append(
            {
                "type": type,
                "name": "default",
                "config_id": current.id,
                "uploaded_by": who,
                "uploaded_at": when.isoformat(),
                "message": (
                    f"{type}-config 'default' (director config {current.id}) was uploaded by "
                    f"{who} at {timezone.localtime(when):%Y-%m-%d %H:%M:%S %Z} through the "
                    "director API, not by "
                    f"this tile: the next Apply Changes replaces it with the tile's {type}-config"
                ),
                "diff": diff,
            }
        )
    return out


def director_change() -> dict:
    """The Director tile's entry in ``product_changes``."""
    d = director_tile.get_director()
    missing = director_tile.director_completeness(d)
    diff = director_diff()
    replacements = config_replacements()
    changed = (
        diff["cloud_config"]["status"] != "same"
        or diff["cpi_configs"][0]["status"] != "same"
        or d.deployed_state != director_tile.director_state(d)
    )
    action = "install" if d.deployed_at is None else ("update" if changed else "unchanged")
    return {
        "guid": d.guid,
        "product_name": DIRECTOR_PRODUCT_NAME,
        "label": "BOSH Director",
        "action": action,
        "completeness_checks": {
            "configuration_complete": not missing,
            "stemcell_present": True,
            "releases_present": True,
            "configurable_properties_valid": not diff["errors"],
        },
        "warnings": [
            *(f"{k}: {m}" for k, ms in {**missing, **diff["errors"]}.items() for m in ms),
            *(r["message"] for r in replacements),
        ],
        "config_replacements": replacements,
        "errands": [],
        "cloud_config_diff": diff["cloud_config"]["diff"],
        "cpi_config_diff": diff["cpi_configs"][0]["diff"],
        "plan": None,
    }
