"""What the health monitor saw and what the resurrector did: ``Alert``, ``ResurrectionEvent``.

An ``Alert`` is BOSH's health monitor alert (``M/events/alert.rb``) kept in
the database: ``vm_health`` for one instance (its VM is missing, powered
off behind the director's back, its agent silent), ``deployment_health``
for a deployment that has such instances, and the resurrector's own
(meltdown, resurrection disabled). Severity is BOSH's: 1 alert, 2 critical,
3 error, 4 warning. An alert stays open while its condition holds (each
scan refreshes ``last_seen_at``) and is resolved when it ends; ``key`` names
the condition, and at most one alert per key is open at a time (a partial
unique constraint), so a condition seen by two scans at once is one alert.

A ``ResurrectionEvent`` is one line of the resurrection timeline: a
detection, a decision (resurrect, meltdown, disabled...) or an outcome
(recreated with the seconds it took from detection, or failed). Names are
kept as text, not foreign keys, so the timeline outlives deleted
deployments and instances.
"""

from django.db import models


class AlertCategory(models.TextChoices):
    VM_HEALTH = "vm_health"
    DEPLOYMENT_HEALTH = "deployment_health"


class Severity(models.IntegerChoices):
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4


class Alert(models.Model):
    """One health condition, open while it holds (``resolved_at`` null)."""

    key = models.CharField(max_length=400, help_text="the condition: <kind>:<deployment>[:<id>]")
    category = models.CharField(max_length=32, choices=AlertCategory.choices)
    severity = models.SmallIntegerField(choices=Severity.choices)
    #: missing_vm, powered_off, no_vm, unresponsive_agent, meltdown, resurrection_disabled...
    cause = models.CharField(max_length=64)
    title = models.CharField(max_length=500)
    summary = models.TextField(blank=True, default="")
    source = models.CharField(max_length=100, default="hm")
    deployment = models.CharField(max_length=255, blank=True, default="")
    instance = models.CharField(max_length=400, blank=True, default="", help_text="group/uuid")
    vm_cid = models.CharField(max_length=255, blank=True, default="")
    #: The resurrector's last decision about it (resurrect, meltdown, disabled...).
    decision = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["deployment", "-id"], name="alert_deployment_idx"),
            models.Index(fields=["resolved_at", "-id"], name="alert_open_idx"),
        ]
        ordering = ["-id"]

    def __str__(self):
        return f"[{self.category}] {self.title}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Decision(models.TextChoices):
    """What a ``ResurrectionEvent`` records."""

    DETECTED = "detected"
    RESURRECT = "resurrect"
    MELTDOWN = "meltdown"
    DISABLED = "disabled"
    DISABLED_BY_CONFIG = "disabled_by_config"
    RECREATED = "recreated"
    FAILED = "failed"
    SKIPPED = "skipped"


class ResurrectionEvent(models.Model):
    """A detection, decision or outcome of the resurrector for one instance."""

    created_at = models.DateTimeField()
    deployment = models.CharField(max_length=255)
    instance = models.CharField(max_length=400, blank=True, default="", help_text="group/uuid")
    cause = models.CharField(max_length=64, blank=True, default="")
    decision = models.CharField(max_length=32, choices=Decision.choices)
    task = models.ForeignKey(
        "director.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    old_cid = models.CharField(max_length=255, blank=True, default="")
    new_cid = models.CharField(max_length=255, blank=True, default="")
    #: From the first detection of the outage to the new VM running (outcomes only).
    seconds_to_recover = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["deployment", "-id"], name="resurrection_dep_idx")]
        ordering = ["-id"]

    def __str__(self):
        return f"{self.deployment}/{self.instance}: {self.decision}"
