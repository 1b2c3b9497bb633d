"""A tiny release for the VM runtime tests, as the director hands it to agents.

* the source package ``hello``: a C program and a real ``packaging`` script
  that compiles it with BOSH's ``BOSH_INSTALL_TARGET``;
* a rendered templates archive (what the director renders per instance) for
  the jobs ``ticker`` (a monit file, a ctl script starting ``hello`` as a
  long-running process with a rendered greeting, a drain script that records its
  arguments and environment and asks once for dynamic drain, and a
  pre-start script) and the errands ``smoke`` (exit 0) and ``broken`` (exit 3).
"""

from __future__ import annotations

import hashlib
import io
import tarfile

HELLO_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    printf("ticker started: %s\n", argc > 1 ? argv[1] : "?");
    fflush(stdout);
    for (;;) sleep(1);
}
"""

PACKAGING = """set -e
echo "compiling $BOSH_PACKAGE_NAME $BOSH_PACKAGE_VERSION in $BOSH_COMPILE_TARGET"
mkdir -p ${BOSH_INSTALL_TARGET}/bin
gcc -O2 -o ${BOSH_INSTALL_TARGET}/bin/hello hello/hello.c
"""

MONIT = """check process ticker
  with pidfile /var/vcap/sys/run/ticker/ticker.pid
  start program "/var/vcap/jobs/ticker/bin/ctl start"
  stop program "/var/vcap/jobs/ticker/bin/ctl stop"
  group vcap
"""

CTL = """#!/bin/bash
RUN=/var/vcap/sys/run/ticker
LOG=/var/vcap/sys/log/ticker
case $1 in
  start)
    mkdir -p $RUN $LOG
    greeting="$(cat /var/vcap/jobs/ticker/config/greeting)"
    if [ -d /var/vcap/store ]; then
      mkdir -p /var/vcap/store/ticker && echo "$greeting" >> /var/vcap/store/ticker/boot.log
    fi
    nohup /var/vcap/packages/hello/bin/hello "$greeting" >> $LOG/ticker.log 2>&1 &
    echo $! > $RUN/ticker.pid
    ;;
  stop)
    kill $(cat $RUN/ticker.pid) && rm -f $RUN/ticker.pid
    ;;
esac
"""

DRAIN = """#!/bin/bash
count_file=/var/vcap/data/ticker/drain_count
n=$(cat $count_file 2>/dev/null || echo 0)
echo "$n $* state=${BOSH_JOB_STATE-unset} next=${BOSH_JOB_NEXT_STATE-unset} path=$PATH" \
  >> /var/vcap/sys/log/ticker/drain.log
echo $((n + 1)) > $count_file
if [ "$n" = 0 ]; then echo -1; else echo 0; fi
"""

PRE_START = """#!/bin/bash
echo "pre-start sees $(cat /var/vcap/jobs/ticker/config/greeting)"
exit ${PRE_START_EXIT:-0}
"""

ERRAND = """#!/bin/bash
word="$(cat /var/vcap/jobs/{job}/config/word)"
echo "{job} says $word"
echo "{job} complains" >&2
mkdir -p /var/vcap/store/{job} && echo "$word" >> /var/vcap/store/{job}/data
exit {code}
"""


def tgz(files: dict[str, tuple[str | bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (content, mode) in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def source_package(packaging: str = PACKAGING) -> bytes:
    return tgz({"packaging": (packaging, 0o644), "hello/hello.c": (HELLO_C, 0o644)})


def rendered_archive(greeting: str, word: str = "abracadabra") -> bytes:
    files = {
        "./ticker/monit": (MONIT, 0o644),
        "./ticker/bin/ctl": (CTL, 0o644),
        "./ticker/bin/drain": (DRAIN, 0o644),
        "./ticker/bin/pre-start": (PRE_START, 0o644),
        "./ticker/config/greeting": (greeting, 0o644),
        "./ticker/.bosh/links.json": ("[]", 0o644),
    }
    for job, code in (("smoke", 0), ("broken", 3)):
        files[f"./{job}/monit"] = ("", 0o644)
        files[f"./{job}/bin/run"] = (ERRAND.format(job=job, code=code), 0o644)
        files[f"./{job}/config/word"] = (word, 0o644)
    return tgz(files)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def apply_spec(
    *,
    agent_vm,
    archive: tuple[str, str],
    package: dict,
    deployment: str = "rt",
    index: int = 0,
    ip: str = "10.0.0.20",
    persistent_disk: int = 0,
) -> dict:
    """A full apply spec as BOSH's director sends it (bosh-agent.md §6.2)."""
    blob_id, digest = archive
    templates = [
        {"name": j, "version": f"{j}-v1", "sha1": sha1(j.encode()), "blobstore_id": blob_id}
        for j in ("ticker", "smoke", "broken")
    ]
    return {
        "deployment": deployment,
        "name": "ticker",
        "id": agent_vm.agent_id,
        "index": index,
        "az": "z1",
        "job": {"name": "ticker", "template": "ticker", "version": "1", "templates": templates},
        "packages": {"hello": package},
        "networks": {
            "default": {
                "type": "manual",
                "ip": ip,
                "netmask": "255.255.255.0",
                "gateway": "10.0.0.1",
                "default": ["dns", "gateway"],
            }
        },
        "persistent_disk": persistent_disk,
        "configuration_hash": digest,
        "rendered_templates_archive": {"blobstore_id": blob_id, "sha1": digest},
    }
