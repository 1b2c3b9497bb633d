"""The Director tile as one snapshot: what was deployed, and Revert.

``director_state`` is everything the tile holds (password included), stored
with each Apply Changes; Review Pending Changes compares against it and
Revert puts it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from tiles.models import DirectorConfig

from .common import get_director


def director_state(d: DirectorConfig | None = None) -> dict:
    """Everything the tile holds (with the password), for the deployed snapshot."""
    d = d or get_director()
    return {
        "iaas_configuration": d.iaas_configuration,
        "vcenter_password": d.vcenter_password,
        "director_configuration": d.director_configuration,
        "availability_zones": d.availability_zones,
        "networks": d.networks,
        "network_and_az": d.network_and_az,
        "vm_types": d.vm_types,
        "resource_config": d.resource_config,
        "security_configuration": d.security_configuration,
        "syslog_configuration": d.syslog_configuration,
    }


def restore_director_state(state: Mapping) -> None:
    """Put a snapshot taken by ``director_state`` back (Revert)."""
    d = get_director()
    for key, value in state.items():
        setattr(d, key, json.loads(json.dumps(value)))
    d.save()
