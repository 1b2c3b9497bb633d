"""Package compilation (BOSH §1.7): stage "Compiling packages", before any instance VM.

Every package a deploy needs is *required* once per stemcell (os/version)
of the instance groups whose jobs use it, with its transitive dependencies
(``requirements``). A requirement is satisfied, in this order, by

1. a compiled package of a **compiled release** made for that stemcell;
2. a ``CompiledPackage`` row of any earlier compile with the same package
   fingerprint, stemcell and dependency key (BOSH's ``KeyGenerator``: the
   sorted ``[name, version, [deps...]]`` tree as JSON), whatever deployment
   compiled it;
3. compiling it: on a **compilation VM** made from the cloud-config's
   ``compilation`` block (``workers`` at a time, ``az``, ``vm_type`` or
   ``cloud_properties``, ``network``; ``reuse_compilation_vms`` keeps one VM
   per worker for the whole stage), dependencies first, through the agent's
   ``compile_package_with_signed_url``: the agent downloads the source and
   its compiled dependencies and uploads the result to a blob id the
   director chose, through signed URLs.

Compilation VMs are ``Instance(compilation=True)`` rows of the deployment
(``compilation-<uuid>``) created through the deploy's own ``create_vm``
step, so the row and its IP exist before ``create_vm`` is called and the
``Vm`` row right after: a VM of a worker killed mid-compile is found by the
next run's ``leftovers`` and deleted. Whatever happens in the stage (a
failed ``packaging`` script, a cancel), every compilation VM it made is
deleted before the stage ends.

A packaging script that fails fails the deploy with the agent's message
(the script's exit code and the tail of its output), also written to the
task's debug log.

Two deploys (two workers) that need the same package for the same stemcell
compile it once: compiling a requirement holds the database lock
``lock:compile:<package>:<key>`` (``director.locks``, BOSH's compile lock),
taken before the compilation VM is made. The other deploy waits for the
lock (its task stays cancellable), then finds the compiled package and uses
it. The lock is renewed by the holding task's checkpoint thread, so a
worker killed mid-compile holds it only until it expires.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, close_old_connections, connection, transaction

from director import locks
from director.blobstore import blobstore, new_blob_id
from director.models import CompiledPackage, Instance, IpAddress, ReleasePackage, Vm
from director.planning import (
    DesiredInstance,
    InstancePlan,
    NetworkReservation,
    StemcellRef,
)
from director.planning.ips import Holder, IpAllocator, parse_networks
from director.runner import TaskCancelled

from . import steps
from .agent import agent_for
from .run import DeployRun, describe
from .state import ips_in_use

#: Name prefix of compilation instance groups (BOSH: ``compilation-<uuid>``).
COMPILATION_PREFIX = "compilation-"


class CompilationError(Exception):
    """A package could not be compiled; the message names it and says why."""


@dataclass
class Requirement:
    """One package needed on one stemcell."""

    release: str
    package: ReleasePackage
    stemcell: StemcellRef
    deps: list[Requirement] = field(default_factory=list)
    #: once satisfied: ``{"name", "version", "sha1", "blobstore_id"}`` for the agent
    compiled: dict | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.release, self.package.name, self.stemcell.os, self.stemcell.version)

    @property
    def label(self) -> str:
        return (
            f"{self.package.name}/{self.package.version} for "
            f"{self.stemcell.os}/{self.stemcell.version}"
        )

    def dependency_tree(self) -> list:
        return sorted(
            ([d.package.name, d.package.version, d.dependency_tree()] for d in self.deps),
            key=lambda item: item[0],
        )

    @property
    def dependency_key(self) -> str:
        return json.dumps(self.dependency_tree(), separators=(",", ":"))

    @property
    def dependency_key_sha1(self) -> str:
        return hashlib.sha1(self.dependency_key.encode()).hexdigest()

    def agent_ref(self) -> dict:
        """The compiled package as ``compile_package`` deps and the apply spec name it."""
        assert self.compiled is not None
        return dict(self.compiled)


def requirements(prepared: Any) -> dict[tuple[str, str, str, str], Requirement]:
    """Every (release, package, stemcell os, version) the deploy's jobs need, deps linked."""
    versions = {rv.release.name: rv for rv in prepared.release_versions}
    packages: dict[str, dict[str, ReleasePackage]] = {}
    compiled: dict[str, dict[tuple[str, str], ReleasePackage]] = {}
    for name, rv in versions.items():
        packages[name] = {}
        compiled[name] = {}
        for p in rv.packages.all():
            if p.stemcell:
                compiled[name][(p.name, p.stemcell)] = p
            else:
                packages[name][p.name] = p
    out: dict[tuple[str, str, str, str], Requirement] = {}
    resolving: set[tuple[str, str, str, str]] = set()

    def need(release: str, name: str, stemcell: StemcellRef, path: str) -> Requirement:
        key = (release, name, stemcell.os, stemcell.version)
        if key in resolving:
            raise CompilationError(f"{path}: package '{name}' depends on itself")
        if key in out:
            return out[key]
        ready = compiled[release].get((name, f"{stemcell.os}/{stemcell.version}"))
        package = ready or packages[release].get(name)
        if package is None:
            raise CompilationError(f"{path}: package '{name}' is not in release '{release}'")
        req = out[key] = Requirement(release, package, stemcell)
        if ready is not None:
            req.compiled = {
                "name": ready.name,
                "version": ready.version,
                "sha1": ready.sha1,
                "blobstore_id": ready.blobstore_id,
            }
            return req
        resolving.add(key)
        for dep in package.dependencies or []:
            req.deps.append(need(release, dep, stemcell, f"{path} -> {name}"))
        resolving.discard(key)
        return req

    for ig in prepared.manifest["instance_groups"]:
        stemcell = prepared.stemcells[ig["stemcell"]]
        for job in ig.get("jobs") or []:
            spec = prepared.job_specs[(job.get("release"), job["name"])]
            for name in spec.package_names:
                need(
                    job["release"],
                    name,
                    stemcell,
                    f"instance_groups/{ig['name']}/jobs/{job['name']}",
                )
    return out


