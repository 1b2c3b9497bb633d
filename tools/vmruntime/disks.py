"""The VM agent's persistent disks (bosh-agent.md §2, disks).

A persistent disk is a directory ``<data dir>/disks/<disk file>`` named after
the VMDK file the VM has attached in vCenter (``disk-<uuid>``), so its data
outlives the VM and follows the disk to the next VM it is attached to; it is
bound at ``/var/vcap/store`` for the VM's processes once mounted
(``bosh/mounts.json`` records what is mounted where).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .actions import ActionError, disk_dir
from .layout import read_json, write_json


class DiskMethods:
    """Mixin of ``VmAgent``: ``disk``, ``options``, ``facts`` and ``refresh`` are its."""

    disk: Any  # layout.VmDisk
    options: Any  # agent.Options
    facts: Any  # agent.VmFacts
    refresh: Callable[[], Any]

    def _mounts(self) -> dict:
        return read_json(self.disk.bosh / "mounts.json", {}) or {}

    def store_dir(self) -> Path | None:
        mounted = self._mounts().get("store")
        return disk_dir(self.options.data_dir, mounted["disk"]) if mounted else None

    def _forget_detached_disks(self) -> None:
        """At boot the last disk is mounted again only if the VM still has it attached."""
        mounts = self._mounts()
        kept = {p: m for p, m in mounts.items() if m.get("disk") in self.facts.disks}
        if kept != mounts:
            write_json(self.disk.bosh / "mounts.json", kept)

    def _disk_file(self, cid: str) -> str:
        """The VMDK this VM has attached for ``cid``, as vCenter says now."""
        for facts in (self.facts, self.refresh()):
            if facts is None:
                continue
            self.facts = facts
            for stem in facts.disks:
                if stem == cid or stem.endswith(cid):
                    return stem
        raise ActionError(f"Persistent disk with volume id '{cid}' could not be found")

    async def m_add_persistent_disk(self, task, cid, hint=None):
        hints = read_json(self.disk.bosh / "persistent_disk_hints.json", {}) or {}
        hints[str(cid)] = hint
        write_json(self.disk.bosh / "persistent_disk_hints.json", hints)
        return {}

    async def m_remove_persistent_disk(self, task, cid):
        hints = read_json(self.disk.bosh / "persistent_disk_hints.json", {}) or {}
        hints.pop(str(cid), None)
        write_json(self.disk.bosh / "persistent_disk_hints.json", hints)
        return {}

    async def m_mount_disk(self, task, cid, *rest):
        stem = await asyncio.to_thread(self._disk_file, str(cid))
        mounts = self._mounts()
        if any(m.get("disk") == stem for m in mounts.values()):
            return {}
        point = "store" if "store" not in mounts else "store_migration_target"
        disk_dir(self.options.data_dir, stem).mkdir(parents=True, exist_ok=True)
        mounts[point] = {"cid": str(cid), "disk": stem}
        write_json(self.disk.bosh / "mounts.json", mounts)
        return {}

    async def m_unmount_disk(self, task, cid):
        mounts = self._mounts()
        for point, m in list(mounts.items()):
            if m.get("cid") == cid:
                del mounts[point]
                write_json(self.disk.bosh / "mounts.json", mounts)
                return {"message": f"Unmounted partition of {cid}"}
        return {"message": f"Partition of {cid} is not mounted"}

    async def m_list_disk(self, task, *rest):
        return [m["cid"] for m in self._mounts().values()]

    async def m_migrate_disk(self, task, *rest):
        mounts = self._mounts()
        old, new = mounts.get("store"), mounts.get("store_migration_target")
        if old and new:
            src = disk_dir(self.options.data_dir, old["disk"])
            dst = disk_dir(self.options.data_dir, new["disk"])
            await asyncio.to_thread(shutil.copytree, src, dst, symlinks=True, dirs_exist_ok=True)
            mounts = {"store": new}
            write_json(self.disk.bosh / "mounts.json", mounts)
        return None
