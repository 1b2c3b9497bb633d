"""The parsed product template: ``ProductTemplate`` and its property lookups.

A ``ProductTemplate`` holds the raw dict of a checked template and indexes
its properties by Ops Manager reference (``PropertyReference``).
``parse_yaml()`` is the one safe YAML loader of tiles (templates and
manifest snippets); ``TemplateError`` collects ``(path, message)`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from director.manifest.yaml import check_yaml_bounds

# Instances of one job type: Ops Manager tiles use single digits; the bound
# keeps a typo (default: 10000000000) from building per-instance lists for ever.
MAX_INSTANCES = 10_000


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


def list_items(node: Any) -> list:
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
            for j in list_items(data.get("job_types"))
            if isinstance(j, Mapping) and isinstance(j.get("name"), str)
        }
        for bp in list_items(data.get("property_blueprints")):
            self._index(".properties", bp, None, None, None)
        for job in self._job_types.values():
            for bp in list_items(job.get("property_blueprints")):
                self._index(f".{job['name']}", bp, job["name"], None, None)

    def _index(self, prefix: str, bp: Any, job, selector, option) -> None:
        if not isinstance(bp, Mapping) or not isinstance(bp.get("name"), str):
            return
        ref = f"{prefix}.{bp['name']}"
        self._refs.setdefault(ref, PropertyReference(ref, bp, job, selector, option))
        if bp.get("type") == "selector":
            for opt in list_items(bp.get("option_templates")):
                if isinstance(opt, Mapping) and isinstance(opt.get("name"), str):
                    for child in list_items(opt.get("property_blueprints")):
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
            for bp in list_items(self.data.get("property_blueprints"))
            if isinstance(bp, Mapping) and "name" in bp
        }

    @property
    def form_types(self) -> list[Mapping]:
        return list(list_items(self.data.get("form_types")))

    @property
    def job_types(self) -> dict[str, Mapping]:
        """Job types by name, in template order."""
        return dict(self._job_types)

    def job_type(self, name: str) -> Mapping | None:
        return self._job_types.get(name)

    @property
    def post_deploy_errands(self) -> list[Mapping]:
        return list(list_items(self.data.get("post_deploy_errands")))

    @property
    def pre_delete_errands(self) -> list[Mapping]:
        return list(list_items(self.data.get("pre_delete_errands")))

    @property
    def errands(self) -> dict[str, list[Mapping]]:
        return {"post_deploy": self.post_deploy_errands, "pre_delete": self.pre_delete_errands}

    @property
    def stemcell_criteria(self) -> Mapping | None:
        return self.data.get("stemcell_criteria")

    @property
    def releases(self) -> list[Mapping]:
        return list(list_items(self.data.get("releases")))

    @property
    def variables(self) -> list[Mapping]:
        return list(list_items(self.data.get("variables")))

    @property
    def runtime_configs(self) -> list[Mapping]:
        return list(list_items(self.data.get("runtime_configs")))

    @property
    def requires_product_versions(self) -> list[Mapping]:
        return list(list_items(self.data.get("requires_product_versions")))

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
