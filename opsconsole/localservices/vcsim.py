"""Start vcsim, our vCenter simulator, on loopback.

vcsim is govmomi's simulator (Debian's 0.24.2 source plus the patches in
``tools/vcsim/patches``) behind our own ``tools/vcsim/main.go``, built by
``tools/vcsim/build.sh`` into ``.build/vcsim/vcsim``. Once it listens it
prints one JSON line on stdout (URL, credentials, CA file, inventory names);
:func:`start_vcsim` waits for that line and returns a :class:`VcsimProcess`.

Each vcsim keeps its inventory in memory and its datastores in temporary
directories (under ``workdir``), removed when it stops: start one per test
session, not per test. Pure standard library, no Django imports.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tools" / "vcsim" / "build.sh"
BINARY = REPO / ".build" / "vcsim" / "vcsim"


class VcsimError(RuntimeError):
    """vcsim could not be built or did not come up."""


def build_vcsim(force: bool = False) -> Path:
    """Build the vcsim binary if it is missing or stale; return its path.

    Runs ``tools/vcsim/build.sh`` (incremental: a no-op taking milliseconds
    when the binary is newer than its sources; about 20 s cold).
    """
    env = {**os.environ, **({"VCSIM_FORCE_BUILD": "1"} if force else {})}
    res = subprocess.run(
        [str(BUILD_SCRIPT)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if res.returncode != 0 or not BINARY.exists():
        raise VcsimError(f"building vcsim failed ({BUILD_SCRIPT}):\n{res.stdout.strip()}")
    return BINARY


class VcsimProcess:
    """A running vcsim: where it listens, how to log in, what it contains.

    Attributes: ``url`` (``https://127.0.0.1:PORT/sdk``), ``host``
    (``127.0.0.1:PORT``), ``port``, ``username``, ``password``,
    ``cert_file`` (PEM of its self-signed certificate, usable as a CA file),
    ``ca_pem`` (that PEM as text), ``inventory`` (dict of name lists:
    datacenters, clusters, hosts, standalone_hosts, resource_pools,
    datastores, portgroups (distributed), standard_portgroups,
    uplink_portgroups, dvswitches, vms, templates), ``workdir``,
    ``log_path`` (vcsim's stderr).
    """

    def __init__(
        self,
        proc: subprocess.Popen,
        info: dict,
        workdir: Path,
        log_path: Path,
        remove_workdir: bool,
    ):
        self.proc = proc
        self.url: str = info["url"]
        self.host: str = info["host"]
        self.port: int = int(self.host.rsplit(":", 1)[1])
        self.username: str = info["username"]
        self.password: str = info["password"]
        self.cert_file: str = info["cert_file"]
        self.ca_pem: str = Path(self.cert_file).read_text()
        self.inventory: dict[str, list[str]] = info.get("inventory", {})
        self.workdir = workdir
        self.log_path = log_path
        self._remove_workdir = remove_workdir

    name = "vcsim"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        """Signal vcsim (one process; it has no children)."""
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this vcsim's certificate (and checks it)."""
        return ssl.create_default_context(cafile=self.cert_file)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (vcsim then removes its datastore directories), SIGKILL if stuck."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        if self._remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def tail(self, lines: int = 30) -> str:
        """The last lines of vcsim's log (as ``ManagedProcess.tail``)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> VcsimProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<VcsimProcess pid={self.proc.pid} url={self.url}>"


def start_vcsim(
    datacenters: int = 1,
    clusters: int = 2,
    hosts: int = 3,
    datastores: int = 2,
    portgroups: int = 2,
    delays: dict[str, int] | None = None,
    listen: str = "127.0.0.1:0",
    workdir: str | Path | None = None,
    *,
    standalone_hosts: int = 0,
    vms: int = 2,
    delay_all: int = 0,
    username: str | None = None,
    password: str | None = None,
    build: bool = True,
    timeout: float = 60,
) -> VcsimProcess:
    """Start vcsim and wait until it listens.

    ``clusters`` is per datacenter and ``hosts`` per cluster; ``vms`` is per
    cluster (powered-on VMs with one disk, as govmomi's model makes them).
    ``delays`` maps a SOAP method to milliseconds of latency
    (``{"CloneVM_Task": 500}``); ``delay_all`` adds latency to every call.
    ``workdir`` holds the certificate, vcsim's log and its datastores; by
    default a temporary directory removed by ``stop()``.
    """
    binary = build_vcsim() if build else BINARY
    if not binary.exists():
        raise VcsimError(f"{binary} is missing: run tools/vcsim/build.sh (make vcsim)")

    remove_workdir = workdir is None
    workdir = (
        Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="opsconsole-vcsim-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    datastore_dir = workdir / "datastores"
    datastore_dir.mkdir(exist_ok=True)
    cert_file = workdir / "vcsim-cert.pem"
    log_path = workdir / "vcsim.log"

    argv = [
        str(binary),
        "-datacenters",
        str(datacenters),
        "-clusters",
        str(clusters),
        "-hosts",
        str(hosts),
        "-standalone-hosts",
        str(standalone_hosts),
        "-datastores",
        str(datastores),
        "-portgroups",
        str(portgroups),
        "-vms",
        str(vms),
        "-listen",
        listen,
        "-cert-out",
        str(cert_file),
        "-delay-all",
        str(delay_all),
        # stdin is a pipe only we hold: if we die without stop(), vcsim sees
        # EOF and shuts down instead of lingering with its datastores.
        "-exit-on-stdin-eof",
    ]
    for method, ms in (delays or {}).items():
        argv += ["-delay", f"{method}={int(ms)}"]
    if username is not None:
        argv += ["-username", username]
    if password is not None:
        argv += ["-password", password]

    # TMPDIR: govmomi makes each datastore a temporary directory.
    env = {**os.environ, "TMPDIR": str(datastore_dir)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only us; we stop it
        )
    try:
        line = _read_line(proc, timeout)
        info = json.loads(line)
    except Exception as exc:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdin.close()
        proc.stdout.close()
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        if remove_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise VcsimError(
            f"vcsim did not start ({' '.join(argv)}): {exc}\n--- stderr ---\n{tail}"
        ) from exc
    return VcsimProcess(proc, info, workdir, log_path, remove_workdir)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line of proc, within timeout seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VcsimError(f"no JSON line on stdout within {timeout:.0f}s")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise VcsimError(f"vcsim exited with code {proc.wait()} before listening")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode()
