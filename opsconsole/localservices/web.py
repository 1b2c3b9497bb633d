"""Start the web app (gunicorn) on loopback for what agents fetch from it: the blobstore.

The director's agents download packages and rendered templates from
``/blobstore/`` of the web server (``OPSCONSOLE_BLOBSTORE_ENDPOINT``). A
director run outside ``make run`` (the deploy benchmark) starts one with
:func:`start_blobstore_web` on its own data directory and database, given in
``env``. No Django imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .process import ManagedProcess, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def start_blobstore_web(
    port: int, env: dict, log_path: Path, *, threads: int = 8, timeout: float = 30
) -> ManagedProcess:
    """One gunicorn worker with ``threads`` threads on 127.0.0.1:``port``; waits until it listens."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "opsconsole.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--timeout",
        "120",
    ]
    web = ManagedProcess("web", argv, log_path, env=env, cwd=str(REPO))
    try:
        wait_for_port(port, timeout, web.proc, "the blobstore web server (gunicorn)")
    except Exception:
        web.stop()
        raise
    return web
