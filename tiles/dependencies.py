"""Product dependencies: ``requires_product_versions`` checked as Ops Manager does (pure).

A tile lists the products it needs: ``[{name, version: '~> 2.4', optional}]``.
The constraint is RubyGems' requirement syntax, which Ops Manager uses:
operators ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=`` and ``~>`` ("pessimistic":
``~> 2.4`` is ``>= 2.4, < 3``; ``~> 2.4.1`` is ``>= 2.4.1, < 2.5``), several
joined by commas, a bare version meaning ``=``. Versions compare segment by
segment, numbers as numbers; a segment with letters (``1.0-build.0``,
``2.1.0.rc1``) marks a prerelease, lower than the release.

``unmet(template, present)`` says, per requirement, why it is not met: the
product is absent (unless ``optional``) or present at a version outside the
constraint. Staging and Apply Changes refuse a product with unmet
requirements, naming the product and the constraint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tiles.template import ProductTemplate

__all__ = ["ConstraintError", "satisfies", "unmet"]

_OPS = ("~>", ">=", "<=", "!=", "=", ">", "<")
_CLAUSE = re.compile(r"^\s*(~>|>=|<=|!=|=|>|<)?\s*([0-9A-Za-z][0-9A-Za-z.\-+_]*)\s*$")


class ConstraintError(ValueError):
    """A constraint that cannot be read."""


def _segments(version: str) -> list[int | str]:
    # RubyGems: "1.0-build.0" -> 1, 0, "pre", "build", 0 (a '-' starts a prerelease).
    version = str(version).strip().replace("-", ".pre.")
    out: list[int | str] = []
    for part in re.findall(r"[0-9]+|[A-Za-z]+", version):
        out.append(int(part) if part.isdigit() else part.lower())
    while len(out) > 1 and out[-1] == 0:
        out.pop()
    return out


def _compare(a: str, b: str) -> int:
    sa, sb = _segments(a), _segments(b)
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else 0
        y = sb[i] if i < len(sb) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1  # a prerelease is lower than any number there
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return -1 if x < y else 1  # type: ignore[operator]
    return 0


def _bump(version: str) -> str:
    """The upper bound of ``~> version``: drop the last segment, increment the one before."""
    nums = [s for s in _segments(version) if isinstance(s, int)]
    if len(nums) > 1:
        nums = nums[:-1]
    nums[-1] += 1
    return ".".join(str(n) for n in nums)


def _clauses(constraint: str) -> list[tuple[str, str]]:
    clauses = []
    for raw in str(constraint).split(","):
        m = _CLAUSE.match(raw)
        if not m:
            raise ConstraintError(f"'{constraint}' is not a version constraint")
        clauses.append((m.group(1) or "=", m.group(2)))
    return clauses


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``version`` meets ``constraint`` (ConstraintError if it cannot be read)."""
    for op, want in _clauses(constraint):
        c = _compare(version, want)
        ok = {
            "=": c == 0,
            "!=": c != 0,
            ">": c > 0,
            "<": c < 0,
            ">=": c >= 0,
            "<=": c <= 0,
            "~>": c >= 0 and _compare(version, _bump(want)) < 0,
        }[op]
        if not ok:
            return False
    return True


def unmet(template: ProductTemplate, present: Mapping[str, str]) -> list[str]:
    """Why each of the template's ``requires_product_versions`` is not met.

    ``present`` maps product name to the version staged. Messages name the
    product and the constraint: ``requires p-mysql ~> 2.4: p-mysql is not
    staged``, ``requires p-mysql ~> 2.4: p-mysql 2.3.1 is staged``.
    """
    out = []
    for req in template.requires_product_versions:
        name, constraint = req.get("name"), str(req.get("version") or "")
        head = f"requires {name} {constraint}".rstrip()
        version = present.get(name)
        if version is None:
            if not req.get("optional"):
                out.append(f"{head}: {name} is not staged; import and stage it first")
            continue
        try:
            ok = satisfies(version, constraint) if constraint else True
        except ConstraintError as e:
            out.append(f"{head}: {e}")
            continue
        if not ok:
            out.append(f"{head}: {name} {version} is staged")
    return out
