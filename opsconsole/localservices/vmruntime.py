"""Start the VM runtime (``tools.vmruntime``): the agents inside vcsim's VMs.

``start_vmruntime`` runs ``python -m tools.vmruntime`` as a managed process
(SIGTERM on stop: it powers every VM's agent off, so no job process outlives
it) and waits until it has read vCenter once (it writes
``<data dir>/vmruntime.json``). No Django imports.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .process import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
READY_FILE = "vmruntime.json"


def write_vcenter_file(path: Path, vcsim) -> Path:
    """The ``--vcenter-file`` of a vcsim (host, credentials, certificate), mode 0600."""
    facts = {
        "host": vcsim.host,
        "username": vcsim.username,
        "password": vcsim.password,
        "cert_file": str(vcsim.cert_file),
    }
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(facts, fh)
    return path


def start_vmruntime(
    data_dir: Path,
    vcenter_file: Path,
    *,
    log_path: Path,
    heartbeat_interval: float = 30.0,
    monit_interval: float = 2.0,
    timeout: float = 60.0,
) -> ManagedProcess:
    data_dir = Path(data_dir)
    (data_dir / READY_FILE).unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "tools.vmruntime",
        "--data-dir",
        str(data_dir),
        "--vcenter-file",
        str(vcenter_file),
        "--heartbeat-interval",
        str(heartbeat_interval),
        "--monit-interval",
        str(monit_interval),
    ]
    proc = ManagedProcess("vmruntime", argv, log_path, cwd=REPO)
    deadline = time.monotonic() + timeout
    while not (data_dir / READY_FILE).exists():
        if not proc.alive():
            raise RuntimeError(f"the VM runtime exited at start:\n{proc.tail(20)}")
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"the VM runtime did not read vCenter within {timeout:.0f}s")
        time.sleep(0.1)
    return proc
