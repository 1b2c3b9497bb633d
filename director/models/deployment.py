"""Deployments (BOSH ``deployments``) and cloud-check problems.

``manifest_text`` is the manifest exactly as the operator sent it (the
source of ``bosh manifest``); ``manifest`` is the manifest after ops files
and with runtime-config addons merged, still with ``((variables))``
uninterpolated (what later plans diff against). The row is created when a
deploy starts; the manifest fields are written by the deploy when it
succeeds (BOSH's ``PersistDeploymentStage``), together with the configs,
stemcells and release versions it used.
"""

from django.db import models

from .config import Config
from .release import ReleaseVersion
from .stemcell import Stemcell


class Deployment(models.Model):
    """A named deployment; its instances, VMs, disks and IPs hang off it."""

    name = models.CharField(max_length=255, unique=True)
    manifest_text = models.TextField(blank=True, default="")
    manifest = models.TextField(blank=True, default="")
    #: The exact cloud and runtime config versions of the last successful deploy.
    configs = models.ManyToManyField(Config, blank=True, related_name="deployments")
    stemcells = models.ManyToManyField(Stemcell, blank=True, related_name="deployments")
    release_versions = models.ManyToManyField(
        ReleaseVersion, blank=True, related_name="deployments"
    )
    links_serial_id = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ProblemState(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"
    RESOLVED = "resolved"


class DeploymentProblem(models.Model):
    """A cloud-check finding (BOSH ``deployment_problems``).

    ``type`` is one of ``missing_vm``, ``unresponsive_agent``,
    ``mount_info_mismatch``, ``inactive_disk``, ``missing_disk``;
    ``resource_id`` is the instance or disk row id; ``counter`` counts how
    many scans saw it.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="problems")
    type = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=ProblemState.choices, default="open")
    resource_id = models.BigIntegerField()
    data = models.JSONField(default=dict, blank=True)
    counter = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["deployment", "state"], name="problem_dep_state_idx")]
        ordering = ["id"]

    def __str__(self):
        return f"{self.type} #{self.resource_id} ({self.state})"
