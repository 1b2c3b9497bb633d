"""``((variable))`` placeholders: finding and resolving them.

Syntax (BOSH CLI / director):

* ``((name))`` — one optional space is allowed inside the parens;
  ``((!name))`` is the legacy spiff escape and means the same as ``((name))``.
* A placeholder that is the *whole* value (``instances: ((zk_instances))``)
  is replaced by the variable's value with its type kept (int, list, map ...).
  One embedded in a longer string (``https://((ip)):8443``) needs a string or
  integer value.
* ``((name.key.sub))`` looks up ``name`` and then walks into it:
  ``((cert.ca))``, ``((ssh.public_key))``, ``((azs.0))`` (numeric segments
  index lists).
* Map keys are interpolated too (``- ((vcenter_cluster)): {}``).

Every missing variable, bad name and wrong type is collected and reported in
one :class:`ManifestError` naming each path. Variable values are never put in
error messages (they are secrets).

``lookup`` is a callable ``name -> value`` that raises ``KeyError`` (or returns
:data:`MISSING`) for an unknown variable, or simply a mapping. It is called at
most once per name per ``interpolate`` call, so a variable store can record the
exact version it handed out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ManifestError, item_key, join_path
from .yaml import unshare

PLACEHOLDER = re.compile(r"\(\( ?(!?[-/.\w]+) ?\)\)")
FULL_PLACEHOLDER = re.compile(r"\A\(\( ?(!?[-/.\w]+) ?\)\)\Z")
_NAME_CHARS = re.compile(r"\A[A-Za-z0-9_\-./!]+\Z")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Returned by a lookup callable for a variable it does not know."""


def is_placeholder(value: Any) -> bool:
    """True if ``value`` is a string that is exactly one ``((name))`` placeholder."""
    return isinstance(value, str) and FULL_PLACEHOLDER.match(value) is not None


def contains_placeholder(value: Any) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def split_reference(ref: str) -> tuple[str, list[str]]:
    """``"!cert.ca"`` -> ``("cert", ["ca"])``: the variable name and the keys walked into it."""
    ref = ref[1:] if ref.startswith("!") else ref
    name, *keys = ref.split(".")
    return name, keys


def variable_name_error(ref: str) -> str | None:
    """Why a placeholder's content is not a valid BOSH variable reference, or None."""
    if not _NAME_CHARS.match(ref):
        return (
            f"Variable name '{ref}' must only contain alphanumeric, underscores, dashes, "
            "dots, forward slashes and a leading '!'"
        )
    if "!" in ref[1:]:
        return f"Variable name '{ref}' may only contain '!' as its first character"
    name, keys = split_reference(ref)
    if not name:
        return f"Variable name '{ref}' must not be empty or start with '.'"
    if name.endswith("/"):
        return f"Variable name '{ref}' must not end with a '/'"
    if "//" in name:
        return f"Variable name '{ref}' must not contain '//'"
    if any(k == "" for k in keys):
        return f"Variable name '{ref}' must not contain empty key segments ('..' or a trailing '.')"
    return None


def find_variables(doc: Any, skip: Callable[[tuple], bool] | None = None) -> set[str]:
    """Names of every variable referenced in ``doc`` (keys stripped: ``cert`` for ``((cert.ca))``)."""
    names: set[str] = set()

    def walk(node: Any, segs: tuple) -> None:
        if skip is not None and segs and skip(segs):
            return
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str):
                    names.update(split_reference(m)[0] for m in PLACEHOLDER.findall(k))
                walk(v, (*segs, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*segs, i))
        elif isinstance(node, str):
            names.update(split_reference(m)[0] for m in PLACEHOLDER.findall(node))

    walk(doc, ())
    names.discard("")
    return names


def deferred_to_render(segs: tuple) -> bool:
    """The subtrees the BOSH director leaves for job rendering, not manifest interpolation.

    ``properties`` (global, instance group, job, link consumer) and instance
    group ``env`` are interpolated per instance when templates are rendered,
    with the deployment's variable set. Pass this as ``skip=``.
    """
    if segs == ("properties",):
        return True
    if (
        len(segs) < 3
        or segs[0] not in ("instance_groups", "addons")
        or not isinstance(segs[1], int)
    ):
        return False
    rest = segs[2:]
    if rest in (("properties",), ("env",)):
        return True
    if len(rest) == 3 and rest[0] == "jobs" and rest[2] == "properties":
        return True
    return (
        len(rest) == 5 and rest[0] == "jobs" and rest[2] == "consumes" and rest[4] == "properties"
    )


