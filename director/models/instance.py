"""Instances and their VMs (BOSH ``instances``, ``vms``, ``orphaned_vms``).

An ``Instance`` is a slot of an instance group with a stable identity
(``group/uuid``; ``index`` kept for compatibility and display as BOSH does:
``zookeeper/3f1c... (2)``). It outlives its VMs: a recreate deletes the VM
and creates another for the same instance; persistent disks and IPs belong
to the instance.

A ``Vm`` is one IaaS VM of an instance. Normally an instance has at most
one, ``active``; during ``create-swap-delete`` it briefly has two (the new
one inactive until elected). A VM that is replaced moves to ``OrphanedVm``
and is deleted from the IaaS later by a periodic cleanup.
"""

from django.db import models

from .deployment import Deployment
from .variable import VariableSet


class InstanceState(models.TextChoices):
    """The desired state of an instance (``bosh start/stop [--hard]``)."""

    STARTED = "started"
    STOPPED = "stopped"
    DETACHED = "detached"


class Instance(models.Model):
    """A member of an instance group of a deployment.

    ``spec_json`` is the last spec applied to it (what the execution wrote:
    job properties, links, networks, packages...), the "current state" that
    the planner compares the next manifest against. ``update_completed`` is
    False while an update of it is under way, so a crashed deploy can tell
    which instances were half-done.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="instances")
    group = models.CharField(max_length=255, help_text="instance group name (BOSH: job)")
    uuid = models.CharField(max_length=64, unique=True)
    index = models.PositiveIntegerField()
    az = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(
        max_length=16, choices=InstanceState.choices, default=InstanceState.STARTED
    )
    bootstrap = models.BooleanField(default=False)
    compilation = models.BooleanField(default=False)
    ignore = models.BooleanField(default=False)
    update_completed = models.BooleanField(default=False)
    cloud_properties = models.JSONField(default=dict, blank=True)
    spec_json = models.JSONField(default=dict, blank=True)
    variable_set = models.ForeignKey(
        VariableSet, on_delete=models.SET_NULL, null=True, blank=True, related_name="instances"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["deployment", "group", "index"], name="instance_group_idx")]
        ordering = ["deployment_id", "group", "index"]

    def __str__(self):
        return f"{self.group}/{self.uuid} ({self.index})"

    @property
    def name(self) -> str:
        """BOSH's instance name ``group/uuid``, used in events and metadata."""
        return f"{self.group}/{self.uuid}"

    @property
    def active_vm(self) -> "Vm | None":
        """The active VM (uses a prefetched ``vms`` list when there is one)."""
        for vm in self.vms.all():
            if vm.active:
                return vm
        return None


class Vm(models.Model):
    """An IaaS VM (``cid``) of an instance, with what it was created from."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="vms")
    cid = models.CharField(max_length=255, unique=True)
    agent_id = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=False)
    cpi = models.CharField(max_length=100, blank=True, default="")
    network_spec = models.JSONField(default=dict, blank=True)
    env = models.JSONField(default=dict, blank=True)
    cloud_properties = models.JSONField(default=dict, blank=True)
    stemcell_name = models.CharField(max_length=255, blank=True, default="")
    stemcell_version = models.CharField(max_length=100, blank=True, default="")
    stemcell_api_version = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["instance", "active"], name="vm_instance_active_idx")]
        ordering = ["id"]

    def __str__(self):
        return self.cid


class OrphanedVm(models.Model):
    """A VM no instance uses any more, waiting for the periodic cleanup to delete it."""

    cid = models.CharField(max_length=255, unique=True)
    az = models.CharField(max_length=255, blank=True, default="")
    cpi = models.CharField(max_length=100, blank=True, default="")
    cloud_properties = models.JSONField(default=dict, blank=True)
    stemcell_api_version = models.PositiveSmallIntegerField(null=True, blank=True)
    deployment_name = models.CharField(max_length=255)
    instance_name = models.CharField(max_length=255)
    orphaned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["orphaned_at"]

    def __str__(self):
        return f"{self.cid} (was {self.deployment_name}/{self.instance_name})"
