"""Errors of the manifest model.

Every validator in this package collects *all* problems it finds and raises a
single :class:`ManifestError` at the end, so an operator sees everything that
is wrong with a manifest at once instead of fixing one line per deploy.

Each problem is a ``(path, message)`` pair. Paths are BOSH style: list items
that have a ``name`` are addressed by that name, others by their index:
``instance_groups/zookeeper/azs``, ``instance_groups/zookeeper/jobs/zookeeper/
properties``, ``networks/default/subnets/0/gateway``. The empty path means the
document as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable


class ManifestError(Exception):
    """One or more problems in a manifest, cloud-config, ops file or variable set."""

    def __init__(self, errors: Iterable[tuple[str, str]], what: str = "manifest"):
        self.errors: list[tuple[str, str]] = [(str(p), str(m)) for p, m in errors]
        self.what = what
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{p}: {m}" if p else m for p, m in self.errors)

    @property
    def paths(self) -> list[str]:
        """The paths named by the errors, in order (handy for forms and tests)."""
        return [p for p, _ in self.errors]

    def as_dict(self) -> dict:
        """JSON shape used by the API: ``{"errors": [{"path": .., "message": ..}]}``."""
        return {"errors": [{"path": p, "message": m} for p, m in self.errors]}


class ErrorCollector:
    """Accumulates ``(path, message)`` pairs while a validator walks a document."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append((path, message))

    def extend(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors.extend(errors)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, what: str = "manifest") -> None:
        if self.errors:
            raise ManifestError(self.errors, what)


def join_path(base: str, *parts: object) -> str:
    """``join_path("instance_groups/zk", "azs") == "instance_groups/zk/azs"``."""
    out = base
    for part in parts:
        part = str(part)
        out = f"{out}/{part}" if out else part
    return out


def item_key(item: object, index: int) -> str:
    """How a list item is named in a path: its ``name`` if it has one, else its index."""
    if isinstance(item, dict):
        name = item.get("name")
        if isinstance(name, str) and name:
            return name
    return str(index)
