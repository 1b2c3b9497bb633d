"""Vitals as the agent reports them (bosh-agent.md §4): strings, except ``uptime.secs``.

A simulated VM shares the host's CPU and memory, so load, cpu, mem and swap
are the host's; disks are the filesystems under the VM's own directories:
``system`` (its root), ``ephemeral`` (``data``) and ``persistent`` (the
mounted disk's directory, only while one is mounted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_last_cpu: tuple[float, list[int]] | None = None


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _cpu() -> dict[str, str]:
    global _last_cpu
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return {"user": "0.0", "sys": "0.0", "wait": "0.0"}
    prev = _last_cpu[1] if _last_cpu else [0] * len(fields)
    _last_cpu = (time.monotonic(), fields)
    delta = [a - b for a, b in zip(fields, prev, strict=False)]
    total = sum(delta) or 1
    user, _nice, system, _idle, iowait = (delta + [0] * 5)[:5]
    return {
        "user": f"{100.0 * user / total:.1f}",
        "sys": f"{100.0 * system / total:.1f}",
        "wait": f"{100.0 * iowait / total:.1f}",
    }


def _disk(path: Path) -> dict[str, str]:
    try:
        st = os.statvfs(path)
    except OSError:
        return {"percent": "0", "inode_percent": "0"}
    used = (st.f_blocks - st.f_bfree) / st.f_blocks if st.f_blocks else 0
    iused = (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0
    return {"percent": str(round(100 * used)), "inode_percent": str(round(100 * iused))}


def vitals(vcap: Path, store: Path | None, booted_at: float) -> dict:
    mem = _meminfo()
    total = mem.get("MemTotal", 0) or 1
    used = total - mem.get("MemAvailable", mem.get("MemFree", 0))
    swap_total = mem.get("SwapTotal", 0)
    swap_used = swap_total - mem.get("SwapFree", 0)
    disks = {"system": _disk(vcap.parent.parent), "ephemeral": _disk(vcap / "data")}
    if store is not None:
        disks["persistent"] = _disk(store)
    return {
        "cpu": _cpu(),
        "load": [f"{x:.2f}" for x in os.getloadavg()],
        "mem": {"percent": str(round(100 * used / total)), "kb": str(used)},
        "swap": {
            "percent": str(round(100 * swap_used / swap_total)) if swap_total else "0",
            "kb": str(swap_used),
        },
        "uptime": {"secs": int(time.time() - booted_at)},
        "disk": disks,
    }
