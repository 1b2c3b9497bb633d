"""Product templates: parse and validate Ops Manager tile metadata.

A tile is described by its *product template* (``metadata/<product>.yml``
inside a ``.pivotal`` zip): identity, releases, stemcell criteria,
``property_blueprints`` (typed settings), ``form_types`` (the panes of the
tile's Settings tab), ``job_types`` (instance groups, their BOSH jobs and
manifest snippets), errands, CredHub ``variables`` and runtime configs.

``load_product_template()`` parses the YAML safely (aliases expanded, no
Python tags) and checks the structure the rest of the console relies on.
Every problem is collected, with the path of the offending node, into one
``TemplateError``: ``property_blueprints/3/type: unknown type 'strng'``,
``form_types/0/property_inputs/2/reference: .properties.nope does not
exist``, ``job_types/web/instance_definition/constraints/min: ...``. Job
types are named by their ``name`` in paths (``job_types/web``), everything
else by index.

``load_pivotal()`` opens a ``.pivotal`` zip: exactly one ``metadata/*.yml``,
every release named in ``releases:`` present under ``releases/``. Nothing
is extracted to disk; member names are checked (no absolute paths, no
``..``) and the archive is held to the upload limits
(``director.archives``: members, expanded bytes, compression ratio).

Property references follow Ops Manager: ``.properties.x`` (product level),
``.<job>.x`` (job level), ``.properties.sel.<option name>.y`` (inside a
selector option).
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from director.archives import UploadError, ZipMemberReader, check_zip
from director.manifest.yaml import YamlBoundsError, check_yaml_bounds
from tiles import properties as props

__all__ = [
    "TemplateError",
    "format_warnings",
    "ProductTemplate",
    "PropertyReference",
    "ReleaseFile",
    "load_product_template",
    "load_pivotal",
    "parse_yaml",
    "MAX_METADATA_BYTES",
]

MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_PIVOTAL_UNCOMPRESSED_BYTES = 64 * 1024**3
# Instances of one job type: Ops Manager tiles use single digits; the bound
# keeps a typo (default: 10000000000) from building per-instance lists for ever.
MAX_INSTANCES = 10_000
RESOURCE_NAMES = ("ram", "ephemeral_disk", "persistent_disk", "cpu")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_PROP_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


class TemplateError(ValueError):
    """The template is unusable; ``errors`` is a list of ``(path, message)``."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.errors))


def format_warnings(warnings: list[tuple[str, str]]) -> list[str]:
    """Import warnings as the lines a product shows: ``path: message``."""
    return [f"{p}: {m}" if p else m for p, m in warnings]


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str | bytes) -> Any:
    """Safe YAML (libyaml when available). Aliases are expanded by the loader.

    Too deep or too alias-heavy text raises ``YamlBoundsError`` (a
    ``yaml.YAMLError``) before libyaml is asked to build it: its recursive
    composer crashes the process on deep nesting, and a "billion laughs"
    document would be walked node by node when rendered.
    """
    check_yaml_bounds(text)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader


@dataclass(frozen=True)
class PropertyReference:
    """One property of the template, as Ops Manager names it.

    ``job`` is the job type name for job-level properties (None for
    ``.properties``); ``selector``/``option`` name the enclosing selector
    reference and option for properties inside a selector option.
    """

    reference: str
    blueprint: Mapping
    job: str | None = None
    selector: str | None = None
    option: str | None = None

    @property
    def name(self) -> str:
        return self.blueprint.get("name")


def _items(node: Any) -> list:
    """``node`` if it is a list, else an empty list.

    The checker builds a ``ProductTemplate`` before it has finished (so that
    references can be resolved), so the lookups must survive any shape.
    """
    return node if isinstance(node, list) else []


