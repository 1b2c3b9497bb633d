"""What the VM agent's methods share (``agent.VmAgent`` is made of their families).

``ActionError`` (a failed method; its text goes to the director), ``AgentTask``
(a long-running method, polled with ``get_task``), where a persistent disk's
data lives (``disk_dir``), and ``VmWork``: the agent's own helpers every
family uses, namely its blobstore client, fetching a blob the spec names
(digest checked), installing package bundles, and running a program in the
VM's sandbox to its end. ``VmWork`` is a mixin: the attributes it reads
(``disk``, ``settings``, ``options``, ``marker``...) are set by ``VmAgent``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sandbox
from . import settings as agent_settings
from .blobs import BlobError, BlobstoreClient, file_digests, parse_digest, strongest

TAIL = 10 * 1024


class ActionError(Exception):
    """A method that failed; its text goes back to the director."""


@dataclass
class AgentTask:
    id: str
    method: str
    state: str = "running"
    value: Any = None
    error: str | None = None
    cancelled: bool = False
    procs: list[subprocess.Popen] = field(default_factory=list)


def disk_dir(data_dir: Path, disk_file: str) -> Path:
    return Path(data_dir) / "disks" / disk_file


class VmWork:
    """Helpers of ``VmAgent`` shared by its method families."""

    disk: Any  # layout.VmDisk
    settings: dict
    options: Any  # agent.Options
    marker: str

    def _blobstore(self) -> BlobstoreClient:
        return BlobstoreClient(
            agent_settings.blobstore(self.settings, self.update_settings),
            self.disk.data / "blobs",
            retry_wait=self.options.blob_retry_wait,
        )

    def _fetch(self, ref: dict, what: str) -> Path:
        """A blob the spec names (``blobstore_id`` or ``signed_url``, ``sha1``), digest checked."""
        if not isinstance(ref, dict) or not ref.get("sha1"):
            raise ActionError(f"{what}: no sha1 given")
        blob_id = str(ref.get("blobstore_id") or "")
        sensitive = self.disk.data / "sensitive_blobs" / blob_id
        if re.fullmatch(r"[0-9a-zA-Z-]+", blob_id) and sensitive.is_file():
            return copy_checked(sensitive, ref["sha1"], self.disk.data / "blobs", what)
        if not ref.get("blobstore_id") and not ref.get("signed_url"):
            raise ActionError(f"{what}: no blobstore_id given")
        try:
            return self._blobstore().get(
                ref.get("blobstore_id"),
                ref["sha1"],
                signed_url=ref.get("signed_url"),
                headers=ref.get("blobstore_headers"),
            )
        except BlobError as exc:
            raise ActionError(f"{what}: {exc}") from None

    def _install_packages(self, packages: dict) -> dict[str, Path]:
        bundles = {}
        for name, pkg in sorted((packages or {}).items()):
            if not isinstance(pkg, dict):
                raise ActionError(f"package '{name}' is not a map")
            bundle = self.disk.package_bundle(name, str(pkg.get("version")), str(pkg.get("sha1")))
            if not bundle.is_dir():
                blob = self._fetch(pkg, f"package '{name}'")
                try:
                    self.disk.unpack(blob, bundle)
                finally:
                    blob.unlink(missing_ok=True)
            bundles[name] = bundle
        return bundles

    def _job_names(self) -> list[str]:
        return [t.get("name") for t in (self.spec.get("job") or {}).get("templates") or []]

    def _run(
        self,
        task: AgentTask | None,
        argv: list[str],
        *,
        env: dict | None = None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd: str = "/",
    ) -> tuple[int, bytes, bytes]:
        """Run a program in the VM's sandbox to its end; (exit code, stdout, stderr).
        Death by signal is 128 + the signal, as the agent reports it."""
        proc = subprocess.Popen(
            sandbox.wrap(self.disk.vcap, argv, store=self.store_dir(), cwd=cwd),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=sandbox.vm_env(self.marker, env),
            start_new_session=True,
        )
        if task is not None:
            task.procs.append(proc)
        try:
            out, err = proc.communicate()
        finally:
            if task is not None:
                task.procs.remove(proc)
        rc = proc.returncode
        return (128 - rc if rc < 0 else rc), out or b"", err or b""


def tail(path: Path) -> str:
    """The last ``TAIL`` bytes of a log, as text ("" when it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-TAIL:].decode(errors="replace")


def copy_checked(src: Path, digest: str, scratch: Path, what: str) -> Path:
    algo, want = strongest(parse_digest(digest))
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch)
    with open(fd, "wb") as out, open(src, "rb") as fh:
        shutil.copyfileobj(fh, out)
    got = file_digests(Path(name), (algo,))[algo]
    if got != want:
        Path(name).unlink(missing_ok=True)
        raise ActionError(f"{what}: expected {algo} digest {want}, got {got}")
    return Path(name)
