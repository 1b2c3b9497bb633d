"""The VM agent's ``drain`` (bosh-agent.md §2.4), as bosh-agent runs it.

``update`` needs the next apply spec; ``shutdown`` is announced on
``hm.agent.shutdown.<agent_id>`` first; ``status`` (the director's old
dynamic drain) is refused. Monit stops watching the jobs, then every job's
``bin/drain`` runs in parallel with the change arguments and the job states
in its environment; a negative answer is dynamic drain, asked again inside
the agent.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

from .actions import ActionError, VmWork


class DrainMethods(VmWork):
    async def m_drain(self, task, drain_type, new_spec=None, *rest):
        """BOSH's drain (bosh-agent.md §2.4): ``update`` (with the new spec) or ``shutdown``
        (announced on ``hm.agent.shutdown.<id>`` first); every job's ``bin/drain`` runs in
        parallel with the change arguments and the job states in its environment, and a
        negative answer is dynamic drain: sleep |n|, ask again with ``job_check_status``."""
        if drain_type == "status":  # the director's old dynamic drain; the agent does it now
            raise ActionError("Unexpected call with drain type 'status'")
        if drain_type not in ("update", "shutdown"):
            raise ActionError(f"Unknown drain type {drain_type!r} (update or shutdown)")
        new = new_spec if isinstance(new_spec, dict) else None
        if drain_type == "update" and new is None:
            raise ActionError("Drain update requires new spec")
        if drain_type == "shutdown":
            await self.publish(f"hm.agent.shutdown.{self.agent_id}", None)
        await self.monit.unmonitor_all()
        old = self.spec
        jobs = [j for j in self._job_names() if (self.disk.jobs / j / "bin" / "drain").is_file()]
        if not jobs:
            return 0
        first = _drain_params(old, new, drain_type)
        status = ["job_check_status", "hash_unchanged"]
        state = {"BOSH_JOB_STATE": _job_state(old)}
        if new is not None:
            state["BOSH_JOB_NEXT_STATE"] = _job_state(new)

        def drain_one(job):
            args, env = first, state
            while True:
                rc, out, err = self._run(task, [f"/var/vcap/jobs/{job}/bin/drain", *args], env=env)
                if task.cancelled:
                    raise ActionError(f"drain of {job} was cancelled")
                text = out.decode(errors="replace").strip()
                if not re.fullmatch(r"[+-]?[0-9]+", text):
                    raise ActionError(
                        f"Running drain script of {job}: it did not return a signed integer "
                        f"(exit {rc}): stdout {text[-200:]!r} "
                        f"stderr {err.decode(errors='replace')[-500:]!r}"
                    )
                value = int(text)
                time.sleep(abs(value))
                if value >= 0:
                    return
                # dynamic drain: ask again, about the current state only
                args, env = status, {"BOSH_JOB_STATE": state["BOSH_JOB_STATE"]}

        await asyncio.gather(*(asyncio.to_thread(drain_one, j) for j in jobs))
        return 0


def _job_state(spec: dict) -> str:
    """``BOSH_JOB_STATE``/``BOSH_JOB_NEXT_STATE``: the part of an apply spec a drain script
    sees, as compact JSON (``{"persistent_disk":1024}``)."""
    return json.dumps(
        {"persistent_disk": int(spec.get("persistent_disk") or 0)}, separators=(",", ":")
    )


def _drain_params(old: dict, new: dict | None, drain_type: str) -> list[str]:
    """A drain script's arguments: the job change, the configuration hash change, then the
    sorted names of the packages that are new or changed. A shutdown is
    ``job_shutdown hash_unchanged`` whatever spec comes with it; an update is ``job_new``
    for a VM that had no jobs yet and ``job_changed`` otherwise, as bosh-agent says."""
    if drain_type == "shutdown" or new is None:
        return ["job_shutdown", "hash_unchanged"]
    job_change = "job_changed" if (old.get("job") or {}).get("templates") else "job_new"
    old_hash = old.get("configuration_hash")
    if not old_hash:
        hash_change = "hash_new"
    elif old_hash == new.get("configuration_hash"):
        hash_change = "hash_unchanged"
    else:
        hash_change = "hash_changed"
    old_pkgs = old.get("packages") or {}
    changed = sorted(
        name
        for name, pkg in (new.get("packages") or {}).items()
        if name not in old_pkgs or (old_pkgs[name] or {}).get("sha1") != (pkg or {}).get("sha1")
    )
    return [job_change, hash_change, *changed]
