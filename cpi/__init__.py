"""Cloud Provider Interface: BOSH's CPI contract and its vSphere implementation.

No Django here. The director builds a cloud from a cpi.json-shaped dict::

    cloud = cpi.load_cloud({"cloud": {"plugin": "vsphere", "properties": {...}}})

and may wrap it in ``cpi.logging.LoggedCpi`` to record each call in the task's
CPI log. ``python -m cpi --config cpi.json`` speaks BOSH's external CPI
protocol on stdin/stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cpi.base import (
    CloudError,
    Cpi,
    CpiError,
    DiskNotAttached,
    DiskNotFound,
    NetworkNotFound,
    NoDiskSpace,
    NotImplemented,
    NotSupported,
    VMCreationFailed,
    VMNotFound,
)

PLUGINS = ("vsphere",)


def cloud_properties_of(cpi_json: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(plugin, properties)`` of a cpi.json document, validated."""
    # heavy: the cpi.vsphere package loads pyVmomi; ``import cpi`` alone must not.
    from cpi.vsphere.config import ConfigError

    if not isinstance(cpi_json, Mapping):
        raise ConfigError("cpi.json: must be a map with a 'cloud' key")
    cloud = cpi_json.get("cloud")
    if not isinstance(cloud, Mapping):
        raise ConfigError("cloud: is required (a map with plugin and properties)")
    plugin = cloud.get("plugin", "vsphere")
    if plugin not in PLUGINS:
        raise ConfigError(
            f"cloud/plugin: unknown CPI plugin {plugin!r} (known: {', '.join(PLUGINS)})"
        )
    properties = cloud.get("properties")
    if not isinstance(properties, Mapping):
        raise ConfigError("cloud/properties: is required (a map)")
    return plugin, dict(properties)


def load_cloud(
    cpi_json: Mapping[str, Any], *, logger: logging.Logger | None = None, **kwargs: Any
) -> Cpi:
    """The cloud described by a cpi.json document (today always a ``VSphereCloud``)."""
    # heavy: pyVmomi loads only when a cloud is built.
    from cpi.vsphere import VSphereCloud

    _plugin, properties = cloud_properties_of(cpi_json)
    return VSphereCloud(properties, logger=logger, **kwargs)


__all__ = [
    "CloudError",
    "Cpi",
    "CpiError",
    "DiskNotAttached",
    "DiskNotFound",
    "NetworkNotFound",
    "NoDiskSpace",
    "NotImplemented",
    "NotSupported",
    "VMCreationFailed",
    "VMNotFound",
    "cloud_properties_of",
    "load_cloud",
]