class ProductTemplate:
    """A validated product template: the raw dict plus lookups.

    Treat it as read-only; the lookups are built once at load time.
    """

    def __init__(
        self,
        data: dict,
        source: str = "metadata.yml",
        warnings: list[tuple[str, str]] | None = None,
    ):
        self.data = data
        self.source = source
        #: What import accepted although it is not quite right (``(path, message)``):
        #: the quirks shipped tiles carry that Ops Manager imports anyway.
        self.warnings: list[tuple[str, str]] = list(warnings or [])
        self._refs: dict[str, PropertyReference] = {}
        self._job_types = {
            j["name"]: j
            for j in _items(data.get("job_types"))
            if isinstance(j, Mapping) and isinstance(j.get("name"), str)
        }
        for bp in _items(data.get("property_blueprints")):
            self._index(".properties", bp, None, None, None)
        for job in self._job_types.values():
            for bp in _items(job.get("property_blueprints")):
                self._index(f".{job['name']}", bp, job["name"], None, None)

    def _index(self, prefix: str, bp: Any, job, selector, option) -> None:
        if not isinstance(bp, Mapping) or not isinstance(bp.get("name"), str):
            return
        ref = f"{prefix}.{bp['name']}"
        self._refs.setdefault(ref, PropertyReference(ref, bp, job, selector, option))
        if bp.get("type") == "selector":
            for opt in _items(bp.get("option_templates")):
                if isinstance(opt, Mapping) and isinstance(opt.get("name"), str):
                    for child in _items(opt.get("property_blueprints")):
                        self._index(f"{ref}.{opt['name']}", child, job, ref, opt["name"])

    # identity -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def product_version(self) -> str:
        return str(self.data["product_version"])

    @property
    def label(self) -> str:
        return self.data.get("label") or self.name

    @property
    def description(self) -> str:
        return self.data.get("description") or ""

    @property
    def metadata_version(self) -> str | None:
        v = self.data.get("metadata_version")
        return None if v is None else str(v)

    # structure ----------------------------------------------------------
    @property
    def property_blueprints(self) -> dict[str, Mapping]:
        """Product-level blueprints by name."""
        return {
            bp["name"]: bp
            for bp in _items(self.data.get("property_blueprints"))
            if isinstance(bp, Mapping) and "name" in bp
        }

    @property
    def form_types(self) -> list[Mapping]:
        return list(_items(self.data.get("form_types")))

    @property
    def job_types(self) -> dict[str, Mapping]:
        """Job types by name, in template order."""
        return dict(self._job_types)

    def job_type(self, name: str) -> Mapping | None:
        return self._job_types.get(name)

    @property
    def post_deploy_errands(self) -> list[Mapping]:
        return list(_items(self.data.get("post_deploy_errands")))

    @property
    def pre_delete_errands(self) -> list[Mapping]:
        return list(_items(self.data.get("pre_delete_errands")))

    @property
    def errands(self) -> dict[str, list[Mapping]]:
        return {"post_deploy": self.post_deploy_errands, "pre_delete": self.pre_delete_errands}

    @property
    def stemcell_criteria(self) -> Mapping | None:
        return self.data.get("stemcell_criteria")

    @property
    def releases(self) -> list[Mapping]:
        return list(_items(self.data.get("releases")))

    @property
    def variables(self) -> list[Mapping]:
        return list(_items(self.data.get("variables")))

    @property
    def runtime_configs(self) -> list[Mapping]:
        return list(_items(self.data.get("runtime_configs")))

    @property
    def requires_product_versions(self) -> list[Mapping]:
        return list(_items(self.data.get("requires_product_versions")))

    @property
    def update(self) -> Mapping | None:
        return self.data.get("update")

    # properties ---------------------------------------------------------
    def iter_property_references(self) -> Iterator[PropertyReference]:
        """Every property: ``.properties.x``, ``.properties.x.<option>.y`` and
        ``.<job>.x``, in template order."""
        return iter(self._refs.values())

    def reference(self, ref: str) -> PropertyReference | None:
        return self._refs.get(ref)

    def blueprint(self, ref: str) -> Mapping | None:
        pref = self._refs.get(ref)
        return None if pref is None else pref.blueprint

    def __repr__(self) -> str:
        return f"<ProductTemplate {self.data.get('name')} {self.data.get('product_version')}>"


# --------------------------------------------------------------------------
# Validation


