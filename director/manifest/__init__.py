"""The pure BOSH manifest model: parse, validate, interpolate, ops files.

No I/O and no Django imports: callers hand in text or dicts (and lookup /
store callables for variables) and get back plain dicts, or a
:class:`ManifestError` that names every wrong path.

The usual deploy pipeline, in BOSH's order::

    doc = load_yaml(text)
    for ops in ops_files:                       # raw template, before ((vars))
        doc = apply_ops(doc, ops)
    manifest = parse_manifest(doc)              # validate the raw manifest
    generate_missing(manifest["variables"], store_get, store_put)
    manifest = parse_manifest(interpolate(manifest, lookup, skip=deferred_to_render))
    manifest = apply_addons(manifest, manifest["name"], runtime_configs)
    cloud = parse_cloud_config(interpolate(consolidate_cloud_configs(configs), lookup))
    errors = validate_against_cloud_config(manifest, cloud)
    # job properties, per job, when rendering:
    props, warnings = resolve_job_properties(job_spec, job["properties"], path)
"""

from .addon_filters import addon_applies
from .addons import apply_addons, consolidate_runtime_configs
from .cloud_config import consolidate_cloud_configs, parse_cloud_config
from .errors import ManifestError
from .interpolate import (
    MISSING,
    deferred_to_render,
    find_variables,
    interpolate,
    is_placeholder,
    variable_name_error,
)
from .iprange import IpRanges, expand_ip_ranges, parse_ip_entry
from .ops import apply_ops, find_path, validate_ops
from .parse import parse_manifest, resolve_count, validate_against_cloud_config, watch_time_range
from .properties import resolve_job_properties
from .variables import generate_missing, generate_variable
from .yaml import dump_yaml, load_yaml, load_yaml_document, unshare

__all__ = [
    "MISSING",
    "IpRanges",
    "ManifestError",
    "addon_applies",
    "apply_addons",
    "apply_ops",
    "consolidate_cloud_configs",
    "consolidate_runtime_configs",
    "deferred_to_render",
    "dump_yaml",
    "expand_ip_ranges",
    "find_path",
    "find_variables",
    "generate_missing",
    "generate_variable",
    "interpolate",
    "is_placeholder",
    "load_yaml",
    "load_yaml_document",
    "parse_cloud_config",
    "parse_ip_entry",
    "parse_manifest",
    "resolve_count",
    "resolve_job_properties",
    "unshare",
    "validate_against_cloud_config",
    "validate_ops",
    "variable_name_error",
    "watch_time_range",
]
