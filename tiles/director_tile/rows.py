"""Panes that are a list of named rows (availability zones, networks): parse, check, save.

``save_rows`` is the shape both panes share: every row goes through the
pane's normalizer, a name given twice is refused at ``{part}/{name}/name``,
the pane's own checks see the rows and the names that would be removed, and
the rows are saved only when no field was refused (``ServiceError`` with
every message at once), under the row lock that refuses a stale read (409).
``row_name`` and ``sub_rows`` read a row's name and its list of sub-rows
(an AZ's clusters, a network's subnets), naming the path of what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tiles.models import DirectorConfig

from .common import _err, _raise, _write


def row_name(row: Any, path: str, errors: dict, not_a_map: str) -> str | None:
    """The stripped name of ``row`` (a map), else ``None`` with the reason at ``path``."""
    if not isinstance(row, Mapping):
        _err(errors, path, not_a_map)
        return None
    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        _err(errors, f"{path}/name", "is required")
        return None
    return name.strip()


def sub_rows(
    value: Any, path: str, errors: dict, *, required: str, not_a_map: str
) -> Iterator[tuple[str, Mapping]]:
    """``(path/i, row)`` for each map in the list ``value``; what is not a map is refused.

    An empty or missing list is refused at ``path`` with ``required``.
    """
    if not isinstance(value, list) or not value:
        _err(errors, path, required)
        return
    for i, row in enumerate(value):
        if isinstance(row, Mapping):
            yield f"{path}/{i}", row
        else:
            _err(errors, f"{path}/{i}", not_a_map)


def save_rows(
    d: DirectorConfig,
    part: str,
    rows_in: list,
    normalize: Callable[[Any, int, dict], dict | None],
    existing: Iterable[str],
    *,
    validate: Callable[[list[dict], set[str], dict], None],
    value: Callable[[list[dict]], Any] = list,
    user: str = "",
    version: int | None = None,
) -> list[dict]:
    """Replace the pane ``part``'s rows with ``rows_in`` and return them as saved.

    ``normalize(row, i, errors)`` gives a row (``None`` when it has no usable
    name); ``validate(rows, removed, errors)`` adds the pane's own refusals,
    ``removed`` being the ``existing`` names no longer given; ``value(rows)``
    is what the column holds. Saved through ``_write``: a stale ``version``
    is a 409.
    """
    errors: dict[str, list[str]] = {}
    rows, seen = [], set()
    for i, row in enumerate(rows_in):
        n = normalize(row, i, errors)
        if n is None:
            continue
        if n["name"] in seen:
            _err(errors, f"{part}/{n['name']}/name", "is defined twice")
        seen.add(n["name"])
        rows.append(n)
    validate(rows, set(existing) - seen, errors)
    _raise(errors)
    _write(d, {part: value(rows)}, part, user, version)
    return rows
