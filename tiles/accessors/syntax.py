"""Finding ``(( ... ))`` expressions in text and parsing one into a tree.

``find_expressions()`` splits a string into text, expressions and BOSH
variables (``((( name )))``); ``parse_expression()`` gives a tree of
``("ref", Ref)``, ``("lit", v)``, ``("or"|"and", a, b)``, ``("not", a)``
and ``("if", c, a, b)`` nodes. No values are read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


class AccessorError(Exception):
    """An expression cannot be evaluated; the message names it (no values)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@lru_cache(maxsize=8192)
def find_expressions(text: str) -> tuple[tuple[str, str], ...]:
    """Split text into ``("text", s)``, ``("expr", inner)`` and ``("bosh", name)`` parts.

    ``((( x )))`` is a BOSH variable; ``(( ... ))`` ends at the first ``))``
    outside quotes and outside parentheses opened within it.
    """
    parts: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while True:
        start = text.find("((", pos)
        if start < 0:
            break
        if text.startswith("(((", start):
            end = text.find(")))", start + 3)
            if end < 0:
                break
            if start > pos:
                parts.append(("text", text[pos:start]))
            parts.append(("bosh", text[start + 3 : end].strip()))
            pos = end + 3
            continue
        i = start + 2
        depth = 0
        quote = None
        end = -1
        while i < n:
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0 and text.startswith("))", i):
                    end = i
                    break
                depth = max(0, depth - 1)
            i += 1
        if end < 0:
            break
        if start > pos:
            parts.append(("text", text[pos:start]))
        parts.append(("expr", text[start + 2 : end].strip()))
        pos = end + 2
    if pos < n:
        parts.append(("text", text[pos:]))
    return tuple(parts)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<op>\|\||&&|\?|:|!|\(|\)|\[\]|\{\})
  | (?P<num>-?\d+(?:\.\d+)?(?![\w.\-]))
  | (?P<ref>(?:\.\.|\.|\$)?[A-Za-z0-9_][\w\-]*\??
        (?:\([^()]*\))?
        (?:\.[A-Za-z0-9_][\w\-]*\??(?:\([^()]*\))?)*)
    """,
    re.VERBOSE,
)


_SEGMENT_RE = re.compile(r"([A-Za-z0-9_][\w\-]*\??)(?:\(([^()]*)\))?")


@dataclass(frozen=True)
class Ref:
    raw: str
    kind: str  # "dot", "product", "context", "local"
    segments: tuple[tuple[str, str | None], ...]  # (name, call argument)


def _tokenize(expr: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if not m or m.end() == pos:
            raise AccessorError(f"cannot parse (( {expr} )) at '{expr[pos : pos + 20]}'")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _make_ref(raw: str) -> Ref | tuple:
    if raw in ("true", "false"):
        return ("lit", raw == "true")
    if raw in ("nil", "null"):
        return ("lit", None)
    if raw.startswith(".."):
        kind, body = "product", raw[2:]
    elif raw.startswith("."):
        kind, body = "dot", raw[1:]
    elif raw.startswith("$"):
        kind, body = "context", raw[1:]
    else:
        kind, body = "local", raw
    segments = []
    pos = 0
    while pos < len(body):
        m = _SEGMENT_RE.match(body, pos)
        if not m:
            raise AccessorError(f"cannot parse reference {raw}")
        arg = m.group(2)
        segments.append((m.group(1), None if arg is None else arg.strip().strip("'\"")))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ".":
                raise AccessorError(f"cannot parse reference {raw}")
            pos += 1
    return ("ref", Ref(raw, kind, tuple(segments)))


@lru_cache(maxsize=8192)
def parse_expression(expr: str) -> tuple:
    """Parse to a small AST of tuples: lit, ref, or, and, not, if."""
    tokens = _tokenize(expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def take(value=None):
        nonlocal pos
        tok = peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise AccessorError(f"cannot parse (( {expr} )): expected {value or 'a value'}")
        pos += 1
        return tok

    def primary():
        kind, text = peek()
        if kind == "str":
            take()
            return ("lit", text[1:-1])
        if kind == "num":
            take()
            return ("lit", float(text) if "." in text else int(text))
        if kind == "op" and text == "[]":
            take()
            return ("lit", [])
        if kind == "op" and text == "{}":
            take()
            return ("lit", {})
        if kind == "op" and text == "(":
            take()
            node = ternary()
            take(")")
            return node
        if kind == "op" and text == "!":
            take()
            return ("not", primary())
        if kind == "ref":
            take()
            return _make_ref(text)
        raise AccessorError(f"cannot parse (( {expr} ))")

    def conj():
        node = primary()
        while peek() == ("op", "&&"):
            take()
            node = ("and", node, primary())
        return node

    def disj():
        node = conj()
        while peek() == ("op", "||"):
            take()
            node = ("or", node, conj())
        return node

    def ternary():
        cond = disj()
        if peek() == ("op", "?"):
            take()
            a = ternary()
            take(":")
            b = ternary()
            return ("if", cond, a, b)
        return cond

    if not tokens:
        raise AccessorError("empty (( ))")
    node = ternary()
    if pos != len(tokens):
        raise AccessorError(f"cannot parse (( {expr} )): unexpected '{tokens[pos][1]}'")
    return node
