"""Deployments: list, read, deploy, delete, and the plan preview (shared by UI, API, commands).

``deploy`` and ``delete_deployment`` check what can be checked at once
(manifest syntax and shape, ops files, an operation already running on the
deployment) and answer with a queued ``Task``; the work runs in a worker
(``director.execution``). ``plan`` runs the same preparation and planner as
a deploy, with no side effect: nothing is written, no variable is stored
(missing ones are listed as to be generated).

Operator ``vars`` (``bosh deploy -v``) go to the variable store, never into
the task's arguments: the manifest text stays the template.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet

from opsconsole.errors import Conflict, NotFound, ServiceError

from .. import runner
from ..execution import PrepareError, plan_to_dict, prepare
from ..execution.variables import PreviewVariables, store_vars
from ..manifest import ManifestError, apply_ops, dump_yaml, load_yaml, load_yaml_document
from ..manifest import parse_manifest as _parse_manifest
from ..models import Deployment, Instance, IpAddress, PersistentDisk, ReleaseVersion, Task, Vm


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


def _errors(exc: ManifestError, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, message in exc.errors:
        key = f"{prefix}{path}" if path else (prefix.rstrip("/") or "manifest")
        out.setdefault(key, []).append(message)
    return out


def _with_ops(manifest_text: str, ops: list | None) -> tuple[str, dict]:
    """Apply ops files (YAML text or lists of operations) to the manifest; ``(text, doc)``."""
    if not isinstance(manifest_text, str) or not manifest_text.strip():
        raise ServiceError({"manifest": ["must not be empty"]})
    try:
        doc = load_yaml(manifest_text)
    except ManifestError as exc:
        raise ServiceError(_errors(exc)) from None
    if not ops:
        return manifest_text, doc
    for i, op in enumerate(ops):
        source = f"ops file {i + 1}"
        try:
            operations = load_yaml_document(op, source) if isinstance(op, str | bytes) else op
            doc = apply_ops(doc, operations, source)
        except ManifestError as exc:
            raise ServiceError(_errors(exc, f"ops/{i}/")) from None
    return dump_yaml(doc), doc


def _check(doc: dict) -> str:
    try:
        manifest = _parse_manifest(doc)
    except ManifestError as exc:
        raise ServiceError(_errors(exc)) from None
    return manifest["name"]


def _refuse_if_busy(name: str) -> None:
    running = runner.changing_task(name)
    if running is not None:
        raise Conflict(
            {"deployment": [f"Deployment '{name}' is being changed by task {running.id}"]}
        )


def _check_vars(values: dict) -> None:
    """Each var a name of 1..400 characters and a value (null is no value: the store refuses it)."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        where = f"vars/{name}"
        if not isinstance(name, str) or not name.strip("/") or len(name) > 400:
            errors.setdefault(where, []).append(
                "a variable name of 1 to 400 characters is required"
            )
        if value is None:
            errors.setdefault(where, []).append("must have a value (not null)")
    if errors:
        raise ServiceError(errors)


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
    """Queue an ``update_deployment`` task for a manifest (after ``ops`` are applied).

    Raises ``ServiceError`` (422) naming the manifest path for a bad manifest
    and ``Conflict`` (409) while another deploy or delete of the same
    deployment is queued or running. ``enqueue=False`` creates the task
    without sending it to the workers, for a caller that runs it inline.
    """
    text, doc = _with_ops(manifest_text, ops)
    name = _check(doc)
    if vars is not None and not isinstance(vars, dict):
        raise ServiceError({"vars": ["must be a map of variable names to values"]})
    _check_vars(vars or {})
    with transaction.atomic():
        _refuse_if_busy(name)
        if vars:
            store_vars(name, vars)
        exists = Deployment.objects.filter(name=name).exclude(manifest="").exists()
        description = ("update" if exists else "create") + " deployment"
        if dry_run:
            description += " (dry run)"
        return runner.create_task(
            "update_deployment",
            description,
            user,
            deployment_name=name,
            args={
                "manifest_text": text,
                "recreate": bool(recreate),
                "dry_run": bool(dry_run),
                "fix": bool(fix),
            },
            enqueue=enqueue,
        )


def delete_deployment(name: str, user: str, force: bool = False, *, enqueue: bool = True) -> Task:
    """Queue a ``delete_deployment`` task; 404 for an unknown deployment, 409 when busy.

    ``enqueue=False``: created but not sent to the workers (the caller runs it inline).
    """
    if not Deployment.objects.filter(name=name).exists():
        raise NotFound(f"Deployment '{name}' does not exist")
    with transaction.atomic():
        _refuse_if_busy(name)
        return runner.create_task(
            "delete_deployment",
            "delete deployment " + name,
            user,
            deployment_name=name,
            args={"force": bool(force)},
            enqueue=enqueue,
        )


def plan(
    name: str,
    manifest_text: str,
    ops: list | None = None,
    vars: dict | None = None,
    runtime_configs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The plan of deploying ``manifest_text`` to ``name``, as JSON (see ``execution.preview``).

    Same preparation and planner as the deploy; nothing is written. ``vars``
    are used for this preview only; so are ``runtime_configs`` (name -> YAML),
    when given, in place of the stored runtime configs.
    """
    text, doc = _with_ops(manifest_text, ops)
    manifest_name = _check(doc)
    if name and manifest_name != name:
        raise ServiceError({"name": [f"the manifest deploys '{manifest_name}', not '{name}'"]})
    variables = PreviewVariables(manifest_name)
    for key, value in (vars or {}).items():
        variables._put(str(key), value)
    try:
        with transaction.atomic():
            prepared = prepare(
                text, variables, deployment_name=manifest_name, runtime_configs=runtime_configs
            )
            transaction.set_rollback(True)  # a preview never writes, whatever it touched
    except PrepareError as exc:
        errors: dict[str, list[str]] = {}
        for path, message in exc.errors:
            errors.setdefault(path or "manifest", []).append(message)
        raise ServiceError(errors) from None
    return plan_to_dict(prepared)
