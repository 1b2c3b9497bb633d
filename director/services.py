"""What the director does, for pages, the API and ``manage.py`` commands alike.

Every function here is a verb on director nouns; views, API views and
commands stay thin and call these. Anything long (imports through the CPI,
deploys, deletes) creates a ``Task`` (``director.runner.create_task``) and
returns it at once; the work runs in a Celery worker after the transaction
commits.

Errors are ``ServiceError`` with ``errors`` = ``{field or path: [message]}``
and an HTTP-like ``status`` (404 not found, 409 conflict, 422 unprocessable
input, 501 not yet built) that the API passes through and pages show.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from opsconsole.errors import Conflict, NotFound, NotYetImplemented, ServiceError
from opsconsole.redaction import register_yaml_secrets

from . import runner
from .events import record_event
from .models import (
    KNOWN_CONFIG_TYPES,
    Config,
    ConfigType,
    Deployment,
    DirectorAttribute,
    Event,
    Instance,
    IpAddress,
    PersistentDisk,
    Release,
    ReleaseVersion,
    Stemcell,
    Task,
    TaskEvent,
    TaskState,
    Vm,
)
from .uploads import (
    UploadError,
    discard_upload,
    read_release,
    read_stemcell,
    release_exists,
    save_upload,
)

#: Most events one call returns (BOSH: 200).
MAX_EVENTS = 200


# --------------------------------------------------------------------------- stemcells


def list_stemcells() -> QuerySet[Stemcell]:
    return Stemcell.objects.order_by("name", "-id").prefetch_related(
        Prefetch("deployments", queryset=Deployment.objects.only("id", "name"))
    )


def _done_task(type: str, description: str, user: str, result: str) -> Task:
    """A task that needed no work (BOSH's "already exists" answer): recorded, not queued."""
    now = timezone.now()
    task = Task.objects.create(
        type=type,
        description=description,
        username=user,
        state=TaskState.DONE,
        result=result,
        started_at=now,
        finished_at=now,
        checkpoint_time=now,
    )
    TaskEvent.objects.create(
        task=task, seq=1, data={"time": int(now.timestamp()), "type": "warning", "message": result}
    )
    return task


def upload_stemcell(file: Any, user: str, *, enqueue: bool = True) -> Task:
    """Check a stemcell tarball and queue its import (``update_stemcell``).

    ``file``: an uploaded file, a file object or a path (copied: the caller
    keeps its file). A tarball that is not a stemcell raises
    ``ServiceError`` (422) and leaves nothing behind; a stemcell already
    uploaded gives a finished task saying so. ``enqueue=False`` leaves the
    task off the queue for the caller to run inline (an Apply Changes step).
    """
    path = None
    try:
        path = save_upload(file, "stemcell")
        mf = read_stemcell(path)
    except UploadError as exc:
        discard_upload(path)
        raise ServiceError({"stemcell": [str(exc)]}) from None
    label = f"{mf.name}/{mf.version}"
    if Stemcell.objects.filter(name=mf.name, version=mf.version).exists():
        discard_upload(path)
        return _done_task(
            "update_stemcell", "create stemcell", user, f"Stemcell '{label}' already exists"
        )
    return runner.create_task(
        "update_stemcell",
        "create stemcell",
        user,
        args={"path": str(path), "name": mf.name, "version": mf.version},
        enqueue=enqueue,
    )


def delete_stemcell(name: str, version: str, user: str, force: bool = False) -> Task:
    if not Stemcell.objects.filter(name=name, version=version).exists():
        raise NotFound(f"Stemcell '{name}/{version}' does not exist")
    return runner.create_task(
        "delete_stemcell",
        "delete stemcell",
        user,
        args={"name": name, "version": version, "force": force},
    )


# --------------------------------------------------------------------------- releases


def list_releases() -> QuerySet[Release]:
    versions = ReleaseVersion.objects.order_by("-id").prefetch_related("jobs", "deployments")
    return Release.objects.order_by("name").prefetch_related(Prefetch("versions", versions))


def upload_release(file: Any, user: str) -> Task:
    """Check a release tarball completely and queue storing it (``update_release``)."""
    path = None
    try:
        path = save_upload(file, "release")
        archive = read_release(path)
    except UploadError as exc:
        discard_upload(path)
        raise ServiceError({"release": [str(exc)]}) from None
    if release_exists(archive.name, archive.version):
        discard_upload(path)
        return _done_task(
            "update_release",
            "create release",
            user,
            f"Release '{archive.label}' already exists",
        )
    return runner.create_task(
        "update_release",
        "create release",
        user,
        args={"path": str(path), "name": archive.name, "version": archive.version},
    )


# --------------------------------------------------------------------------- configs


def _config_object_type(type: str) -> str:
    return f"{type}-config" if type in KNOWN_CONFIG_TYPES else "config"


def _manifest_errors(exc) -> dict:
    errors: dict[str, list[str]] = {}
    for path, message in exc.errors:
        errors.setdefault(path or "content", []).append(message)
    return errors


def validate_config(type: str, name: str, content: str) -> dict:
    """Parse and check a config's YAML; returns the document or raises ServiceError."""
    if not content or not content.strip():
        raise ServiceError({"content": ["must not be empty"]})
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ServiceError({"content": [f"not valid YAML: {exc}"]}) from None
    if not isinstance(doc, dict):
        raise ServiceError({"content": ["must be a YAML map"]})
    if type == ConfigType.CLOUD:
        try:
            from director.manifest import ManifestError
            from director.manifest.cloud_config import parse_cloud_config
        except ImportError:  # the manifest package is built in parallel
            return doc
        others = Config.objects.filter(type=type, deleted=False).exclude(name=name).exists()
        try:
            parse_cloud_config(doc, partial=others or name != "default")
        except ManifestError as exc:
            raise ServiceError(_manifest_errors(exc)) from None
    elif type == ConfigType.CPI:
        cpis = doc.get("cpis")
        if not isinstance(cpis, list) or not cpis:
            raise ServiceError({"cpis": ["must list at least one CPI"]})
        for i, entry in enumerate(cpis):
            where = f"cpis/{entry.get('name', i) if isinstance(entry, dict) else i}"
            if not isinstance(entry, dict):
                raise ServiceError({where: ["must be a map"]})
            for key in ("name", "type"):
                if not entry.get(key):
                    raise ServiceError({f"{where}/{key}": ["is required"]})
            if entry["type"] != "vsphere":
                raise ServiceError({f"{where}/type": ["only 'vsphere' is supported"]})
            if not isinstance(entry.get("properties"), dict):
                raise ServiceError({f"{where}/properties": ["is required (a map)"]})
    elif type == ConfigType.RESURRECTION:
        from director.health.rules import RuleError, parse_rules

        try:
            parse_rules(doc)
        except RuleError as exc:
            raise ServiceError({exc.path: [exc.message]}) from None
    return doc


@dataclass(frozen=True)
class ConfigUpdate:
    config: Config
    changed: bool


def update_config(type: str, name: str, content: str, user: str) -> ConfigUpdate:
    """Store a new version of ``(type, name)``; unchanged content stores nothing."""
    type = (type or "").strip()
    name = (name or "default").strip()
    if not type:
        raise ServiceError({"type": ["is required"]})
    too_long = {
        field: [f"must be at most {limit} characters"]
        for field, value in (("type", type), ("name", name))
        if len(value) > (limit := Config._meta.get_field(field).max_length)
    }
    if too_long:
        raise ServiceError(too_long)
    validate_config(type, name, content)
    register_yaml_secrets(content)  # a password that arrives here never reaches a log
    with transaction.atomic():
        latest = Config.latest(type, name)
        # Content is encrypted (a fresh token each write): compare the decrypted text.
        if latest is not None and latest.content == content:
            return ConfigUpdate(latest, changed=False)
        config = Config.objects.create(type=type, name=name, content=content)
        record_event(
            "update" if latest else "create",
            _config_object_type(type),
            name,
            user=user,
            context={"id": config.id},
        )
    return ConfigUpdate(config, changed=True)


def delete_config(type: str, name: str, user: str) -> int:
    """Mark every version of ``(type, name)`` deleted; how many rows were marked."""
    count = Config.objects.filter(type=type, name=name, deleted=False).update(deleted=True)
    if not count:
        raise NotFound(f"No config of type '{type}' named '{name}'")
    record_event("delete", _config_object_type(type), name, user=user)
    return count


def list_configs(
    type: str | None = None, name: str | None = None, latest: bool = True
) -> QuerySet[Config]:
    """Configs, newest first; ``latest`` keeps only the current version of each (type, name)."""
    qs = Config.objects.filter(deleted=False)
    if type:
        qs = qs.filter(type=type)
    if name:
        qs = qs.filter(name=name)
    if latest:
        from django.db.models import Max

        ids = qs.values("type", "name").annotate(latest_id=Max("id")).values("latest_id")
        qs = Config.objects.filter(id__in=ids)
    return qs.order_by("-id")


def get_config(config_id: int) -> Config:
    config = Config.objects.filter(id=config_id).first()
    if config is None:
        raise NotFound(f"Config {config_id} does not exist")
    return config


# --------------------------------------------------------------------------- tasks


def list_tasks(
    states: list[str] | None = None,
    deployment: str | None = None,
    type: str | None = None,
    context_id: str | None = None,
) -> QuerySet[Task]:
    """Tasks, newest first; tasks that timed out are recorded as ``timeout`` first."""
    runner.expire_timed_out_tasks()
    qs = Task.objects.defer("args", "result_output").order_by("-id")
    if states:
        unknown = [s for s in states if s not in TaskState.values]
        if unknown:
            raise ServiceError(
                {"state": [f"unknown state '{unknown[0]}' (one of {', '.join(TaskState.values)})"]}
            )
        qs = qs.filter(state__in=states)
    if deployment:
        qs = qs.filter(deployment_name=deployment)
    if type:
        qs = qs.filter(type=type)
    if context_id:
        qs = qs.filter(context_id=context_id)
    return qs


def get_task(task_id: int) -> Task:
    runner.expire_timed_out_tasks(Task.objects.filter(id=task_id))
    task = Task.objects.filter(id=task_id).first()
    if task is None:
        raise NotFound(f"Task {task_id} does not exist")
    return task


def cancel_task(task_id: int, user: str = "") -> Task:
    """Cooperative cancel (see ``runner.cancel_task``); 409 if the task already ended."""
    get_task(task_id)
    try:
        task = runner.cancel_task(task_id)
    except runner.TaskNotCancellable as exc:
        raise Conflict({"state": [str(exc)]}) from None
    record_event("cancel", "task", str(task_id), user=user, task=task_id)
    if task.state == TaskState.CANCELLED and task.type in ("update_stemcell", "update_release"):
        discard_upload(task.args.get("path"))  # never to be run: its upload is not needed
    return task


def task_output(task_id: int, type: str = "event", after: int = 0) -> tuple[Task, runner.Output]:
    task = get_task(task_id)
    if type not in runner.OUTPUT_TYPES:
        raise ServiceError({"type": [f"must be one of {', '.join(runner.OUTPUT_TYPES)}"]}, 400)
    try:
        after = int(after or 0)
    except (TypeError, ValueError):
        raise ServiceError({"after": ["must be a number"]}, 400) from None
    return task, runner.read_output(task, type, after)


# --------------------------------------------------------------------------- events


def _time(value, field: str) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC)
    parsed = parse_datetime(text)
    if parsed is None:
        raise ServiceError({field: ["must be a unix time or an ISO 8601 time"]}, 400)
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, UTC)


