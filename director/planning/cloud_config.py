"""The cloud-config as the planner reads it: AZs, vm_types, vm_extensions,
disk_types and networks, by name (the planner's first step).

The cloud-config arrives consolidated and validated by ``director.manifest``;
this still checks every key the planner relies on, so a bad value gives a
``PlanError`` naming its path. Networks and their subnets are ``ips.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from director.planning.errors import PlanError
from director.planning.networks import Network, parse_networks


@dataclass(frozen=True)
class DiskType:
    size: int
    cloud_properties: Mapping[str, Any]


@dataclass(frozen=True)
class CloudConfig:
    azs: Mapping[str, Mapping[str, Any]]
    vm_types: Mapping[str, Mapping[str, Any]]
    vm_extensions: Mapping[str, Mapping[str, Any]]
    disk_types: Mapping[str, DiskType]
    networks: Mapping[str, Network]


def mapping(value: object, path: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping, ``{}`` if it is absent; else a ``PlanError``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlanError(path, "must be a mapping")
    return value


def _named_list(raw: Mapping[str, Any], key: str, path: str) -> dict[str, Mapping[str, Any]]:
    items = raw.get(key)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise PlanError(f"{path}/{key}", "must be a list")
    result: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise PlanError(f"{path}/{key}/{i}", "must be a mapping with a 'name'")
        if item["name"] in result:
            raise PlanError(f"{path}/{key}/{item['name']}", "name is used twice")
        result[item["name"]] = item
    return result


def _disk_types(raw: Mapping[str, Any], path: str) -> dict[str, DiskType]:
    disk_types = {}
    for name, item in _named_list(raw, "disk_types", path).items():
        size = item.get("disk_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PlanError(f"{path}/disk_types/{name}/disk_size", "must be a size in MiB")
        disk_types[name] = DiskType(
            size,
            mapping(item.get("cloud_properties"), f"{path}/disk_types/{name}/cloud_properties"),
        )
    return disk_types


def parse_cloud_config(raw: Mapping[str, Any], path: str = "cloud_config") -> CloudConfig:
    raw = mapping(raw, path)

    def props(items: dict[str, Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
        return {
            name: mapping(item.get("cloud_properties"), f"{path}/{key}/{name}/cloud_properties")
            for name, item in items.items()
        }

    azs = props(_named_list(raw, "azs", path), "azs")
    disk_types = _disk_types(raw, path)
    return CloudConfig(
        azs=azs,
        vm_types=props(_named_list(raw, "vm_types", path), "vm_types"),
        vm_extensions=props(_named_list(raw, "vm_extensions", path), "vm_extensions"),
        disk_types=disk_types,
        networks=parse_networks(raw.get("networks"), f"{path}/networks", known_azs=list(azs)),
    )
