"""A tile's runtime configs: named director configs, their diff, and the deployments they change.

A product template's ``runtime_configs: [{name, runtime_config}]`` become
director configs of type ``runtime`` (BOSH addons, releases, variables,
tags). Ops Manager names each one ``TILE_NAME-GUID-RUNTIME_CONFIG_NAME``;
a product guid here is already ``<tile name>-<guid hex>``, so the config is
``<product guid>-<runtime config name>`` (``config_name``), Ops Manager's
form. A product owns the runtime configs whose name starts with its guid.

Secrets stay out of them as they stay out of manifests: rendered with the
product's ``credential_root``, a secret accessor becomes a reference to
the director variable holding it (``((/opsmgr/<guid>/<property>.<key>))``);
``credentials`` gives the values the variable store must hold for them,
which Apply Changes stores next to the configs. The config table, the
director's API and every diff hold references only.

Which deployments a change touches is the director's addon logic
(``director.manifest.apply_addons``: include/exclude rules): a deployment
is ``affected`` when its manifest with the addons of the runtime configs
it was last deployed with differs from the same manifest with the new
set. A tile with no job types (a runtime-config-only tile) has no
deployment: Apply Changes uploads its configs and deploys nothing for it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping

import yaml

from director.manifest import ManifestError, apply_addons, load_yaml, parse_manifest
from director.models import Config, Deployment
from opsconsole.errors import ServiceError
from tiles.manifest import RenderError, render_runtime_configs
from tiles.models import StagedProduct

from .common import _err, product_template
from .diffs import redact, secret_strings
from .rendering import _render_errors, manifest_credentials, render_context

RUNTIME = "runtime"
#: ``Config.name`` is at most this long.
MAX_NAME = 255

__all__ = [
    "config_name",
    "runtime_config_only",
    "render",
    "credentials",
    "current",
    "projected",
    "affected",
    "diffs",
]


def config_name(guid: str, name: str) -> str:
    """The director config name of a tile's runtime config (``TILE_NAME-GUID-NAME``)."""
    return f"{guid}-{name}"


def runtime_config_only(staged: StagedProduct) -> bool:
    """A tile without job types: it has runtime configs and no deployment of its own."""
    return not product_template(staged).job_types


def render(staged: StagedProduct) -> dict[str, str]:
    """Config name -> YAML text of the staged product's runtime configs (secrets as references).

    Raises ``ServiceError`` naming ``runtime_configs/<name>`` (or the
    template path) of what cannot be rendered or named.
    """
    template = product_template(staged)
    if not template.runtime_configs:
        return {}
    ctx = render_context(staged, require_stemcell=False, require_network=False)
    try:
        items = render_runtime_configs(template, staged.all_values(), ctx)
    except RenderError as exc:
        raise ServiceError(_render_errors(exc)) from None
    out: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for item in items:
        name = item["name"]
        full = config_name(staged.guid, str(name))
        if len(full) > MAX_NAME:
            _err(
                errors,
                f"runtime_configs/{name}/name",
                f"gives the director config name '{full}', longer than {MAX_NAME} characters",
            )
        elif full in out:
            _err(errors, f"runtime_configs/{name}/name", "is used by two runtime configs")
        else:
            for path, message in _director_errors(item["runtime_config"]):
                _err(errors, f"runtime_configs/{name}/{path}".rstrip("/"), message)
            out[full] = yaml.safe_dump(
                item["runtime_config"], default_flow_style=False, sort_keys=False
            )
    if errors:
        raise ServiceError(errors)
    return out


def _director_errors(doc: dict) -> list[tuple[str, str]]:
    """What the director would refuse in a runtime config, as ``(path, message)``.

    Checked before upload: a runtime config the director cannot apply would
    fail every deployment's next deploy, not only this tile's.
    """
    try:
        apply_addons({}, "", [doc])
    except ManifestError as exc:
        return list(exc.errors)
    return []


def credentials(staged: StagedProduct, texts: Iterable[str], values: Mapping | None = None) -> dict:
    """Variable name -> value of the secrets the runtime configs ``texts`` reference.

    Only the director's variable store gets these: never log or show them.
    """
    joined = "\n".join(texts)
    if "((" not in joined:
        return {}
    return {
        name: value
        for name, value in manifest_credentials(staged, values).items()
        if f"(({name}." in joined
    }


def _owner_prefixes(guids: Iterable[str]) -> list[str]:
    return sorted((f"{g}-" for g in guids), key=len, reverse=True)


def _owned(name: str, guid: str, others: list[str]) -> bool:
    """Is the config ``name`` one of ``guid``'s? (the longest owning guid wins)"""
    for prefix in others:
        if name.startswith(prefix):
            return prefix == f"{guid}-"
    return name.startswith(f"{guid}-")


