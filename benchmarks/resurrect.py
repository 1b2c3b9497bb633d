"""The resurrect suite: how long a VM destroyed behind the director's back stays gone.

Issue 12's promise: with the health monitor's **default** intervals
(``HM_SCAN_INTERVAL`` 10 s, agent timeout 60 s, retry 60 s; any
``OPSCONSOLE_HM_*`` override in the environment is dropped) a destroyed VM
is running again within 30 s. The suite sets up the deploy suite's private
director (``benchmarks.environment``: its own database, vcsim, nats-server, the
VM runtime playing the agents, the blobstore web server), deploys a small
deployment (the demo worker group, ``INSTANCES`` instances, no persistent
disk) inline, then starts what ``make run`` runs for the health monitor:
a Redis broker, a real **Celery beat** (its schedule queues the health scan
every ``HM_SCAN_INTERVAL``) and a real **Celery worker** (it runs the scan
and the resurrector's ``scan and fix`` task). Then, ``repeats`` times:

1. waits until the deployment is healthy again (no open vm_health alert,
   no task running) and a random part of one scan interval more, so the
   destroy falls anywhere in beat's cycle, as an outage would;
2. powers off and destroys one instance's VM in vcsim with pyVmomi, behind
   the director's back;
3. waits until that instance has an active VM with a new cid, powered on
   in vCenter, and the resurrector has recorded its ``recreated`` event.

Per repeat it prints the seconds from the destroy to the health monitor's
alert (detection), to the ``recreated`` event (the new VM's agent reports
its jobs running: the instance is back), and the recovery time that event
records (from detection); then the median, min and max of each. The same
instance is destroyed every time: one instance down within the meltdown
window never counts as a meltdown.

    python -m benchmarks --suite resurrect [--repeats 5] [--db sqlite]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from benchmarks.environment import (
    DEPLOYMENT,
    BenchFailed,
    manifest,
    prepare_director,
    start_agents,
    start_private_director,
)
from opsconsole.localservices.celery import start_beat, start_worker
from opsconsole.localservices.redis import start_redis
from opsconsole.localservices.vcsim import start_vcsim

# Django's models and settings are imported inside the functions: only after setup_django().

#: Instances of the deployment; one of them is destroyed each repeat.
INSTANCES = 3
#: Seconds one repeat may take before the suite gives up.
REPEAT_TIMEOUT = 180
#: Environment overrides of the health monitor's intervals: dropped, the suite measures defaults.
HM_OVERRIDES = (
    "OPSCONSOLE_HM_SCAN_INTERVAL",
    "OPSCONSOLE_HM_AGENT_TIMEOUT",
    "OPSCONSOLE_HM_RESURRECTION_RETRY_INTERVAL",
)
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sample:
    """One destroyed VM: seconds from the destroy, and the recovery time the event records."""

    old_cid: str
    new_cid: str
    detected: float
    running: float
    recorded: float


def run(repeats: int = 5, database: str = "postgres", out: Callable[[str], None] | None = None):
    """Run the suite; print each repeat and the medians; return the samples."""
    out = out or (lambda line: print(line, flush=True))
    dropped = [name for name in HM_OVERRIDES if os.environ.pop(name, None) is not None]
    if dropped:
        out(f"ignoring {', '.join(dropped)}: the suite measures the default intervals")
    with ExitStack() as stack:
        t0 = time.perf_counter()
        tmp = start_private_director(stack, database, "bench-resurrect-")
        # Django's settings are readable only once start_private_director set Django up.
        from django.conf import settings

        vc = stack.enter_context(start_vcsim(workdir=tmp / "vcsim"))
        start_agents(stack, vc, tmp / "vmruntime")
        director = prepare_director(vc, tmp / "uploads")
        text = manifest(INSTANCES, INSTANCES, False, stemcell_os=director.stemcell_os)
        director.deploy(text)
        if director.vm_count() != INSTANCES:
            raise BenchFailed(f"deployed {director.vm_count()} VMs, expected {INSTANCES}")
        out(
            f"deployment '{DEPLOYMENT}' ({INSTANCES} instances, no persistent disk) on {database} "
            f"deployed in {time.perf_counter() - t0:.1f}s"
        )

        redis, broker = start_redis(tmp / "redis")
        stack.callback(redis.stop)
        start_monitor(stack, tmp, broker)
        out(
            f"health monitor: Celery beat + worker, scan every {settings.HM_SCAN_INTERVAL:g} s, "
            f"agent timeout {settings.HM_AGENT_TIMEOUT:g} s (defaults)\n"
            f"{'repeat':>6}{'old cid':>40}{'new cid':>40}"
            f"{'detected':>10}{'running':>9}{'recorded':>10}"
        )
        samples = []
        for n in range(1, repeats + 1):
            sample = one_outage(vc, settings.HM_SCAN_INTERVAL)
            samples.append(sample)
            out(
                f"{n:>6}{sample.old_cid:>40}{sample.new_cid:>40}"
                f"{sample.detected:>9.1f}s{sample.running:>8.1f}s{sample.recorded:>9.1f}s"
            )
        out(summary(samples))
        return samples


def start_monitor(stack: ExitStack, tmp: Path, broker: str) -> None:
    """Celery beat (the health scan's schedule) and a worker, on a Redis of their own.

    The benchmark process itself keeps the in-memory broker: the deploy ran
    inline and nothing it queued reaches this worker.
    """
    env = {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}
    worker = start_worker(env, tmp / "worker.log", concurrency=2, cwd=str(REPO))
    stack.callback(worker.stop)
    beat = start_beat(env, tmp / "beat.log", tmp / "beat-schedule", cwd=str(REPO))
    stack.callback(beat.stop)
    deadline = time.monotonic() + 60
    while " ready." not in worker.tail(200):  # its log says so once it consumes
        if not worker.alive() or time.monotonic() > deadline:
            raise BenchFailed(f"the Celery worker did not start; its log ends:\n{worker.tail(30)}")
        time.sleep(0.2)


def one_outage(vc, scan_interval: float) -> Sample:
    """Destroy the first instance's VM in vcsim; wait until it runs again with a new cid."""
    from director.models import Instance, ResurrectionEvent, Vm

    wait_healthy()
    time.sleep(random.uniform(0, scan_interval))  # anywhere in beat's cycle
    instance = Instance.objects.filter(deployment__name=DEPLOYMENT).order_by("index").first()
    old = Vm.objects.get(instance=instance, active=True)
    since = ResurrectionEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    destroy(vc, old.cid)
    destroyed = time.time()

    deadline = time.monotonic() + REPEAT_TIMEOUT
    while time.monotonic() < deadline:
        events = list(
            ResurrectionEvent.objects.filter(id__gt=since, instance=instance.name).order_by("id")
        )
        failed = [e for e in events if e.decision == "failed"]
        if failed:
            raise BenchFailed(f"resurrection of {instance.name} failed: {failed[0].message}")
        done = [e for e in events if e.decision == "recreated"]
        if done:
            new = Vm.objects.get(instance=instance, active=True)
            if new.cid == old.cid or power_state(vc, new.cid) != "poweredOn":
                raise BenchFailed(f"{instance.name}: recreated, but {new.cid} is not running")
            detected = next(e for e in events if e.decision == "detected")
            return Sample(
                old_cid=old.cid,
                new_cid=new.cid,
                detected=detected.created_at.timestamp() - destroyed,
                running=done[0].created_at.timestamp() - destroyed,
                recorded=done[0].seconds_to_recover or 0.0,
            )
        time.sleep(0.1)
    raise BenchFailed(f"{instance.name} not back within {REPEAT_TIMEOUT}s of its VM's destroy")


def wait_healthy(timeout: float = 120) -> None:
    """No open vm_health alert of the deployment and no task of it queued or running."""
    from director.models import Alert, Task

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sick = Alert.objects.filter(
            deployment=DEPLOYMENT, category="vm_health", resolved_at__isnull=True
        ).exists()
        if not sick and not Task.objects.active().filter(deployment_name=DEPLOYMENT).exists():
            return
        time.sleep(0.2)
    raise BenchFailed(f"deployment '{DEPLOYMENT}' not healthy again within {timeout:.0f}s")


def _session(vc):
    host, _, port = vc.host.partition(":")
    return SmartConnect(
        host=host, port=int(port), user=vc.username, pwd=vc.password, sslContext=vc.ssl_context()
    )


def _find(si, cid: str):
    """The VM named ``cid`` (the CPI names VMs by their cid), wherever its folder is."""
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return next((vm for vm in view.view if vm.name == cid), None)
    finally:
        view.Destroy()


def destroy(vc, cid: str) -> None:
    """Power the VM off and destroy it with pyVmomi: vCenter changed behind the director's back."""
    si = _session(vc)
    try:
        vm = _find(si, cid)
        if vm is None:
            raise BenchFailed(f"VM {cid} not found in vcsim")
        WaitForTask(vm.PowerOffVM_Task())
        WaitForTask(vm.Destroy_Task())
    finally:
        Disconnect(si)


def power_state(vc, cid: str) -> str:
    si = _session(vc)
    try:
        vm = _find(si, cid)
        return str(vm.runtime.powerState) if vm is not None else "missing"
    finally:
        Disconnect(si)


def summary(samples: list[Sample]) -> str:
    def line(what: str, values: list[float]) -> str:
        return (
            f"{what:<54} median {statistics.median(values):6.1f}s"
            f"  min {min(values):6.1f}s  max {max(values):6.1f}s"
        )

    return "\n".join(
        [
            f"over {len(samples)} destroyed VM(s):",
            line("destroy -> health monitor alert (detected)", [s.detected for s in samples]),
            line("destroy -> running again with a new cid", [s.running for s in samples]),
            line(
                "recorded recovery (ResurrectionEvent, from detection)",
                [s.recorded for s in samples],
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.resurrect ARGS`` = ``python -m benchmarks --suite resurrect ARGS``."""
    from benchmarks.__main__ import main as benchmarks_main

    benchmarks_main(["--suite", "resurrect", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
