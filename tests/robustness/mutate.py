"""Structural mutation of YAML documents, for "bad input never crashes" tests.

A mutation takes a real document (a tile's metadata, a manifest, a
cloud-config, an ops file) and breaks it the way a careless hand or a bad
tool would: one node replaced by a value of another type, a key deleted, a
junk key or list item added. Paths are chosen by index into the list of
every node of the document, so hypothesis can shrink a failure to the one
node that matters and print it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# Strings that mean something to one parser or another: placeholders,
# accessors, percentages, IPs and ranges, go-patch tokens, empty text.
SPECIAL_STRINGS = [
    "",
    " ",
    "x",
    "((x))",
    "((/a/b))",
    "((x.y))",
    "(( .properties.x.value ))",
    "(( .nope.x.value ))",
    "((( x )))",
    "(( ",
    "-1",
    "0",
    "1%",
    "0%",
    "101%",
    "abc%",
    "10.0.0.1",
    "10.0.0.0/33",
    "10.0.0.0/24",
    "10.0.0.9 - 10.0.0.1",
    "10.0.0.1-10.0.0.300",
    "::1",
    "fd00::/120",
    "1000-2000",
    "1000 - 60000",
    "-5000",
    "name=x",
    "/",
    "/-",
    "~1",
    "a/b",
    "latest",
    "*",
    "true",
    "null",
    "1.2.3",
    ":",
    "{}",
    "é中\u0000",
]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.sampled_from([0, 1, -1, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(SPECIAL_STRINGS),
)

KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["name", "type", "value", "path", "properties", "jobs", "azs", "networks"]),
    st.integers(min_value=-3, max_value=3),
    st.booleans(),
    st.none(),
)


# Stands for a 200 kB string; expanded when applied so failure reports stay short.
HUGE = "<200 kB of A>"


def _deep(depth: int) -> Any:
    node: Any = "bottom"
    for i in range(depth):
        node = [node] if i % 2 else {"k": node}
    return node


JUNK = st.one_of(
    SCALARS,
    st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3)
        ),
        max_leaves=6,
    ),
    st.just(HUGE),
    st.builds(_deep, st.sampled_from([50, 300])),
)

# One mutation: (kind, node selector, key, value). The selector is taken
# modulo the number of nodes, so every drawn integer names a node.
MUTATION = st.tuples(
    st.sampled_from(["replace", "replace", "replace", "delete", "add"]),
    st.integers(min_value=0, max_value=2**31),
    KEYS,
    JUNK,
)


def mutations(max_size: int = 3, values: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """1..max_size mutations; ``values`` adds plausible replacement values
    (names, IPs, counts of the document at hand) so that more mutated
    documents get past the first validator and reach deeper code."""
    mutation = MUTATION
    if values is not None:
        mutation = st.one_of(
            MUTATION,
            st.tuples(
                st.sampled_from(["replace", "replace", "add"]),
                st.integers(min_value=0, max_value=2**31),
                KEYS,
                values,
            ),
        )
    return st.lists(mutation, min_size=1, max_size=max_size)


def node_paths(doc: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every node's path (a tuple of keys / indexes), the root first."""
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from node_paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from node_paths(v, (*path, i))


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def mutate(doc: Any, muts: list[tuple]) -> Any:
    """A mutated deep copy of ``doc`` (the original is left alone)."""
    doc = copy.deepcopy(doc)
    for kind, selector, key, value in muts:
        paths = list(node_paths(doc))
        path = paths[selector % len(paths)]
        value = "A" * 200_000 if value == HUGE else copy.deepcopy(value)
        if kind == "add":
            node = _get(doc, path)
            if isinstance(node, dict):
                node[key] = value
            elif isinstance(node, list):
                node.insert(selector % (len(node) + 1), value)
            elif path:
                _get(doc, path[:-1])[path[-1]] = value
            else:
                doc = value
            continue
        if not path:
            doc = None if kind == "delete" else value
            continue
        parent = _get(doc, path[:-1])
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return doc


def describe(muts: list[tuple], doc: Any) -> str:
    """Which nodes the mutations touched (for failure messages)."""
    out = []
    for kind, selector, key, value in muts:
        paths = list(node_paths(doc))
        path = paths[selector % len(paths)]
        out.append(f"{kind} {'/'.join(map(str, path)) or '<root>'} {key!r} {str(value)[:80]!r}")
        doc = mutate(doc, [(kind, selector, key, value)])
    return "; ".join(out)