def find_compiled(req: Requirement) -> CompiledPackage | None:
    return CompiledPackage.objects.filter(
        fingerprint=req.package.fingerprint or req.package.version,
        stemcell_os=req.stemcell.os,
        stemcell_version=req.stemcell.version,
        dependency_key_sha1=req.dependency_key_sha1,
    ).first()


#: How often a deploy waiting for another one's compilation looks again (and checks cancel).
COMPILE_LOCK_RETRY = 1.0


def compile_lock_name(req: Requirement) -> str:
    """``lock:compile:<package>:<sha1 of fingerprint, stemcell and dependency key>``."""
    key = "\0".join(
        (
            req.package.fingerprint or req.package.version,
            req.stemcell.os,
            req.stemcell.version,
            req.dependency_key_sha1,
        )
    )
    return f"lock:compile:{req.package.name[:150]}:{hashlib.sha1(key.encode()).hexdigest()}"


@contextmanager
def compile_lock(req: Requirement, ctx: Any) -> Iterator[CompiledPackage | None]:
    """Hold ``req``'s compile lock (waiting while another task holds it); yields the
    compiled package if one exists by then (the other task compiled it), else None."""
    name = compile_lock_name(req)
    waited, holder = False, None
    while True:
        try:
            held = locks.acquire(name, ctx, timeout=0)
            break
        except locks.LockHeld as exc:
            if not waited or exc.task_id != holder:
                who = f"task {exc.task_id}" if exc.task_id else "another operation"
                ctx.debug(f"{req.label} is being compiled by {who}: waiting for it")
            waited, holder = True, exc.task_id
            ctx.checkpoint()
            time.sleep(COMPILE_LOCK_RETRY)
    try:
        row = find_compiled(req)
        if row is not None:
            ctx.debug(f"{req.label} was compiled meanwhile (build {row.build}): using it")
        yield row
    finally:
        locks.release(held, ctx)


