"""Type checks shared by the manifest and cloud-config validators.

Both documents are made of the same pieces: lists of maps named by a key
(releases, instance groups, jobs, vm_types, networks ...), lists of names,
integers, and values that are still ``((placeholders))``. These helpers check
those pieces the same way everywhere and report into an ``ErrorCollector``;
the caller words what is specific to its section (the duplicate message, the
message for a missing name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import ErrorCollector, item_key, join_path
from .interpolate import contains_placeholder


def is_int(value: Any) -> bool:
    """An integer that is not a boolean (YAML ``true`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def unresolved(value: Any) -> bool:
    """True if ``value`` is a string holding a ``((placeholder))``: its type
    is checked once the placeholder is interpolated, not now."""
    return contains_placeholder(value)


def is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def named_items(
    value: Any,
    path: str,
    e: ErrorCollector,
    *,
    duplicate: Callable[[str], str],
    name_key: str = "name",
    name_message: str = "is required",
    path_of: Callable[[Any, int], Any] = item_key,
    check_name: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, dict]]:
    """The maps of the list ``value`` that have a usable, unique name, each
    with its path (``path/<name>``, or ``path/<index>`` while it has none).

    Reports, as it goes: ``value`` not a list, an item not a map, an item
    without a non-empty string ``name_key`` (``name_message``), and a name
    seen before (``duplicate(name)``); those items are
    skipped. ``check_name(name, item_path)`` may report more about a name
    before the duplicate check. A generator, so the caller's own checks of
    each item are reported in document order with these.
    """
    if not isinstance(value, list):
        e.add(path, "must be a list")
        return
    seen: set[str] = set()
    for i, item in enumerate(value):
        item_path = join_path(path, path_of(item, i))
        if not isinstance(item, dict):
            e.add(join_path(path, i), "must be a map")
            continue
        name = item.get(name_key)
        if not isinstance(name, str) or not name:
            e.add(join_path(item_path, name_key), name_message)
            continue
        if check_name is not None:
            check_name(name, item_path)
        if name in seen:
            e.add(item_path, duplicate(name))
            continue
        seen.add(name)
        yield item_path, item
