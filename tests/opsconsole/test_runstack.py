"""`make run` under test: the real stack (``manage.py runstack``) on free ports.

A temporary data dir, migrated, an admin from ``ensure_admin``; then the
stack is started as ``make run`` starts it, and the test does what an operator
would: waits for ``/health``, logs in through the login page, kills each child
in turn and sees it come back, and stops it with no process left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from opsconsole.localservices.process import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "runstack-admin-Password-93"
PARTS = ("redis", "nats", "vcsim", "vmruntime", "worker", "beat", "web", "agent-listener")


def _env(data: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "OPSCONSOLE_TLS"}
        and not k.startswith("OPSCONSOLE_TLS_")
    }
    env.update(OPSCONSOLE_DATA_DIR=str(data), OPSCONSOLE_ADMIN_PASSWORD=PASSWORD, **extra)
    return env


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Stack:
    """A runstack process and what it tells about its children."""

    def __init__(self, tmp_path: Path, **extra_env):
        self.data = tmp_path / "data"
        self.ports = {
            "PORT": free_port(),
            "REDIS_PORT": free_port(),
            "VCSIM_PORT": free_port(),
            "NATS_PORT": free_port(),
        }
        self.env = _env(self.data, **{k: str(v) for k, v in self.ports.items()}, **extra_env)
        for args in (("migrate", "--noinput"), ("ensure_admin",)):
            done = _manage(self.env, *args)
            assert done.returncode == 0, done.stderr
        self.log = open(tmp_path / "runstack.out", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--no-seed"],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.seen_pids: set[int] = set()

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def children(self) -> dict[str, int]:
        try:
            state = json.loads((self.data / "runstack.json").read_text())
        except (OSError, ValueError):
            return {}
        pids = state.get("children", {})
        self.seen_pids.update(pids.values())
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _processes_using(data: Path) -> list[str]:
    """Command lines of live processes that name the stack's data dir or were started from it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(data).encode() in environ or str(data) in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _wait(what: str, predicate, timeout: float, stack: Stack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if stack.proc.poll() is not None:
            pytest.fail(f"runstack exited ({stack.proc.returncode}):\n{stack.output()}")
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s; runstack said:\n{stack.output()}")


