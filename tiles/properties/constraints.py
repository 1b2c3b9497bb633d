"""Blueprint ``constraints`` on text: Ruby regular expressions and cron schedules.

Tiles write ``must_match_regex`` for Ruby's engine; ``ruby_regex()`` compiles
such a pattern with Python semantics as close as matters here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from tiles.properties.base import PropertyError

_POSIX_CLASSES = {
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:alnum:]": "a-zA-Z0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:space:]": r"\s",
    "[:xdigit:]": "0-9a-fA-F",
    "[:punct:]": r"!-/:-@\[-`{-~",
    "[:word:]": r"\w",
}


@lru_cache(maxsize=512)
def ruby_regex(pattern: str) -> re.Pattern:
    """Compile a Ruby regex with Python semantics as close as matters here.

    Ruby's ``^``/``$`` always match at line boundaries (so MULTILINE), ``\\z``
    is Python's ``\\Z``, Ruby's ``\\Z`` allows a final newline, ``\\h`` is a
    hex digit and ``(?<name>`` is a named group. Raises ``re.error``.
    """
    for posix, cls in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, cls)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(
                {"z": r"\Z", "Z": r"(?=\n?\Z)", "h": "[0-9a-fA-F]", "H": "[^0-9a-fA-F]"}.get(
                    nxt, ch + nxt
                )
            )
            i += 2
            continue
        if pattern.startswith("(?<", i) and i + 3 < len(pattern) and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return re.compile("".join(out), re.MULTILINE)


_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


def _is_cron(value: str) -> bool:
    value = value.strip()
    if value.startswith("@"):
        return value in (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ) or bool(re.fullmatch(r"@every \d+[smh](\d+[smh])*", value))
    fields = value.split()
    return len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields)


def check_string_constraints(bp: Mapping, text: str) -> None:
    constraints = bp.get("constraints")
    if not constraints:
        return
    if isinstance(constraints, Mapping):
        constraints = [constraints]
    for c in constraints:
        if not isinstance(c, Mapping):
            continue
        if "must_match_regex" in c:
            try:
                rx = ruby_regex(str(c["must_match_regex"]))
            except re.error:
                raise PropertyError("the tile's constraint regex is invalid") from None
            if not rx.search(text):
                raise PropertyError(c.get("error_message") or f"must match {c['must_match_regex']}")
        if c.get("must_be_cron_schedule") and not _is_cron(text):
            raise PropertyError(c.get("error_message") or "must be a cron schedule")
