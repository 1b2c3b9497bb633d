"""Checking a product template's structure; every problem is collected with its path.

``Checker.check()`` walks the template: identity, releases, stemcell
criteria, job types (instance definitions, resource definitions, templates
and their manifest snippets), form types and their property inputs,
errands, variables, runtime configs and update. Problems go to ``errors``
(the import is refused with all of them) and quirks Ops Manager accepts to
``warnings``. The blueprint checks are in ``tiles.template.blueprint_checks``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from tiles import properties as props
from tiles.template.blueprint_checks import PROP_NAME_RE, BlueprintChecks
from tiles.template.model import MAX_INSTANCES, ProductTemplate, list_items, parse_yaml

RESOURCE_NAMES = ("ram", "ephemeral_disk", "persistent_disk", "cpu")

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class Checker(BlueprintChecks):
    """Collects the problems (``errors``) and accepted quirks (``warnings``) of one template."""

    def __init__(self, data: dict):
        self.data = data
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append((path, msg))

    def warn(self, path: str, msg: str) -> None:
        """A quirk Ops Manager accepts: kept on the product, never a refusal."""
        self.warnings.append((path, msg))

    def list_of(self, node: Any, path: str) -> list:
        if node is None:
            return []
        if not isinstance(node, list):
            self.err(path, "must be a list")
            return []
        return node

    def mapping(self, node: Any, path: str) -> bool:
        if not isinstance(node, Mapping):
            self.err(path, "must be a mapping")
            return False
        return True

    def string(self, node: Mapping, key: str, path: str, *, required: bool = True) -> bool:
        v = node.get(key)
        if v is None:
            if required:
                self.err(f"{path}/{key}", "is required")
            return False
        if not isinstance(v, str) or not v.strip():
            self.err(f"{path}/{key}", "must be a non-empty string")
            return False
        return True

    def boolean(self, node: Mapping, key: str, path: str) -> None:
        if key in node and node[key] is not None and not isinstance(node[key], bool):
            self.err(f"{path}/{key}", "must be true or false")

    def integer(
        self,
        node: Mapping,
        key: str,
        path: str,
        *,
        minimum: int | None = 0,
        maximum: int | None = None,
    ) -> bool:
        v = node.get(key)
        if v is None:
            return False
        if isinstance(v, bool) or not isinstance(v, int):
            self.err(f"{path}/{key}", "must be an integer")
            return False
        if minimum is not None and v < minimum:
            self.err(f"{path}/{key}", f"must be at least {minimum}")
            return False
        if maximum is not None and v > maximum:
            self.err(f"{path}/{key}", f"must be at most {maximum}")
            return False
        return True

    def yaml_snippet(self, node: Mapping, key: str, path: str) -> None:
        """A manifest snippet: a YAML string or a mapping/list; parse strings now."""
        v = node.get(key)
        if v is None or isinstance(v, Mapping | list):
            return
        if not isinstance(v, str):
            self.err(f"{path}/{key}", "must be YAML text or a mapping")
            return
        try:
            parse_yaml(v)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e) or "cannot be parsed"
            self.err(f"{path}/{key}", f"invalid YAML{where}: {problem}")

    def check(self) -> None:
        d = self.data
        for key in ("name", "product_version"):
            v = d.get(key)
            if v is None:
                self.err(key, "is required")
            elif isinstance(v, int | float) and not isinstance(v, bool) and key != "name":
                d[key] = str(v)
            elif not isinstance(v, str) or not v.strip():
                self.err(key, "must be a non-empty string")
        if isinstance(d.get("name"), str) and not NAME_RE.match(d["name"]):
            self.err("name", f"'{d['name']}' may only hold letters, digits, '_', '-' and '.'")
        for key in ("label", "description"):
            if d.get(key) is not None and not isinstance(d[key], str):
                self.err(key, "must be a string")

        self.release_names: set[str] = set()
        releases_listed = isinstance(d.get("releases"), list) and bool(d["releases"])
        for i, rel in enumerate(self.list_of(d.get("releases"), "releases")):
            p = f"releases/{i}"
            if not self.mapping(rel, p):
                continue
            if self.string(rel, "name", p):
                if rel["name"] in self.release_names:
                    self.err(f"{p}/name", f"release '{rel['name']}' is listed twice")
                self.release_names.add(rel["name"])
            if isinstance(rel.get("version"), int | float) and not isinstance(
                rel.get("version"), bool
            ):
                rel["version"] = str(rel["version"])
            self.string(rel, "version", p)
            if rel.get("file") is not None and not isinstance(rel.get("file"), str):
                self.err(f"{p}/file", "must be a string")
        self.releases_listed = releases_listed

        sc = d.get("stemcell_criteria")
        if sc is not None and self.mapping(sc, "stemcell_criteria"):
            self.string(sc, "os", "stemcell_criteria")
            if isinstance(sc.get("version"), int | float) and not isinstance(
                sc.get("version"), bool
            ):
                sc["version"] = str(sc["version"])
            self.string(sc, "version", "stemcell_criteria")

        # Blueprints first, so that references elsewhere can be resolved.
        self.blueprints(d.get("property_blueprints"), "property_blueprints")
        self.job_names: set[str] = set()
        jobs = self.list_of(d.get("job_types"), "job_types")
        for i, job in enumerate(jobs):
            if not self.mapping(job, f"job_types/{i}"):
                continue
            if not self.string(job, "name", f"job_types/{i}"):
                continue
            if not PROP_NAME_RE.match(job["name"]):
                if NAME_RE.match(job["name"]):
                    # Shipped tiles name migration errands ``migrate-v1.1-v1.2``.
                    self.warn(
                        f"job_types/{i}/name",
                        f"'{job['name']}' holds a '.'; Ops Manager accepts it, and its "
                        f"properties are referenced as .{job['name']}.<property>",
                    )
                else:
                    self.err(
                        f"job_types/{i}/name", "may only hold letters, digits, '_', '-' and '.'"
                    )
            if job["name"] in self.job_names:
                self.err(f"job_types/{i}/name", f"job type '{job['name']}' is defined twice")
            if job["name"] == "properties":
                self.err(f"job_types/{i}/name", "'properties' is reserved")
            self.job_names.add(job["name"])
            self.blueprints(
                job.get("property_blueprints"), f"job_types/{job['name']}/property_blueprints"
            )

        self.template = ProductTemplate(d)
        for job in jobs:
            if isinstance(job, Mapping) and isinstance(job.get("name"), str):
                self.job_type(job, f"job_types/{job['name']}")
        for i, form in enumerate(self.list_of(d.get("form_types"), "form_types")):
            self.form_type(form, f"form_types/{i}")
        for kind in ("post_deploy_errands", "pre_delete_errands"):
            for i, errand in enumerate(self.list_of(d.get(kind), kind)):
                self.errand(errand, f"{kind}/{i}")
        for i, var in enumerate(self.list_of(d.get("variables"), "variables")):
            p = f"variables/{i}"
            if self.mapping(var, p):
                self.string(var, "name", p)
                self.string(var, "type", p)
                if var.get("options") is not None and not isinstance(var["options"], Mapping):
                    self.err(f"{p}/options", "must be a mapping")
        for i, rc in enumerate(self.list_of(d.get("runtime_configs"), "runtime_configs")):
            p = f"runtime_configs/{i}"
            if self.mapping(rc, p):
                self.string(rc, "name", p)
                self.yaml_snippet(rc, "runtime_config", p)
        for i, req in enumerate(
            self.list_of(d.get("requires_product_versions"), "requires_product_versions")
        ):
            p = f"requires_product_versions/{i}"
            if self.mapping(req, p):
                self.string(req, "name", p)
                if isinstance(req.get("version"), int | float):
                    req["version"] = str(req["version"])
                self.string(req, "version", p)
        upd = d.get("update")
        if upd is not None:
            self.mapping(upd, "update")

    def resource_definitions(self, node: Any, p: str) -> None:
        for k, rd in enumerate(self.list_of(node, p)):
            rp = f"{p}/{k}"
            if not self.mapping(rd, rp):
                continue
            if self.string(rd, "name", rp) and rd["name"] not in RESOURCE_NAMES:
                self.err(
                    f"{rp}/name",
                    f"unknown resource '{rd['name']}' (one of {', '.join(RESOURCE_NAMES)})",
                )
            self.integer(rd, "default", rp)
            c = rd.get("constraints")
            if c is not None and self.mapping(c, f"{rp}/constraints"):
                self.integer(c, "min", f"{rp}/constraints")
                self.integer(c, "max", f"{rp}/constraints")

    def job_type(self, job: Mapping, p: str) -> None:
        for key in ("errand", "single_az_only", "serial", "default_internet_connected"):
            self.boolean(job, key, p)
        mif = job.get("max_in_flight")
        if mif is not None and not _valid_max_in_flight(mif):
            self.err(
                f"{p}/max_in_flight", f"'{mif}' must be a positive integer or a percentage like 25%"
            )
        templates = self.list_of(job.get("templates"), f"{p}/templates")
        for i, tpl in enumerate(templates):
            tp = f"{p}/templates/{i}"
            if not self.mapping(tpl, tp):
                continue
            if self.string(tpl, "name", tp):
                tp = f"{p}/templates/{tpl['name']}"
            if self.string(tpl, "release", tp) and self.releases_listed:
                if tpl["release"] not in self.release_names:
                    self.err(
                        f"{tp}/release", f"release '{tpl['release']}' is not listed in releases"
                    )
            for key in ("manifest", "consumes", "provides", "custom_provider_definitions"):
                self.yaml_snippet(tpl, key, tp)
        self.yaml_snippet(job, "manifest", p)
        idef = job.get("instance_definition")
        ip = f"{p}/instance_definition"
        if idef is not None and self.mapping(idef, ip):
            self.boolean(idef, "configurable", ip)
            has_default = self.integer(idef, "default", ip, maximum=MAX_INSTANCES)
            c = idef.get("constraints")
            lo = hi = None
            if c is not None and self.mapping(c, f"{ip}/constraints"):
                if self.integer(c, "min", f"{ip}/constraints", maximum=MAX_INSTANCES):
                    lo = c["min"]
                if self.integer(c, "max", f"{ip}/constraints"):
                    hi = c["max"]
                if lo is not None and hi is not None and lo > hi:
                    self.err(f"{ip}/constraints", f"min {lo} is greater than max {hi}")
            if has_default:
                if lo is not None and idef["default"] < lo:
                    self.err(f"{ip}/default", f"{idef['default']} is below constraints/min {lo}")
                if hi is not None and idef["default"] > hi:
                    self.err(f"{ip}/default", f"{idef['default']} is above constraints/max {hi}")
            zi = idef.get("zero_if")
            if zi is not None and self.mapping(zi, f"{ip}/zero_if"):
                ref = zi.get("property_reference")
                if not isinstance(ref, str) or self.template.blueprint(ref) is None:
                    self.err(f"{ip}/zero_if/property_reference", f"{ref} does not exist")
        rds = job.get("resource_definitions")
        self.resource_definitions(rds, f"{p}/resource_definitions")

    def form_type(self, form: Any, p: str) -> None:
        if not self.mapping(form, p):
            return
        self.string(form, "name", p)
        for i, inp in enumerate(self.list_of(form.get("property_inputs"), f"{p}/property_inputs")):
            self.property_input(inp, f"{p}/property_inputs/{i}")

    def property_input(self, inp: Any, p: str) -> None:
        if not self.mapping(inp, p) or not self.string(inp, "reference", p):
            return
        ref = inp["reference"]
        bp = self.template.blueprint(ref)
        if bp is None:
            self.err(f"{p}/reference", f"{ref} does not exist")
            return
        if bp.get("type") == "collection":
            fields = {f["name"] for f in props.CollectionType.fields(bp)}
            for j, sub in enumerate(
                self.list_of(inp.get("property_inputs"), f"{p}/property_inputs")
            ):
                sp = f"{p}/property_inputs/{j}"
                if self.mapping(sub, sp) and self.string(sub, "reference", sp):
                    if sub["reference"] not in fields:
                        self.err(f"{sp}/reference", f"{ref} has no field '{sub['reference']}'")
        elif inp.get("property_inputs"):
            self.err(f"{p}/property_inputs", f"{ref} is a {bp.get('type')}, not a collection")
        sels = self.list_of(inp.get("selector_property_inputs"), f"{p}/selector_property_inputs")
        if sels and bp.get("type") != "selector":
            self.err(
                f"{p}/selector_property_inputs", f"{ref} is a {bp.get('type')}, not a selector"
            )
            return
        options = {
            o["name"] for o in props.SelectorType.options(bp) if isinstance(o.get("name"), str)
        }
        for j, sel in enumerate(sels):
            sp = f"{p}/selector_property_inputs/{j}"
            if not self.mapping(sel, sp) or not self.string(sel, "reference", sp):
                continue
            sref = sel["reference"]
            head, _, option = sref.rpartition(".")
            if head != ref:
                # Shipped tiles carry references from an older name of the
                # selector; Ops Manager goes by the option name, as the form does.
                self.warn(
                    f"{sp}/reference",
                    f"{sref} is not under {ref}; "
                    + (
                        f"taken as its option '{option}'"
                        if option in options
                        else "it names none of its options and is ignored"
                    ),
                )
            elif option not in options:
                self.err(f"{sp}/reference", f"{sref} is not an option of {ref}")
                continue
            for k, sub in enumerate(
                self.list_of(sel.get("property_inputs"), f"{sp}/property_inputs")
            ):
                self.property_input(sub, f"{sp}/property_inputs/{k}")

    def errand(self, errand: Any, p: str) -> None:
        if not self.mapping(errand, p) or not self.string(errand, "name", p):
            return
        self.boolean(errand, "colocated", p)
        name = errand["name"]
        if not errand.get("colocated"):
            job = self.template.job_type(name)
            if job is None:
                self.err(f"{p}/name", f"errand '{name}' is not a job type")
            elif not job.get("errand"):
                self.err(f"{p}/name", f"job type '{name}' is not an errand (errand: true)")
            return
        for k, inst in enumerate(self.list_of(errand.get("instances"), f"{p}/instances")):
            ip = f"{p}/instances/{k}"
            if not isinstance(inst, str) or "/" not in inst:
                self.err(
                    ip, "must look like <job type>/first, <job type>/all or <job type>/<index>"
                )
                continue
            jname, _, which = inst.partition("/")
            job = self.template.job_type(jname)
            if job is None:
                self.err(ip, f"job type '{jname}' does not exist")
            elif name not in [
                t.get("name") for t in list_items(job.get("templates")) if isinstance(t, Mapping)
            ]:
                self.err(ip, f"job type '{jname}' has no job '{name}' to run as an errand")
            if which not in ("first", "all") and not which.isdigit():
                self.err(ip, f"'{which}' must be first, all or an index")


def _valid_max_in_flight(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return v > 0
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*(%?)\s*", v)
        return bool(m) and int(m.group(1)) > 0 and (not m.group(2) or int(m.group(1)) <= 100)
    return False
