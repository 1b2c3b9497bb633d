"""Start a throwaway PostgreSQL cluster on loopback (initdb into a directory).

As root, the server runs as the ``postgres`` user, which must own the
directory; as another user it runs as that user.
"""

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .process import ManagedProcess, free_port, wait_for_port


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(candidates[-1]).parent


def start_postgres(workdir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """initdb + postgres on 127.0.0.1; returns the process and a ``postgres://`` URL."""
    bindir = _bindir()
    port = port or free_port()
    workdir = Path(workdir)
    datadir = workdir / "pgdata"
    workdir.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        shutil.chown(workdir, "postgres", "postgres")
        os.chmod(workdir, 0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    if not datadir.exists():
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
    argv = [
        *prefix,
        str(bindir / "postgres"),
        "-D",
        str(datadir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-k",
        str(workdir),
        "-c",
        "fsync=off",
        "-c",
        "max_connections=200",
    ]
    proc = ManagedProcess("postgres", argv, workdir / "postgres.log")
    wait_for_port(port, 30, proc.proc, "postgres")
    return proc, f"postgres://postgres@127.0.0.1:{port}/postgres"
