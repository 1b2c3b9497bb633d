"""``bosh logs``: the job (or agent) logs of instances as one tgz, by a ``fetch_logs`` task.

``fetch_logs(deployment, user, instances, log_type, filters)`` queues the
task for some instances (``group`` or ``group/id``, id the uuid or the
index) or, by default, every instance of the deployment. The task asks
each instance's agent for ``fetch_logs_with_signed_url``: the agent tars
its ``/var/vcap/sys/log`` (``job``) or ``/var/vcap/bosh/log`` (``agent``)
and PUTs it to a signed URL of the director's blobstore under an id the
director chose (stage *Fetching logs*, one step per instance, in
parallel). One instance's tgz is the bundle itself; for several, the
bundle is a tgz holding one ``<group>.<uuid>.tgz`` per instance, and the
per-instance blobs are deleted. Instances without a VM (detached, errand
groups) are named in a warning and skipped.

The task's result output holds ``{"blob": "<id>", "sha1": "<hex>"}``;
``GET /api/v0/director/resources/<id>`` (``open_bundle``) serves only
blobs a finished ``fetch_logs`` task produced, never a release's or a
compiled package's. Events: ``fetch_logs instance`` per instance (start and
end). The task takes no deployment lock: logs are wanted most while a
deploy is stuck holding it; the agent answers a log request at any time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from typing import Any

from opsconsole.errors import NotFound, ServiceError

from . import runner
from .blobstore import BlobNotFound, blobstore, check_blob_id, new_blob_id
from .blobstore.errors import InvalidBlobId
from .events import event_span
from .execution.agent import agent_for
from .execution.run import parallel
from .instance_actions import find_instances
from .models import Deployment, Instance, Task, TaskState, Vm
from .runner import TaskContext, task_handler

TASK_TYPE = "fetch_logs"
LOG_TYPES = ("job", "agent")


class FetchLogsError(Exception):
    """The logs could not be gathered (no instance with a VM, an agent did not upload)."""


def _deployment(name: str) -> Deployment:
    deployment = Deployment.objects.filter(name=name).first()
    if deployment is None:
        raise NotFound({"deployment": [f"Deployment '{name}' does not exist"]})
    return deployment


def _select(deployment: Deployment, instances: Any) -> list[Instance]:
    """The instances named by ``group``/``group/id`` strings (all when empty); 422 per item."""

    if instances in (None, "", []):
        return list(
            Instance.objects.filter(deployment=deployment, compilation=False).order_by(
                "group", "index"
            )
        )
    if not isinstance(instances, list):
        raise ServiceError({"instances": ["must be a list of group or group/id"]})
    out: dict[int, Instance] = {}
    errors: dict[str, list[str]] = {}
    for i, item in enumerate(instances):
        if not isinstance(item, str) or not item.strip("/"):
            errors[f"instances/{i}"] = ["must be group or group/id"]
            continue
        group, _, ident = item.partition("/")
        try:
            for inst in find_instances(deployment, group, ident or None):
                out[inst.id] = inst
        except NotFound as exc:
            errors[f"instances/{i}"] = exc.errors["instance"]
    if errors:
        raise ServiceError(errors)
    return list(out.values())


def fetch_logs(
    deployment_name: str,
    user: str,
    instances: Any = None,
    log_type: Any = "job",
    filters: Any = None,
) -> Task:
    """Queue a ``fetch_logs`` task (``bosh -d D logs [group[/id]] [--agent]``).

    404 for an unknown deployment; 422 naming the field for an unknown
    instance, a log type other than ``job`` or ``agent``, filters that are
    not a list of globs, or a deployment without instances.
    """
    deployment = _deployment(deployment_name)
    log_type = log_type or "job"
    if log_type not in LOG_TYPES:
        raise ServiceError({"type": [f"must be one of {', '.join(LOG_TYPES)}"]})
    if filters is not None and not (
        isinstance(filters, list) and all(isinstance(f, str) and f for f in filters)
    ):
        raise ServiceError({"filters": ["must be a list of glob patterns"]})
    chosen = _select(deployment, instances)
    if not chosen:
        raise ServiceError({"instances": [f"Deployment '{deployment_name}' has no instances"]})
    what = ", ".join(i.name for i in chosen) if instances else "all instances"

    return runner.create_task(
        TASK_TYPE,
        f"fetch {log_type} logs of {what}",
        user,
        deployment_name=deployment_name,
        args={
            "instances": [i.uuid for i in chosen],
            "log_type": log_type,
            "filters": filters,
        },
    )


@task_handler(TASK_TYPE)
def fetch_logs_task(ctx: TaskContext) -> str:
    """Gather the instances' logs into one bundle (see the module docstring)."""

    args = ctx.args
    log_type = str(args.get("log_type") or "job")
    rows = list(
        Instance.objects.filter(uuid__in=args.get("instances") or [], compilation=False).order_by(
            "group", "index"
        )
    )
    with_vm = []
    for instance in rows:
        vm = Vm.objects.filter(instance=instance, active=True).first()
        if vm is None:
            ctx.warning(f"{instance} has no VM ({instance.state}): no logs from it")
        else:
            with_vm.append((instance, vm))
    if not with_vm:
        raise FetchLogsError("None of the instances has a VM to fetch logs from")
    store = blobstore()
    stage = ctx.stage("Fetching logs", total=len(with_vm))
    uploaded: list[str] = []

    def one(item: tuple[Instance, Vm]) -> str:
        instance, vm = item
        with stage.track(str(instance)):
            ctx.checkpoint()
            blob_id = new_blob_id()
            with event_span(
                "fetch_logs",
                "instance",
                instance.name,
                user=ctx.username,
                task=ctx.task,
                deployment=ctx.deployment_name,
                instance=instance.name,
                context={"log_type": log_type},
            ):
                try:
                    agent_for(vm, str(instance)).fetch_logs_with_signed_url(
                        {
                            "signed_url": store.signed_url(blob_id, "PUT"),
                            "log_type": log_type,
                            "filters": args.get("filters"),
                            "blobstore_headers": {},
                        }
                    )
                except BaseException:
                    store.delete(blob_id)
                    raise
                if not store.exists(blob_id):
                    raise FetchLogsError(f"the agent of {instance} did not upload its logs")
            uploaded.append(blob_id)
            ctx.debug(f"logs of {instance} (VM {vm.cid}) in blob {blob_id}")
            return blob_id

    try:
        blobs = parallel(with_vm, one, lambda item: str(item[0]))
    except BaseException:
        for blob_id in uploaded:  # the instances that did answer: nothing is left behind
            store.delete(blob_id)
        raise
    if len(blobs) == 1:
        bundle = blobs[0]
    else:
        bundle = _bundle(store, [(i, b) for (i, _), b in zip(with_vm, blobs, strict=True)])
    sha1 = _sha1(store, bundle)
    ctx.write_result({"blob": bundle, "sha1": sha1})
    return f"Logs of {len(blobs)} instance{'s' if len(blobs) != 1 else ''} in blob {bundle}"


