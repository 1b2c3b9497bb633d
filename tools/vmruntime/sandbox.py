"""Running a command "inside" a simulated VM: its own root seen at ``/var/vcap``.

Release scripts, monit files and templates hard-code ``/var/vcap/...``. Each
VM's processes must see that VM's directory there, so every command is run
through Debian's ``bubblewrap``: a new mount namespace where the host's root
is bound as it is (``--dev-bind / /``: the same programs, devices and /proc)
and only ``<root>/var/vcap`` is bound over ``/var/vcap``; when a persistent
disk is mounted, its directory is bound over ``/var/vcap/store``. No user or
PID namespace: processes run as the runtime's own user (never more), and the
pids written to pidfiles are real pids that the runtime can watch and signal.

Every process started for a VM carries ``BOSH_VMRUNTIME_VM=<marker>`` in its
environment and passes it to whatever it forks, so ``kill_vm_processes``
finds every process of a VM (daemons that double-forked included) when the
VM is powered off or destroyed, by reading ``/proc/<pid>/environ``.

A pid that is a zombie is dead (the sandbox's init may reap late).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

MARKER_VAR = "BOSH_VMRUNTIME_VM"
VAR_VCAP = "/var/vcap"
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(RuntimeError):
    """bubblewrap is missing or cannot make a mount namespace here."""


def bwrap_binary() -> str:
    found = shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )
    if found is None:
        raise SandboxError(
            "bubblewrap is not installed (apt-get install bubblewrap; `make` does it)"
        )
    return found


def check_sandbox(scratch: Path) -> None:
    """Fail early, with bwrap's own words, when it cannot bind a directory at /var/vcap here."""
    root = Path(scratch) / "probe" / "var" / "vcap"
    root.mkdir(parents=True, exist_ok=True)
    (root / "probe").write_text("ok")
    try:
        res = subprocess.run(
            wrap(root, ["cat", f"{VAR_VCAP}/probe"]),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as exc:
        raise SandboxError(f"bwrap could not run: {exc}") from None
    if res.returncode != 0 or res.stdout != "ok":
        raise SandboxError(
            f"bwrap cannot bind a VM's directory at {VAR_VCAP} "
            f"(exit {res.returncode}): {res.stderr.strip()[:500]}"
        )


def wrap(
    vcap: Path, argv: Sequence[str], *, store: Path | None = None, cwd: str | None = None
) -> list[str]:
    """The bwrap command line that runs ``argv`` with ``vcap`` seen at /var/vcap."""
    cmd = [bwrap_binary(), "--dev-bind", "/", "/", "--bind", str(vcap), VAR_VCAP]
    if store is not None:
        cmd += ["--bind", str(store), f"{VAR_VCAP}/store"]
    if cwd:
        cmd += ["--chdir", cwd]
    return cmd + ["--", *argv]


def vm_env(marker: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a VM's process: a clean one (a VM does not see the runtime's own
    variables), BOSH's PATH, the marker, and ``extra``."""
    env = {
        "PATH": DEFAULT_PATH,
        "HOME": f"{VAR_VCAP}/data/tmp",
        "LANG": "C.UTF-8",
        "TMPDIR": f"{VAR_VCAP}/data/tmp",
    }
    env.update({k: str(v) for k, v in (extra or {}).items()})
    env[MARKER_VAR] = marker
    return env


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs (a zombie does not)."""
    if not pid or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def processes_of(marker: str) -> list[int]:
    """Live pids whose environment carries ``BOSH_VMRUNTIME_VM=<marker>``."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def processes_with_prefix(prefix: str) -> dict[str, list[int]]:
    """Live pids of every VM whose marker starts with ``prefix``, by marker."""
    head = f"{MARKER_VAR}={prefix}".encode()
    out: dict[str, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(head) and pid_alive(int(entry)):
                out.setdefault(item.split(b"=", 1)[1].decode(), []).append(int(entry))
    return out


def kill_vm_processes(marker: str, timeout: float = 5.0) -> int:
    """SIGKILL every process of the VM (what a power-off does to them); returns how many."""
    killed = 0
    deadline = time.monotonic() + timeout
    while True:
        pids = processes_of(marker)
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            return killed
        time.sleep(0.05)


def inner_pid(outer: int, timeout: float = 5.0) -> int | None:
    """The pid of the command bwrap (pid ``outer``) runs: bwrap forks it and waits for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{outer}/task/{outer}/children").read_text().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.01)
    return None


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
