"""Watching vCenter for VMs: one PropertyCollector ``WaitForUpdatesEx`` loop, not a poll.

A recursive ``ContainerView`` of every ``VirtualMachine`` under the root
folder, and a filter on ``name``, ``runtime.powerState``,
``config.extraConfig`` and ``config.hardware.device``. Each update becomes a
``VmFacts`` (power state, the agent settings decoded from
``guestinfo.userdata``, the persistent disk files attached) handed to
``on_vm``; a VM that leaves the view (destroyed) is handed to ``on_gone``.

vcsim (0.24.2) does not report ``config.extraConfig`` changes, only the
``config.hardware.device`` change every reconfigure makes: when a VM's
update does not carry ``extraConfig``, the watcher reads it for that VM
(one ``RetrieveContents``). A real vCenter reports both, and then nothing is
read twice.

The loop runs in a thread (pyvmomi blocks) and reconnects after an error
(vcsim restarted by ``runstack``): the first update after a (re)connect
holds every VM, and any VM the watcher knew that is not in it is gone.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from .agent import VmFacts
from .settings import settings_from_extra_config

log = logging.getLogger(__name__)

PROPS = ["name", "runtime.powerState", "config.extraConfig", "config.hardware.device"]
WAIT_SECONDS = 5
PERSISTENT_MODE = "independent_persistent"


def load_vcenter(path: Path) -> dict:
    """``{"host", "username", "password", "cert_file"}`` as ``runstack`` writes vcsim.json."""
    data = json.loads(Path(path).read_text())
    for key in ("host", "username", "password"):
        if not data.get(key):
            raise ValueError(f"{path}: '{key}' is missing")
    return data


def persistent_disks(devices) -> dict[str, str]:
    """``{disk file stem: datastore path}`` of the BOSH persistent disks attached."""
    out = {}
    for dev in devices or []:
        if not isinstance(dev, vim.vm.device.VirtualDisk):
            continue
        name = str(getattr(dev.backing, "fileName", "") or "")
        base = name.rsplit("/", 1)[-1].rsplit("] ", 1)[-1]
        if base.endswith(".vmdk") and getattr(dev.backing, "diskMode", "") == PERSISTENT_MODE:
            out[base[: -len(".vmdk")]] = name
    return out


class VCenterWatcher(threading.Thread):
    def __init__(
        self,
        vcenter: Callable[[], dict],
        on_vm: Callable[[VmFacts], None],
        on_gone: Callable[[str, str], None],
        on_synced: Callable[[], None],
    ):
        super().__init__(name="vcenter-watcher", daemon=True)
        self.vcenter = vcenter  # read again at every (re)connect: a restarted vcsim has a new cert
        self.on_vm, self.on_gone, self.on_synced = on_vm, on_gone, on_synced
        self.stopping = threading.Event()
        self.si = None
        self.known: dict[str, dict] = {}  # moid -> last values
        self.refs: dict[str, vim.VirtualMachine] = {}
        self._lock = threading.Lock()

    # -- connection -----------------------------------------------------------------------

    def _connect(self):
        vcenter = self.vcenter()
        host, _, port = vcenter["host"].rpartition(":")
        ctx = ssl.create_default_context()
        if vcenter.get("cert_file"):
            ctx.load_verify_locations(vcenter["cert_file"])
        return SmartConnect(
            host=host or vcenter["host"],
            port=int(port or 443),
            user=vcenter["username"],
            pwd=vcenter["password"],
            sslContext=ctx,
        )

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.si = self._connect()
                self._watch()
            except Exception as exc:  # vCenter gone or restarted: reconnect
                if self.stopping.is_set():
                    break
                log.warning("vCenter watch failed (%s): reconnecting in 2 s", exc)
                time.sleep(2)
            finally:
                if self.si is not None:
                    try:
                        Disconnect(self.si)
                    except Exception:
                        pass
                    self.si = None

    def stop(self) -> None:
        self.stopping.set()

    def _watch(self) -> None:
        content = self.si.content
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(
            objectSet=[
                PC.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")],
                )
            ],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=PROPS)],
        )
        collector = content.propertyCollector.CreatePropertyCollector()
        collector.CreateFilter(spec, partialUpdates=False)
        version = ""
        first = True
        try:
            while not self.stopping.is_set():
                updates = collector.WaitForUpdatesEx(
                    version, PC.WaitOptions(maxWaitSeconds=WAIT_SECONDS)
                )
                if updates is None:
                    continue
                version = updates.version
                seen = self._apply(updates)
                if first:
                    for moid in set(self.known) - seen:
                        self._gone(moid)
                    first = False
                    self.on_synced()
                if updates.truncated:
                    continue
        finally:
            try:
                collector.DestroyPropertyCollector()
                view.DestroyView()
            except Exception:
                pass

    def _apply(self, updates) -> set[str]:
        seen: set[str] = set()
        for fs in updates.filterSet or []:
            for obj in fs.objectSet or []:
                moid = obj.obj._moId
                if obj.kind == "leave":
                    self._gone(moid)
                    continue
                seen.add(moid)
                values = dict(self.known.get(moid, {}))
                changed = {c.name for c in obj.changeSet or []}
                for change in obj.changeSet or []:
                    values[change.name] = None if change.op == "remove" else change.val
                if obj.kind == "modify" and "config.extraConfig" not in changed:
                    values["config.extraConfig"] = self._read(obj.obj, "config.extraConfig")
                self.known[moid] = values
                self.refs[moid] = obj.obj
                self.on_vm(self._facts(moid, values))
        return seen

    def _gone(self, moid: str) -> None:
        values = self.known.pop(moid, None)
        self.refs.pop(moid, None)
        if values is not None:
            self.on_gone(moid, str(values.get("name") or ""))

    def _read(self, ref, prop: str):
        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=ref, skip=False)],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=[prop])],
        )
        try:
            result = self.si.content.propertyCollector.RetrieveContents([spec])
        except vmodl.fault.ManagedObjectNotFound:
            return None
        for oc in result or []:
            for p in oc.propSet or []:
                return p.val
        return None

    @staticmethod
    def _facts(moid: str, values: dict) -> VmFacts:
        return VmFacts(
            moid=moid,
            name=str(values.get("name") or moid),
            powered_on=str(values.get("runtime.powerState")) == "poweredOn",
            settings=settings_from_extra_config(values.get("config.extraConfig")),
            disks=persistent_disks(values.get("config.hardware.device")),
        )

    # -- calls from agents (other threads) ------------------------------------------------------

    def refresh(self, moid: str) -> VmFacts | None:
        """A fresh read of one VM (the agent's ``mount_disk`` right after an attach)."""
        ref = self.refs.get(moid)
        if ref is None or self.si is None:
            return None
        values = dict(self.known.get(moid, {}))
        for prop in PROPS:
            values[prop] = self._read(ref, prop)
        return self._facts(moid, values)

    def power_off(self, moid: str) -> None:
        """What ``shutdown -P 0`` inside a VM does to it in vCenter."""
        ref = self.refs.get(moid)
        if ref is None:
            return
        try:
            ref.PowerOffVM_Task()
        except Exception as exc:
            log.warning("powering off %s: %s", moid, exc)