def list_events(filters: dict | None = None, limit: int = MAX_EVENTS) -> list[Event]:
    """Audit events, newest first, at most 200 (BOSH's filters; see the API docs)."""
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    qs = Event.objects.order_by("-id")
    if "before_id" in filters:
        try:
            qs = qs.filter(id__lt=int(filters["before_id"]))
        except (TypeError, ValueError):
            raise ServiceError({"before_id": ["must be a number"]}, 400) from None
    if "before_time" in filters:
        qs = qs.filter(timestamp__lt=_time(filters["before_time"], "before_time"))
    if "after_time" in filters:
        qs = qs.filter(timestamp__gt=_time(filters["after_time"], "after_time"))
    if "task" in filters:
        try:
            qs = qs.filter(task=int(filters["task"]))
        except (TypeError, ValueError):
            raise ServiceError({"task": ["must be a task id"]}, 400) from None
    for key, field in (
        ("deployment", "deployment"),
        ("instance", "instance"),
        ("user", "user"),
        ("action", "action"),
        ("object_type", "object_type"),
        ("object_name", "object_name"),
    ):
        if key in filters:
            qs = qs.filter(**{field: filters[key]})
    return list(qs[: max(1, min(int(limit), MAX_EVENTS))])


def event_filter_values(fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The distinct values events hold in ``fields`` (the events page's filter choices)."""
    allowed = {"deployment", "action", "object_type", "user", "object_name", "instance"}
    return {
        f: sorted(v for v in Event.objects.order_by().values_list(f, flat=True).distinct() if v)
        for f in fields
        if f in allowed
    }


def get_event(event_id: int) -> Event:
    event = Event.objects.filter(id=event_id).first()
    if event is None:
        raise NotFound(f"Event {event_id} does not exist")
    return event


# --------------------------------------------------------------------------- deployments


def list_deployments() -> QuerySet[Deployment]:
    return Deployment.objects.order_by("name").prefetch_related(
        "stemcells",
        Prefetch("release_versions", ReleaseVersion.objects.select_related("release")),
        "configs",
    )


def get_deployment(name: str) -> Deployment:
    deployment = list_deployments().filter(name=name).first()
    if deployment is None:
        raise NotFound(f"Deployment '{name}' does not exist")
    return deployment


def deployment_instances(name: str) -> list[Instance]:
    """Instances of a deployment with their VMs, IPs and disks prefetched (constant queries)."""
    deployment = Deployment.objects.filter(name=name).only("id").first()
    if deployment is None:
        raise NotFound(f"Deployment '{name}' does not exist")
    return list(
        Instance.objects.filter(deployment=deployment)
        .order_by("group", "index")
        .prefetch_related(
            Prefetch("vms", Vm.objects.order_by("id")),
            Prefetch("ip_addresses", IpAddress.objects.order_by("id")),
            Prefetch("persistent_disks", PersistentDisk.objects.order_by("id")),
        )
    )


@dataclass(frozen=True)
class VmRow:
    """One instance as the VMs page shows it: ``bosh vms`` columns plus vCenter's power state.

    ``power_state`` is what vCenter said just now ("poweredOn", "poweredOff",
    "suspended"), ``"missing"`` when vCenter has no VM of that cid, None
    when there is no VM or vCenter was not asked or did not answer.
    ``process_state`` follows BOSH's words: ``running``/``stopped`` from what
    the agent recorded, ``unresponsive agent`` when the VM is not powered on
    (or not there), ``-`` without a VM.
    """

    instance: Instance
    vm: Vm | None
    ips: list[str]
    vm_type: str
    disks: list[PersistentDisk]
    power_state: str | None
    process_state: str


@dataclass(frozen=True)
class DeploymentVms:
    """One deployment's rows of the VMs page."""

    name: str
    rows: list[VmRow]


@dataclass(frozen=True)
class VmsReport:
    """The VMs page: deployments with their rows; ``vcenter_error`` when vCenter failed us."""

    deployments: list[DeploymentVms]
    vcenter_error: str = ""


def _process_state(vm: Vm | None, power: str | None, job_states: dict[str, str]) -> str:
    """What the VM's agent last reported in its heartbeat (``job_state``), as ``bosh vms``."""
    if vm is None:
        return "-"
    if power is not None and power != "poweredOn":
        return "unresponsive agent"
    return job_states.get(vm.agent_id) or "unresponsive agent"


class _PageCloud:
    """The vCenter session the VMs page reads through, kept between its refreshes.

    The page refreshes every 5 s; logging in and out each time would fill
    vCenter's event log with sessions. One cloud per process is kept for as
    long as the cpi config it was built from is current; a new config, or
    any error, closes it and the next read logs in again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._cloud: Any = None

    def vm_states(self, cids: list[str]) -> dict[str, str]:
        from .cloud import cloud_for_director, cloud_properties

        text = json.dumps(cloud_properties(), sort_keys=True, default=str)
        key = hashlib.sha256(text.encode()).hexdigest()  # no second copy of the password
        with self._lock:
            if self._key != key:
                self._drop()
                self._cloud, self._key = cloud_for_director(), key
            cloud = self._cloud
        try:
            return cloud.vm_states(cids)
        except Exception:
            with self._lock:
                if self._cloud is cloud:
                    self._drop()
            raise

    def _drop(self) -> None:
        if self._cloud is not None:
            try:
                self._cloud.close()
            except Exception:  # a dead session needs no logout
                pass
        self._cloud, self._key = None, None


_page_cloud = _PageCloud()


def live_vm_states(cids: list[str]) -> dict[str, str]:
    """``{cid: power state}`` from the director's vCenter in one read; ``"missing"`` if not there.

    Raises whatever reaching vCenter raised (``CloudNotConfigured``, a CPI
    ``CloudError``...): the caller decides how to show it.
    """
    if not cids:
        return {}
    found = _page_cloud.vm_states(cids)
    return {cid: found.get(cid, "missing") for cid in cids}


def deployment_vms(deployment: str | None = None, *, live: bool = True) -> VmsReport:
    """``bosh vms`` (every deployment, or ``deployment``), with power states read from vCenter.

    The rows come from the database in constant queries; the power states
    from one vCenter read for all the VMs shown. If vCenter cannot be asked
    (no cpi config, unreachable, refused login) the rows are still returned,
    without power states, and ``vcenter_error`` says why: a dashboard shows
    what the director knows even when vCenter is down.
    """
    deployments = Deployment.objects.order_by("name")
    if deployment:
        deployments = deployments.filter(name=deployment)
    names = dict(deployments.values_list("id", "name"))
    if deployment and not names:
        raise NotFound({"deployment": [f"Deployment '{deployment}' does not exist"]})
    instances = list(
        Instance.objects.filter(deployment_id__in=names)
        .order_by("group", "index")
        .prefetch_related(
            Prefetch("vms", Vm.objects.order_by("id")),
            Prefetch("ip_addresses", IpAddress.objects.order_by("id")),
            Prefetch("persistent_disks", PersistentDisk.objects.order_by("id")),
        )
    )
    active = {i.id: i.active_vm for i in instances}
    cids = [vm.cid for vm in active.values() if vm is not None]
    states: dict[str, str] = {}
    error = ""
    if live and cids:
        try:
            states = live_vm_states(cids)
        except Exception as exc:  # any failure to reach vCenter is shown, never raised
            from opsconsole.redaction import redact_text

            error = redact_text(str(exc)) or type(exc).__name__
    from .models import AgentHeartbeat

    agent_ids = [vm.agent_id for vm in active.values() if vm is not None]
    job_states = dict(
        AgentHeartbeat.objects.filter(agent_id__in=agent_ids).values_list("agent_id", "job_state")
    )
    by_deployment: dict[int, list[VmRow]] = {pk: [] for pk in names}
    for i in instances:
        vm = active[i.id]
        power = states.get(vm.cid) if vm is not None else None
        applied = (i.spec_json or {}).get("applied") or {}
        by_deployment[i.deployment_id].append(
            VmRow(
                instance=i,
                vm=vm,
                ips=[
                    ip.address
                    for ip in i.ip_addresses.all()
                    if vm is None or ip.vm_id in (None, vm.id)
                ],
                vm_type=str(applied.get("vm_type") or ""),
                disks=[d for d in i.persistent_disks.all() if d.active],
                power_state=power,
                process_state=_process_state(vm, power, job_states),
            )
        )
    return VmsReport([DeploymentVms(names[pk], rows) for pk, rows in by_deployment.items()], error)


def _deployments():
    """The deploy services (``director.deployments``, written with the execution)."""
    try:
        from . import deployments
    except ModuleNotFoundError as exc:
        if exc.name != "director.deployments":
            raise
        raise NotYetImplemented(
            "Deploying is not available yet: the deploy execution is not installed"
        ) from None
    return deployments


def deploy(
    manifest_text: str,
    user: str,
    ops: list | None = None,
    vars: dict | None = None,
    recreate: bool = False,
    dry_run: bool = False,
    fix: bool = False,
    *,
    enqueue: bool = True,
) -> Task:
    """Deploy a manifest as an ``update_deployment`` task (see ``director.deployments``).

    422 naming the manifest path for a bad manifest or ops file, 409 while
    another deploy or delete of the same deployment is queued or running.
    ``enqueue=False``: the task is not sent to the workers (run it inline).
    """
    return _deployments().deploy(
        manifest_text,
        user,
        ops=ops,
        vars=vars,
        recreate=recreate,
        dry_run=dry_run,
        fix=fix,
        enqueue=enqueue,
    )


def delete_deployment(name: str, user: str, force: bool = False, *, enqueue: bool = True) -> Task:
    """Delete a deployment as a ``delete_deployment`` task; 404 unknown, 409 busy.

    ``enqueue=False``: the task is not sent to the workers (run it inline).
    """
    return _deployments().delete_deployment(name, user, force=force, enqueue=enqueue)


def plan(name: str, manifest_text: str, ops: list | None = None, vars: dict | None = None) -> dict:
    """The plan for a manifest without deploying: nothing is written."""
    return _deployments().plan(name, manifest_text, ops=ops, vars=vars)


# --------------------------------------------------------------------------- resurrection


def resurrection_enabled() -> bool:
    """Global resurrection switch (BOSH: ``director_attributes.resurrection_paused``)."""
    return DirectorAttribute.get(DirectorAttribute.RESURRECTION_PAUSED, "false") != "true"


def set_resurrection(enabled: bool, user: str) -> bool:
    DirectorAttribute.set(DirectorAttribute.RESURRECTION_PAUSED, "false" if enabled else "true")
    record_event("update", "resurrection", "global", user=user, context={"enabled": enabled})
    return enabled
