"""The VM runtime: an agent for every powered-on VM that carries agent settings.

The watcher (a thread) reports VMs; the runtime (an asyncio loop) applies
each report in order:

* powered on with settings, no agent yet -> boot one (``VmAgent.boot``);
* an agent whose VM is powered off, lost its settings or now names another
  agent id -> power it off (``VmAgent.close``: its processes are killed,
  heartbeats stop; its directory stays, as a powered-off VM keeps its disks);
* destroyed -> the same, and its directory is removed (the ephemeral disk
  goes with the VM; persistent disks live elsewhere, see ``agent.disk_dir``);
* otherwise the agent learns the new facts (settings, attached disks).

At start the runtime kills the processes a previous runtime on the same data
dir left behind (it died without powering its VMs off); at exit it powers
every VM's agent off, so no job process outlives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from . import sandbox
from .agent import Options, VmAgent, VmFacts, vm_root
from .layout import write_json
from .watcher import VCenterWatcher

log = logging.getLogger(__name__)

READY_FILE = "vmruntime.json"


def marker_prefix(data_dir: Path) -> str:
    return "vmrt-" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]


class Runtime:
    def __init__(self, vcenter: Callable[[], dict], options: Options):
        self.vcenter = vcenter
        self.options = options
        self.agents: dict[str, VmAgent] = {}
        self.events: asyncio.Queue = asyncio.Queue()
        self.watcher: VCenterWatcher | None = None
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        data = self.options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(sandbox.check_sandbox, data / "tmp")
        leftovers = await asyncio.to_thread(
            sandbox.processes_with_prefix, self.options.marker_prefix + "/"
        )
        for marker in leftovers:
            log.info("killing processes left by a previous runtime: %s", marker)
            await asyncio.to_thread(sandbox.kill_vm_processes, marker)
        loop = asyncio.get_running_loop()

        def post(*event):
            loop.call_soon_threadsafe(self.events.put_nowait, event)

        self.watcher = VCenterWatcher(
            self.vcenter,
            on_vm=lambda facts: post("vm", facts),
            on_gone=lambda moid, name: post("gone", moid, name),
            on_synced=lambda: post("synced"),
        )
        self.watcher.start()
        consumer = asyncio.create_task(self._consume())
        try:
            await self.stopping.wait()
        finally:
            self.watcher.stop()
            consumer.cancel()
            for moid in list(self.agents):
                await self._power_off(moid)
            (data / READY_FILE).unlink(missing_ok=True)

    async def _consume(self) -> None:
        while True:
            event = await self.events.get()
            try:
                if event[0] == "vm":
                    await self._on_vm(event[1])
                elif event[0] == "gone":
                    await self._on_gone(event[1], event[2])
                elif event[0] == "synced":
                    write_json(
                        self.options.data_dir / READY_FILE,
                        {"agents": len(self.agents)},
                        mode=0o644,
                    )
            except Exception:
                log.exception("handling %s", event[0])

    async def _on_vm(self, facts: VmFacts) -> None:
        agent = self.agents.get(facts.moid)
        wanted = facts.powered_on and facts.settings is not None
        if agent is not None and (
            not wanted
            or facts.settings.get("agent_id") != agent.agent_id
            or facts.name != agent.facts.name
        ):
            await self._power_off(facts.moid)
            agent = None
        if not wanted:
            return
        if agent is None:
            agent = VmAgent(
                facts,
                self.options,
                refresh=lambda moid=facts.moid: self.watcher.refresh(moid),
                power_off=lambda moid=facts.moid: self.watcher.power_off(moid),
            )
            self.agents[facts.moid] = agent
            await agent.boot()
        else:
            agent.update_facts(facts)

    async def _on_gone(self, moid: str, name: str) -> None:
        await self._power_off(moid)
        if name:
            root = vm_root(self.options.data_dir, name)
            await asyncio.to_thread(shutil.rmtree, root, True)
            log.info("%s destroyed: its directory is removed", name)

    async def _power_off(self, moid: str) -> None:
        agent = self.agents.pop(moid, None)
        if agent is not None:
            await agent.close()
