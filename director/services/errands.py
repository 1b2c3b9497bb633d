"""Errands as pages, the API and commands use them: list a deployment's errands, run one.

``run_errand`` checks what can be checked at once (the deployment and the
errand exist, ``instances`` and flags are well formed, nothing else is
changing the deployment) and queues a ``run_errand`` task; the run itself
(``director.execution.errand``) happens in a worker.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from opsconsole.errors import Conflict, NotFound, ServiceError

from .. import runner
from ..errands import (
    TASK_TYPE,
    Errand,
    _deployed,
    _deployed_manifest,
    _runnable,
    _unknown,
    errands_of,
    find_errand,
)
from ..models import Task


def list_errands(deployment_name: str) -> list[dict[str, Any]]:
    """The errands of a deployment (BOSH ``GET /deployments/:d/errands``); 404 if unknown."""
    deployment = _deployed(deployment_name)
    runnable = _runnable(deployment)
    return [e.to_dict() for e in errands_of(_deployed_manifest(deployment), runnable)]


def _instance_filters(instances: Any, errand: Errand) -> list[str]:
    """``instances`` as ``group`` or ``group/id`` strings; each group must run the errand."""
    if instances in (None, "", []):
        return []
    if not isinstance(instances, list):
        raise ServiceError({"instances": ["must be a list of group or group/id"]})
    groups = {g.name for g in errand.groups}
    out, errors = [], {}
    for i, item in enumerate(instances):
        if isinstance(item, dict):  # BOSH's body: {"group": ..., "id": ...}
            group, ident = item.get("group"), item.get("id")
            text = f"{group}/{ident}" if ident not in (None, "") else str(group)
        elif isinstance(item, str):
            text = item
            group = item.split("/", 1)[0]
        else:
            errors[f"instances/{i}"] = ["must be group or group/id"]
            continue
        if not group or group not in groups:
            errors[f"instances/{i}"] = [
                f"'{text}': errand '{errand.name}' does not run on instance group '{group}' "
                f"(it runs on: {', '.join(sorted(groups))})"
            ]
            continue
        out.append(text)
    if errors:
        raise ServiceError(errors)
    return out


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ServiceError({field: ["must be true or false"]})
    return value


def run_errand(
    deployment_name: str,
    errand_name: str,
    user: str,
    keep_alive: bool = False,
    when_changed: bool = False,
    instances: list | None = None,
    enqueue: bool = True,
) -> Task:
    """Queue a ``run_errand`` task (BOSH ``bosh -d D run-errand NAME``).

    404 for an unknown deployment or errand (the message lists the
    deployment's errands), 422 for bad ``instances`` (``group`` or
    ``group/id``, also BOSH's ``{"group", "id"}``) or flags, 409 while a
    deploy, delete or another errand of the deployment is queued or running.
    ``enqueue=False`` creates the task without queueing it: the caller runs
    it with ``runner.run_task`` (an Apply Changes step does).
    """
    keep_alive = _flag(keep_alive, "keep_alive")
    when_changed = _flag(when_changed, "when_changed")
    deployment = _deployed(deployment_name)
    runnable = _runnable(deployment)
    manifest = _deployed_manifest(deployment)
    errand = find_errand(manifest, errand_name, runnable)
    if errand is None:
        raise NotFound(
            {"errand": [_unknown(errand_name, deployment, errands_of(manifest, runnable))]}
        )
    filters = _instance_filters(instances, errand)
    with transaction.atomic():
        busy = runner.changing_task(deployment_name)
        if busy is not None:
            raise Conflict(
                {
                    "deployment": [
                        f"Deployment '{deployment_name}' is being changed by task {busy.id}"
                    ]
                }
            )
        return runner.create_task(
            TASK_TYPE,
            f"run errand {errand_name} from deployment {deployment_name}",
            user,
            deployment_name=deployment_name,
            args={
                "errand": errand_name,
                "keep_alive": keep_alive,
                "when_changed": when_changed,
                "instances": filters,
            },
            enqueue=enqueue,
        )