def current(guid: str) -> dict[str, str]:
    """The director's runtime configs the product wrote: config name -> content."""
    prefixes = _owner_prefixes(StagedProduct.objects.values_list("guid", flat=True))
    return {
        c.name: c.content
        for c in Config.latest_set(RUNTIME)
        if c.name.startswith(f"{guid}-") and _owned(c.name, guid, prefixes)
    }


def projected(changes: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The director's runtime configs after the products in ``changes`` write theirs.

    ``changes`` maps a product guid to its new configs (``{}`` drops them
    all, a deleted tile); the other products' configs and configs uploaded
    through the director API stay.
    """
    prefixes = _owner_prefixes(StagedProduct.objects.values_list("guid", flat=True))
    out = {}
    for c in Config.latest_set(RUNTIME):
        if any(_owned(c.name, guid, prefixes) for guid in changes):
            continue
        out[c.name] = c.content
    for configs in changes.values():
        out.update(configs)
    return dict(sorted(out.items()))


def staged_changes(staged_products: Iterable[StagedProduct]) -> dict[str, dict[str, str]]:
    """Guid -> the configs each staged product would write (for Review Pending Changes).

    A product marked for deletion writes none; one whose configs cannot be
    rendered keeps what the director holds (its render error is shown on it).
    """
    out: dict[str, dict[str, str]] = {}
    for sp in staged_products:
        if sp.marked_for_deletion:
            out[sp.guid] = {}
            continue
        try:
            if not product_template(sp).runtime_configs:
                out[sp.guid] = {}
                continue
            out[sp.guid] = render(sp)
        except ServiceError:
            continue
    return out


def _with_addons(manifest: dict, name: str, configs: Mapping[str, str]) -> str:

    try:
        docs = [load_yaml(text, f"runtime-config {n}") for n, text in sorted(configs.items())]
        return json.dumps(apply_addons(manifest, name, docs), sort_keys=True, default=str)
    except ManifestError as exc:  # the deploy will name it; a change either way
        return "error: " + str(exc)


def affected(guid: str, manifest_text: str, new: Mapping[str, str]) -> list[str]:
    """The runtime configs whose change changes the deployment ``guid`` (names; [] if none).

    Compares the manifest with the addons of the runtime configs the
    deployment was last deployed with and with those of ``new``, by the
    director's own rules; a deployment never deployed is not "affected"
    (it is installed anyway).
    """
    dep = Deployment.objects.filter(name=guid).exclude(manifest="").first()
    if dep is None or not manifest_text:
        return []
    old = {c.name: c.content for c in dep.configs.filter(type=RUNTIME)}
    if old == dict(new):
        return []
    try:
        manifest = parse_manifest(load_yaml(manifest_text))
    except ManifestError:
        return []
    base = _with_addons(manifest, guid, old)
    if base == _with_addons(manifest, guid, new):
        return []
    changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))

    def swapped(name: str) -> dict[str, str]:
        configs = {k: v for k, v in old.items() if k != name}
        if name in new:
            configs[name] = new[name]
        return configs

    # Name the configs whose addons make the difference, not every changed one.
    named = [n for n in changed if _with_addons(manifest, guid, swapped(n)) != base]
    return named or changed


def _status(old: str | None, new: str | None) -> str:
    if old is None:
        return "to_be_installed"
    if new is None:
        return "to_be_deleted"
    return "same" if yaml.safe_load(old) == yaml.safe_load(new) else "different"


def diffs(staged: StagedProduct, new: Mapping[str, str] | None = None) -> list[dict]:
    """Ops Manager's ``runtime_configs`` of a product diff: ``[{"name", "status", "diff"}]``.

    ``new`` are the configs the product would write (default: rendered
    now; ``{}`` for a product marked for deletion). Secret values of the
    product, staged and deployed, are ``((redacted))`` should a config hold
    any (one uploaded by an older console).
    """
    if new is None:
        new = {} if staged.marked_for_deletion else render(staged)
    old = current(staged.guid)
    hidden = secret_strings((staged.deployed_state or {}).get("secrets"), staged.secrets)
    out = []
    for name in sorted(set(old) | set(new)):
        before = yaml.safe_load(old[name]) if name in old else None
        after = yaml.safe_load(new[name]) if name in new else None
        text = {
            side: yaml.safe_dump(redact(doc, hidden), default_flow_style=False, sort_keys=False)
            if doc not in (None, {})
            else ""
            for side, doc in (("old", before), ("new", after))
        }
        diff = "".join(
            difflib.unified_diff(
                text["old"].splitlines(True),
                text["new"].splitlines(True),
                f"deployed/runtime-configs/{name}.yml",
                f"staged/runtime-configs/{name}.yml",
            )
        )
        out.append({"name": name, "status": _status(old.get(name), new.get(name)), "diff": diff})
    return out
