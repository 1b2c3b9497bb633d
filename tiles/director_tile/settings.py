"""The Director Config pane (``director_configuration``) and the tile's properties.

Resurrector and meltdown thresholds, max threads, default VM strategy, NTP
servers. ``GET/PUT /staged/director/properties`` carries this pane and the
vCenter Config together (Ops Manager's shape); a write of both is all or
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.db import transaction

from opsconsole.errors import ServiceError
from tiles.models import DirectorConfig

from .checks import VCenterCheck
from .common import MASK, _bool, _csv, _err, _int, _raise, _write, get_director
from .iaas import PART_IAAS, _iaas, _validate_iaas

PART_DIRECTOR = "director_configuration"

#: Deliberately different from Ops Manager: the resurrector defaults to on,
#: as the director's own global switch does.
DIRECTOR_DEFAULTS = {
    "resurrector_enabled": True,
    "minimum_down_jobs": 5,
    "percent_threshold": 50,
    "time_threshold": 600,
    "max_threads": 32,
    "default_vm_strategy": "delete-create",
    "ntp_servers_string": "",
    "director_hostname": "",
    "post_deploy_enabled": True,
}
VM_STRATEGIES = ("delete-create", "create-swap-delete")


def director_properties(reveal_secrets: bool = False) -> dict:
    """Ops Manager's ``GET /staged/director/properties`` shape.

    ``{"iaas_configuration": {...}, "director_configuration": {...}}``; the
    password is ``***`` unless ``reveal_secrets``. When nothing is saved yet
    and a local vcsim runs, the vCenter pane is its connection, and
    ``iaas_configuration.prefilled`` says so.
    """
    d = get_director()
    iaas, password, prefilled = _iaas(d)
    iaas = dict(iaas)
    iaas["vcenter_password"] = password if reveal_secrets else (MASK if password else "")
    if prefilled:
        iaas["prefilled"] = True
    return {
        "iaas_configuration": iaas,
        "director_configuration": {**DIRECTOR_DEFAULTS, **d.director_configuration},
    }


def _validate_director_configuration(data: Mapping, current: dict) -> dict:
    errors: dict[str, list[str]] = {}
    p = "director_configuration"
    out = {**DIRECTOR_DEFAULTS, **current}
    for key in sorted(set(data) - set(DIRECTOR_DEFAULTS)):
        _err(errors, f"{p}/{key}", "unknown field")
    for key, value in data.items():
        if key not in DIRECTOR_DEFAULTS:
            continue
        path = f"{p}/{key}"
        if key in ("resurrector_enabled", "post_deploy_enabled"):
            v = _bool(value, path, errors)
        elif key == "minimum_down_jobs":
            v = _int(value, path, errors, lo=1)
        elif key == "percent_threshold":
            v = _int(value, path, errors, lo=0, hi=100)
        elif key == "time_threshold":
            v = _int(value, path, errors, lo=1)
        elif key == "max_threads":
            v = _int(value, path, errors, lo=1, hi=256)
        elif key == "default_vm_strategy":
            v = value if value in VM_STRATEGIES else None
            if v is None:
                _err(errors, path, f"must be one of {', '.join(VM_STRATEGIES)}")
        elif key == "ntp_servers_string":
            servers = _csv(value)
            for s in servers:
                if not re.fullmatch(r"[A-Za-z0-9.\-:]+", s):
                    _err(errors, path, f"'{s}' is not a host name or IP address")
            v = ",".join(servers)
        else:  # director_hostname
            v = str(value or "").strip()
        if v is not None:
            out[key] = v
    _raise(errors)
    return out


def set_director_properties(
    iaas_configuration: Mapping | None = None,
    director_configuration: Mapping | None = None,
    *,
    user: str = "",
    version: int | None = None,
    check: VCenterCheck | None = None,
) -> dict:
    """``PUT /staged/director/properties``: either pane or both; all or nothing.

    ``version``/``user``: a write based on a stale read is 409 (``_write``).
    ``check``: the vCenter settings are checked against vCenter before writing.
    """
    d = get_director()
    errors: dict[str, list[str]] = {}
    iaas = password = dcfg = None
    if iaas_configuration is not None:
        if not isinstance(iaas_configuration, Mapping):
            _err(errors, "iaas_configuration", "must be a map")
        else:
            current, current_pw, _ = _iaas(d)
            try:
                iaas, password = _validate_iaas(iaas_configuration, current, current_pw)
            except ServiceError as exc:
                errors.update(exc.errors)
            else:
                if check is not None:
                    errors.update(check.iaas(iaas, password))
    if director_configuration is not None:
        if not isinstance(director_configuration, Mapping):
            _err(errors, "director_configuration", "must be a map")
        else:
            try:
                dcfg = _validate_director_configuration(
                    director_configuration, d.director_configuration
                )
            except ServiceError as exc:
                errors.update(exc.errors)
    _raise(errors)
    # cycle: tiles.services (its package __init__) re-exports this package
    from tiles.services import versions

    with transaction.atomic():
        # Both panes or neither: check both versions before writing either.
        fresh = DirectorConfig.objects.select_for_update().get(pk=d.pk)
        parts = [
            p
            for p, v in (("iaas_configuration", iaas), ("director_configuration", dcfg))
            if v is not None
        ]
        versions.check_fresh(fresh, version, parts)
        if iaas is not None:
            _write(d, {"iaas_configuration": iaas, "vcenter_password": password}, PART_IAAS, user)
        if dcfg is not None:
            _write(d, {"director_configuration": dcfg}, PART_DIRECTOR, user)
    return director_properties()


def set_iaas_configuration(
    data: Mapping, *, user: str = "", version: int | None = None, check: VCenterCheck | None = None
) -> dict:
    """The vCenter Config pane (see ``IAAS_DEFAULTS`` for the fields)."""
    return set_director_properties(iaas_configuration=data, user=user, version=version, check=check)


def set_director_configuration(
    data: Mapping, *, user: str = "", version: int | None = None
) -> dict:
    """The Director Config pane (see ``DIRECTOR_DEFAULTS`` for the fields)."""
    return set_director_properties(director_configuration=data, user=user, version=version)
