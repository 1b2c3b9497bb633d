"""The VM agent's ``compile_package`` (and its signed-URL form) and ``upload_blob``
(bosh-agent.md §2.6): dependencies installed, the source unpacked under
``/var/vcap/data/compile``, ``bash -x packaging`` run with BOSH's environment in
the VM's sandbox, the install directory tarred and uploaded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from .actions import ActionError, VmWork, tail
from .blobs import BlobError, parse_digest
from .layout import link, version_hash


class CompileMethods(VmWork):
    async def m_compile_package(self, task, blob_id, digest, name, version, deps=None):
        return await asyncio.to_thread(
            self._compile,
            task,
            {"blobstore_id": blob_id, "sha1": digest},
            name,
            version,
            deps or {},
            None,
        )

    async def m_compile_package_with_signed_url(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("compile_package_with_signed_url takes a map")
        ref = {
            "signed_url": args.get("package_get_signed_url"),
            "sha1": args.get("digest"),
            "blobstore_headers": args.get("blobstore_headers"),
        }
        return await asyncio.to_thread(
            self._compile,
            task,
            ref,
            args.get("name"),
            args.get("version"),
            args.get("deps") or {},
            {"url": args.get("upload_signed_url"), "headers": args.get("blobstore_headers")},
        )

    def _compile(self, task, source: dict, name, version, deps: dict, upload: dict | None):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise ActionError(f"package name {name!r} is not valid")
        if not isinstance(deps, dict):
            raise ActionError("deps must be a map of package name to package")
        self.disk.uninstall_packages()
        try:
            for dep_name, dep in sorted(deps.items()):
                dep = dict(dep or {})
                if "package_get_signed_url" in dep:
                    dep["signed_url"] = dep["package_get_signed_url"]
                bundles = self._install_packages({dep_name: dep})
                self.disk.enable_package(dep_name, bundles[dep_name])
            blob = self._fetch(source, f"source package '{name}'")
            compile_dir = self.disk.data / "compile" / name
            try:
                self.disk.unpack(blob, compile_dir)
            finally:
                blob.unlink(missing_ok=True)
            install = self.disk.data / "packages" / name / version_hash(str(version))
            shutil.rmtree(install, ignore_errors=True)
            install.mkdir(parents=True)
            link(install, self.disk.packages / name)
            if (compile_dir / "packaging").is_file():
                logdir = self.disk.data / "sys" / "log" / "compilation"
                logdir.mkdir(parents=True, exist_ok=True)
                env = {
                    "BOSH_COMPILE_TARGET": f"/var/vcap/data/compile/{name}",
                    "BOSH_INSTALL_TARGET": f"/var/vcap/packages/{name}",
                    "BOSH_PACKAGE_NAME": name,
                    "BOSH_PACKAGE_VERSION": str(version),
                }
                with (
                    open(logdir / "packaging.stdout.log", "wb") as out,
                    open(logdir / "packaging.stderr.log", "wb") as err,
                ):
                    rc, _, _ = self._run(
                        task,
                        ["bash", "-x", "packaging"],
                        env=env,
                        stdout=out,
                        stderr=err,
                        cwd=f"/var/vcap/data/compile/{name}",
                    )
                if rc != 0:
                    tail_out = tail(logdir / "packaging.stdout.log")
                    tail_err = tail(logdir / "packaging.stderr.log")
                    raise ActionError(
                        f"Compiling package {name}: Running packaging script: Command exited with "
                        f"{rc}; Truncated stdout: {tail_out}, Truncated stderr: {tail_err}"
                    )
            fd, tgz_name = tempfile.mkstemp(dir=self.disk.data / "tmp", suffix=".tgz")
            tgz = Path(tgz_name)
            try:
                with open(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
                    tar.add(install, arcname=".")
                try:
                    blob_id, digests = self._blobstore().put(
                        tgz,
                        signed_url=(upload or {}).get("url"),
                        headers=(upload or {}).get("headers"),
                    )
                except BlobError as exc:
                    raise ActionError(f"Compiling package {name}: {exc}") from None
            finally:
                tgz.unlink(missing_ok=True)
        finally:
            shutil.rmtree(self.disk.data / "compile" / name, ignore_errors=True)
            self.disk.uninstall_packages()
        if upload is not None:
            return {"result": {"sha1": f"{digests['sha1']};sha512:{digests['sha512']}"}}
        return {"result": {"blobstore_id": blob_id, "sha1": digests["sha1"]}}

    async def m_upload_blob(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("upload_blob takes a map")
        blob_id = str(args.get("blob_id") or "")
        if not re.fullmatch(r"[0-9a-zA-Z-]+", blob_id):
            raise ActionError(f"blob id {blob_id!r} is not valid")
        try:
            payload = base64.b64decode(args.get("payload") or "", validate=True)
        except ValueError:
            raise ActionError("payload is not base64") from None
        algo, want = next(iter(parse_digest(str(args.get("checksum"))).items()))
        if hashlib.new(algo, payload).hexdigest() != want:
            raise ActionError(f"Payload corrupted. Checksum mismatch for blob {blob_id}")
        path = self.disk.data / "sensitive_blobs" / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        return blob_id
