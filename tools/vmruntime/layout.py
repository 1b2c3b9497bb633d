"""A simulated VM's disk: ``<root>/var/vcap`` laid out as a stemcell's (bosh-agent.md §6.1).

::

    bosh/      settings.json update_settings.json spec.json persistent_disk_hints.json
               mounts.json log/
    data/      jobs/<job>/<H>/  packages/<pkg>/<H>/  compile/<pkg>/  sys/{log,run}/<job>/
               <job>/  tmp/
    sys     -> data/sys
    jobs/<job>     -> ../data/jobs/<job>/<H>   (holding packages/<pkg> -> the package bundle)
    packages/<pkg> -> ../data/packages/<pkg>/<H>
    store/     the persistent disk's mount point   monit/job/NNNN_<job>.monitrc  monit/stopped
    instance/  id az name deployment

``<H>`` is the sha1 hex of a bundle's version string (``<version>-<digest>``).
Every link is relative and stays inside ``var/vcap``, so it resolves the same
from the host (the runtime) and from inside the VM's sandbox (jobs, which
see the directory at ``/var/vcap``).

Archives are unpacked with tarfile's ``data`` filter: an entry that would land
outside its bundle, a device or an absolute link is refused, naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any


class LayoutError(RuntimeError):
    pass


def version_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    """Through a temporary file: a crash never leaves half a settings or spec file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def link(target: Path, at: Path) -> None:
    """``at`` becomes a relative symlink to ``target`` (replacing what was there)."""
    at.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(target, at.parent)
    tmp = at.with_name(f".{at.name}.link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(rel, tmp)
    os.replace(tmp, at)


class VmDisk:
    """Paths and file operations of one VM's ``var/vcap``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.vcap = self.root / "var" / "vcap"

    def __getattr__(self, name: str) -> Path:  # data, jobs, packages, bosh, store, monit...
        if name in ("data", "jobs", "packages", "bosh", "store", "monit", "instance", "sys"):
            return self.vcap / name
        raise AttributeError(name)

    def ensure(self) -> None:
        for sub in (
            "bosh/log",
            "data/jobs",
            "data/packages",
            "data/compile",
            "data/sys/log",
            "data/sys/run",
            "data/tmp",
            "data/blobs",
            "jobs",
            "packages",
            "store",
            "monit/job",
            "instance",
        ):
            (self.vcap / sub).mkdir(parents=True, exist_ok=True)
        sys_link = self.vcap / "sys"
        if not sys_link.is_symlink():
            if sys_link.exists():
                shutil.rmtree(sys_link)
            link(self.vcap / "data" / "sys", sys_link)

    def boot(self) -> None:
        """What a reboot does: ``sys/run`` is a tmpfs on a stemcell, so it starts empty."""
        self.ensure()
        run = self.vcap / "data" / "sys" / "run"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.vcap / "data" / "tmp", ignore_errors=True)
        (self.vcap / "data" / "tmp").mkdir(parents=True, exist_ok=True)

    # -- bundles ---------------------------------------------------------------------------

    def package_bundle(self, name: str, version: str, digest: str) -> Path:
        return self.data / "packages" / name / version_hash(f"{version}-{digest}")

    def job_bundle(self, name: str, version: str, digest: str) -> Path:
        return self.data / "jobs" / name / version_hash(f"{version}-{digest}")

    @staticmethod
    def unpack(archive: Path, into: Path, *, member_prefix: str | None = None) -> None:
        """Unpack a tgz (or plain tar) into ``into``; with ``member_prefix`` only that subtree,
        with the prefix (and a leading ``./``) stripped. All or nothing."""
        tmp = into.with_name(f".{into.name}.unpack")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = []
                for m in tar.getmembers():
                    name = m.name[2:] if m.name.startswith("./") else m.name
                    if member_prefix is not None:
                        if name == member_prefix or not name.startswith(member_prefix + "/"):
                            continue
                        name = name[len(member_prefix) + 1 :]
                    if not name or name == ".":
                        continue
                    m.name = name
                    members.append(m)
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LayoutError(f"cannot unpack {archive.name}: {exc}") from None
        shutil.rmtree(into, ignore_errors=True)
        into.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, into)

    @staticmethod
    def fix_job_modes(bundle: Path) -> None:
        """As the agent does: directories and ``bin/*`` 0750, other files 0640."""
        for dirpath, _dirnames, filenames in os.walk(bundle):
            os.chmod(dirpath, 0o750)
            for f in filenames:
                p = Path(dirpath) / f
                if p.is_symlink():
                    continue
                executable = p.parent.name == "bin" or p.stat().st_mode & stat.S_IXUSR
                os.chmod(p, 0o750 if executable else 0o640)

    def enable_package(self, name: str, bundle: Path) -> None:
        link(bundle, self.packages / name)

    def enable_job(self, name: str, bundle: Path, packages: dict[str, Path]) -> None:
        for pkg, pkg_bundle in packages.items():
            link(pkg_bundle, bundle / "packages" / pkg)
        link(bundle, self.jobs / name)
        for d in (
            self.data / "sys" / "log" / name,
            self.data / "sys" / "run" / name,
            self.data / name,
        ):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o770)

    def keep_only(
        self, jobs: set[str], job_bundles: set[Path], packages: set[str], pkg_bundles: set[Path]
    ) -> None:
        """Remove the links and bundles the new spec does not use."""
        for kind, names, bundles in (
            ("jobs", jobs, job_bundles),
            ("packages", packages, pkg_bundles),
        ):
            for entry in (self.vcap / kind).iterdir():
                if entry.name not in names:
                    entry.unlink() if entry.is_symlink() else shutil.rmtree(
                        entry, ignore_errors=True
                    )
            base = self.data / kind
            for name_dir in base.iterdir() if base.is_dir() else []:
                for bundle in name_dir.iterdir():
                    if bundle not in bundles:
                        shutil.rmtree(bundle, ignore_errors=True)
                if not any(name_dir.iterdir()):
                    name_dir.rmdir()

    def uninstall_packages(self) -> None:
        for entry in self.packages.iterdir():
            entry.unlink() if entry.is_symlink() else shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(self.data / "packages", ignore_errors=True)
        (self.data / "packages").mkdir(parents=True, exist_ok=True)

    def write_instance(self, spec: dict) -> None:
        for key in ("id", "az", "name", "deployment"):
            value = spec.get(key)
            (self.instance / key).write_text("" if value is None else str(value))