class _Checker:
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

    # top level ------------------------------------------------------------
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
        if isinstance(d.get("name"), str) and not _NAME_RE.match(d["name"]):
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
            if not _PROP_NAME_RE.match(job["name"]):
                if _NAME_RE.match(job["name"]):
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

    # blueprints -------------------------------------------------------------
    def blueprints(self, node: Any, path: str, *, in_collection: bool = False) -> None:
        seen: set[str] = set()
        for i, bp in enumerate(self.list_of(node, path)):
            p = f"{path}/{i}"
            if not self.mapping(bp, p):
                continue
            if self.string(bp, "name", p):
                if not _PROP_NAME_RE.match(bp["name"]):
                    self.err(
                        f"{p}/name", f"'{bp['name']}' may only hold letters, digits, '_' and '-'"
                    )
                if bp["name"] in seen:
                    self.err(f"{p}/name", f"property '{bp['name']}' is defined twice")
                seen.add(bp["name"])
            self.blueprint(bp, p, in_collection=in_collection)

    def blueprint(self, bp: Mapping, p: str, *, in_collection: bool) -> None:
        t = bp.get("type")
        if t is None:
            self.err(f"{p}/type", "is required")
            return
        if not isinstance(t, str) or t not in props.TYPES:
            self.err(f"{p}/type", f"unknown type '{t}'")
            return
        for key in ("configurable", "optional", "freeze_on_deploy", "unique"):
            self.boolean(bp, key, p)
        if t in ("dropdown_select", "multi_select_options"):
            options = self.list_of(bp.get("options"), f"{p}/options")
            if not options:
                self.err(f"{p}/options", f"a {t} needs at least one option")
            names = set()
            for j, opt in enumerate(options):
                if self.mapping(opt, f"{p}/options/{j}"):
                    if isinstance(opt.get("name"), int | float | bool):
                        opt["name"] = str(opt["name"])
                    if self.string(opt, "name", f"{p}/options/{j}"):
                        if opt["name"] in names:
                            self.err(
                                f"{p}/options/{j}/name", f"option '{opt['name']}' is listed twice"
                            )
                        names.add(opt["name"])
        if t == "selector":
            options = self.list_of(bp.get("option_templates"), f"{p}/option_templates")
            if not options:
                self.err(f"{p}/option_templates", "a selector needs at least one option")
            names, values = set(), set()
            for j, opt in enumerate(options):
                op = f"{p}/option_templates/{j}"
                if not self.mapping(opt, op):
                    continue
                if self.string(opt, "name", op):
                    if opt["name"] in names:
                        self.err(f"{op}/name", f"option '{opt['name']}' is defined twice")
                    names.add(opt["name"])
                sv = props.SelectorType.select_value(opt)
                if sv in values:
                    self.err(f"{op}/select_value", f"select_value '{sv}' is used twice")
                values.add(sv)
                self.blueprints(opt.get("property_blueprints"), f"{op}/property_blueprints")
                self.named_manifests(opt, op)
        if t == "collection":
            fields = self.list_of(bp.get("property_blueprints"), f"{p}/property_blueprints")
            if not fields:
                self.err(f"{p}/property_blueprints", "a collection needs at least one field")
            self.blueprints(fields, f"{p}/property_blueprints", in_collection=True)
            self.named_manifests(bp, p)
        self.constraints(bp, t, p)
        if t in ("vm_type_dropdown", "disk_type_dropdown"):
            self.resource_definitions(bp.get("resource_definitions"), f"{p}/resource_definitions")
        self.lenient_default(bp, t, p)
        # Credential defaults are generation hints ({identity: vcap},
        # {domains: [...]}); every other default must fit its type.
        if bp.get("default") is not None and not props.get_type(t).credential:
            try:
                props.validate(bp, bp["default"], check_constraints=False)
            except props.PropertyError as e:
                self.err(f"{p}/default", e.message)
        if t == "rsa_cert_credentials" and isinstance(bp.get("default"), Mapping):
            domains = bp["default"].get("domains")
            if domains is not None and not (
                isinstance(domains, list) and all(isinstance(x, str) for x in domains)
            ):
                self.err(f"{p}/default/domains", "must be a list of domain names")

    def lenient_default(self, bp: Mapping, t: str, p: str) -> None:
        """Defaults shipped tiles carry that Ops Manager imports: fixed up, with a warning.

        A ``dropdown_select`` default that is not an option is dropped (the
        operator chooses one); option names a ``multi_select_options`` default
        lists but does not declare are dropped; fields of a ``collection``
        default its ``property_blueprints`` do not declare are dropped from
        each record. Any other default that does not fit its type stays an
        error.
        """
        default = bp.get("default")
        if default is None or not isinstance(bp, dict):
            return
        if t in ("dropdown_select", "multi_select_options"):
            names = props.DropdownSelectType.option_names(bp)
            if t == "dropdown_select" and isinstance(default, str | int | float | bool):
                if str(default) not in names:
                    self.warn(
                        f"{p}/default",
                        f"'{default}' is not one of the options ({', '.join(names)}): "
                        "ignored, the operator chooses one",
                    )
                    bp["default"] = None
            elif t == "multi_select_options" and isinstance(default, list):
                unknown = [str(x) for x in default if str(x) not in names]
                if unknown:
                    self.warn(
                        f"{p}/default",
                        f"{', '.join(repr(x) for x in unknown)} not among the options "
                        f"({', '.join(names)}): ignored",
                    )
                    bp["default"] = [x for x in default if str(x) in names]
        elif t == "collection":
            records = [default] if isinstance(default, Mapping) else default
            if not isinstance(records, list):
                return
            fields = {f.get("name") for f in props.CollectionType.fields(bp)} | {"guid"}
            cleaned = []
            for i, record in enumerate(records):
                if isinstance(record, Mapping):
                    extra = [k for k in record if k not in fields]
                    if extra:
                        self.warn(
                            f"{p}/default/{i}",
                            f"field{'s' if len(extra) > 1 else ''} {', '.join(map(str, extra))} "
                            "not declared in its property_blueprints: ignored",
                        )
                        record = {k: v for k, v in record.items() if k in fields}
                cleaned.append(record)
            bp["default"] = cleaned

    def named_manifests(self, node: Mapping, p: str) -> None:
        for k, nm in enumerate(self.list_of(node.get("named_manifests"), f"{p}/named_manifests")):
            np = f"{p}/named_manifests/{k}"
            if self.mapping(nm, np):
                self.string(nm, "name", np)
                self.yaml_snippet(nm, "manifest", np)

    def constraints(self, bp: Mapping, t: str, p: str) -> None:
        c = bp.get("constraints")
        if c is None:
            return
        if t in ("integer", "port"):
            if not self.mapping(c, f"{p}/constraints"):
                return
            for key in ("min", "max", "zero_or_min", "modulo"):
                if key in c and (isinstance(c[key], bool) or not isinstance(c[key], int)):
                    self.err(f"{p}/constraints/{key}", "must be an integer")
            if (
                isinstance(c.get("min"), int)
                and isinstance(c.get("max"), int)
                and c["min"] > c["max"]
            ):
                self.err(f"{p}/constraints", "min is greater than max")
            return
        if t in ("string", "text", "secret"):
            items = [c] if isinstance(c, Mapping) else c
            if not isinstance(items, list):
                self.err(f"{p}/constraints", "must be a list of {must_match_regex, error_message}")
                return
            for j, item in enumerate(items):
                cp = f"{p}/constraints/{j}"
                if not self.mapping(item, cp):
                    continue
                if "must_match_regex" in item:
                    try:
                        props.ruby_regex(str(item["must_match_regex"]))
                    except re.error as e:
                        self.err(f"{cp}/must_match_regex", f"invalid regular expression: {e}")

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

    # jobs -------------------------------------------------------------------
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

    # forms ------------------------------------------------------------------
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

    # errands ----------------------------------------------------------------
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
                t.get("name") for t in _items(job.get("templates")) if isinstance(t, Mapping)
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