def _ref(row: CompiledPackage) -> dict:
    return {
        "name": row.name,
        "version": row.full_version,
        "sha1": row.sha1,
        "blobstore_id": row.blobstore_id,
    }


def compile_packages(run: DeployRun) -> dict[tuple[str, str, str, str], dict]:
    """Satisfy every requirement (module docstring); the agent refs by requirement key."""
    reqs = requirements(run.prepared)
    for req in reqs.values():
        if req.compiled is None:
            row = find_compiled(req)
            if row is not None:
                req.compiled = _ref(row)
    todo = [r for r in reqs.values() if r.compiled is None]
    if todo:
        run.ctx.debug(f"Packages to compile: {', '.join(r.label for r in todo)}")
        Compiler(run, todo).compile_all()
    return {key: req.agent_ref() for key, req in reqs.items()}


# --------------------------------------------------------------------------- compiling


class Compiler:
    """Compiles ``todo`` (dependencies first) on compilation VMs, ``workers`` at a time."""

    def __init__(self, run: DeployRun, todo: list[Requirement]):
        self.run = run
        self.todo = todo
        comp = run.prepared.cloud_config.get("compilation")
        if not comp:
            raise CompilationError(
                "cloud-config: compilation: is required to compile "
                + ", ".join(r.label for r in todo)
            )
        self.config = comp
        self.workers = max(1, int(comp.get("workers") or 1))
        self.reuse = bool(comp.get("reuse_compilation_vms"))
        self.ip_lock = threading.Lock()
        self.pool: dict[tuple[str, str], list[Vm]] = {}
        self.pool_lock = threading.Lock()
        self.made: list[Instance] = []

    def compile_all(self) -> None:
        ctx = self.run.ctx
        stage = ctx.stage("Compiling packages", total=len(self.todo))
        pending = {id(r): r for r in self.todo}
        done: set[int] = set()
        failures: list[tuple[str, BaseException]] = []
        lock = threading.Condition()
        ready: queue.Queue = queue.Queue()
        in_flight = 0

        def unblocked() -> list[Requirement]:
            return [
                r
                for r in pending.values()
                if all(d.compiled is not None or id(d) in done for d in r.deps)
            ]

        def work() -> None:
            nonlocal in_flight

            close_old_connections()
            try:
                while True:
                    req = ready.get()
                    if req is None:
                        return
                    try:
                        with stage.track(req.label):
                            ctx.checkpoint()
                            self.compile_one(req)
                    except BaseException as exc:
                        with lock:
                            failures.append((req.label, exc))
                    with lock:
                        done.add(id(req))
                        in_flight -= 1
                        lock.notify_all()
            finally:
                connection.close()

        threads = [
            threading.Thread(target=work, name=f"compile-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        try:
            with lock:
                while pending or in_flight:
                    if not failures:
                        for req in unblocked():
                            del pending[id(req)]
                            in_flight += 1
                            ready.put(req)
                    elif not in_flight:
                        break
                    if in_flight:
                        lock.wait(1.0)
                    elif pending and not unblocked():
                        failures.append(("compilation", CompilationError("dependency cycle")))
                        break
        finally:
            for _ in threads:
                ready.put(None)
            for t in threads:
                t.join()
            self.delete_vms()
        if failures:
            for _, exc in failures:
                if isinstance(exc, TaskCancelled):
                    raise exc
            raise CompilationError(
                "; ".join(f"Compiling package {label}: {describe(exc)}" for label, exc in failures)
            )

    # -- one package -------------------------------------------------------------------

    def compile_one(self, req: Requirement) -> None:
        with compile_lock(req, self.run.ctx) as row:  # a parallel deploy may compile it
            if row is not None:
                req.compiled = _ref(row)
                return
            self._compile_locked(req)

    def _compile_locked(self, req: Requirement) -> None:
        ctx = self.run.ctx
        previous = (
            CompiledPackage.objects.filter(
                fingerprint=req.package.fingerprint or req.package.version,
                stemcell_os=req.stemcell.os,
                stemcell_version=req.stemcell.version,
            )
            .order_by("-build")
            .values_list("build", flat=True)
            .first()
        )
        build = (previous or 0) + 1
        version = f"{req.package.version}.{build}"
        store = blobstore()
        blob_id = new_blob_id()
        deps = {}
        for d in req.deps:
            ref = d.agent_ref()
            deps[d.package.name] = {
                **ref,
                "package_get_signed_url": store.signed_url(ref["blobstore_id"], "GET"),
            }
        request = {
            "package_get_signed_url": store.signed_url(req.package.blobstore_id, "GET"),
            "upload_signed_url": store.signed_url(blob_id, "PUT"),
            "digest": req.package.sha1,
            "name": req.package.name,
            "version": version,
            "deps": deps,
            "blobstore_headers": {},
        }
        with self.vm(req) as vm:
            ctx.debug(f"compiling {req.label} on VM {vm.cid}")
            try:
                result = agent_for(vm).compile_package_with_signed_url(request)
            except Exception as exc:
                ctx.debug(f"compiling {req.label} failed: {exc}")
                store.delete(blob_id)
                raise
        digest = str(((result or {}).get("result") or {}).get("sha1") or "")
        sha1 = digest.split(";", 1)[0].strip()
        if not store.exists(blob_id) or not sha1:
            store.delete(blob_id)
            raise CompilationError(f"the agent did not upload compiled package {req.label}")
        try:
            with transaction.atomic():
                row = CompiledPackage.objects.create(
                    name=req.package.name,
                    version=req.package.version,
                    fingerprint=req.package.fingerprint or req.package.version,
                    stemcell_os=req.stemcell.os,
                    stemcell_version=req.stemcell.version,
                    dependency_key=req.dependency_key,
                    dependency_key_sha1=req.dependency_key_sha1,
                    build=build,
                    blobstore_id=blob_id,
                    sha1=sha1,
                )
        except IntegrityError:  # a holder whose lock expired under it compiled it too
            store.delete(blob_id)
            row = find_compiled(req)
            if row is None:
                raise
        req.compiled = _ref(row)
        ctx.debug(f"compiled {req.label} as blob {row.blobstore_id} (build {row.build})")

    # -- compilation VMs ---------------------------------------------------------------

    @contextmanager
    def vm(self, req: Requirement) -> Iterator[Vm]:
        key = (req.stemcell.os, req.stemcell.version)
        vm = None
        if self.reuse:
            with self.pool_lock:
                idle = self.pool.get(key) or []
                vm = idle.pop() if idle else None
        if vm is None:
            vm = self.create_vm(req)
        try:
            yield vm
        except BaseException:
            self.delete_vm(vm)
            raise
        if self.reuse:
            with self.pool_lock:
                self.pool.setdefault(key, []).append(vm)
        else:
            self.delete_vm(vm)

    def create_vm(self, req: Requirement) -> Vm:
        run = self.run
        comp = self.config
        instance_uuid = str(uuid.uuid4())
        az = comp.get("az")
        instance = Instance.objects.create(
            deployment=run.deployment,
            group=f"{COMPILATION_PREFIX}{instance_uuid}",
            uuid=instance_uuid,
            index=0,
            az=az or "",
            bootstrap=True,
            compilation=True,
        )
        with self.ip_lock:
            self.made.append(instance)
        plan = InstancePlan(
            group=instance.group,
            uuid=instance_uuid,
            index=0,
            az=az,
            bootstrap=True,
            change="create",
            reasons=(),
            changes=frozenset(),
            needs_shutting_down=False,
            needs_duplicate_vm=False,
            desired=self._desired(req, instance, az),
            existing=None,
        )
        vm = steps.create_vm(run, instance, plan, active=True)
        try:
            run.cloud.set_vm_metadata(
                vm.cid,
                {
                    **steps.vm_metadata(run, instance, vm.created_at.isoformat()),
                    "compiling": req.package.name,
                },
            )
        except Exception as exc:
            run.ctx.debug(f"could not tag compilation VM {vm.cid}: {exc}")
        return vm

    def _desired(self, req: Requirement, instance: Instance, az: str | None) -> DesiredInstance:
        cloud = self.run.prepared.cloud_config
        comp = self.config
        props: dict = {}
        for item in cloud.get("azs") or []:
            if item.get("name") == az:
                props.update(item.get("cloud_properties") or {})
        if comp.get("vm_type"):
            for item in cloud.get("vm_types") or []:
                if item.get("name") == comp["vm_type"]:
                    props.update(item.get("cloud_properties") or {})
        elif comp.get("cloud_properties"):
            props.update(comp["cloud_properties"])
        elif comp.get("vm_resources"):
            res = comp["vm_resources"]
            props.update(
                {
                    "cpu": res.get("cpu", 1),
                    "ram": res.get("ram", 1024),
                    "disk": res.get("ephemeral_disk_size", 1024),
                }
            )
        reservation = self._reserve_ip(instance, comp["network"], az)
        return DesiredInstance(
            stemcell=req.stemcell,
            vm_type=comp.get("vm_type"),
            vm_extensions=(),
            cloud_properties=props,
            env=dict(comp.get("env") or {}),
            networks=(reservation,),
            persistent_disk_size=0,
            persistent_disk_type=None,
            persistent_disk_cloud_properties={},
            jobs=(),
            jobs_fingerprint="",
        )

    def _reserve_ip(self, instance: Instance, network: str, az: str | None) -> NetworkReservation:
        """The lowest address of the compilation network free of every reservation and of
        every address the deploy's plan hands out. An address a parallel deploy reserved
        between the look and the insert (the unique row refuses it) is skipped."""

        run = self.run
        networks = parse_networks(run.prepared.cloud_config.get("networks"))
        lost: dict[str, str] = {}
        with self.ip_lock:
            while True:
                taken = {**ips_in_use(), **lost}
                for p in run.prepared.plan.all_instance_plans():
                    for n in p.desired.networks if p.desired else ():
                        if n.ip:
                            taken.setdefault(n.ip, f"instance {p.label} of this deploy")
                allocator = IpAllocator(
                    networks,
                    deployment=run.name,
                    ips_in_use=taken,
                    director_ips=run.prepared.options.director_ips,
                )
                (reservation,) = allocator.allocate_dynamic_many(
                    network,
                    az,
                    [Holder(instance.uuid, instance.group)],
                    group=instance.group,
                    path="compilation/network",
                )
                if not reservation.ip:
                    break
                try:
                    with transaction.atomic():
                        IpAddress.objects.create(
                            address=reservation.ip,
                            network_name=reservation.network,
                            static=False,
                            instance=instance,
                            task_id=run.ctx.task_id,
                        )
                    break
                except IntegrityError:
                    lost[reservation.ip] = "a parallel deploy"
        return NetworkReservation(
            reservation.network,
            reservation.ip,
            False,
            reservation.subnet,
            default=("dns", "gateway"),
            type=reservation.type,
        )

    def delete_vm(self, vm: Vm) -> None:
        delete_compilation_instance(self.run, vm.instance)

    def delete_vms(self) -> None:
        for instance in self.made:
            if Instance.objects.filter(id=instance.id).exists():
                try:
                    delete_compilation_instance(self.run, instance)
                except Exception as exc:
                    self.run.ctx.warning(
                        f"could not delete compilation VM of {instance.group}: {exc}"
                    )


def delete_compilation_instance(run: DeployRun, instance: Instance) -> None:
    """Delete a compilation instance's VMs, release its IPs, drop its row."""

    for vm in Vm.objects.filter(instance=instance):
        steps.delete_vm(run, vm)
    IpAddress.objects.filter(instance=instance).delete()
    Instance.objects.filter(id=instance.id).delete()
