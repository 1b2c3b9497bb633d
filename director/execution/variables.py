"""The variable store as a deploy sees it: absolute names, generation, recording.

Values live in ``Credential`` rows (the console's config server), named
absolutely as BOSH names them: ``/<director>/<deployment>/<name>`` for a
relative ``((name))``, the name itself when it starts with ``/``.

``DeployVariables`` resolves ``((placeholders))`` for one deploy: it generates
the manifest's missing ``variables:`` on first use (BOSH ``no-overwrite``),
and records every credential version it hands out in the deploy's
``VariableSet`` so an instance keeps the exact versions it was deployed with.
``PreviewVariables`` does the same without writing anything: missing
variables are generated in memory and reported as to-be-generated.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

from director.manifest import MISSING, generate_missing
from director.models import Credential, Variable, VariableSet


def absolute_name(name: str, deployment: str) -> str:
    if name.startswith("/"):
        return name
    return f"/{settings.DIRECTOR_NAME}/{deployment}/{name}"


def store_vars(deployment: str, values: dict[str, Any]) -> list[str]:
    """Store operator-given ``vars`` (``bosh deploy -v``) as credentials of the deployment.

    Unlike the BOSH CLI, which interpolates them into the manifest text
    before sending it, we keep them in the variable store: they never appear
    in task arguments or logs. A value equal to the latest version is not
    stored again. Returns the absolute names written.
    """
    written = []
    for name, value in (values or {}).items():
        full = absolute_name(str(name), deployment)
        latest = Credential.latest(full)
        if latest is not None and latest.value == value:
            continue
        Credential.put(full, "value", value)
        written.append(full)
    return written


class DeployVariables:
    """Variable lookups of one deploy of ``deployment``, recorded in ``variable_set``."""

    def __init__(self, deployment: str, variable_set: VariableSet | None = None):
        self.deployment = deployment
        self.variable_set = variable_set
        self.generated: list[str] = []
        self._types: dict[str, str] = {}
        self._used: dict[str, Credential] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> Any:
        row = Credential.latest(absolute_name(name, self.deployment))
        return None if row is None else row.value

    def _put(self, name: str, value: Any) -> None:
        Credential.put(absolute_name(name, self.deployment), self._types.get(name, ""), value)

    def generate(self, definitions: list[dict]) -> list[str]:
        """Generate and store the defined variables the store does not hold yet."""
        for d in definitions or []:
            if isinstance(d, dict) and isinstance(d.get("name"), str):
                self._types[d["name"]] = str(d.get("type") or "")
        names = generate_missing(definitions, self._get, self._put)
        self.generated.extend(names)
        return names

    def lookup(self, name: str) -> Any:
        """``((name))`` -> value (``MISSING`` if the store has none); records the version used."""
        full = absolute_name(name, self.deployment)
        row = Credential.latest(full)
        if row is None:
            return MISSING
        with self._lock:
            self._used[full] = row
        return row.value

    def record(self) -> None:
        """Write the versions handed out into the variable set."""
        if self.variable_set is None:
            return
        for full, row in self._used.items():
            Variable.objects.update_or_create(
                variable_set=self.variable_set,
                name=full,
                defaults={"type": row.type, "credential": row},
            )


class PreviewVariables:
    """Lookups for a plan preview: stored values, and in-memory values for the rest."""

    def __init__(self, deployment: str):
        self.deployment = deployment
        self._memory: dict[str, Any] = {}
        self.generated: list[str] = []

    def _get(self, name: str) -> Any:
        if name in self._memory:
            return self._memory[name]
        row = Credential.latest(absolute_name(name, self.deployment))
        return None if row is None else row.value

    def _put(self, name: str, value: Any) -> None:
        self._memory[name] = value

    def generate(self, definitions: list[dict]) -> list[str]:
        names = generate_missing(definitions, self._get, self._put)
        self.generated.extend(names)
        return names

    def lookup(self, name: str) -> Any:
        value = self._get(name)
        return MISSING if value is None else value

    def record(self) -> None:
        pass
