"""The ``update`` block (BOSH §1.9): canaries, max_in_flight, watch times, strategies.

``UpdateConfig`` is the deployment's ``update`` block overridden key by key
by the instance group's own ``update``, then by the operator's
``canaries``/``max_in_flight`` deploy options. ``canaries`` and
``max_in_flight`` are an integer or ``"N%"``; ``resolve_numeric`` turns them
into a count for a given number of instances with BOSH's rounding
(``min(floor(N * size / 100), size)``; ``max_in_flight`` at least 1,
canaries may be 0). Watch times are milliseconds, ``"ms"`` or ``"min-max"``.

The order in which instances are updated is ``schedule.py``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from director.manifest.parse import AZ_UPDATE_STRATEGIES, VM_STRATEGIES
from director.planning.errors import UpdateConfigError

_PERCENT = re.compile(r"^\s*(\d+)%\s*$")
_INTEGER = re.compile(r"^\s*(\d+)\s*$")
_WATCH = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class WatchTime:
    """Milliseconds to wait for jobs to be running: at least ``min_ms``,
    polling until ``max_ms``."""

    min_ms: int
    max_ms: int

    def __str__(self) -> str:
        return str(self.min_ms) if self.min_ms == self.max_ms else f"{self.min_ms}-{self.max_ms}"


@dataclass(frozen=True)
class UpdateConfig:
    """A resolved update block. ``canaries``/``max_in_flight`` keep their
    manifest form (``"2"`` or ``"25%"``); use ``canaries_for``/
    ``max_in_flight_for`` to get a count."""

    canaries: str
    max_in_flight: str
    canary_watch_time: WatchTime
    update_watch_time: WatchTime
    serial: bool = True
    vm_strategy: str = "delete-create"
    initial_deploy_az_update_strategy: str = "serial"

    def canaries_for(self, size: int) -> int:
        return resolve_numeric(self.canaries, size)

    def max_in_flight_for(self, size: int) -> int:
        return max(1, resolve_numeric(self.max_in_flight, size))

    def to_dict(self) -> dict[str, Any]:
        return {
            "canaries": self.canaries,
            "max_in_flight": self.max_in_flight,
            "canary_watch_time": str(self.canary_watch_time),
            "update_watch_time": str(self.update_watch_time),
            "serial": self.serial,
            "vm_strategy": self.vm_strategy,
            "initial_deploy_az_update_strategy": self.initial_deploy_az_update_strategy,
        }


def resolve_numeric(value: int | str, size: int) -> int:
    """``canaries``/``max_in_flight`` as a count for ``size`` instances:
    ``"N%"`` -> ``min(floor(N * size / 100), size)``, an integer as is."""
    text = _numeric_text(value, "value")
    match = _PERCENT.match(text)
    if match:
        return min(int(match.group(1)) * size // 100, size)
    return int(text)


def _numeric_text(value: object, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UpdateConfigError(path, f"{value!r} must be an integer or a percentage like '25%'")
    text = str(value).strip()
    if not (_INTEGER.match(text) or _PERCENT.match(text)):
        raise UpdateConfigError(path, f"{value!r} must be an integer or a percentage like '25%'")
    return text


def parse_watch_time(value: object, path: str) -> WatchTime:
    """``1000`` or ``"1000-30000"`` (milliseconds; min <= max)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UpdateConfigError(path, "must be milliseconds or a 'min-max' range of milliseconds")
    match = _WATCH.match(str(value))
    if not match:
        raise UpdateConfigError(
            path, f"{value!r} must be milliseconds or a 'min-max' range of milliseconds"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low > high:
        raise UpdateConfigError(path, f"{value!r}: min watch time is greater than max watch time")
    return WatchTime(low, high)


_KEYS = (
    "canaries",
    "max_in_flight",
    "canary_watch_time",
    "update_watch_time",
    "serial",
    "vm_strategy",
    "initial_deploy_az_update_strategy",
)


def _merge(
    deployment_update: Mapping[str, Any] | None,
    group_update: Mapping[str, Any] | None,
    group_path: str | None,
    canaries: int | str | None,
    max_in_flight: int | str | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged values, and for each key the path it came from."""
    for where, block in (("update", deployment_update), (f"{group_path}/update", group_update)):
        if block is not None and not isinstance(block, Mapping):
            raise UpdateConfigError(where, "must be a mapping")
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for prefix, block in (("update", deployment_update), (f"{group_path}/update", group_update)):
        for key in _KEYS:
            if block and block.get(key) is not None:
                merged[key] = block[key]
                origin[key] = f"{prefix}/{key}"
    for key, override in (("canaries", canaries), ("max_in_flight", max_in_flight)):
        if override is not None:
            merged[key] = override
            origin[key] = f"options/{key}"
    return merged, origin


def resolve_update_config(
    deployment_update: Mapping[str, Any] | None,
    group_update: Mapping[str, Any] | None = None,
    *,
    group_path: str | None = None,
    default_vm_strategy: str = "delete-create",
    canaries: int | str | None = None,
    max_in_flight: int | str | None = None,
) -> UpdateConfig:
    """Merge the deployment's ``update`` with a group's, key by key, and
    validate. Errors name ``update/<key>`` or ``<group_path>/update/<key>``
    (whichever supplied the value)."""
    merged, origin = _merge(deployment_update, group_update, group_path, canaries, max_in_flight)

    def required(key: str) -> Any:
        if key not in merged:
            where = f"{group_path}/update/{key}" if group_path else f"update/{key}"
            raise UpdateConfigError(
                where, "is required (in the deployment's or the group's update)"
            )
        return merged[key]

    canaries_text = _numeric_text(required("canaries"), origin.get("canaries", ""))
    max_in_flight_text = _numeric_text(required("max_in_flight"), origin.get("max_in_flight", ""))
    canary_watch = parse_watch_time(required("canary_watch_time"), origin["canary_watch_time"])
    update_watch = parse_watch_time(required("update_watch_time"), origin["update_watch_time"])
    serial = merged.get("serial", True)
    if not isinstance(serial, bool):
        raise UpdateConfigError(origin["serial"], "must be true or false")
    vm_strategy = merged.get("vm_strategy", default_vm_strategy)
    if vm_strategy not in VM_STRATEGIES:
        raise UpdateConfigError(
            origin.get("vm_strategy", "options/default_vm_strategy"),
            f"'{vm_strategy}' is not one of {', '.join(VM_STRATEGIES)}",
        )
    az_strategy = merged.get("initial_deploy_az_update_strategy", "serial")
    if az_strategy not in AZ_UPDATE_STRATEGIES:
        raise UpdateConfigError(
            origin["initial_deploy_az_update_strategy"],
            f"'{az_strategy}' is not one of {', '.join(AZ_UPDATE_STRATEGIES)}",
        )
    return UpdateConfig(
        canaries=canaries_text,
        max_in_flight=max_in_flight_text,
        canary_watch_time=canary_watch,
        update_watch_time=update_watch,
        serial=serial,
        vm_strategy=vm_strategy,
        initial_deploy_az_update_strategy=az_strategy,
    )
