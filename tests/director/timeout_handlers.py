"""Task handlers for the timeout integration test, loaded into its worker with ``--include``.

``test_holds_deployment_lock`` takes the lock of its task's deployment, says so
in its event log, then checkpoints until its worker is killed (or two
minutes pass). Not a test module: pytest does not collect it.
"""

import time

from director import locks
from director.runner import TaskContext, task_handler

HOLDS_LOCK = "test_holds_deployment_lock"


@task_handler(HOLDS_LOCK)
def holds_deployment_lock(ctx: TaskContext) -> str:
    locks.acquire(locks.deployment_lock_name(ctx.deployment_name), ctx)
    stage = ctx.stage("Holding the deployment lock", total=1)
    with stage.track(ctx.deployment_name):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ctx.checkpoint()
            time.sleep(0.1)
    return "never killed"