def _health(base: str, context=None) -> int | None:
    try:
        with urllib.request.urlopen(base + "health", timeout=5, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _log_in(base: str, context=None) -> str:
    """Log in through the login page as a browser would; the page the user lands on."""
    jar = CookieJar()
    handlers = [urllib.request.HTTPCookieProcessor(jar)]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    page = opener.open(base + "login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urlencode(
        {"csrfmiddlewaretoken": token, "username": "admin", "password": PASSWORD}
    ).encode()
    request = urllib.request.Request(base + "login/", data=body, headers={"Referer": base})
    with opener.open(request, timeout=10) as resp:
        return resp.read().decode()


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()


def test_the_stack_serves_survives_each_child_and_stops_clean(stack):
    base = f"http://127.0.0.1:{stack.ports['PORT']}/"
    _wait("/health answered 200", lambda: _health(base) == 200, 120, stack)
    _wait("every part running", lambda: set(stack.children()) == set(PARTS), 30, stack)

    # gunicorn, not runserver, answers, with the security headers on every page
    with urllib.request.urlopen(base + "login/", timeout=10) as resp:
        headers = resp.headers
    assert headers["Server"].startswith("gunicorn")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # plain HTTP: no HSTS
    with urllib.request.urlopen(base + "static/js/console.js", timeout=10) as resp:
        assert resp.status == 200 and b"data-confirm" in resp.read()  # whitenoise

    assert "Installation Dashboard" in _log_in(base)

    for name in PARTS:
        old = stack.children()[name]
        os.kill(old, signal.SIGKILL)
        new = _wait(
            f"{name} restarted after SIGKILL",
            lambda name=name, old=old: (pid := stack.children().get(name)) and pid != old and pid,
            60,
            stack,
        )
        assert _alive(new)
        _wait(f"/health ok again after {name} came back", lambda: _health(base) == 200, 60, stack)
        assert f"{name} exited with code -9" in stack.output()
        assert f"{name} restarted (pid {new}" in stack.output()

    # vcsim came back and serves the SDK again, its new certificate in vcsim.json
    facts = json.loads((stack.data / "vcsim.json").read_text())
    context = ssl.create_default_context(cafile=facts["cert_file"])
    with socket.create_connection(("127.0.0.1", stack.ports["VCSIM_PORT"]), timeout=5) as s:
        with context.wrap_socket(s, server_hostname="127.0.0.1"):
            pass
    assert "Installation Dashboard" in _log_in(base)  # the restarted web server and Redis

    subprocess.run(
        ["make", "stop"],
        cwd=REPO,
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert stack.proc.wait(60) == 0
    pids = stack.seen_pids
    _wait_gone = time.monotonic() + 20
    while time.monotonic() < _wait_gone and (
        any(_alive(p) for p in pids) or _processes_using(stack.data)
    ):
        time.sleep(0.5)
    assert [p for p in pids if _alive(p)] == []
    assert _processes_using(stack.data) == []
    assert _health(base) is None
    assert not (stack.data / "runstack.pid").exists()


def test_a_killed_supervisor_leaves_no_children(stack):
    base = f"http://127.0.0.1:{stack.ports['PORT']}/"
    _wait("/health answered 200", lambda: _health(base) == 200, 120, stack)
    _wait("every part running", lambda: set(stack.children()) == set(PARTS), 30, stack)
    stack.proc.kill()  # SIGKILL: no chance to stop its children itself
    stack.proc.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _processes_using(stack.data):
        time.sleep(0.5)
    assert _processes_using(stack.data) == []
    done = _manage(stack.env, "stopstack")  # what `make stop` runs: tidies up after it
    assert done.returncode == 0, done.stderr
    assert not (stack.data / "runstack.json").exists()


def test_ports_in_use_are_named_before_anything_starts(tmp_path):
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = _env(
            data,
            PORT=str(port),
            REDIS_PORT=str(free_port()),
            VCSIM_PORT=str(free_port()),
            NATS_PORT=str(free_port()),
        )
        done = _manage(env, "runstack", "--no-seed")
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use by another program: set PORT" in done.stderr
    assert "nothing was started" in done.stderr
    assert _processes_using(data) == []
    assert not (data / "runstack.pid").exists()


def test_tls_self_signed_answers_https_only(tmp_path):
    stack = Stack(tmp_path, OPSCONSOLE_TLS="self-signed")
    try:
        cert = stack.data / "tls" / "cert.pem"
        _wait("the certificate", cert.exists, 60, stack)
        context = ssl.create_default_context(cafile=str(cert))
        https = f"https://127.0.0.1:{stack.ports['PORT']}/"
        _wait("/health over HTTPS", lambda: _health(https, context) == 200, 120, stack)
        with urllib.request.urlopen(https + "login/", timeout=10, context=context) as resp:
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
            cookies = resp.headers.get_all("Set-Cookie")
        assert cookies and all("Secure" in c for c in cookies)
        assert "Installation Dashboard" in _log_in(https, context)
        assert _health(f"http://127.0.0.1:{stack.ports['PORT']}/") is None  # no plain HTTP
        assert oct((stack.data / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
        first = cert.read_bytes()
    finally:
        stack.stop()
    # a restart keeps the certificate (a browser's exception for it stays valid)
    again = Stack(tmp_path, OPSCONSOLE_TLS="self-signed")
    try:
        _wait(
            "/health over HTTPS after a restart",
            lambda: _health(f"https://127.0.0.1:{again.ports['PORT']}/", context) == 200,
            120,
            again,
        )
        assert cert.read_bytes() == first
    finally:
        again.stop()
