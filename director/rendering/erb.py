"""The one place the director runs Ruby: ``renderer.rb`` over a whole deployment.

ERB is Ruby, and release templates are Ruby code (``p``, ``if_p``, ``link``,
blocks, string methods), so they are evaluated by Debian's ``ruby`` running
our ``renderer.rb``, once per deployment render: the payload (every
instance's jobs, spec, properties and links; each job's template sources
once) goes in as JSON on stdin and the rendered files (or the errors per
template) come back as JSON on stdout.

Templates are code from release authors, so the process is bounded: a
wall-clock deadline (``timeout``) after which its process group is killed, a
cap on what is read back (``max_output_bytes`` of rendered content; the
script stops itself past it and the reader kills it past the JSON-escaped
equivalent), a CPU-time limit and no file writes (``RLIMIT_FSIZE`` 0, set by
the script), a scrubbed environment and a scratch working directory.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("renderer.rb")

#: Seconds a deployment's render may take, wall clock.
DEFAULT_TIMEOUT = 120.0
#: Bytes of rendered content (all files of all instances) a render may produce.
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024
#: JSON escapes a control character as ``\\u00XX``: the most one byte can become.
_JSON_EXPANSION = 6
_STDERR_KEEP = 8 * 1024


class RendererError(Exception):
    """The renderer process could not give an answer (missing ruby, timeout,
    too much output, a crash); template errors are reported per template."""


def ruby_path() -> str | None:
    """The ``ruby`` executable, or None when it is not installed."""
    return shutil.which("ruby")


def run_renderer(
    payload: dict[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
) -> dict[str, Any]:
    """Run ``renderer.rb`` on ``payload`` (see the script's header) and return its answer."""
    ruby = ruby_path()
    if ruby is None:
        raise RendererError(
            "cannot render job templates: 'ruby' is not installed (make install adds it)"
        )
    payload = dict(payload)
    payload["limits"] = {
        "max_output_bytes": int(max_output_bytes),
        # A backstop: the wall-clock deadline below comes first.
        "cpu_seconds": int(timeout) + 5,
    }
    data = json.dumps(payload).encode()
    read_cap = max_output_bytes * _JSON_EXPANSION + 1024 * 1024 + len(data)

    with tempfile.TemporaryDirectory(prefix="render-") as scratch:
        proc = subprocess.Popen(
            [ruby, "--disable-gems", "-E", "UTF-8:UTF-8", str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch},
            start_new_session=True,
        )
        try:
            stdout, stderr = _exchange(proc, data, timeout, read_cap)
        finally:
            _kill(proc)

    if proc.returncode == -signal.SIGXCPU:
        raise RendererError(f"rendering the job templates took longer than {timeout:g} s")
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RendererError(
            f"the template renderer failed (exit status {proc.returncode})"
            + (": " + " | ".join(tail) if tail else "")
        )
    try:
        answer = json.loads(stdout)
    except ValueError as exc:
        raise RendererError(f"the template renderer answered no JSON ({exc})") from exc
    if answer.get("fatal"):
        raise RendererError(f"cannot render job templates: {answer['fatal']}")
    return answer


def _exchange(
    proc: subprocess.Popen, data: bytes, timeout: float, read_cap: int
) -> tuple[bytes, bytes]:
    """Feed stdin, read stdout/stderr until EOF, the deadline or the cap."""

    def feed() -> None:
        try:
            proc.stdin.write(data)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    deadline = time.monotonic() + timeout
    out = bytearray()
    err = bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RendererError(f"rendering the job templates took longer than {timeout:g} s")
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = key.data
                buf += chunk
                if buf is out and len(out) > read_cap:
                    raise RendererError(
                        "the rendered job templates are larger than the limit"
                        f" ({read_cap} bytes read)"
                    )
                if buf is err and len(err) > _STDERR_KEEP:
                    del err[: len(err) - _STDERR_KEEP]
        remaining = max(0.1, deadline - time.monotonic())
        try:
            proc.wait(remaining)
        except subprocess.TimeoutExpired as exc:
            raise RendererError(
                f"rendering the job templates took longer than {timeout:g} s"
            ) from exc
    finally:
        sel.close()
        writer.join(1)
    return bytes(out), bytes(err)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the renderer's process group (a template may have spawned children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
