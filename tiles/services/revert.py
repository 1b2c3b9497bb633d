"""Revert: discard staged changes, back to what the last Apply Changes deployed.

``revert_staged`` puts every staged product back to its deployed snapshot
(products never deployed are unstaged) and the Director tile back to what
the last successful apply used; refused while an installation runs.
"""

from __future__ import annotations

from django.db import transaction

from opsconsole.errors import Conflict
from tiles import director_tile
from tiles.models import StagedProduct

from .installations.records import running_installation


def revert_staged() -> None:
    """Discard staged changes (``DELETE /api/v0/staged``); refused while an apply runs."""
    running = running_installation()
    if running is not None:
        raise Conflict({"install": [f"Installation {running.id} is running; revert after it ends"]})
    with transaction.atomic():
        for staged in StagedProduct.objects.select_for_update(of=("self",)).select_related(
            "deployed_product"
        ):
            if not staged.is_deployed or staged.deployed_state is None:
                staged.delete()
                continue
            state = staged.deployed_state
            if staged.deployed_product is not None:
                staged.product = staged.deployed_product
            staged.values = state.get("values") or {}
            staged.secrets = state.get("secrets") or {}
            staged.network_and_azs = state.get("network_and_azs") or {}
            staged.resource_config = state.get("resource_config") or {}
            staged.errands = state.get("errands") or {}
            staged.marked_for_deletion = False
            staged.save()
        d = director_tile.get_director()
        if d.deployed_state:
            director_tile.restore_director_state(d.deployed_state)
