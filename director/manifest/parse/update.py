"""The manifest's ``update`` block, at the top and per instance group.

Checks each key the way BOSH's ``UpdateConfig`` does: ``canaries`` and
``max_in_flight`` are an integer or ``"N%"``, watch times are milliseconds
or a ``min-max`` range, ``serial`` is a boolean, the strategies are known
words. Unknown keys are warned about and ignored, as BOSH ignores them.
"""

from __future__ import annotations

import re

from ..checks import is_int, unresolved
from ..errors import ErrorCollector, join_path

VM_STRATEGIES = ("delete-create", "create-swap-delete")
AZ_UPDATE_STRATEGIES = ("serial", "parallel")
UPDATE_KEYS = (
    "canaries",
    "max_in_flight",
    "canary_watch_time",
    "update_watch_time",
    "serial",
    "vm_strategy",
    "initial_deploy_az_update_strategy",
)
REQUIRED_UPDATE_KEYS = UPDATE_KEYS[:4]

_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_WATCH = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def resolve_count(value: int | str, size: int, *, minimum: int = 0) -> int:
    """``canaries`` / ``max_in_flight`` for a group of ``size`` instances.

    ``"N%"`` is ``floor(N * size / 100)``; the result is capped at ``size`` and
    raised to ``minimum`` (use ``minimum=1`` for ``max_in_flight``).
    """
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if not m:
            raise ValueError(f"'{value}' is neither an integer nor a percentage")
        count = int(m.group(1)) * size // 100
    else:
        count = int(value)
    return max(minimum, min(count, size))


def watch_time_range(value: int | str) -> tuple[int, int]:
    """``canary_watch_time`` / ``update_watch_time`` as ``(min_ms, max_ms)``."""
    if is_int(value):
        return int(value), int(value)
    m = _WATCH.match(str(value))
    if not m:
        raise ValueError(f"'{value}' is neither milliseconds nor a 'min-max' range")
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) is not None else low
    return low, high


def check_update(update: dict, path: str, e: ErrorCollector, required: bool) -> None:
    """Report what is wrong in one ``update`` block; ``required`` for the
    deployment's own (the group's may leave keys to it)."""
    for key in update:
        if key not in UPDATE_KEYS:
            e.warn(join_path(path, key), "unknown update key (ignored)")
    if required:
        for key in REQUIRED_UPDATE_KEYS:
            if key not in update:
                e.add(join_path(path, key), "is required")
    _check_counts(update, path, e)
    _check_watch_times(update, path, e)
    if (
        "serial" in update
        and not isinstance(update["serial"], bool)
        and not unresolved(update["serial"])
    ):
        e.add(join_path(path, "serial"), "must be true or false")
    for key, allowed in (
        ("vm_strategy", VM_STRATEGIES),
        ("initial_deploy_az_update_strategy", AZ_UPDATE_STRATEGIES),
    ):
        if key in update and update[key] not in allowed and not unresolved(update[key]):
            e.add(join_path(path, key), f"must be one of: {', '.join(allowed)}")


def _check_counts(update: dict, path: str, e: ErrorCollector) -> None:
    for key in ("canaries", "max_in_flight"):
        if key not in update or unresolved(update[key]):
            continue
        v = update[key]
        floor = 0 if key == "canaries" else 1
        if is_int(v):
            if v < floor:
                e.add(join_path(path, key), f"must be at least {floor}")
        elif isinstance(v, str) and _PERCENT.match(v):
            pct = int(_PERCENT.match(v).group(1))
            if pct > 100 or (key == "max_in_flight" and pct == 0):
                e.add(join_path(path, key), f"percentage must be between {floor} and 100")
        else:
            e.add(join_path(path, key), "must be an integer or a percentage like '25%'")


def _check_watch_times(update: dict, path: str, e: ErrorCollector) -> None:
    for key in ("canary_watch_time", "update_watch_time"):
        if key not in update or unresolved(update[key]):
            continue
        try:
            low, high = watch_time_range(update[key])
        except ValueError:
            e.add(
                join_path(path, key),
                "must be milliseconds (30000) or a range 'min-max' (1000-30000)",
            )
            continue
        if low > high:
            e.add(join_path(path, key), f"minimum {low} is greater than maximum {high}")
