"""Tasks: every director operation is a row here (BOSH ``tasks``), with its event log.

States follow BOSH: ``queued`` -> ``processing`` -> ``done`` | ``error`` |
``cancelled``; a cancel moves ``queued`` straight to ``cancelled`` and
``processing`` to ``cancelling`` (the handler stops at its next checkpoint).
``timeout`` is never set by the runner: a ``processing``/``cancelling`` task
whose ``checkpoint_time`` is older than ``TASK_CHECKPOINT_INTERVAL *
TASK_TIMEOUT_FACTOR`` has lost its worker, and reading it (list or get)
reports and records it as timed out, as BOSH does.

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
#: States a running worker keeps a fresh checkpoint in (the timeout check applies to these).
RUNNING_STATES = (TaskState.PROCESSING, TaskState.CANCELLING)
#: States a cancel request is accepted in (BOSH: ``cancellable?``).
CANCELLABLE_STATES = (TaskState.QUEUED, TaskState.PROCESSING)


def timeout_limit() -> timedelta:
    """How old a checkpoint may be before its task counts as timed out."""
    return timedelta(seconds=settings.TASK_CHECKPOINT_INTERVAL * settings.TASK_TIMEOUT_FACTOR)


class TaskQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=ACTIVE_STATES)

    def stale(self, now=None):
        """Running tasks whose worker stopped checkpointing."""
        now = now or timezone.now()
        return self.filter(state__in=RUNNING_STATES, checkpoint_time__lt=now - timeout_limit())

    def mark_timed_out(self, now=None) -> int:
        """Record ``timeout`` on every stale task in this queryset (one UPDATE)."""
        now = now or timezone.now()
        return self.stale(now).update(
            state=TaskState.TIMEOUT,
            finished_at=now,
            result="task timed out: its worker stopped checkpointing",
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
        """The state, with ``timeout`` derived for a running task whose checkpoint is stale."""
        if (
            self.state in RUNNING_STATES
            and self.checkpoint_time is not None
            and timezone.now() - self.checkpoint_time > timeout_limit()
        ):
            return TaskState.TIMEOUT
        return self.state

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