def load_product_template(
    text_or_bytes: str | bytes, source: str = "metadata.yml"
) -> ProductTemplate:
    """Parse and validate a product template, or raise TemplateError."""
    if isinstance(text_or_bytes, bytes | bytearray):
        if len(text_or_bytes) > MAX_METADATA_BYTES:
            raise TemplateError([(source, f"metadata is larger than {MAX_METADATA_BYTES} bytes")])
        try:
            text_or_bytes = bytes(text_or_bytes).decode("utf-8")
        except UnicodeDecodeError:
            raise TemplateError([(source, "metadata is not UTF-8 text")]) from None
    try:
        data = parse_yaml(text_or_bytes)
    except YamlBoundsError as e:
        raise TemplateError([(source, f"metadata is refused: {e}")]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise TemplateError([(source, f"not valid YAML{where}: {problem}")]) from None
    if not isinstance(data, dict):
        raise TemplateError([(source, "a product template must be a YAML mapping")])
    checker = _Checker(data)
    checker.check()
    if checker.errors:
        raise TemplateError(checker.errors)
    return ProductTemplate(data, source, checker.warnings)


# --------------------------------------------------------------------------
# .pivotal files


@dataclass(frozen=True)
class ReleaseFile:
    """A release tarball inside a .pivotal; ``open()`` streams it (close it after)."""

    name: str
    version: str
    filename: str  # member name inside the zip, e.g. releases/nginx-1.0.tgz
    size: int
    opener: Callable[[], IO[bytes]]

    def open(self) -> IO[bytes]:
        return self.opener()


def _safe_member(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in posixpath.normpath(name).split("/")


def load_pivotal(
    fileobj_or_path: str | os.PathLike | IO[bytes],
    *,
    max_uncompressed: int = MAX_PIVOTAL_UNCOMPRESSED_BYTES,
) -> tuple[ProductTemplate, list[ReleaseFile]]:
    """Open a .pivotal (zip): its product template and release tarballs.

    Raises TemplateError for: not a zip, unsafe member names, no or several
    ``metadata/*.yml``, oversized content (``max_uncompressed`` and the upload
    limits of ``director.archives``: too many members, too many bytes, too
    high a compression ratio, a compression other than deflate), an invalid
    template, or a release named in ``releases:`` whose file is not in the
    zip. The release streams ``ReleaseFile.open()`` gives stop at their
    declared size and word a damaged member as an ``UploadError``.
    """
    source = (
        str(fileobj_or_path)
        if isinstance(fileobj_or_path, str | os.PathLike)
        else getattr(fileobj_or_path, "name", "upload.pivotal")
    )
    source = Path(str(source)).name or "upload.pivotal"
    try:
        zf = zipfile.ZipFile(fileobj_or_path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise TemplateError([(source, "not a .pivotal file: it is not a zip archive")]) from None
    with zf:
        try:
            infos = check_zip(zf, source, _zip_size(fileobj_or_path))
        except UploadError as exc:
            raise TemplateError([(source, getattr(exc, "reason", str(exc)))]) from None
        bad = [i.filename for i in infos if not _safe_member(i.filename)]
        if bad:
            raise TemplateError([(source, f"unsafe path in archive: {bad[0]}")])
        total = sum(i.file_size for i in infos)
        if total > max_uncompressed:
            raise TemplateError(
                [(source, f"archive expands to {total} bytes, more than {max_uncompressed}")]
            )
        metas = [
            i
            for i in infos
            if posixpath.dirname(i.filename) == "metadata"
            and i.filename.endswith((".yml", ".yaml"))
        ]
        if not metas:
            raise TemplateError([(source, "no product template: expected one metadata/*.yml")])
        if len(metas) > 1:
            names = ", ".join(sorted(i.filename for i in metas))
            raise TemplateError([(source, f"more than one product template: {names}")])
        meta = metas[0]
        if meta.file_size > MAX_METADATA_BYTES:
            raise TemplateError([(meta.filename, f"larger than {MAX_METADATA_BYTES} bytes")])
        try:
            with zf.open(meta) as fh:
                raw = fh.read(MAX_METADATA_BYTES + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            # A damaged member (bad CRC, mismatched header, truncated data,
            # unsupported compression or encryption) is a bad upload.
            raise TemplateError(
                [(meta.filename, f"cannot be read from the archive: {e}")]
            ) from None
        if len(raw) > MAX_METADATA_BYTES:
            raise TemplateError([(meta.filename, f"larger than {MAX_METADATA_BYTES} bytes")])
        template = load_product_template(raw, source=meta.filename)
        members = {i.filename: i for i in infos if posixpath.dirname(i.filename) == "releases"}

    errors: list[tuple[str, str]] = []
    releases: list[ReleaseFile] = []
    for i, rel in enumerate(template.releases):
        fname = rel.get("file") or f"{rel['name']}-{rel['version']}.tgz"
        member = f"releases/{posixpath.basename(fname)}"
        info = members.get(member)
        if info is None:
            errors.append(
                (
                    f"releases/{i}",
                    f"release {rel['name']} {rel['version']}: {member} is not in the .pivotal",
                )
            )
            continue
        releases.append(
            ReleaseFile(
                name=rel["name"],
                version=str(rel["version"]),
                filename=member,
                size=info.file_size,
                opener=_member_opener(fileobj_or_path, member),
            )
        )
    if errors:
        raise TemplateError(errors)
    return template, releases


def _zip_size(src: Any) -> int | None:
    """The size of the zip as uploaded (for the compression-ratio limit)."""
    if isinstance(src, str | os.PathLike):
        return os.path.getsize(src)
    try:
        position = src.tell()
        size = src.seek(0, io.SEEK_END)
        src.seek(position)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def _member_opener(src: Any, member: str) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        if hasattr(src, "seek"):
            src.seek(0)
        zf = zipfile.ZipFile(src)
        try:
            reader = ZipMemberReader(zf, zf.getinfo(member), owns_zip=True)
        except BaseException:
            zf.close()
            raise
        return io.BufferedReader(reader)

    return opener
