"""IP reservations (BOSH ``ip_addresses``): one row per address in use, director-wide.

The unique ``address`` column is what makes allocation safe across parallel
deploys: two tasks picking the same free address cannot both insert it (the
loser retries with the next one). A row points at the instance it is
reserved for, the VM carrying it once created, or the orphaned VM still
holding it; ``task`` records which task reserved it so that the IPs of a
failed create can be released.
"""

from django.db import models

from .instance import Instance, OrphanedVm, Vm


class IpAddress(models.Model):
    """A reserved address (no prefix: ``10.0.0.5``) on a manual network."""

    address = models.GenericIPAddressField(unique=True)
    network_name = models.CharField(max_length=255)
    static = models.BooleanField(default=False)
    instance = models.ForeignKey(
        Instance, on_delete=models.CASCADE, null=True, blank=True, related_name="ip_addresses"
    )
    vm = models.ForeignKey(
        Vm, on_delete=models.SET_NULL, null=True, blank=True, related_name="ip_addresses"
    )
    orphaned_vm = models.ForeignKey(
        OrphanedVm, on_delete=models.SET_NULL, null=True, blank=True, related_name="ip_addresses"
    )
    task = models.ForeignKey(
        "director.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.address} ({self.network_name})"
