"""``python -m benchmarks``: VM lifecycle and deploy throughput against the raw pyvmomi floor.

Two suites (``--suite cpi|deploy|all``, default all), ``--suite soap``
(``benchmarks/soap_calls.py``: SOAP round trips per CPI method, not in all) and
``--suite render`` (``benchmarks/render.py``: template and cloud-config work, no
services, not in all), ``--suite resurrect`` (``benchmarks/resurrect.py``: a VM
destroyed in vcsim until it runs again, with the health monitor's default
intervals, not in all):

* ``deploy`` (``benchmarks/deploy.py``): a real director deploy, re-deploy,
  recreate and delete of N instances at several ``max_in_flight``, per
  instance against the raw floor (see that module);
* ``cpi``, below.

The CPI suite starts its own vcsim on loopback, imports a stemcell through
the CPI, then measures, for the same number of VMs:

* ``raw``: pyvmomi alone — linked clone from the stemcell snapshot, power on,
  power off, destroy (the floor in ../shared/reference/vcsim.md: ~200 VMs/s);
* ``cpi``: ``create_vm`` + ``delete_vm`` of our vSphere CPI (placement, NICs,
  agent settings, metadata-free), sequentially and with threads;

and prints VMs/s and the ratio to the floor. ``--delay-ms`` injects latency
into CloneVM_Task/PowerOnVM_Task to stand in for a real vCenter, where
threads matter (CPI suite: both get the delay, default 0; deploy suite: a
second pass with CloneVM_Task = delay and PowerOnVM_Task = delay / 2,
default 200, 0 skips it).
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from cpi.stemcell_builder import build_stemcell
from cpi.vsphere import VSphereCloud
from opsconsole.localservices.vcsim import start_vcsim


def cpi_properties(vc) -> dict:
    inv = vc.inventory
    return {
        "vcenters": [
            {
                "host": vc.host,
                "user": vc.username,
                "password": vc.password,
                "connection_options": {"ca_cert": vc.ca_pem},
                "default_disk_type": "thin",
                "datacenters": [
                    {
                        "name": inv["datacenters"][0],
                        "vm_folder": "BOSH_VMs",
                        "template_folder": "BOSH_Templates",
                        "disk_path": "BOSH_Disks",
                        "datastore_pattern": "^LocalDS_",
                        "persistent_datastore_pattern": "^LocalDS_",
                        "clusters": list(inv["clusters"]),
                    }
                ],
            }
        ],
        "agent": {"ntp": [], "mbus": "nats://127.0.0.1:4222", "blobstore": {"provider": "local"}},
    }


def network(vc) -> dict:
    return {
        "default": {
            "type": "manual",
            "ip": "10.0.0.10",
            "netmask": "255.255.255.0",
            "gateway": "10.0.0.1",
            "cloud_properties": {"name": vc.inventory["portgroups"][0]},
        }
    }


def wait(task):
    """Wait for a vSphere task reading only its ``info`` (one call per look).

    pyVim's ``WaitForTask`` sets up a property-collector filter for every task
    (about 7 calls each): the floor would be slower than a lean client.
    """
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise info.error
        time.sleep(0.005)


def raw_cycle(si, template, folder, pool, count: int, threads: int) -> float:
    """Seconds for ``count`` clone+on+off+destroy cycles with raw pyvmomi."""
    snapshot = template.snapshot.currentSnapshot
    spec = vim.vm.CloneSpec(
        location=vim.vm.RelocateSpec(pool=pool, diskMoveType="createNewChildDiskBacking"),
        snapshot=snapshot,
        powerOn=False,
        template=False,
    )

    def one(_):
        name = f"raw-{uuid.uuid4()}"
        vm = wait(template.CloneVM_Task(folder=folder, name=name, spec=spec))
        wait(vm.PowerOnVM_Task())
        wait(vm.PowerOffVM_Task())
        wait(vm.Destroy_Task())

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool_:
        list(pool_.map(one, range(count)))
    return time.perf_counter() - start


def cpi_cycle(cloud, stemcell_cid, nets, count: int, threads: int) -> float:
    def one(_):
        vm_cid, _ = cloud.create_vm(
            f"agent-{uuid.uuid4()}",
            stemcell_cid,
            {"cpu": 1, "ram": 512, "disk": 1024},
            nets,
            [],
            {},
        )
        cloud.delete_vm(vm_cid)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool_:
        list(pool_.map(one, range(count)))
    return time.perf_counter() - start


def counting(minimum: int):
    """An argparse type: an integer of at least ``minimum``, else a message naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value

    return parse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--suite",
        choices=("cpi", "deploy", "soap", "render", "resurrect", "all"),
        default="all",
        help="what to measure",
    )
    parser.add_argument(
        "--vms", type=counting(1), default=100, help="cpi: VMs per measurement (default 100)"
    )
    parser.add_argument(
        "--threads",
        type=counting(1),
        nargs="*",
        default=[1, 4],
        help="cpi: thread counts to measure",
    )
    parser.add_argument(
        "--delay-ms",
        type=counting(0),
        default=None,
        help="latency injected into CloneVM_Task and PowerOnVM_Task "
        "(cpi: default 0; deploy: a second pass, default 200, 0 skips it)",
    )
    parser.add_argument(
        "--instances",
        type=counting(1),
        default=20,
        help="deploy: instances in the group (default 20)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=counting(1),
        nargs="+",
        default=[1, 5, 10],
        help="deploy: max_in_flight values (default 1 5 10)",
    )
    parser.add_argument(
        "--db",
        choices=("postgres", "sqlite"),
        default="postgres",
        help="deploy, resurrect: the director's database (default: a private PostgreSQL)",
    )
    parser.add_argument(
        "--repeats",
        type=counting(1),
        default=5,
        help="resurrect: VMs destroyed one after the other (default 5)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="deploy: also cProfile one deploy and print the top 15 by cumulative time",
    )
    args = parser.parse_args(argv)
    if args.suite == "render":
        from benchmarks import render

        print("== render suite: product templates and cloud-configs, no services ==", flush=True)
        render.run()
        return
    if args.suite == "resurrect":
        from benchmarks import resurrect

        print("== resurrect suite: a destroyed VM until it runs again ==", flush=True)
        try:
            resurrect.run(repeats=args.repeats, database=args.db)
        except resurrect.BenchFailed as exc:
            parser.exit(1, f"resurrect suite failed: {exc}\n")
        return
    if args.suite == "soap":
        from benchmarks import soap_calls

        print("== soap suite: SOAP calls per CPI method ==", flush=True)
        soap_calls.run(min(args.vms, 20))
        return
    if args.suite in ("cpi", "all"):
        print("== cpi suite: CPI create_vm+delete_vm against raw pyvmomi ==", flush=True)
        run_cpi(args.vms, args.threads, args.delay_ms or 0)
    if args.suite in ("deploy", "all"):
        from benchmarks import deploy

        print("\n== deploy suite: director deploys against raw pyvmomi ==", flush=True)
        try:
            deploy.run(
                instances=args.instances,
                max_in_flights=tuple(args.max_in_flight),
                delay_ms=200 if args.delay_ms is None else args.delay_ms,
                database=args.db,
                profile=args.profile,
            )
        except deploy.BenchFailed as exc:
            parser.exit(1, f"deploy suite failed: {exc}\n")