def _bundle(store: Any, parts: list[tuple[Instance, str]]) -> str:
    """One tgz of ``<group>.<uuid>.tgz`` members; the per-instance blobs are deleted."""
    fd, name = tempfile.mkstemp(suffix=".tgz")
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            for instance, blob_id in parts:
                size = store.size(blob_id)
                info = tarfile.TarInfo(f"{instance.group}.{instance.uuid}.tgz")
                info.size = size
                info.mode = 0o644
                with store.get(blob_id) as src:
                    tar.addfile(info, src)
        with open(name, "rb") as fh:
            ref = store.put(fh)
    finally:
        os.unlink(name)
    for _, blob_id in parts:
        store.delete(blob_id)
    return ref.id


def _sha1(store: Any, blob_id: str) -> str:
    digest = hashlib.sha1()
    with store.get(blob_id) as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_of(task: Task) -> str | None:
    """The blob id of the bundle a ``fetch_logs`` task produced (from its result output)."""
    for line in (task.result_output or "").splitlines():
        try:
            blob = json.loads(line).get("blob")
        except (ValueError, AttributeError):
            continue
        if blob:
            return str(blob)
    return None


def open_bundle(blob_id: str) -> tuple[io.BufferedIOBase, int]:
    """``(file, size)`` of a logs bundle a finished ``fetch_logs`` task produced; 404 else."""
    try:
        check_blob_id(blob_id)
    except InvalidBlobId as exc:
        raise NotFound({"blob": [str(exc)]}) from None
    produced = Task.objects.filter(
        type=TASK_TYPE, state=TaskState.DONE, result_output__contains=f'"{blob_id}"'
    ).exists()
    if not produced:
        raise NotFound({"blob": [f"No logs bundle {blob_id}"]})
    store = blobstore()
    try:
        return store.get(blob_id), store.size(blob_id)
    except BlobNotFound:
        raise NotFound({"blob": [f"Logs bundle {blob_id} is no longer in the blobstore"]}) from None


__all__ = ["LOG_TYPES", "bundle_of", "fetch_logs", "open_bundle"]
