"""go-patch pointers: parsing and printing the paths of ops files.

Pointer syntax (cppforlife/go-patch, as used by the BOSH CLI):

* ``/key`` a map key, ``/0`` an array index (negative counts from the end),
  ``/-`` after the last item (append; last token only), ``/key=value`` the one
  array item that is a map whose ``key`` equals the *string* ``value``;
* a ``?`` suffix makes the token optional, and optionality carries over to
  every token to its right: ``replace`` creates missing maps/arrays and, for
  ``name=x?``, appends a new ``{name: x}`` item; ``remove`` of a missing
  optional thing is a no-op;
* ``:prev``/``:next`` shift an index or match by one, ``:before``/``:after``
  (last token only) insert instead of overwrite;
* escapes ``~0`` -> ``~``, ``~1`` -> ``/``, ``~7`` -> ``:`` (plus ``~2`` -> ``?``
  and ``~3`` -> ``=``).

Errors are ``OpError`` with go-patch's wording; ``go_type`` names a YAML
value the way go-patch's messages do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_DECODE = re.compile(r"~[01237]")
_DECODE_MAP = {"~0": "~", "~1": "/", "~2": "?", "~3": "=", "~7": ":"}
_ENCODE_MAP = {"~": "~0", "/": "~1", "?": "~2", "=": "~3", ":": "~7"}
_MODIFIERS = ("prev", "next", "before", "after")
_INT = re.compile(r"^[+-]?\d+$")


def _decode(s: str) -> str:
    return _DECODE.sub(lambda m: _DECODE_MAP[m.group(0)], s)


def _encode(s: str) -> str:
    return "".join(_ENCODE_MAP.get(c, c) for c in s)


class OpError(Exception):
    """A single failed operation (wrapped into a ManifestError by apply_ops)."""


@dataclass(frozen=True)
class Token:
    kind: str  # "index" | "after_last" | "match" | "key"
    key: str = ""
    value: str = ""
    index: int = 0
    optional: bool = False
    modifiers: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Pointer:
    tokens: tuple[Token, ...]

    def __str__(self) -> str:
        return pointer_str(self.tokens)


def pointer_str(tokens: tuple[Token, ...] | list[Token]) -> str:
    parts = [""]
    optional = False
    for t in tokens:
        mods = "".join(f":{m}" for m in t.modifiers)
        if t.kind == "index":
            parts.append(f"{t.index}{mods}")
        elif t.kind == "after_last":
            parts.append("-")
        elif t.kind == "match":
            val = _encode(t.value)
            if t.optional and not optional:
                val += "?"
                optional = True
            parts.append(f"{_encode(t.key)}={val}{mods}")
        else:
            s = _encode(t.key)
            if t.optional and not optional:
                s += "?"
                optional = True
            parts.append(s)
    return "/".join(parts) if len(parts) > 1 else ""


def _split_modifiers(tok: str) -> tuple[str, list[str]]:
    """``"name=x:prev"`` -> ``("name=x", ["prev"])``."""
    modifiers: list[str] = []
    pieces = tok.split(":")
    if len(pieces) > 1:
        tok = pieces[0]
        for p in pieces[1:]:
            if p not in _MODIFIERS:
                raise OpError(
                    "Expected to find one of the following modifiers: 'prev', 'next', "
                    f"'before', or 'after' but found '{p}'"
                )
            modifiers.append(p)
    return tok, modifiers


def parse_pointer(path: str) -> Pointer:
    """Parse a go-patch path; raises OpError with go-patch's messages."""
    if not isinstance(path, str):
        raise OpError(f"Expected path to be a string, found {go_type(path)}")
    if path == "":
        return Pointer(())
    if not path.startswith("/"):
        raise OpError("Expected to start with '/'")
    raw = path.split("/")[1:]
    tokens: list[Token] = []
    optional = False
    for i, tok in enumerate(raw):
        is_last = i == len(raw) - 1
        tok, modifiers = _split_modifiers(tok)
        if is_last and tok == "-":
            if modifiers:
                raise OpError("Expected not to find any modifiers with after last index token")
            tokens.append(Token("after_last"))
            continue
        if _INT.match(tok):
            tokens.append(Token("index", index=int(tok), modifiers=tuple(modifiers)))
            continue
        if tok.endswith("?"):
            optional = True
            tok = tok[:-1]
        if "=" in tok:
            k, v = tok.split("=", 1)
            tokens.append(
                Token(
                    "match",
                    key=_decode(k),
                    value=_decode(v),
                    optional=optional,
                    modifiers=tuple(modifiers),
                )
            )
            continue
        if modifiers:
            raise OpError("Expected not to find any modifiers with key token")
        tokens.append(Token("key", key=_decode(tok), optional=optional))
    return Pointer(tuple(tokens))


_GO_TYPES = {
    dict: "map[interface {}]interface {}",
    list: "[]interface {}",
    str: "string",
    bool: "bool",
    int: "int",
    float: "float64",
}


def go_type(obj: Any) -> str:
    """The Go type name go-patch would print for a decoded YAML value."""
    if obj is None:
        return "<nil>"
    return _GO_TYPES.get(type(obj), type(obj).__name__)
