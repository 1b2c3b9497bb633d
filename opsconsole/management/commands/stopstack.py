"""``manage.py stopstack`` (``make stop``): stop a running ``runstack`` and everything it started.

It asks the supervisor to stop (SIGTERM) and waits for it. If the supervisor is
gone or does not finish in time, the children it recorded in
``<data dir>/runstack.json`` are stopped directly, process group by process
group, so nothing is left behind either way.
"""

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from opsconsole.localservices.supervisor import kill_group, process_alive, read_state


def _wait_gone(pids, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(process_alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return not any(process_alive(pid) for pid in pids)


class Command(BaseCommand):
    help = "Stop the console that `make run` started (and anything it left running)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, timeout, **options):
        data = settings.DATA_DIR
        state_file, pidfile = data / "runstack.json", data / "runstack.pid"
        state = read_state(state_file)
        pid = state.get("pid")
        if not pid and pidfile.exists():
            try:
                pid = int(pidfile.read_text().strip())
            except ValueError:
                pid = None
        children = [int(p) for p in state.get("children", {}).values()]
        if not pid and not children:
            self.stdout.write("opsconsole is not running")
            return
        if pid and process_alive(pid):
            self.stdout.write(f"stopping opsconsole (pid {pid}) ...")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not _wait_gone([pid], timeout):
                self.stderr.write(
                    f"runstack (pid {pid}) did not stop in {timeout:.0f} s; killing it"
                )
                os.kill(pid, signal.SIGKILL)
        leftovers = [c for c in children if process_alive(c)]
        if leftovers:
            self.stdout.write(f"stopping processes left behind: {leftovers}")
            for child in leftovers:
                kill_group(child, signal.SIGTERM)
            if not _wait_gone(leftovers, 10):
                for child in leftovers:
                    kill_group(child, signal.SIGKILL)
        for path in (state_file, pidfile, settings.LOCAL_VCSIM_FILE):
            path.unlink(missing_ok=True)
        self.stdout.write("opsconsole stopped")
