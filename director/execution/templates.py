"""Job templates of a deploy: rendered per instance, archived in the blobstore.

After planning, every instance of the plan is rendered in one call
(``director.rendering.render_instances``) with what its templates see: the
job's properties as the deploy interpolated them, ``spec.*`` from the
instance plan (index, AZ, bootstrap, networks with their IPs, persistent
disk) and the links resolved across the deployment
(``director.rendering.resolve_links``). A template error fails the deploy
before any VM changes, naming the instance group, job, template and line.

``configuration_hash`` then drives the ``configuration`` change, as in BOSH:
an instance whose rendered files differ from what it last applied
(``Instance.spec_json["configuration_hash"]``) is updated even when the
manifest's own fingerprint of its group did not move (a link's provider
changed), and an instance whose files did not change is left alone when
nothing else did (a property its templates do not read).

The job templates come from the job tarballs in the blobstore (read once
per process per tarball digest). An instance's rendered archive is stored
in the blobstore just before it is applied (``store_archive``); equal
renders give equal bytes, so an archive already stored for the instance is
reused rather than stored twice. Each archive stored is first listed in the
instance's ``spec_json`` (``UNAPPLIED_ARCHIVES``) until the apply that uses
it is recorded, so that one stored by a run killed before then, or replaced
by a later apply, is deleted rather than left in the blobstore for ever
(``director.cleanup.delete_unapplied_archives``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import threading
from collections import OrderedDict
from typing import Any

from django.db import transaction

from director.blobstore import BlobNotFound, blobstore, new_blob_id
from director.cleanup import UNAPPLIED_ARCHIVES
from director.manifest import ManifestError
from director.models import Instance, ReleaseJob
from director.planning import DeploymentPlan, InstancePlan
from director.rendering import (
    InstanceJob,
    InstanceToRender,
    JobTemplates,
    RenderedInstance,
    render_instances,
    resolve_links,
)

from .prepare import PrepareError
from .steps import network_settings

_CACHE_SIZE = 256
_cache: OrderedDict[str, JobTemplates] = OrderedDict()
_cache_lock = threading.Lock()


def job_templates(job: ReleaseJob, release: str, release_version: str) -> JobTemplates:
    """The job's spec, ``monit`` and template sources, read from its tarball."""
    key = f"{job.blobstore_id}:{job.sha1}:{release}/{release_version}"
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    sources: dict[str, str] = {}
    monit = ""
    wanted = {f"templates/{src}" for src in (job.spec.get("templates") or {})}
    try:
        with blobstore().get(job.blobstore_id, digest=job.sha1 or None) as raw:
            data = raw.read()
    except BlobNotFound:
        raise PrepareError(
            [(f"releases/{release}", f"job '{job.name}': its tarball is not in the blobstore")]
        ) from None
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            name = info.name[2:] if info.name.startswith("./") else info.name
            if not info.isfile():
                continue
            if name == "monit":
                monit = tar.extractfile(info).read().decode()
            elif name in wanted:
                sources[name[len("templates/") :]] = tar.extractfile(info).read().decode()
    spec = dict(job.spec)
    templates = JobTemplates(
        name=job.name,
        release=release,
        release_version=release_version,
        spec=spec,
        monit=monit,
        sources=sources,
        version=job.version,
    )
    with _cache_lock:
        _cache[key] = templates
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return templates


def _link_rows(plan: DeploymentPlan) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for group in plan.instance_groups:
        rows[group.name] = [
            {
                "name": group.name,
                "id": p.uuid,
                "index": p.index,
                "az": p.az,
                "address": next((n.ip for n in p.desired.networks if n.ip), None),
                "bootstrap": p.bootstrap,
            }
            for p in group.instance_plans
            if p.desired is not None
        ]
    return rows