class _Resolver:
    def __init__(self, lookup: Callable[[str], Any] | Mapping[str, Any]):
        self.lookup = lookup
        self.cache: dict[str, Any] = {}
        self.errors: list[tuple[str, str]] = []
        self.missing: dict[str, list[str]] = {}

    def fetch(self, name: str) -> Any:
        if name not in self.cache:
            try:
                if isinstance(self.lookup, Mapping):
                    value = self.lookup[name] if name in self.lookup else MISSING
                else:
                    value = self.lookup(name)
            except KeyError:
                value = MISSING
            self.cache[name] = value
        return self.cache[name]

    def resolve(self, ref: str, path: str) -> Any:
        problem = variable_name_error(ref)
        if problem:
            self.errors.append((path, problem))
            return MISSING
        name, keys = split_reference(ref)
        value = self.fetch(name)
        if value is MISSING:
            self.missing.setdefault(name, []).append(path)
            return MISSING
        walked = name
        for key in keys:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and re.fullmatch(r"-?\d+", key):
                idx = int(key)
                if not -len(value) <= idx < len(value):
                    self.errors.append(
                        (
                            path,
                            f"Expected variable '{walked}' to have index {idx} (it has {len(value)} items)",
                        )
                    )
                    return MISSING
                value = value[idx]
            elif isinstance(value, dict):
                self.errors.append((path, f"Expected to find key '{key}' in variable '{walked}'"))
                return MISSING
            else:
                self.errors.append(
                    (path, f"Expected variable '{walked}' to be a map to look up key '{key}'")
                )
                return MISSING
            walked = f"{walked}.{key}"
        return unshare(value)

    def string(self, text: str, path: str) -> Any:
        full = FULL_PLACEHOLDER.match(text)
        if full:
            value = self.resolve(full.group(1), path)
            return text if value is MISSING else value

        def sub(m: re.Match) -> str:
            value = self.resolve(m.group(1), path)
            if value is MISSING:
                return m.group(0)
            if isinstance(value, bool) or not isinstance(value, str | int):
                self.errors.append(
                    (
                        path,
                        f"Variable '{m.group(1)}' is used inside a string but its value is not a string "
                        "or an integer (supported types for interpolation within a string are "
                        "integers and strings)",
                    )
                )
                return m.group(0)
            return str(value)

        return PLACEHOLDER.sub(sub, text)


def interpolate(
    doc: Any,
    lookup: Callable[[str], Any] | Mapping[str, Any],
    *,
    skip: Callable[[tuple], bool] | None = None,
) -> Any:
    """Return a copy of ``doc`` with every ``((placeholder))`` resolved.

    ``skip(segments)`` may exclude subtrees (``segments`` is the tuple of raw
    keys and list indexes from the root; see :func:`deferred_to_render`).
    Raises :class:`ManifestError` listing every missing variable with the
    paths that use it, every invalid name and every wrongly typed value.
    """
    r = _Resolver(lookup)

    def walk(node: Any, segs: tuple, path: str) -> Any:
        if skip is not None and segs and skip(segs):
            return unshare(node)
        if isinstance(node, dict):
            out: dict = {}
            for k, v in node.items():
                key = k
                if isinstance(k, str) and PLACEHOLDER.search(k):
                    key = r.string(k, join_path(path, k))
                    if not isinstance(key, str | int) or isinstance(key, bool):
                        r.errors.append(
                            (join_path(path, k), "A map key placeholder must resolve to a string")
                        )
                        key = k
                out[key] = walk(v, (*segs, k), join_path(path, k))
            return out
        if isinstance(node, list):
            return [
                walk(v, (*segs, i), join_path(path, item_key(v, i))) for i, v in enumerate(node)
            ]
        if isinstance(node, str) and "((" in node:
            return r.string(node, path)
        return node

    result = walk(doc, (), "")
    errors = list(r.errors)
    for name, paths in r.missing.items():
        errors.extend((p, f"Expected to find variable '{name}'") for p in paths)
    if errors:
        raise ManifestError(errors, "variables")
    return result
