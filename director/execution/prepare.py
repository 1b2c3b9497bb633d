"""Preparing a deploy: manifest text + configs + uploads + current state -> a plan.

The same function serves the deploy task ("Preparing deployment") and the
plan preview, so both show the same thing. In BOSH's order:

1. load the YAML, validate the raw manifest (placeholders pass);
2. generate the missing ``variables:`` (deploy) or make them up in memory
   (preview), interpolate everything but job properties and env;
3. apply the deployment's and the runtime-configs' addons; generate their
   variables too;
4. consolidate the latest cloud-configs, interpolate and validate them, and
   check the manifest's references into them;
5. resolve stemcell aliases and release versions (``latest`` included)
   against what was uploaded, and each job against its release's job specs;
   fill job properties from the specs' defaults (warnings for undeclared
   ones), then interpolate the resolved properties and env ("rendering");
6. read the deployment's instances from the database and plan.

Bad input raises ``PrepareError`` naming the manifest path
(``instance_groups/zookeeper/jobs/zk``), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from director.manifest import (
    ManifestError,
    apply_addons,
    consolidate_cloud_configs,
    deferred_to_render,
    interpolate,
    load_yaml,
    parse_cloud_config,
    parse_manifest,
    resolve_job_properties,
    validate_against_cloud_config,
)
from director.models import Config, ConfigType, Deployment, ReleaseJob, ReleaseVersion, Stemcell
from director.planning import (
    DeploymentPlan,
    PlanError,
    PlanOptions,
    StemcellRef,
    plan_deployment,
)

from .state import existing_instances, ips_in_use


class PrepareError(Exception):
    """The manifest, the configs or the uploads do not allow a deploy.

    ``errors`` are ``(path, message)`` pairs; ``str()`` joins them.
    """

    def __init__(self, errors: list[tuple[str, str]] | str):
        if isinstance(errors, str):
            errors = [("", errors)]
        self.errors = list(errors)
        super().__init__(
            "; ".join(f"{path}: {message}" if path else message for path, message in self.errors)
        )


@dataclass
class Prepared:
    """Everything a deploy (or its preview) needs, computed with no CPI call."""

    name: str
    manifest_text: str
    #: parsed, addons applied, ``((variables))`` left in (stored as ``Deployment.manifest``)
    raw_manifest: dict
    #: interpolated but job properties/env; jobs carry resolved (uninterpolated) properties
    manifest: dict
    #: group name -> {"jobs": [{name, release, properties (interpolated)}], "env": {...}}
    rendered: dict[str, dict]
    cloud_config: dict
    configs: list[Config]
    stemcells: dict[str, StemcellRef]
    stemcell_rows: list[Stemcell]
    release_versions: list[ReleaseVersion]
    job_specs: dict[tuple[str, str], ReleaseJob]
    plan: DeploymentPlan
    options: PlanOptions
    warnings: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)


def _manifest_errors(exc: ManifestError) -> list[tuple[str, str]]:
    return [(path, message) for path, message in exc.errors]


_VERSION_PART = re.compile(r"(\d+)|([^\d.]+)")


def version_key(version: str) -> tuple:
    """Sort key for release/stemcell versions: numeric parts compared as numbers."""
    key = []
    for part in re.split(r"[.\-+]", str(version)):
        for number, text in _VERSION_PART.findall(part):
            key.append((1, int(number), "") if number else (0, 0, text))
    return tuple(key)


def _pick_version(candidates: list[Any], wanted: str, attr: str = "version") -> Any | None:
    """``latest``, ``N.latest`` (highest with that prefix) or an exact version."""
    if not candidates:
        return None
    if wanted == "latest":
        return max(candidates, key=lambda c: version_key(getattr(c, attr)))
    if wanted.endswith(".latest"):
        prefix = wanted[: -len("latest")]
        matching = [c for c in candidates if str(getattr(c, attr)).startswith(prefix)]
        return max(matching, key=lambda c: version_key(getattr(c, attr))) if matching else None
    return next((c for c in candidates if str(getattr(c, attr)) == str(wanted)), None)


def resolve_stemcells(manifest: dict) -> tuple[dict[str, StemcellRef], list[Stemcell]]:
    refs, rows, errors = {}, [], []
    for sc in manifest.get("stemcells") or []:
        alias, version = sc["alias"], str(sc["version"])
        if sc.get("name"):
            candidates = list(Stemcell.objects.filter(name=sc["name"]))
            label = f"{sc['name']}/{version}"
        else:
            candidates = list(Stemcell.objects.filter(operating_system=sc.get("os")))
            label = f"os '{sc.get('os')}' version '{version}'"
        row = _pick_version(candidates, version)
        if row is None:
            errors.append(
                (
                    f"stemcells/{alias}",
                    f"Stemcell {label} is not uploaded (upload it with upload-stemcell)",
                )
            )
            continue
        refs[alias] = StemcellRef(alias, row.name, row.version, row.operating_system, row.cid)
        rows.append(row)
    if errors:
        raise PrepareError(errors)
    return refs, rows


def resolve_releases(manifest: dict) -> dict[str, ReleaseVersion]:
    out, errors = {}, []
    for rel in manifest.get("releases") or []:
        name, version = rel["name"], str(rel.get("version"))
        candidates = list(
            ReleaseVersion.objects.filter(release__name=name, update_completed=True).select_related(
                "release"
            )
        )
        row = _pick_version(candidates, version)
        if row is None:
            errors.append(
                (
                    f"releases/{name}",
                    f"Release '{name}/{version}' is not uploaded (upload it with upload-release)",
                )
            )
            continue
        out[name] = row
    if errors:
        raise PrepareError(errors)
    return out


def _group_fingerprint(rendered_group: dict) -> str:
    text = json.dumps(rendered_group, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def prepare(
    manifest_text: str,
    variables: Any,
    *,
    deployment_name: str | None = None,
    options: PlanOptions | None = None,
    runtime_configs: dict[str, str] | None = None,
) -> Prepared:
    """Validate, interpolate, resolve and plan; see the module docstring.

    ``variables`` is a ``DeployVariables`` or ``PreviewVariables``.
    ``deployment_name``, when given, must match the manifest's ``name``.
    ``runtime_configs`` (name -> YAML text), for a preview, stand for the
    stored runtime configs: the set a pending change would leave.
    """
    try:
        doc = load_yaml(manifest_text)
        raw = parse_manifest(doc)
    except ManifestError as exc:
        raise PrepareError(_manifest_errors(exc)) from None
    name = raw["name"]
    if deployment_name is not None and name != deployment_name:
        raise PrepareError([("name", f"the manifest deploys '{name}', not '{deployment_name}'")])
    warnings: list[str] = []

    runtime_rows = Config.latest_set(ConfigType.RUNTIME)
    runtime_texts = [(c.name, c.content) for c in runtime_rows]
    if runtime_configs is not None:
        runtime_rows = []  # a preview: nothing is recorded
        runtime_texts = sorted(runtime_configs.items())
    cloud_rows = Config.latest_set(ConfigType.CLOUD)
    if not cloud_rows:
        raise PrepareError(
            [("cloud-config", "no cloud-config uploaded: upload one (update-config --type cloud)")]
        )
    try:
        raw_with_addons = apply_addons(
            raw, name, [load_yaml(text, f"runtime-config {n}") for n, text in runtime_texts]
        )
        variables.generate(raw_with_addons.get("variables") or [])
        manifest = parse_manifest(
            interpolate(raw_with_addons, variables.lookup, skip=deferred_to_render)
        )
        cloud_docs = [load_yaml(c.content, f"cloud-config {c.name}") for c in cloud_rows]
        cloud = parse_cloud_config(
            interpolate(
                consolidate_cloud_configs(cloud_docs, [c.name for c in cloud_rows]),
                variables.lookup,
            )
        )
    except ManifestError as exc:
        raise PrepareError(_manifest_errors(exc)) from None
    problems = validate_against_cloud_config(manifest, cloud, require_compilation=False)
    if problems:
        raise PrepareError(problems)

    stemcells, stemcell_rows = resolve_stemcells(manifest)
    releases = resolve_releases(manifest)

    job_specs: dict[tuple[str, str], ReleaseJob] = {}
    for rv in releases.values():
        for job in rv.jobs.all():
            job_specs[(rv.release.name, job.name)] = job
    errors: list[tuple[str, str]] = []
    rendered: dict[str, dict] = {}
    for ig in manifest["instance_groups"]:
        group_path = f"instance_groups/{ig['name']}"
        rendered_jobs = []
        for job in ig.get("jobs") or []:
            job_path = f"{group_path}/jobs/{job['name']}"
            spec = job_specs.get((job.get("release"), job["name"]))
            if spec is None:
                rv = releases.get(job.get("release"))
                label = f"{rv.release.name}/{rv.version}" if rv else job.get("release")
                errors.append((job_path, f"job '{job['name']}' is not in release '{label}'"))
                continue
            try:
                props, prop_warnings = resolve_job_properties(
                    {**spec.spec, "name": job["name"]},
                    job.get("properties"),
                    f"{job_path}/properties",
                )
            except ManifestError as exc:
                errors.extend(_manifest_errors(exc))
                continue
            warnings.extend(f"{path}: {message}" for path, message in prop_warnings)
            job["properties"] = props
            rendered_jobs.append({"name": job["name"], "release": job["release"], "props": props})
        try:
            rendered[ig["name"]] = {
                "jobs": [
                    {
                        "name": j["name"],
                        "release": j["release"],
                        "properties": interpolate(j["props"], variables.lookup),
                    }
                    for j in rendered_jobs
                ],
                "env": interpolate(ig.get("env") or {}, variables.lookup),
            }
        except ManifestError as exc:
            errors.extend(
                (f"{group_path}/{path}" if path else group_path, message)
                for path, message in exc.errors
            )
    if errors:
        raise PrepareError(errors)

    deployment = Deployment.objects.filter(name=name).first()
    existing = existing_instances(deployment) if deployment else []
    options = options or PlanOptions()
    try:
        plan = plan_deployment(
            manifest,
            cloud,
            existing,
            stemcells,
            ips_in_use(exclude_deployment=deployment),
            options,
            jobs_fingerprint=lambda group: _group_fingerprint(rendered.get(group["name"], {})),
        )
    except PlanError as exc:
        raise PrepareError(
            [(getattr(exc, "path", ""), getattr(exc, "message", str(exc)))]
        ) from None
    return Prepared(
        name=name,
        manifest_text=manifest_text,
        raw_manifest=raw_with_addons,
        manifest=manifest,
        rendered=rendered,
        cloud_config=cloud,
        configs=[*cloud_rows, *runtime_rows],
        stemcells=stemcells,
        stemcell_rows=stemcell_rows,
        release_versions=list(releases.values()),
        job_specs=job_specs,
        plan=plan,
        options=options,
        warnings=warnings + list(plan.warnings),
        generated=list(variables.generated),
    )
