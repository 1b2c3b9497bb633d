"""Tasks: every director operation is a row here (BOSH ``tasks``), with its event log.

States follow BOSH: ``queued`` -> ``processing`` -> ``done`` | ``error`` |
``cancelled``; a cancel moves ``queued`` straight to ``cancelled`` and
``processing`` to ``cancelling`` (the handler stops at its next checkpoint).
``timeout`` is never set by the runner: ``Task.timeout_reason`` is the one
rule deciding that an unfinished task has lost its worker (its
``checkpoint_time`` is older than ``TASK_CHECKPOINT_INTERVAL *
TASK_TIMEOUT_FACTOR``, as BOSH times tasks out on checkpoints), and
``director.runner.expire_timed_out_tasks`` records it: on Celery beat
(``director.schedule``), and whenever a task is read (list or get).

``checkpoint_time`` is the last sign that a task is not lost. A running task's
worker writes it every ``TASK_CHECKPOINT_INTERVAL``. A queued task gets it when
it is queued, and every busy worker's checkpoint renews it on all queued tasks:
a task waiting for a free worker is waiting legitimately while some worker
works, and is lost once no worker has shown life for the whole limit (its
message was lost, or every worker died). Waiting for a lock does not happen
while queued: a deploy of a deployment another task is changing is refused
when queued, and a lock is waited for by a ``processing`` task, which
checkpoints.

The three logs: the event log is ``TaskEvent`` rows (JSON objects in BOSH's
event format, numbered by ``seq`` so readers poll ``?after=<seq>``); the
debug log and CPI log are files under ``TASK_LOG_DIR/<id>/``; the result
output (``bosh task --result``) is ``result_output``. ``result`` is the
short outcome: the handler's return value, or the error message.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class TaskState(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


#: States of a task that has not finished.
ACTIVE_STATES = (TaskState.QUEUED, TaskState.PROCESSING, TaskState.CANCELLING)
#: States of a finished task; it never changes again.
TERMINAL_STATES = (TaskState.DONE, TaskState.ERROR, TaskState.CANCELLED, TaskState.TIMEOUT)
#: States a running worker keeps a fresh checkpoint in.
RUNNING_STATES = (TaskState.PROCESSING, TaskState.CANCELLING)
#: States a cancel request is accepted in (BOSH: ``cancellable?``).
CANCELLABLE_STATES = (TaskState.QUEUED, TaskState.PROCESSING)


def timeout_limit() -> timedelta:
    """How old a checkpoint may be before its task counts as timed out."""
    return timedelta(seconds=settings.TASK_CHECKPOINT_INTERVAL * settings.TASK_TIMEOUT_FACTOR)


def _seconds(delta: timedelta) -> str:
    secs = delta.total_seconds()
    return str(int(secs)) if secs == int(secs) else f"{secs:g}"


class TaskQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def waiting_for_a_worker(self, now=None):
        """Queued tasks ``timeout_reason`` does not time out yet (busy workers renew these)."""
        cutoff = (now or timezone.now()) - timeout_limit()
        return self.filter(state=TaskState.QUEUED).filter(
            models.Q(checkpoint_time__gte=cutoff)
            | models.Q(checkpoint_time__isnull=True, created_at__gte=cutoff)
        )


class Task(models.Model):
    """A director operation and its outcome; see the module docstring for states."""

    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.QUEUED)
    #: Handler name: update_stemcell, update_release, update_deployment, delete_deployment...
    type = models.CharField(max_length=64)
    description = models.CharField(max_length=500)
    username = models.CharField(max_length=150, blank=True, default="")
    deployment_name = models.CharField(max_length=255, blank=True, default="")
    context_id = models.CharField(max_length=255, blank=True, default="")
    #: Arguments for the handler (JSON; never secrets: those live in the variable store).
    args = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True, default="")
    result_output = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    #: BOSH's ``timestamp``: when the task ended (null while it runs).
    finished_at = models.DateTimeField(null=True, blank=True)
    checkpoint_time = models.DateTimeField(null=True, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["state", "-id"], name="task_state_idx"),
            models.Index(fields=["deployment_name", "-id"], name="task_deployment_idx"),
            models.Index(fields=["type", "-id"], name="task_type_idx"),
        ]
        ordering = ["-id"]

    def __str__(self):
        return f"Task {self.id} ({self.type}, {self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.effective_state in TERMINAL_STATES

    @property
    def effective_state(self) -> str:
        """The state, ``timeout`` when ``timeout_reason`` says so though not recorded yet."""
        if self.timeout_reason() is not None:
            return TaskState.TIMEOUT
        return self.state

    def timeout_reason(self, now=None) -> str | None:
        """Why this task has timed out, or None: the one rule, for readers and the beat scan.

        An unfinished task (queued, processing, cancelling) has timed out when
        its last sign of life, ``checkpoint_time`` (else when it started, else
        when it was queued), is older than ``timeout_limit()``. For a running
        task that is its worker's checkpoint; for a queued task it is when it
        was queued or, later, when a busy worker last checkpointed (see the
        module docstring). A finished task never times out.
        """
        if self.state not in ACTIVE_STATES:
            return None
        now = now or timezone.now()
        limit = timeout_limit()
        last_sign = self.checkpoint_time or self.started_at or self.created_at
        if last_sign is None or now - last_sign <= limit:
            return None
        secs = _seconds(limit)
        if self.state == TaskState.QUEUED:
            return (
                f"task timed out: no worker started it, and none was busy, for more than "
                f"{secs} s (is a Celery worker running?)"
            )
        return f"task timed out: its worker stopped checkpointing (no checkpoint for {secs} s)"

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class TaskEvent(models.Model):
    """One line of a task's event log, in BOSH's format.

    ``data`` holds the JSON object exactly as ``bosh task --event`` prints
    it: ``{"time", "stage", "tags", "total", "task", "index", "state",
    "progress", "data"}`` for stage entries, ``{"time", "error": {"code",
    "message"}}`` for the task error, ``{"time", "type": "warning",
    "message"}`` for warnings. ``seq`` numbers the lines of a task from 1.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="task_event_seq")]
        ordering = ["task_id", "seq"]

    def __str__(self):
        return f"task {self.task_id} event {self.seq}"