def run_cpi(vms: int, threads_list: list[int], delay_ms: int) -> None:
    """The CPI suite: raw cycle and CPI create_vm+delete_vm, per thread count."""
    delays = {"CloneVM_Task": delay_ms, "PowerOnVM_Task": delay_ms} if delay_ms else None
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        start_vcsim(delays=delays, workdir=Path(tmp) / "vcsim") as vc,
    ):
        tgz = build_stemcell(Path(tmp) / "stemcell.tgz")
        with tarfile.open(tgz) as tar:
            tar.extractall(Path(tmp) / "sc", filter="data")
        cloud = VSphereCloud(cpi_properties(vc))
        t0 = time.perf_counter()
        stemcell_cid = cloud.create_stemcell(str(Path(tmp) / "sc" / "image"), {})
        print(f"stemcell import (OVF + NFC upload + snapshot): {time.perf_counter() - t0:.2f}s")
        nets = network(vc)

        host, _, port = vc.host.partition(":")
        si = SmartConnect(
            host=host,
            port=int(port),
            user=vc.username,
            pwd=vc.password,
            sslContext=vc.ssl_context(),
        )
        try:
            index = si.content.searchIndex
            dc = si.content.rootFolder.childEntity[0]
            template = index.FindByInventoryPath(f"{dc.name}/vm/BOSH_Templates/{stemcell_cid}")
            folder = dc.vmFolder
            cluster = index.FindByInventoryPath(f"{dc.name}/host/{vc.inventory['clusters'][0]}")
            print(
                f"\n{'measure':<28}{'threads':>8}{'VMs':>6}{'seconds':>10}{'VMs/s':>9}{'vs raw':>9}"
            )
            for threads in threads_list:
                raw = raw_cycle(si, template, folder, cluster.resourcePool, vms, threads)
                ours = cpi_cycle(cloud, stemcell_cid, nets, vms, threads)
                print(
                    f"{'raw pyvmomi cycle':<28}{threads:>8}{vms:>6}{raw:>10.2f}{vms / raw:>9.1f}{'1.00':>9}"
                )
                print(
                    f"{'CPI create_vm+delete_vm':<28}{threads:>8}{vms:>6}{ours:>10.2f}{vms / ours:>9.1f}{ours / raw:>8.2f}x"
                )
        finally:
            Disconnect(si)
            cloud.close()


if __name__ == "__main__":
    main()
