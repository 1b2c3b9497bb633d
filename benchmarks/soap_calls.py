"""``python -m benchmarks.soap_calls``: SOAP round trips per CPI method, against vcsim.

Speed on a real vCenter is mostly round trips: every SOAP call costs a
network hop, vCenter's own work, and pyVmomi's serialisation (45 % of a
deploy's CPU here). This counts them, per method, so a change that adds a
hidden per-attribute read (pyVmomi turns every ``vm.runtime.powerState``
into one ``Fetch`` call) shows up as a number, not as a vague slowdown.

``count_soap_calls()`` wraps ``SoapStubAdapter.InvokeMethod``, the one place
every call goes through (``InvokeAccessor`` — a lazy property read — ends
there too, as the SOAP method ``Fetch``), and records the SOAP method names
made by the current thread while the block runs. The CPI tests use it to
pin an upper bound on the calls of ``create_vm``/``delete_vm``.

The command starts its own vcsim, imports a stemcell, then for ``--vms``
VMs (after one warm-up VM, which pays for the datacenter, folder and custom
attribute look-ups a long-lived cloud object makes once) prints the mean
calls per ``create_vm``, ``attach_disk``, ``set_vm_metadata``, ``has_vm``,
``get_disks``, ``detach_disk`` and ``delete_vm``, with the methods that
make them up.
"""

from __future__ import annotations

import argparse
import contextlib
import tarfile
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pyVmomi import SoapAdapter

_patch_lock = threading.Lock()
_active: list[tuple[int, Counter]] = []
_original = SoapAdapter.SoapStubAdapter.InvokeMethod


def _counting_invoke(self, mo, info, args, outerStub=None):
    me = threading.get_ident()
    for ident, counter in list(_active):
        if ident in (me, None):
            with _patch_lock:
                counter[info.wsdlName] += 1
    return _original(self, mo, info, args, outerStub)


@contextlib.contextmanager
def count_soap_calls(*, all_threads: bool = False) -> Iterator[Counter]:
    """A ``Counter`` of SOAP method names called inside the block.

    By this thread only (so a test is not disturbed by keep-alive threads or
    other tests' work), or with ``all_threads`` by every thread (a director
    deploy creates VMs in a pool of threads).
    """
    counter: Counter = Counter()
    entry = (None if all_threads else threading.get_ident(), counter)
    with _patch_lock:
        if not _active:
            SoapAdapter.SoapStubAdapter.InvokeMethod = _counting_invoke
        _active.append(entry)
    try:
        yield counter
    finally:
        with _patch_lock:
            _active.remove(entry)
            if not _active:
                SoapAdapter.SoapStubAdapter.InvokeMethod = _original


METHODS = (
    "create_vm",
    "has_vm",
    "set_vm_metadata",
    "set_vm_metadata (unchanged)",
    "create_disk",
    "attach_disk",
    "get_disks",
    "detach_disk",
    "delete_disk",
    "delete_vm",
)


def measure(cloud, stemcell_cid: str, nets: dict, vms: int) -> dict[str, Counter]:
    """Summed SOAP calls per CPI method over ``vms`` full VM lifecycles (after one warm-up)."""
    totals: dict[str, Counter] = {m: Counter() for m in METHODS}
    metadata = {
        "director": "bosh",
        "deployment": "cf",
        "instance_group": "router",
        "job": "router",
        "index": "0",
        "id": str(uuid.uuid4()),
        "name": "router/0",
        "created_at": "2025-01-01T00:00:00Z",
    }

    def lifecycle(record: bool) -> None:
        def step(method: str, fn, *args):
            with count_soap_calls() as calls:
                result = fn(*args)
            if record:
                totals[method].update(calls)
            return result

        vm_cid, _ = step(
            "create_vm",
            cloud.create_vm,
            f"agent-{uuid.uuid4()}",
            stemcell_cid,
            {"cpu": 1, "ram": 512, "disk": 1024},
            nets,
            [],
            {},
        )
        step("has_vm", cloud.has_vm, vm_cid)
        step("set_vm_metadata", cloud.set_vm_metadata, vm_cid, metadata)
        step("set_vm_metadata (unchanged)", cloud.set_vm_metadata, vm_cid, metadata)
        disk_cid = step("create_disk", cloud.create_disk, 1024, {}, vm_cid)
        step("attach_disk", cloud.attach_disk, vm_cid, disk_cid)
        step("get_disks", cloud.get_disks, vm_cid)
        step("detach_disk", cloud.detach_disk, vm_cid, disk_cid)
        step("delete_disk", cloud.delete_disk, disk_cid)
        step("delete_vm", cloud.delete_vm, vm_cid)

    lifecycle(record=False)
    for _ in range(vms):
        lifecycle(record=True)
    return totals


def report(totals: dict[str, Counter], vms: int) -> str:
    lines = [f"{'CPI method':<30}{'calls/VM':>9}  made of (per VM)"]
    for method, counter in totals.items():
        total = sum(counter.values()) / vms
        parts = ", ".join(
            f"{name} {n / vms:g}" for name, n in sorted(counter.items(), key=lambda kv: -kv[1])
        )
        lines.append(f"{method:<30}{total:>9.1f}  {parts}")
    return "\n".join(lines)


def run(vms: int = 5) -> None:
    from benchmarks.__main__ import cpi_properties, network
    from cpi.stemcell_builder import build_stemcell
    from cpi.vsphere import VSphereCloud
    from opsconsole.localservices.vcsim import start_vcsim

    with (
        tempfile.TemporaryDirectory(prefix="bench-soap-") as tmp,
        start_vcsim(workdir=Path(tmp) / "vcsim") as vc,
    ):
        tgz = build_stemcell(Path(tmp) / "stemcell.tgz")
        with tarfile.open(tgz) as tar:
            tar.extractall(Path(tmp) / "sc", filter="data")
        with VSphereCloud(cpi_properties(vc), keepalive_seconds=0) as cloud:
            stemcell_cid = cloud.create_stemcell(str(Path(tmp) / "sc" / "image"), {})
            totals = measure(cloud, stemcell_cid, network(vc), vms)
        print(report(totals, vms), flush=True)


def main(argv=None) -> None:
    from benchmarks.__main__ import counting

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soap_calls", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--vms", type=counting(1), default=5, help="VM lifecycles to average over (default 5)"
    )
    args = parser.parse_args(argv)
    run(args.vms)


if __name__ == "__main__":
    main()
