"""The global resurrection switch (BOSH: ``director_attributes.resurrection_paused``)."""

from __future__ import annotations

from ..events import record_event
from ..models import DirectorAttribute


def resurrection_enabled() -> bool:
    """Global resurrection switch (BOSH: ``director_attributes.resurrection_paused``)."""
    return DirectorAttribute.get(DirectorAttribute.RESURRECTION_PAUSED, "false") != "true"


def set_resurrection(enabled: bool, user: str) -> bool:
    DirectorAttribute.set(DirectorAttribute.RESURRECTION_PAUSED, "false" if enabled else "true")
    record_event("update", "resurrection", "global", user=user, context={"enabled": enabled})
    return enabled
