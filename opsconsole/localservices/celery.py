"""Start a real Celery worker (and beat) process for this project."""

import sys
import time
from pathlib import Path

from .process import ManagedProcess


def start_worker(
    env: dict,
    log_path: Path,
    concurrency: int = 2,
    name: str = "worker",
    cwd=None,
    queues: list[str] | None = None,
) -> ManagedProcess:
    """A worker reading the default queue, or only ``queues`` when given."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "opsconsole",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if queues:
        argv += ["-Q", ",".join(queues)]
    return ManagedProcess(name, argv, log_path, env=env, cwd=cwd)


def start_beat(env: dict, log_path: Path, schedule_file: Path, cwd=None) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "opsconsole",
        "beat",
        "--loglevel=INFO",
        "-s",
        str(schedule_file),
    ]
    return ManagedProcess("beat", argv, log_path, env=env, cwd=cwd)


def wait_for_worker(app, timeout: float = 60, proc: ManagedProcess | None = None) -> None:
    """Block until a worker answers a ping through the broker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"the Celery worker exited:\n{proc.tail()}")
        if app.control.ping(timeout=1.0):
            return
    raise RuntimeError(f"no Celery worker answered within {timeout:.0f}s")
