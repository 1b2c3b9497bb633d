"""The pure BOSH manifest model: parse, validate, interpolate, ops files.

No I/O and no Django imports: callers hand in text or dicts (and lookup
callables for variables) and get back plain dicts or a ManifestError that
names every wrong path.
"""

from .errors import ManifestError
from .ops import apply_ops
from .yaml import dump_yaml, load_yaml

__all__ = ["ManifestError", "apply_ops", "dump_yaml", "load_yaml"]
