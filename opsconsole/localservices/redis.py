"""Start a private Redis on loopback (Debian's redis-server; no persistence)."""

import shutil
from pathlib import Path

from .process import ManagedProcess, free_port, wait_for_port


def start_redis(workdir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start redis-server on 127.0.0.1; returns the process and its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server; `make run` does it)"
        )
    port = port or free_port()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    proc = ManagedProcess("redis", argv, workdir / "redis.log")
    wait_for_port(port, 15, proc.proc, "redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"
