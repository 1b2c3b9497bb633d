"""Job properties: the manifest's values over the job spec's defaults.

A release job's ``spec`` declares its properties by dotted name
(``zookeeper.port``, or flat ``client_port``) with an optional ``default``,
a ``description`` and an informational ``type``. The properties a job is
rendered with are built the way BOSH builds them: for every *declared*
property, the manifest's value if it is set (and not null), else the default,
else null. Values are taken whole: a map-valued property given in the
manifest replaces its default, it is not merged into it.

Manifest properties the spec does not declare are ignored by BOSH; we return
them as warnings so the operator learns about a typo instead of wondering
why a setting has no effect.
"""

from __future__ import annotations

from typing import Any

from .errors import ManifestError, join_path
from .yaml import unshare

_ABSENT = object()


def _lookup(tree: Any, parts: list[str]) -> Any:
    node = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _store(tree: dict, parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def _declared(job_spec: dict) -> dict[tuple[str, ...], Any]:
    spec_props = job_spec.get("properties") or {}
    if not isinstance(spec_props, dict):
        return {}
    return {
        tuple(str(name).split(".")): (d if isinstance(d, dict) else {})
        for name, d in spec_props.items()
    }


def _warn_undeclared(
    node: dict,
    prefix: tuple[str, ...],
    declared: dict[tuple[str, ...], Any],
    job: Any,
    path: str,
    warnings: list[tuple[str, str]],
) -> None:
    """A warning for each given property the job does not declare (or a
    scalar where the job declares properties inside it)."""
    for key, value in node.items():
        here = (*prefix, str(key))
        if any(here[: len(d)] == d for d in declared if len(d) <= len(here)):
            continue  # a declared property (or inside a map-valued one)
        deeper = [d for d in declared if len(d) > len(here) and d[: len(here)] == here]
        if deeper and isinstance(value, dict):
            _warn_undeclared(value, here, declared, job, path, warnings)
        elif deeper:
            expected = ", ".join(".".join(d) for d in deeper[:3])
            warnings.append(
                (
                    join_path(path, *here),
                    f"should be a map (job '{job}' declares {expected}); value ignored",
                )
            )
        else:
            warnings.append(
                (
                    join_path(path, *here),
                    f"'{'.'.join(here)}' is not a property of job '{job}' (ignored)",
                )
            )


def resolve_job_properties(
    job_spec: dict, properties: dict | None, path: str = ""
) -> tuple[dict, list[tuple[str, str]]]:
    """Return ``(properties, warnings)`` for one job.

    ``properties`` is the job's manifest ``properties`` (nested maps);
    ``path`` is where they live in the manifest
    (``instance_groups/zookeeper/jobs/zookeeper/properties``) and prefixes
    each warning's path.
    """
    if not isinstance(job_spec, dict):
        raise ManifestError([(path, "the job's spec (from its release) is not a mapping")])
    properties = properties or {}
    declared = _declared(job_spec)
    resolved: dict = {}
    for parts, definition in declared.items():
        value = _lookup(properties, list(parts))
        if value is _ABSENT or value is None:
            value = definition.get("default")
        _store(resolved, list(parts), unshare(value))

    warnings: list[tuple[str, str]] = []
    if isinstance(properties, dict):
        _warn_undeclared(properties, (), declared, job_spec.get("name", "the job"), path, warnings)
    return resolved, warnings
