"""YAML in and out, the way BOSH reads it.

``load_yaml`` is ``yaml.safe_load`` with three differences that matter for
manifests:

* **Aliases are expanded.** PyYAML hands back the *same* Python object for
  every ``*alias`` of an ``&anchor``; the BOSH CLI (Go yaml.v2) decodes each
  alias as an independent copy. With shared objects, a go-patch op that edits
  one alias silently edits all of them (cf-deployment + ``use-external-dbs.yml``
  fails that way), so every node is rebuilt and no two paths share an object.
* **Duplicate keys are refused** (yaml.v2 refuses them too) instead of the
  last one silently winning.
* **Timestamps stay strings** (yaml.v2 decodes them as strings into a
  generic map), so a value like ``2019-01-01`` survives a JSON round trip.

Syntax errors become a :class:`ManifestError` naming the line and column.
``dump_yaml`` writes stable, block-style YAML with keys in insertion order.
"""

from __future__ import annotations

from typing import Any

import yaml as _yaml
from yaml.constructor import ConstructorError

from .errors import ManifestError

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(_yaml.SafeLoader):
    """SafeLoader without timestamp resolution and with duplicate-key detection."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, _yaml.MappingNode):
            seen: set = set()
            for key_node, _value in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    continue  # unhashable key: the base class reports it
                if duplicate:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# Bounds for untrusted YAML. Real documents are far below them (cf-deployment
# expands to ~40,000 nodes, ~15 levels deep); a "billion laughs" document
# (anchors of aliases of anchors) or ``[[[[...]]]]`` is refused before it is
# built: expanding aliases would exhaust memory, and libyaml's recursive
# composer overflows the C stack (a segfault, not an exception) on deep nesting.
MAX_YAML_DEPTH = 200
MAX_YAML_NODES = 2_000_000

_Events = getattr(_yaml, "CSafeLoader", _yaml.SafeLoader)


class YamlBoundsError(_yaml.YAMLError):
    """A YAML text nests too deeply or expands (through aliases) to too many nodes."""


def check_yaml_bounds(
    text: str | bytes, *, max_depth: int = MAX_YAML_DEPTH, max_nodes: int = MAX_YAML_NODES
) -> None:
    """Raise :class:`YamlBoundsError` if ``text`` is too deep or expands too far.

    Walks the parser's event stream (iterative, nothing is built): each
    anchored node remembers its expanded size, so an alias costs what it
    would cost once copied. Syntax errors are left to the real load.
    """
    try:
        _walk_bounds(text, _Events, max_depth, max_nodes)
    except YamlBoundsError:
        raise
    except _yaml.YAMLError:
        if _Events is _yaml.SafeLoader:
            return  # the real load reports syntax errors with their position
        # libyaml refuses some documents with limits of its own (PyYAML 6.0.4's
        # scanner stops at 1000 nested flow levels, before any event): walk again
        # with the pure-Python parser, which has none, so our bounds and our
        # words decide, whichever libyaml is installed.
        try:
            _walk_bounds(text, _yaml.SafeLoader, max_depth, max_nodes)
        except YamlBoundsError:
            raise
        except _yaml.YAMLError:
            return


def _walk_bounds(text: str | bytes, loader, max_depth: int, max_nodes: int) -> None:
    """One pass over the event stream of ``loader``'s parser (see check_yaml_bounds)."""
    sizes: dict[str, int] = {}
    stack: list[list] = [[0, None]]  # [expanded size so far, anchor]
    total = 0
    for event in _yaml.parse(text, Loader=loader):
        if isinstance(event, _yaml.CollectionStartEvent):
            if len(stack) > max_depth:
                raise YamlBoundsError(f"it nests more than {max_depth} levels deep")
            stack.append([1, event.anchor])
            total += 1
            continue
        if isinstance(event, _yaml.CollectionEndEvent):
            size, anchor = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, _yaml.ScalarEvent):
            size = 1
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, _yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)
            total += size
        else:
            continue
        stack[-1][0] += size
        if total > max_nodes:
            raise YamlBoundsError(
                f"it expands to more than {max_nodes} nodes (aliases of aliases?)"
            )


def _unshare(value: Any, stack: set[int] | None = None, path: str = "") -> Any:
    """Rebuild containers so that every path owns its own object (expands aliases)."""
    if not isinstance(value, dict | list):
        return value
    stack = stack if stack is not None else set()
    if id(value) in stack:
        raise ManifestError([(path, "recursive YAML alias (an anchor refers to itself)")])
    stack.add(id(value))
    try:
        if isinstance(value, dict):
            return {
                k: _unshare(v, stack, f"{path}/{k}" if path else str(k)) for k, v in value.items()
            }
        return [_unshare(v, stack, f"{path}/{i}" if path else str(i)) for i, v in enumerate(value)]
    finally:
        stack.discard(id(value))


def unshare(value: Any) -> Any:
    """Deep copy of a plain YAML/JSON tree (dicts, lists, scalars) with no shared nodes."""
    return _unshare(value)


def load_yaml_document(text: str | bytes, what: str = "manifest") -> Any:
    """Parse one YAML document of any shape (an ops file is a list, for example)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError([("", f"{what} is not UTF-8 text: {exc}")], what) from None
    try:
        check_yaml_bounds(text)
        doc = _yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except YamlBoundsError as exc:
        raise ManifestError([("", f"{what} is refused: {exc}")], what) from None
    except _yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        raise ManifestError([("", f"{what} is not valid YAML{where}: {problem}")], what) from None
    except _yaml.YAMLError as exc:
        raise ManifestError([("", f"{what} is not valid YAML: {exc}")], what) from None
    except RecursionError:
        raise ManifestError(
            [("", f"{what} is refused: it nests more than {MAX_YAML_DEPTH} levels deep")], what
        ) from None
    return _unshare(doc)


def load_yaml(text: str | bytes, what: str = "manifest") -> dict:
    """Parse a YAML document whose top level must be a mapping."""
    doc = load_yaml_document(text, what)
    if doc is None:
        raise ManifestError([("", f"{what} is empty; expected a YAML mapping")], what)
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"a {type(doc).__name__}"
        raise ManifestError([("", f"{what} must be a YAML mapping, got {kind}")], what)
    return doc


class _Dumper(_yaml.SafeDumper):
    def ignore_aliases(self, data):  # never write &anchors: each path stands alone
        return True

    def increase_indent(self, flow=False, indentless=False):
        # Indent list items under their key, the way BOSH manifests are written.
        return super().increase_indent(flow, False)


def _represent_str(dumper: _yaml.SafeDumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(tuple, lambda d, data: d.represent_list(list(data)))


def dump_yaml(doc: Any) -> str:
    """Stable block-style YAML, keys in insertion order, multi-line strings as ``|``."""
    return _yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )
