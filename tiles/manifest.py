"""Render a staged tile to a BOSH v2 deployment manifest (pure).

Inputs: the product template, the staged property values (normalised, with
generated credentials already filled in; see
``tiles.credentials.generate_missing_credentials``) and a ``RenderContext``
with everything the console knows outside the tile: deployment name, AZ and
network assignment, resource config per job, the VM and disk type catalogs,
the stemcell, director and Ops Manager facts and the other products.

What the manifest holds, following Ops Manager:

- ``name``: the deployment name; ``releases``: the template's releases
  (a release used by a job but not listed gets ``version: latest``);
  ``stemcells``: one, alias ``default``, from the context.
- ``instance_groups``: one per job type with instances (errand job types are
  kept even at 0 instances, with ``lifecycle: errand``). ``azs`` is the
  singleton AZ for ``single_az_only`` jobs, else the balance AZs.
  ``instances`` from resource config (else the instance definition default,
  0 when ``zero_if`` matches); ``vm_type`` from resource config or, when
  "automatic", the smallest catalog type meeting the job's
  ``resource_definitions``; ``persistent_disk_type`` (a catalog disk type of
  that size) or ``persistent_disk`` (MB); one network, with ``static_ips``
  from the job's ``static_ips`` property. ``jobs`` come from ``templates``:
  ``properties`` is the template's ``manifest`` snippet deep-merged over the
  job type's ``manifest`` snippet, with accessors evaluated; ``consumes``,
  ``provides`` and ``custom_provider_definitions`` likewise. The job type's
  ``max_in_flight``/``serial``/``canaries`` become the group's ``update``.
- ``update``: Ops Manager's defaults overlaid with the template's ``update``.
- ``variables``: the template's CredHub variables.

Secrets stay out of the manifest when the context names a
``credential_root`` (the console always does; see ``tiles.accessors``):
each secret or credential accessor renders as a reference to the director
variable that holds it, ``((/opsmgr/<guid>/<property>.<accessor>))``, and
``credential_values`` lists what the variable store must hold for them.
The manifest then holds no secret, wherever it is stored or shown.

Errand on/off states do not change the manifest (an errand's instance group
must exist for BOSH to run it); ``errands_to_run()`` gives the run list.

Every failure is collected into one ``RenderError`` naming where it happened:
``job_types/web_server/templates/nginx/manifest: unknown property
.properties.nope in .properties.nope.value (at login_banner.text)``. Messages
never hold values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from tiles.accessors import (
    AccessorError,
    Scope,
    credential_values,
    effective_values,
    evaluate_text,
    evaluate_tree,
    parse_snippet,
)
from tiles.render_context import (  # the renderer's inputs, imported from here by callers
    ErrandConfig,
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    ResourceConfig,
    StemcellRef,
    VmType,
    job_facts,
)
from tiles.template import ProductTemplate

__all__ = [
    "RenderError",
    "RenderContext",
    "NetworkAssignment",
    "StemcellRef",
    "VmType",
    "ResourceConfig",
    "OtherProduct",
    "ErrandConfig",
    "render_manifest",
    "render_runtime_configs",
    "credential_values",
    "job_facts",
    "errands_to_run",
    "evaluator",
    "deployment_name",
    "DEFAULT_UPDATE",
]

DEFAULT_UPDATE = {
    "canaries": 1,
    "canary_watch_time": "30000-300000",
    "update_watch_time": "30000-300000",
    "max_in_flight": 1,
    "serial": False,
}


class RenderError(ValueError):
    """The manifest cannot be rendered; ``errors`` is ``[(path, message)]``."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{p}: {m}" for p, m in self.errors))


def deployment_name(product_name: str, guid: str) -> str:
    """Ops Manager names a deployment after the product guid: ``<name>-<suffix>``."""
    if guid.startswith(f"{product_name}-"):
        return guid
    return f"{product_name}-{guid.replace('-', '')[:20]}"


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _deep_merge(out[k], v) if k in out else v
        return out
    return over


