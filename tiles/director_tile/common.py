"""What every pane of the Director tile shares: its row, the write, the field helpers.

``get_director`` is the tile's one ``DirectorConfig`` row (created on first
use, never deleted). ``_write`` saves a pane's columns under the row lock and
refuses a write based on a stale read (409, ``tiles.services.versions``).
The parsers (``_bool``, ``_int``, ``_csv``) add a message under the field's
path to ``errors`` instead of raising, so a setter reports every field at
once; ``_raise`` then refuses the whole pane.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from opsconsole.errors import ServiceError
from tiles.models import DIRECTOR_PRODUCT_NAME, DirectorConfig, new_guid

MASK = "***"


def _err(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ServiceError(errors)


def _write(
    d: DirectorConfig,
    values: Mapping[str, Any],
    part: str,
    user: str = "",
    version: int | None = None,
) -> None:
    """Save columns of the tile under its row lock (``tiles.services.versions``).

    Refused (409, naming who changed what and when) when ``part`` (a pane)
    was changed after ``version``; a change is recorded as ``user``'s.
    """
    # cycle: tiles.services (its package __init__) re-exports this package
    from tiles.services import versions

    with transaction.atomic():
        fresh = DirectorConfig.objects.select_for_update().get(pk=d.pk)
        versions.check_fresh(fresh, version, [part])
        if any(getattr(fresh, k) != v for k, v in values.items()):
            versions.record_edits(fresh, [part], user)
        for k, v in values.items():
            setattr(fresh, k, v)
            setattr(d, k, v)
        fresh.save(update_fields=[*values, "revision", "edits", "updated_at"])
    d.revision, d.edits = fresh.revision, fresh.edits


def version_of(*parts: str) -> int:
    """The version of the tile's ``parts`` (a form's hidden field, an ``ETag``)."""
    # cycle: tiles.services (its package __init__) re-exports this package
    from tiles.services import versions

    return versions.version(get_director(), parts)


def get_director() -> DirectorConfig:
    """The Director tile's row (created on first use)."""
    d = DirectorConfig.objects.order_by("id").first()
    if d is None:
        with transaction.atomic():
            d = DirectorConfig.objects.select_for_update().order_by("id").first()
            if d is None:
                d = DirectorConfig.objects.create(guid=new_guid(DIRECTOR_PRODUCT_NAME))
    return d


def _bool(value: Any, key: str, errors: dict) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "on", "off"):
        return value.lower() in ("true", "1", "on")
    _err(errors, key, "must be true or false")
    return None


def _int(value: Any, key: str, errors: dict, lo: int | None = None, hi: int | None = None):
    if isinstance(value, bool):
        _err(errors, key, "must be an integer")
        return None
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        _err(errors, key, "must be an integer")
        return None
    if lo is not None and n < lo:
        _err(errors, key, f"must be at least {lo}")
        return None
    if hi is not None and n > hi:
        _err(errors, key, f"must be at most {hi}")
        return None
    return n


def _csv(text: Any) -> list[str]:
    if isinstance(text, list | tuple):
        return [str(x).strip() for x in text if str(x).strip()]
    return [p.strip() for p in str(text or "").split(",") if p.strip()]
