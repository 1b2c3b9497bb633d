"""Start the message bus: Debian's nats-server on loopback, TLS only, client certificates required.

BOSH's ``nats`` job, locally: ``nats-server`` listens on 127.0.0.1 with TLS
and ``verify_and_map`` (every client must present a certificate signed by
``ca_file``, and its subject must be one of the users in ``auth_file``), a
1 MiB ``max_payload`` as BOSH's agent expects, and writes its pid to
``<workdir>/nats-server.pid`` so that whoever rewrites ``auth_file`` can
make it reload (SIGHUP). The configuration is written to
``<workdir>/nats.conf``; ``auth_file`` is included from there.

The certificates and the users are the director's business
(``director.agents.certs``, ``director.agents.nats_auth``); this module only
runs the process. No Django imports.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .process import ManagedProcess, free_port, wait_for_port

CONFIG_FILE = "nats.conf"
PID_FILE = "nats-server.pid"
MAX_PAYLOAD = 1024 * 1024


def nats_config(
    port: int, *, cert_file: Path, key_file: Path, ca_file: Path, auth_file: Path, workdir: Path
) -> str:
    """The text of ``nats.conf`` (nats-server includes files relative to the config's dir)."""
    include = os.path.relpath(Path(auth_file).resolve(), Path(workdir).resolve())
    return "\n".join(
        [
            "# Written by opsconsole.localservices.nats at every start.",
            f"listen: {json.dumps(f'127.0.0.1:{port}')}",
            f"pid_file: {json.dumps(str(Path(workdir).resolve() / PID_FILE))}",
            f"max_payload: {MAX_PAYLOAD}",
            "tls {",
            f"  cert_file: {json.dumps(str(Path(cert_file).resolve()))}",
            f"  key_file: {json.dumps(str(Path(key_file).resolve()))}",
            f"  ca_file: {json.dumps(str(Path(ca_file).resolve()))}",
            "  verify_and_map: true",
            "  timeout: 5",
            "}",
            f"include {json.dumps(include)}",
            "",
        ]
    )


def start_nats(
    workdir: Path,
    *,
    cert_file: Path,
    key_file: Path,
    ca_file: Path,
    auth_file: Path,
    port: int | None = None,
) -> tuple[ManagedProcess, str]:
    """Start nats-server on 127.0.0.1; returns the process and its ``nats://`` URL."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None
    )
    if binary is None:
        raise RuntimeError(
            "nats-server is not installed (apt-get install nats-server; `make run` does it)"
        )
    for what, path in (("cert_file", cert_file), ("key_file", key_file), ("ca_file", ca_file)):
        if not Path(path).is_file():
            raise RuntimeError(f"nats-server {what} {path} does not exist")
    if not Path(auth_file).is_file():
        raise RuntimeError(f"nats-server authorization file {auth_file} does not exist")
    port = port or free_port()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / CONFIG_FILE
    config.write_text(
        nats_config(
            port,
            cert_file=cert_file,
            key_file=key_file,
            ca_file=ca_file,
            auth_file=auth_file,
            workdir=workdir,
        )
    )
    proc = ManagedProcess("nats", [binary, "-c", str(config)], workdir / "nats.log", cwd=workdir)
    try:
        wait_for_port(port, 15, proc.proc, "nats-server")
    except Exception:
        proc.stop()
        raise
    return proc, f"nats://127.0.0.1:{port}"
