"""VM metadata as vCenter custom attributes (``set_vm_metadata``).

Each metadata key is a custom attribute defined for VMs on first use (its
key remembered for the life of the cloud); a VM's current values are
compared first and only the keys that differ are written, one ``SetField``
each (vSphere has no call that sets several at once). The director reads
them back through ``cpi.vsphere.reads``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from pyVmomi import vim, vmodl

from cpi.base import VMNotFound
from cpi.vsphere.client import VSphereClient
from cpi.vsphere.tasks import map_fault, vsphere_call


def metadata_changes(
    metadata: Mapping[str, Any], field_keys: Mapping[str, int], current: list[Any] | None
) -> list[tuple[str, int, str]]:
    """``(name, field key, text)`` for each metadata key whose custom value differs from ``current``."""
    have = {v.key: getattr(v, "value", None) for v in current or []}
    out = []
    for name, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        key = field_keys[str(name)]
        if have.get(key) != text:
            out.append((str(name), key, text))
    return out


class CustomAttributes:
    """The custom attribute definitions of one vCenter; safe to call from several threads."""

    def __init__(self, client: VSphereClient):
        self.client = client
        self._fields: dict[str, int] = {}
        self._fields_lock = threading.Lock()

    def write(
        self, vm: vim.VirtualMachine, vm_cid: str, metadata: Mapping[str, Any], current: Any
    ) -> None:
        """Set each key of ``metadata`` that differs from ``current`` (the VM's ``customValue``)."""
        manager = self.client.content.customFieldsManager
        keys = self.keys([str(name) for name in metadata])
        for name, field_key, text in metadata_changes(metadata, keys, current):
            vsphere_call(
                f"Setting custom attribute '{name}' on {vm_cid}",
                manager.SetField,
                vm,
                field_key,
                text,
                not_found=VMNotFound,
            )

    def keys(self, names: list[str]) -> dict[str, int]:
        """Custom attribute keys by name: remembered, else the definitions read once for all
        missing names, and a definition added for each name vCenter does not have."""
        missing = [n for n in names if n not in self._fields]
        if missing:
            with self._fields_lock:
                manager = self.client.content.customFieldsManager
                defined = {
                    f.name: f.key
                    for f in manager.field or []
                    if f.managedObjectType in (None, vim.VirtualMachine)
                }
                for name in missing:
                    if name in self._fields:
                        continue
                    if name not in defined:
                        defined[name] = self._add_field(manager, name)
                    self._fields[name] = defined[name]
        return {n: self._fields[n] for n in names}

    @staticmethod
    def _add_field(manager: vim.CustomFieldsManager, name: str) -> int:
        try:
            return manager.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
        except vim.fault.DuplicateName:  # defined meanwhile by another client
            return next(f.key for f in manager.field or [] if f.name == name)
        except vmodl.MethodFault as exc:
            raise map_fault(exc, f"Defining custom attribute '{name}'") from None