def render_plan(prepared: Any, plan: DeploymentPlan) -> dict[str, RenderedInstance]:
    """Render every desired instance of ``plan``; ``{instance uuid: RenderedInstance}``."""

    versions = {rv.release.name: rv.version for rv in prepared.release_versions}
    manifest = dict(prepared.manifest)
    groups = []
    for ig in manifest["instance_groups"]:
        interpolated = {
            j["name"]: j["properties"]
            for j in prepared.rendered.get(ig["name"], {}).get("jobs", [])
        }
        jobs = [
            {**j, "properties": interpolated.get(j["name"], j.get("properties") or {})}
            for j in ig.get("jobs") or []
        ]
        groups.append({**ig, "jobs": jobs})
    manifest["instance_groups"] = groups
    specs = {key: job.spec for key, job in prepared.job_specs.items()}
    try:
        links = resolve_links(manifest, specs, _link_rows(plan))
    except ManifestError as exc:
        raise PrepareError(list(exc.errors)) from None

    templates: dict[tuple[str, str], JobTemplates] = {}
    to_render = []
    by_key: dict[str, str] = {}
    for ig in groups:
        group_plan = plan.instance_group(ig["name"])
        jobs = []
        for j in ig["jobs"]:
            release = j.get("release")
            if (release, j["name"]) not in templates:
                templates[(release, j["name"])] = job_templates(
                    prepared.job_specs[(release, j["name"])], release, versions.get(release, "")
                )
            jobs.append((templates[(release, j["name"])], j))
        for p in group_plan.instance_plans:
            if p.desired is None:
                continue
            instance_jobs = []
            for tmpl, j in jobs:
                consumed, provided = links.for_job(ig["name"], j["name"])
                instance_jobs.append(InstanceJob(tmpl, j.get("properties"), consumed, provided))
            item = InstanceToRender(
                deployment=prepared.name,
                group=ig["name"],
                id=p.uuid,
                index=p.index,
                az=p.az,
                bootstrap=p.bootstrap,
                networks=network_settings(p.desired),
                jobs=tuple(instance_jobs),
                persistent_disk=p.desired.persistent_disk_size,
            )
            to_render.append(item)
            by_key[item.key] = p.uuid
    rendered = render_instances(to_render)
    return {by_key[key]: value for key, value in rendered.items()}


def applied_configuration(uuids: list[str]) -> dict[str, str]:
    """The ``configuration_hash`` each instance last applied."""
    out = {}
    for uuid, spec in Instance.objects.filter(uuid__in=uuids).values_list("uuid", "spec_json"):
        value = (spec or {}).get("configuration_hash")
        if value:
            out[uuid] = value
    return out


def with_configuration_changes(
    plan: DeploymentPlan, rendered: dict[str, RenderedInstance]
) -> DeploymentPlan:
    """The plan with ``configuration`` decided by the rendered files (module docstring)."""
    applied = applied_configuration(
        [p.uuid for g in plan.instance_groups for p in g.instance_plans if p.existing]
    )
    groups = []
    for group in plan.instance_groups:
        plans = []
        for p in group.instance_plans:
            plans.append(_reconsider(p, rendered.get(p.uuid), applied.get(p.uuid)))
        groups.append(dataclasses.replace(group, instance_plans=tuple(plans)))
    return dataclasses.replace(plan, instance_groups=tuple(groups))


def _reconsider(p: InstancePlan, rendered: RenderedInstance | None, applied: str | None):
    if rendered is None or applied is None or p.existing is None or p.ignored:
        return p
    if p.existing.vm_cid is None and p.lifecycle == "errand":
        return p
    same = rendered.configuration_hash == applied
    if p.change == "none" and not same:
        return dataclasses.replace(
            p,
            change="update",
            changes=p.changes | {"configuration"},
            reasons=(*p.reasons, "rendered job templates changed"),
        )
    if p.change == "update" and same and p.changes == frozenset({"configuration"}):
        return dataclasses.replace(p, change="none", changes=frozenset(), reasons=())
    return p


def store_archive(instance: Instance, rendered: RenderedInstance) -> dict[str, str]:
    """The instance's archive in the blobstore: ``{"blobstore_id", "sha1"}``.

    The new blob's id is written to the instance's ``UNAPPLIED_ARCHIVES``
    before the blob is stored, so an archive stored by a worker killed
    before the agent's ``apply`` was recorded is known and can be deleted
    (``director.cleanup.delete_unapplied_archives``).
    """

    data = rendered.archive()
    sha1 = hashlib.sha1(data).hexdigest()
    current = (instance.spec_json or {}).get("rendered_templates_archive") or {}
    store = blobstore()
    if current.get("sha1") == sha1 and current.get("blobstore_id"):
        if store.exists(current["blobstore_id"]):
            return {"blobstore_id": current["blobstore_id"], "sha1": sha1}
    blob_id = new_blob_id()
    remember_unapplied(instance, [blob_id])
    ref = store.put(io.BytesIO(data), blob_id=blob_id)
    return {"blobstore_id": ref.id, "sha1": ref.sha1}


def remember_unapplied(instance: Instance, blob_ids: list[str]) -> None:
    """Add ``blob_ids`` to the instance's ``UNAPPLIED_ARCHIVES`` (in the database first)."""
    with transaction.atomic():
        spec = (
            Instance.objects.select_for_update()
            .filter(id=instance.id)
            .values_list("spec_json", flat=True)
            .first()
        )
        spec = dict(spec or {})
        known = list(spec.get(UNAPPLIED_ARCHIVES) or [])
        spec[UNAPPLIED_ARCHIVES] = known + [b for b in blob_ids if b and b not in known]
        Instance.objects.filter(id=instance.id).update(spec_json=spec)
    instance.spec_json = spec
