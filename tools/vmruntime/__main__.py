"""``python -m tools.vmruntime``: run the VM runtime until SIGTERM or Ctrl-C.

Options: ``--data-dir`` (VM roots under ``vms/``, persistent disks under
``disks/``), ``--vcenter-file`` (the JSON ``runstack`` writes for vcsim:
host, username, password, cert_file), ``--heartbeat-interval`` (seconds,
default 30), ``--monit-interval`` (seconds between process checks, default
2), ``--log-level``. Once the first view of vCenter is handled it writes
``<data dir>/vmruntime.json``; on exit every VM's processes are killed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .agent import Options
from .runtime import Runtime, marker_prefix
from .sandbox import SandboxError
from .watcher import load_vcenter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.vmruntime", description=__doc__)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--vcenter-file", required=True, type=Path)
    parser.add_argument("--heartbeat-interval", type=float, default=30.0)
    parser.add_argument("--monit-interval", type=float, default=2.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name, value in (
        ("--heartbeat-interval", args.heartbeat_interval),
        ("--monit-interval", args.monit_interval),
    ):
        if value <= 0:
            parser.error(f"{name} must be a positive number of seconds")
    try:
        load_vcenter(args.vcenter_file)
    except (OSError, ValueError) as exc:
        parser.error(f"--vcenter-file: {exc}")
    data_dir = args.data_dir.resolve()
    options = Options(
        data_dir=data_dir,
        heartbeat_interval=args.heartbeat_interval,
        monit_interval=args.monit_interval,
        marker_prefix=marker_prefix(data_dir),
    )
    runtime = Runtime(lambda: load_vcenter(args.vcenter_file), options)

    async def run():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.stopping.set)
        await runtime.run()

    try:
        asyncio.run(run())
    except SandboxError as exc:
        print(f"vmruntime: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
