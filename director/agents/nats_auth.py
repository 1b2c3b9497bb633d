"""Who may say what on the message bus: nats-server's users, one per certificate subject.

nats-server maps each client certificate's subject to a user
(``verify_and_map``) and gives that user publish and subscribe rights, as
BOSH's ``nats.cfg`` does:

* the director publishes ``agent.*`` and ``hm.director.alert`` and hears
  ``director.>`` (the replies to its requests);
* the health monitor hears ``hm.agent.{heartbeat,alert,shutdown}.*`` and
  ``hm.director.alert`` and publishes nothing;
* each agent, under its bootstrap and its permanent name, hears only
  ``agent.<id>`` and publishes only its own ``hm.agent.*.<id>`` subjects and
  replies ``director.*.<id>.*`` -- so an agent can neither impersonate
  another nor read another's requests (which carry settings and specs).

A certificate whose subject is no user is refused at connect. BOSH's
bosh-nats-sync keeps the agent users in step with the director's VMs; here
``allow_agents`` adds agents at once (call it before ``create_vm``, so the VM
can connect as soon as it boots) and ``sync_agents`` (run by the agent
listener every few seconds) makes the list the VMs of the database, keeping an
agent allowed in the last ``grace`` seconds that has no VM row yet. After a
change the file is rewritten whole (through a temporary file, under a lock)
and nats-server is told to reload (SIGHUP), which also disconnects the
clients whose user is gone.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from .certs import DIRECTOR_CN, HEALTH_MONITOR_CN, MbusPki, agent_cn, subject_dn

AUTH_FILE = "auth.conf"
AGENTS_FILE = "agents.json"
PID_FILE = "nats-server.pid"
DEFAULT_GRACE = 900.0  # agent_wait_timeout (600 s) and a slow create_vm

HM_SUBJECTS = ["hm.agent.heartbeat", "hm.agent.alert", "hm.agent.shutdown"]


def _user(cn: str, publish: list[str], subscribe: list[str]) -> str:
    return (
        f"    {{user: {json.dumps(subject_dn(cn))}, permissions: {{"
        f"publish: {json.dumps(publish)}, subscribe: {json.dumps(subscribe)}}}}}"
    )


def render(agent_ids: Iterable[str]) -> str:
    """The ``authorization`` block for the director, the health monitor and these agents."""
    users = [
        _user(DIRECTOR_CN, ["agent.*", "hm.director.alert"], ["director.>"]),
        _user(HEALTH_MONITOR_CN, [], [f"{s}.*" for s in HM_SUBJECTS] + ["hm.director.alert"]),
    ]
    for agent_id in sorted(set(agent_ids)):
        rights = (
            [f"{s}.{agent_id}" for s in HM_SUBJECTS] + [f"director.*.{agent_id}.*"],
            [f"agent.{agent_id}"],
        )
        users.append(_user(agent_cn(agent_id, bootstrap=True), *rights))
        users.append(_user(agent_cn(agent_id, bootstrap=False), *rights))
    return (
        "# Written by the director (director/agents/nats_auth.py); rewritten on every change.\n"
        "authorization {\n  timeout: 5\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"
    )


def write_initial(directory: Path, agent_ids: Iterable[str] = ()) -> Path:
    """The authorization file before nats-server starts (no reload); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        now = time.time()
        known = _read_agents(directory)
        agents = {a: known.get(a, now) for a in agent_ids} | {
            a: t for a, t in known.items() if now - t < DEFAULT_GRACE
        }
        _write_all(directory, agents)
    return directory / AUTH_FILE


def allow_agents(directory: Path, agent_ids: Iterable[str]) -> None:
    """Let these agents connect now (added to the users, nats-server reloaded)."""
    directory = Path(directory)
    _valid(agent_ids := list(agent_ids))
    with _locked(directory):
        agents = _read_agents(directory)
        if all(a in agents for a in agent_ids):
            return
        now = time.time()
        agents.update({a: now for a in agent_ids if a not in agents})
        _write_all(directory, agents)
    reload_server(directory)


def sync_agents(directory: Path, agent_ids: Iterable[str], grace: float = DEFAULT_GRACE) -> bool:
    """Make the agent users these ids (plus ones allowed less than ``grace`` s ago); True if changed."""
    directory = Path(directory)
    wanted = set(agent_ids)
    _valid(wanted)
    with _locked(directory):
        known = _read_agents(directory)
        now = time.time()
        agents = {a: known.get(a, now) for a in wanted}
        agents.update({a: t for a, t in known.items() if a not in wanted and now - t < grace})
        if set(agents) == set(known) and (directory / AUTH_FILE).exists():
            return False
        _write_all(directory, agents)
    reload_server(directory)
    return True


def allowed_agents(directory: Path) -> set[str]:
    return set(_read_agents(Path(directory)))


def reload_server(directory: Path) -> bool:
    """SIGHUP the nats-server whose pid file is in ``directory``; False if none runs."""
    try:
        pid = int((Path(directory) / PID_FILE).read_text().strip())
        # a pid file left by a killed server may name another process now: never HUP that
        if Path(f"/proc/{pid}/comm").read_text().strip() != "nats-server":
            return False
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True


def _valid(agent_ids: Iterable[str]) -> None:
    for agent_id in agent_ids:
        if not agent_id or not all(c.isalnum() or c == "-" for c in agent_id):
            raise ValueError(f"agent id {agent_id!r}: only letters, digits and '-' are allowed")


@contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".auth.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_agents(directory: Path) -> dict[str, float]:
    try:
        data = json.loads((directory / AGENTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_all(directory: Path, agents: dict[str, float]) -> None:
    _replace(directory / AUTH_FILE, render(agents))
    _replace(directory / AGENTS_FILE, json.dumps(agents, sort_keys=True))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def prepare_server(directory: Path, agent_ids: Iterable[str] = ()) -> dict[str, Path]:
    """Everything nats-server needs in ``directory`` before it starts: the PKI (made once)
    and the authorization file; the keyword arguments of ``localservices.nats.start_nats``."""
    pki = MbusPki(directory).ensure()
    return {
        "cert_file": pki.server.cert,
        "key_file": pki.server.key,
        "ca_file": pki.ca_file,
        "auth_file": write_initial(directory, agent_ids),
    }