class _Renderer:
    def __init__(self, template: ProductTemplate, values: Mapping[str, Any], ctx: RenderContext):
        self.template = template
        self.ctx = ctx
        self.errors: list[tuple[str, str]] = []
        self.values = effective_values(template, values)
        unknown = [r for r in values if template.blueprint(r) is None]
        for ref in unknown:
            # Staged values are keyed by reference; a key that is not one
            # (empty, not text) is named by its repr so the path is never blank.
            path = ref if isinstance(ref, str) and ref.strip() else f"values[{ref!r}]"
            self.errors.append((path, "unknown property"))
        self.facts = job_facts(template, self.values, ctx, self.errors)
        self.scope = Scope(
            template=template,
            values=self.values,
            ctx=ctx,
            job_facts=self.facts,
            variables=frozenset(
                v.get("name") for v in template.variables if isinstance(v, Mapping)
            ),
        )

    def snippet(self, snippet: Any, path: str, job: str | None = None) -> Any:
        """Parse and evaluate one snippet; on failure record the error, return None."""
        if snippet is None:
            return None
        try:
            data = parse_snippet(snippet)
            scope = self.scope if job is None else replace(self.scope, job=job)
            return evaluate_tree(data, scope)
        except AccessorError as e:
            self.errors.append((path, e.message))
            return None

    def instance_group(self, name: str, job: Mapping) -> dict | None:
        facts = self.facts[name]
        errand = bool(job.get("errand"))
        if facts["instances"] <= 0 and not errand:
            return None
        path = f"job_types/{name}"
        ig: dict[str, Any] = {"name": name}
        net = self.ctx.network
        if job.get("single_az_only"):
            ig["azs"] = [net.singleton_availability_zone]
        else:
            ig["azs"] = list(net.other_availability_zones) or [net.singleton_availability_zone]
        ig["instances"] = facts["instances"]
        if facts["vm_type"]:
            ig["vm_type"] = facts["vm_type"]
        if facts["vm_extensions"]:
            ig["vm_extensions"] = facts["vm_extensions"]
        disk = facts["persistent_disk"]
        if facts["persistent_disk_type"]:
            ig["persistent_disk_type"] = facts["persistent_disk_type"]
        elif disk:
            by_size = [n for n, size in self.ctx.disk_types.items() if size == disk]
            if by_size:
                ig["persistent_disk_type"] = sorted(by_size)[0]
            else:
                ig["persistent_disk"] = disk
        ig["stemcell"] = "default"
        network: dict[str, Any] = {"name": net.network}
        if facts["static_ips"]:
            network["static_ips"] = facts["static_ips"]
        ig["networks"] = [network]
        if errand:
            ig["lifecycle"] = "errand"

        job_props = self.snippet(job.get("manifest"), f"{path}/manifest", name)
        if job_props is not None and not isinstance(job_props, dict):
            self.errors.append((f"{path}/manifest", "must render to a mapping of properties"))
            job_props = None
        jobs = []
        for tpl in job.get("templates") or []:
            tpath = f"{path}/templates/{tpl.get('name')}"
            entry: dict[str, Any] = {"name": tpl.get("name"), "release": tpl.get("release")}
            own = self.snippet(tpl.get("manifest"), f"{tpath}/manifest", name)
            if own is not None and not isinstance(own, dict):
                self.errors.append((f"{tpath}/manifest", "must render to a mapping of properties"))
                own = None
            entry["properties"] = _deep_merge(job_props or {}, own or {})
            for key in ("consumes", "provides", "custom_provider_definitions"):
                rendered = self.snippet(tpl.get(key), f"{tpath}/{key}", name)
                if rendered is None or rendered == {} or rendered == []:
                    continue
                expected = list if key == "custom_provider_definitions" else dict
                if not isinstance(rendered, expected):
                    self.errors.append((f"{tpath}/{key}", f"must render to a {expected.__name__}"))
                    continue
                entry[key] = rendered
            jobs.append(entry)
        ig["jobs"] = jobs
        update: dict[str, Any] = {}
        if job.get("max_in_flight") is not None:
            update["max_in_flight"] = job["max_in_flight"]
        if job.get("serial") is not None:
            update["serial"] = job["serial"]
        if isinstance(job.get("canaries"), int):
            update["canaries"] = job["canaries"]
        if update:
            ig["update"] = update
        return ig

    def render(self) -> dict:
        t = self.template
        ctx = self.ctx
        criteria = t.stemcell_criteria or {}
        if criteria.get("os") and criteria["os"] != ctx.stemcell.os:
            self.errors.append(
                ("stemcells", f"the tile needs a {criteria['os']} stemcell, not {ctx.stemcell.os}")
            )
        groups = []
        for name, job in t.job_types.items():
            ig = self.instance_group(name, job)
            if ig is not None:
                groups.append(ig)
        releases = [{"name": r["name"], "version": str(r["version"])} for r in t.releases]
        listed = {r["name"] for r in releases}
        for ig in groups:
            for j in ig["jobs"]:
                if j["release"] not in listed:
                    releases.append({"name": j["release"], "version": "latest"})
                    listed.add(j["release"])
        update = dict(DEFAULT_UPDATE)
        if isinstance(t.data.get("serial"), bool):
            update["serial"] = t.data["serial"]
        if t.update:
            rendered = self.snippet(t.update, "update")
            if isinstance(rendered, dict):
                update.update(rendered)
        manifest: dict[str, Any] = {
            "name": ctx.deployment_name,
            "releases": releases,
            "stemcells": [
                {"alias": "default", "os": ctx.stemcell.os, "version": str(ctx.stemcell.version)}
            ],
            "update": update,
            "instance_groups": groups,
        }
        variables = []
        for v in t.variables:
            entry = {"name": v["name"], "type": v["type"]}
            if ctx.variable_prefix and not v["name"].startswith("/"):
                entry["name"] = f"{ctx.variable_prefix.rstrip('/')}/{v['name']}"
            if v.get("options"):
                entry["options"] = dict(v["options"])
            variables.append(entry)
        if variables:
            manifest["variables"] = variables
        if self.errors:
            raise RenderError(self.errors)
        return manifest


