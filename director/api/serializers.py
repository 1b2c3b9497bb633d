"""JSON shapes of director objects, following the BOSH director API's field names.

Plain functions rather than DRF serializer classes: every shape is read-only
and small, and the BOSH names (``timestamp`` as unix seconds, ``user``,
``deployment``) do not map one-to-one onto model fields.
"""

from __future__ import annotations

from director.events import event_to_dict
from director.models import Config, Deployment, Instance, Release, Stemcell, Task
from opsconsole.redaction import redact_yaml_text


def unix(dt) -> int | None:
    return int(dt.timestamp()) if dt else None


def task(t: Task) -> dict:
    """BOSH's task hash (+ ``type``): ``timestamp`` is when it ended, null while it runs."""
    return {
        "id": t.id,
        "state": t.effective_state,
        "type": t.type,
        "description": t.description,
        "timestamp": unix(t.finished_at),
        "started_at": unix(t.started_at),
        "result": t.result,
        "user": t.username,
        "deployment": t.deployment_name or None,
        "context_id": t.context_id,
    }


def stemcell(s: Stemcell) -> dict:
    return {
        "name": s.name,
        "version": s.version,
        "operating_system": s.operating_system,
        "cid": s.cid,
        "api_version": s.api_version,
        "cpi": s.cpi,
        "deployments": [d.name for d in s.deployments.all()],
    }


def release(r: Release) -> dict:
    return {
        "name": r.name,
        "release_versions": [
            {
                "version": v.version,
                "commit_hash": v.commit_hash,
                "uncommitted_changes": v.uncommitted_changes,
                "currently_deployed": bool(v.deployments.all()),
                "job_names": [j.name for j in v.jobs.all()],
                "jobs": [
                    {
                        "name": j.name,
                        "version": j.version,
                        "fingerprint": j.fingerprint,
                        "sha1": j.sha1,
                        "packages": j.package_names,
                        "properties": j.properties,
                        "consumes": j.spec.get("consumes") or [],
                        "provides": j.spec.get("provides") or [],
                    }
                    for j in v.jobs.all()
                ],
            }
            for v in r.versions.all()
        ],
    }


def config(c: Config, content: bool = True, *, reveal: bool = False) -> dict:
    """BOSH's config hash; ``content`` has its secrets ``((redacted))`` unless ``reveal``.

    ``reveal`` is for callers that may see credentials
    (``opsconsole.auth.can_see_credentials``); a cpi-config's vCenter password
    and any value under a secret-looking key are hidden from the others.
    """
    data = {
        "id": str(c.id),
        "type": c.type,
        "name": c.name,
        "created_at": c.created_at.isoformat(),
        "current": not c.deleted,
    }
    if content:
        data["content"] = c.content if reveal else redact_yaml_text(c.content)
    return data


def deployment(d: Deployment, manifest: bool = False, *, reveal: bool = False) -> dict:
    """A deployment; its manifest with secret values redacted unless ``reveal``.

    A tile's manifest carries its credentials inline, so callers whose role
    may not see credentials get them as ``((redacted))``.
    """
    data = {
        "name": d.name,
        "releases": [
            {"name": rv.release.name, "version": rv.version} for rv in d.release_versions.all()
        ],
        "stemcells": [{"name": s.name, "version": s.version} for s in d.stemcells.all()],
        "cloud_config": [
            {"id": str(c.id), "name": c.name} for c in d.configs.all() if c.type == "cloud"
        ],
        "runtime_configs": [
            {"id": str(c.id), "name": c.name} for c in d.configs.all() if c.type == "runtime"
        ],
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }
    if manifest:
        data["manifest"] = d.manifest_text if reveal else redact_yaml_text(d.manifest_text)
    return data


def instance(i: Instance) -> dict:
    vm = i.active_vm
    return {
        "id": i.uuid,
        "group": i.group,
        "index": i.index,
        "instance": i.name,
        "az": i.az or None,
        "state": i.state,
        "bootstrap": i.bootstrap,
        "ignore": i.ignore,
        "expects_vm": i.state != "detached",
        "ips": [ip.address for ip in i.ip_addresses.all()],
        "vm_cid": vm.cid if vm else None,
        "agent_id": vm.agent_id if vm else None,
        "disk_cids": [d.disk_cid for d in i.persistent_disks.all() if d.active],
    }


def vm_of(i: Instance) -> dict | None:
    vm = i.active_vm
    if vm is None:
        return None
    return {
        "vm_cid": vm.cid,
        "agent_id": vm.agent_id,
        "active": vm.active,
        "instance": i.name,
        "id": i.uuid,
        "job": i.group,
        "index": i.index,
        "az": i.az or None,
        "ips": [ip.address for ip in i.ip_addresses.all() if ip.vm_id in (None, vm.id)],
        "disk_cids": [d.disk_cid for d in i.persistent_disks.all() if d.active],
        "stemcell": f"{vm.stemcell_name}/{vm.stemcell_version}" if vm.stemcell_name else None,
        "created_at": vm.created_at.isoformat(),
        "state": i.state,
    }


event = event_to_dict
