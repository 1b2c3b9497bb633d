"""The VM agent's ``fetch_logs`` (and its signed-URL form), bosh-agent.md §2.7:
a tgz of the job logs (``/var/vcap/sys/log``) and/or the agent's, filtered by
doublestar globs, uploaded to the blobstore.
"""

from __future__ import annotations

import asyncio
import re
import tarfile
import tempfile
from pathlib import Path

from .actions import ActionError, VmWork
from .blobs import BlobError


class LogMethods(VmWork):
    async def m_fetch_logs(self, task, log_type="job", filters=None):
        return await asyncio.to_thread(self._fetch_logs, log_type, filters, None)

    async def m_fetch_logs_with_signed_url(self, task, args):
        if not isinstance(args, dict):
            raise ActionError("fetch_logs_with_signed_url takes a map")
        upload = {"url": args.get("signed_url"), "headers": args.get("blobstore_headers")}
        return await asyncio.to_thread(
            self._fetch_logs, args.get("log_type") or "job", args.get("filters"), upload
        )

    def _fetch_logs(self, log_type, filters, upload):
        dirs = {"job": self.disk.data / "sys" / "log", "agent": self.disk.bosh / "log"}
        types = [t.strip() for t in str(log_type or "job").split(",") if t.strip()]
        for t in types:
            if t not in (*dirs, "system"):
                raise ActionError(f"Invalid log type '{t}'")
        patterns = [glob_regex(f) for f in (filters or ["**/*"])]
        fd, tgz_name = tempfile.mkstemp(dir=self.disk.data / "tmp", suffix=".tgz")
        tgz = Path(tgz_name)
        try:
            with open(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
                for t in types:
                    base = dirs.get(t)
                    if base is None or not base.is_dir():
                        continue
                    for path in sorted(base.rglob("*")):
                        rel = path.relative_to(base).as_posix()
                        if path.is_file() and not path.is_symlink():
                            if any(p.fullmatch(rel) for p in patterns):
                                tar.add(path, arcname=f"./{rel}")
            try:
                blob_id, digests = self._blobstore().put(
                    tgz, signed_url=(upload or {}).get("url"), headers=(upload or {}).get("headers")
                )
            except BlobError as exc:
                raise ActionError(f"Fetching logs: {exc}") from None
        finally:
            tgz.unlink(missing_ok=True)
        if upload is not None:
            return {"sha1": f"{digests['sha1']};sha512:{digests['sha512']}"}
        return {"blobstore_id": blob_id, "sha1": digests["sha1"]}


def glob_regex(pattern: str) -> re.Pattern:
    """A doublestar glob: ``**/`` any directories, ``*`` and ``?`` within one name."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)
