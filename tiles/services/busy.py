"""Work that may write a secret or a task log right now, and refusing to run beside it.

A director task or an Apply Changes may write a secret under the current
encryption key or append to a task log at any moment, so key rotation,
installation export and import (``console.backup``) and the secrets scrub
(``manage.py scrub_secrets``) wait until none runs. Here, not in the
director, because an Apply Changes is a tile's; the director's tasks are
read through its model.
"""

from __future__ import annotations

from director.models import Task
from opsconsole.errors import Conflict

from .installations.records import running_installation


class WorkRunning(Conflict):
    """A director task or an Apply Changes runs; rotation, export and import wait for it."""


def running_work() -> list[str]:
    """What runs now and might write a secret: active director tasks, a running Apply Changes."""
    # A task whose worker died (timed out, not yet recorded) writes nothing more.
    alive = [t for t in Task.objects.active().order_by("id")[:50] if t.timeout_reason() is None]
    busy = [f"director task {t.id} ({t.description or t.type}) is {t.state}" for t in alive[:5]]
    installation = running_installation()  # fails installations whose worker is gone first
    if installation is not None:
        busy.append(f"Apply Changes (installation {installation.id}) is running")
    return busy


def refuse_while_busy(action: str) -> None:
    """Raise ``WorkRunning`` (409) naming what runs, if anything does."""
    busy = running_work()
    if busy:
        raise WorkRunning({"base": [f"cannot {action} while work runs: " + "; ".join(busy) + "."]})
