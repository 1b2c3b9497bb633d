"""Template context for every page: the Apply Changes that is running, if one is.

``base.html`` shows a banner linking to it on every page, and the tile
forms say that what is saved now applies with the next Apply Changes. The
lookup is lazy (a fragment that never shows the banner costs nothing) and
one query on the primary key: only one installation runs at a time and a
new one cannot start while it does, so a running installation is always
the newest one.
"""

from __future__ import annotations

from functools import cache

from .models import Installation, InstallationStatus


def running_apply(request) -> dict:
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        return {}

    @cache
    def running() -> Installation | None:
        newest = (
            Installation.objects.order_by("-id")
            .only("id", "status", "user_name", "started_at")
            .first()
        )
        return newest if newest and newest.status == InstallationStatus.RUNNING else None

    return {"running_apply": running}