def render_manifest(
    template: ProductTemplate, values: Mapping[str, Any], ctx: RenderContext
) -> dict:
    """The BOSH v2 deployment manifest for a staged tile, or RenderError."""
    return _Renderer(template, values, ctx).render()


def render_runtime_configs(
    template: ProductTemplate, values: Mapping[str, Any], ctx: RenderContext
) -> list[dict]:
    """The tile's runtime configs, evaluated; empty ones are left out.

    Each item is ``{"name": ..., "runtime_config": dict}``.
    """
    r = _Renderer(template, values, ctx)
    out = []
    for i, rc in enumerate(template.runtime_configs):
        rendered = r.snippet(rc.get("runtime_config"), f"runtime_configs/{i}/runtime_config")
        if rendered is None or rendered == {}:
            continue
        if not isinstance(rendered, dict):
            r.errors.append((f"runtime_configs/{i}/runtime_config", "must render to a mapping"))
            continue
        out.append({"name": rc.get("name"), "runtime_config": rendered})
    if r.errors:
        raise RenderError(r.errors)
    return out


def evaluator(
    template: ProductTemplate,
    values: Mapping[str, Any],
    ctx: RenderContext,
    job: str | None = None,
) -> Callable[[str], Any]:
    """A function evaluating one text with accessors, as a manifest would.

    Useful outside manifests, e.g. for the ``(( ))`` in certificate domains
    (``generate_missing_credentials(domain_evaluator=...)``). Raises
    AccessorError.
    """
    r = _Renderer(template, values, ctx)
    scope = r.scope if job is None else replace(r.scope, job=job)
    return lambda text: evaluate_text(text, scope)


def _errand_default(errand: Mapping, job: Mapping | None, phase: str) -> bool | str:
    for key in ("run_default", f"run_{phase}_errand_default"):
        for node in (errand, job or {}):
            if key in node and node[key] is not None:
                v = node[key]
                if isinstance(v, str):
                    return {"on": True, "off": False}.get(v, v)
                return bool(v)
    return True  # Ops Manager runs errands by default


def errands_to_run(
    template: ProductTemplate, ctx: RenderContext, phase: str = "post_deploy"
) -> list[tuple[str, bool | str]]:
    """Errands of ``phase`` ("post_deploy" or "pre_delete") that are on.

    Returns ``(name, state)`` with state ``True`` or ``"when-changed"``; the
    context's ErrandConfig wins over the tile's default.
    """
    errands = (
        template.post_deploy_errands if phase == "post_deploy" else template.pre_delete_errands
    )
    out = []
    for e in errands:
        name = e.get("name")
        cfg = ctx.errands.get(name)
        state = getattr(cfg, phase) if cfg is not None else None
        if state is None or state == "default":
            state = _errand_default(e, template.job_type(name), phase)
        if state is True or state == "when-changed":
            out.append((name, state))
    return out
