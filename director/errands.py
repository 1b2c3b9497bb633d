"""Errands (BOSH ``bosh run-errand``): what an errand of a deployment is.

An errand is a job whose spec renders ``bin/run``. A deployment names it two
ways, and ``find_errand(manifest, name, runnable)`` looks for them in this
order (``run_errand``, ``director.services.errands``, checks and queues the
``run_errand`` task; ``director.execution.errand`` runs it):

1. an instance group with ``lifecycle: errand`` called ``name``: its
   instances have no VM between runs (the planner gives them change
   ``none``), so a run creates their VMs, applies the group's jobs, runs the
   errand jobs on them and deletes the VMs again (``keep_alive`` keeps them;
   their persistent disks are orphaned as a deploy orphans them, their IPs
   released; the instance rows stay, so ``bosh instances`` lists them);
2. a job called ``name`` that renders ``bin/run`` (BOSH 2 "colocated"
   errand): it runs on the existing VMs of every service group that has the
   job, and on new VMs of every errand group that has it.

``when_changed`` skips the run when nothing it depends on changed since the
last successful run of the same errand: the deployment's manifest, its
cloud/runtime configs, releases, stemcells and variable versions
(``deployment_fingerprint``; the fingerprint is kept in the context of that
run's end event, ``last_successful_run``).

Also here, shared with instance actions: the deployment as last deployed
(its manifest, and variables at the versions it was deployed with).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opsconsole.errors import NotFound

from .execution.variables import DeployVariables, absolute_name
from .manifest import ManifestError, load_yaml
from .models import Deployment, Event, ReleaseJob, Variable, VariableSet

TASK_TYPE = "run_errand"


class ErrandError(Exception):
    """An errand cannot run (unknown errand, instance without a VM, ...)."""


class ErrandFailed(ErrandError):
    """The errand ran and exited non-zero on at least one instance."""


# --------------------------------------------------------------------------- finding errands


@dataclass(frozen=True)
class ErrandGroup:
    """An instance group the errand runs on, and which of its jobs it runs."""

    name: str
    lifecycle: str
    jobs: tuple[str, ...]

    @property
    def is_errand(self) -> bool:
        return self.lifecycle == "errand"


@dataclass(frozen=True)
class Errand:
    """An errand of a deployment: ``kind`` ``instance_group`` (lifecycle errand) or ``job``."""

    name: str
    kind: str
    groups: tuple[ErrandGroup, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "instance_groups": [
                {"name": g.name, "lifecycle": g.lifecycle, "jobs": list(g.jobs)}
                for g in self.groups
            ],
        }


Runnable = Callable[[str | None, str], bool]


def _groups(manifest: dict) -> list[dict]:
    return [g for g in manifest.get("instance_groups") or [] if isinstance(g, dict)]


def _jobs(group: dict) -> list[dict]:
    return [j for j in group.get("jobs") or [] if isinstance(j, dict) and j.get("name")]


def find_errand(manifest: dict, name: str, runnable: Runnable) -> Errand | None:
    """The errand ``name`` of a manifest (see the module docstring), or None."""
    for group in _groups(manifest):
        if group.get("name") == name and group.get("lifecycle") == "errand":
            jobs = _jobs(group)
            chosen = [j["name"] for j in jobs if runnable(j.get("release"), j["name"])]
            return Errand(
                name,
                "instance_group",
                (ErrandGroup(name, "errand", tuple(chosen or (j["name"] for j in jobs))),),
            )
    groups = tuple(
        ErrandGroup(str(g.get("name")), str(g.get("lifecycle") or "service"), (name,))
        for g in _groups(manifest)
        if any(j["name"] == name and runnable(j.get("release"), name) for j in _jobs(g))
    )
    return Errand(name, "job", groups) if groups else None


def errands_of(manifest: dict, runnable: Runnable) -> list[Errand]:
    """Every errand of a manifest: lifecycle errand groups, then ``bin/run`` jobs, by name."""
    names: list[str] = []
    for group in _groups(manifest):
        if group.get("lifecycle") == "errand" and group.get("name"):
            names.append(str(group["name"]))
    for group in _groups(manifest):
        for job in _jobs(group):
            if job["name"] not in names and runnable(job.get("release"), job["name"]):
                names.append(job["name"])
    return [e for e in (find_errand(manifest, n, runnable) for n in names) if e is not None]


def _runnable(deployment: Deployment) -> Runnable:
    """``(release, job) -> bool``: the job of the deployed release version renders ``bin/run``."""
    specs: dict[tuple[str, str], dict] = {}
    for job in ReleaseJob.objects.filter(
        release_version__in=deployment.release_versions.all()
    ).select_related("release_version__release"):
        specs[(job.release_version.release.name, job.name)] = job.spec or {}

    def runnable(release: str | None, job: str) -> bool:
        templates = (specs.get((str(release), job)) or {}).get("templates") or {}
        return "bin/run" in (templates.values() if isinstance(templates, dict) else templates)

    return runnable


def _deployed_manifest(deployment: Deployment) -> dict:
    try:
        doc = load_yaml(deployment.manifest or deployment.manifest_text)
    except ManifestError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _deployed(name: str) -> Deployment:
    deployment = Deployment.objects.filter(name=name).exclude(manifest_text="").first()
    if deployment is None:
        raise NotFound({"deployment": [f"Deployment '{name}' does not exist"]})
    return deployment


def _unknown(errand: str, deployment: Deployment, known: Iterable[Errand]) -> str:
    names = ", ".join(e.name for e in known)
    have = f"its errands: {names}" if names else "it has no errands"
    return f"Errand '{errand}' does not exist in deployment '{deployment.name}' ({have})"


# --------------------------------------------------------------------------- when_changed


def deployment_fingerprint(deployment: Deployment) -> str:
    """What an errand run depends on: manifest, configs, releases, stemcells, variables."""
    variable_set = _deployed_variable_set(deployment)
    variables = (
        sorted(
            Variable.objects.filter(variable_set=variable_set).values_list("name", "credential_id")
        )
        if variable_set
        else []
    )
    data = {
        "deployment": [deployment.id, deployment.created_at.isoformat()],
        "manifest": deployment.manifest_text,
        "configs": sorted(deployment.configs.values_list("id", flat=True)),
        "releases": sorted(deployment.release_versions.values_list("id", flat=True)),
        "stemcells": sorted(deployment.stemcells.values_list("id", flat=True)),
        "variables": variables,
    }
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def last_successful_run(deployment_name: str, errand_name: str) -> Event | None:
    """The end event of the errand's last run that exited 0 on every instance."""
    return (
        Event.objects.filter(
            action="run",
            object_type="errand",
            object_name=errand_name,
            deployment=deployment_name,
            parent__isnull=False,
            error="",
        )
        .order_by("-id")
        .first()
    )


def _deployed_variable_set(deployment: Deployment) -> VariableSet | None:
    return (
        VariableSet.objects.filter(deployment=deployment, deployed_successfully=True)
        .order_by("-id")
        .first()
    )


class _DeployedVariables:
    """Lookups with the versions the deployment was deployed with (the latest for others)."""

    def __init__(self, deployment: str, variable_set: VariableSet | None):
        self._latest = DeployVariables(deployment, None)
        self._absolute = lambda name: absolute_name(name, deployment)
        self._pinned = {
            v.name: v.credential
            for v in Variable.objects.filter(variable_set=variable_set).select_related("credential")
            if v.credential is not None
        }
        self.generated = self._latest.generated

    def generate(self, definitions: list[dict]) -> list[str]:
        return self._latest.generate(definitions)

    def lookup(self, name: str) -> Any:
        row = self._pinned.get(self._absolute(name))
        return row.value if row is not None else self._latest.lookup(name)

    def record(self) -> None:
        pass


__all__ = [
    "Errand",
    "ErrandError",
    "ErrandFailed",
    "ErrandGroup",
    "deployment_fingerprint",
    "errands_of",
    "find_errand",
]
