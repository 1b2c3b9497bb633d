"""Shared bits of the director's ``manage.py`` commands: following a task, printing tables.

``wait_for_task`` prints the task's event log as it grows, one line per
event, the way ``bosh task`` does::

    Task 42 | 12:00:01 | Updating instance zookeeper: zookeeper/3f1c (0) (canary) 1/5 started
    Task 42 | 12:00:09 | Updating instance zookeeper: zookeeper/3f1c (0) (canary) 1/5 finished 20%

(``20%`` is the stage's progress: finished steps over its total), and
returns 0 when the task ends ``done``, 1 otherwise.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.core.management.base import CommandError

from director import runner, services
from director.models import TaskState
from opsconsole.errors import ServiceError

#: Say why nothing happens if a task stays queued this long.
QUEUED_HINT_AFTER = 10.0


def event_line(task_id: int, e: dict, done_per_stage: dict) -> str:
    stamp = datetime.fromtimestamp(e.get("time", time.time())).strftime("%H:%M:%S")
    prefix = f"Task {task_id} | {stamp} | "
    if isinstance(e.get("error"), dict):
        return prefix + f"Error: {e['error'].get('message', '')}"
    if e.get("type") in ("warning", "deprecation"):
        return prefix + f"Warning: {e.get('message', '')}"
    stage = e.get("stage", "")
    tags = " ".join(e.get("tags") or [])
    key = (stage, tags)
    total = int(e.get("total") or 0)
    if e.get("state") in ("finished", "failed"):
        done_per_stage[key] = done_per_stage.get(key, 0) + 1
    percent = int(100 * done_per_stage.get(key, 0) / total) if total else 0
    line = f"{stage}{' ' + tags if tags else ''}: {e.get('task', '')} {e.get('index', 0)}/{total} {e.get('state', '')}"
    if e.get("state") == "in_progress":
        status = (e.get("data") or {}).get("status")
        line += f" {e.get('progress', 0)}%{' ' + status if status else ''}"
    else:
        line += f" ({percent}% of stage)"
    error = (e.get("data") or {}).get("error")
    if error:
        line += f": {error}"
    return prefix + line


def wait_for_task(task, stdout, poll: float = 0.5, timeout: float | None = None) -> int:
    """Follow a task to its end, printing its events; 0 if it ended ``done``, else 1."""
    after = 0
    done_per_stage: dict = {}
    started = time.monotonic()
    hinted = False
    stdout.write(f"Task {task.id}: {task.description}")
    while True:
        task = services.get_task(task.id)
        out = runner.read_output(task, "event", after)
        for e in out.events:
            stdout.write(event_line(task.id, e, done_per_stage))
        after = out.next
        if task.is_terminal:
            # the last events may have landed after the read above
            for e in runner.read_output(task, "event", after).events:
                stdout.write(event_line(task.id, e, done_per_stage))
            break
        waited = time.monotonic() - started
        if task.state == TaskState.QUEUED and not hinted and waited > QUEUED_HINT_AFTER:
            stdout.write(f"Task {task.id} is still queued: is a Celery worker running?")
            hinted = True
        if timeout is not None and waited > timeout:
            stdout.write(
                f"Task {task.id} still {task.state} after {int(waited)} s; stopped waiting"
            )
            return 1
        time.sleep(poll)
    state = task.effective_state
    stdout.write(f"Task {task.id} {state}{': ' + task.result if task.result else ''}")
    return 0 if state == TaskState.DONE else 1


def finish(command, task, wait: bool) -> None:
    """Wait for a task the command started, failing the command if the task fails."""
    if task.is_terminal and task.state == TaskState.DONE:
        command.stdout.write(task.result or f"Task {task.id} done")
        return
    if not wait:
        command.stdout.write(f"Task {task.id} queued: {task.description}")
        return
    if wait_for_task(task, command.stdout) != 0:
        task.refresh_from_db()
        raise CommandError(f"Task {task.id} {task.effective_state}: {task.result}", returncode=1)


def service_call(fn, *args, **kwargs):
    """Run a service, turning its refusals into a CommandError with the message."""
    try:
        return fn(*args, **kwargs)
    except ServiceError as exc:
        lines = [f"{k}: {m}" if k != "base" else m for k, ms in exc.errors.items() for m in ms]
        raise CommandError("\n".join(lines), returncode=1 if exc.status != 501 else 2) from None


def table(rows: list[list], headers: list[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_common(parser, wait: bool = True) -> None:
    parser.add_argument("--user", default="admin", help="who the audit events name (default admin)")
    if wait:
        parser.add_argument(
            "--no-wait", action="store_true", help="queue the task and return without following it"
        )
