"""A release for the real agent path: one compiled package, one job with a monit process.

``build_compiled_release`` writes a BOSH release tarball (``release.MF`` with
right sha1s): package ``ticker`` (C source that its ``packaging`` script
compiles with ``cc`` on the compilation VM) and job ``ticker`` (a ``bin/ctl``
template starting the compiled program, a ``monit`` file watching its pid
file). A deploy of it compiles the package once, then every instance
downloads the compiled package and the rendered job from the blobstore and
its agent starts the process under monit: the work issue 11 measures.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import yaml

RELEASE = "bench-ticker"
JOB = "ticker"

_SOURCE = """#include <unistd.h>
int main(void) { for (;;) pause(); }
"""

_PACKAGING = """set -e
mkdir -p "$BOSH_INSTALL_TARGET/bin"
cc -O1 -o "$BOSH_INSTALL_TARGET/bin/ticker" ticker/ticker.c
"""

_CTL = """#!/bin/bash
mkdir -p /var/vcap/sys/run/ticker /var/vcap/sys/log/ticker
if [ "$1" = start ]; then
  /var/vcap/packages/ticker/bin/ticker >>/var/vcap/sys/log/ticker/ticker.log 2>&1 &
  echo $! > /var/vcap/sys/run/ticker/ticker.pid
else
  kill "$(cat /var/vcap/sys/run/ticker/ticker.pid)"
fi
"""

_MONIT = """check process ticker
  with pidfile /var/vcap/sys/run/ticker/ticker.pid
  start program "/var/vcap/jobs/ticker/bin/ctl start"
  stop program "/var/vcap/jobs/ticker/bin/ctl stop"
  group vcap
"""


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_compiled_release(out: Path, version: str = "1") -> Path:
    """Write the release tarball to ``out``; return ``out``."""
    package = _tgz({"packaging": _PACKAGING.encode(), "ticker/ticker.c": _SOURCE.encode()})
    job_mf = {
        "name": JOB,
        "templates": {"ctl.erb": "bin/ctl"},
        "packages": [JOB],
        "properties": {},
    }
    job = _tgz(
        {
            "job.MF": yaml.safe_dump(job_mf).encode(),
            "monit": _MONIT.encode(),
            "templates/ctl.erb": _CTL.encode(),
        }
    )
    release_mf: dict = {"name": RELEASE, "version": version, "commit_hash": "0000000"}
    release_mf["packages"] = [_entry(JOB, package, dependencies=[])]
    release_mf["jobs"] = [_entry(JOB, job)]
    members = {
        "release.MF": yaml.safe_dump(release_mf).encode(),
        f"packages/{JOB}.tgz": package,
        f"jobs/{JOB}.tgz": job,
    }
    out = Path(out)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _entry(name: str, data: bytes, **extra) -> dict:
    digest = hashlib.sha1(data).hexdigest()
    return {"name": name, "version": digest, "fingerprint": digest, "sha1": digest, **extra}
