"""Stemcells: the base images VMs are cloned from (BOSH ``stemcells`` table).

A row exists once the CPI imported the image (``create_stemcell``) and gave
back its ``cid`` (on vSphere a template VM ``sc-<uuid>``). ``name`` +
``version`` identify a stemcell across the director (one CPI for now, so no
``cpi`` column in the unique key yet; ``cpi`` is kept for multi-CPI).
"""

from django.db import models


class Stemcell(models.Model):
    """An uploaded stemcell, imported into the IaaS as ``cid``."""

    name = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    operating_system = models.CharField(max_length=100, blank=True)
    cid = models.CharField(max_length=255)
    sha1 = models.CharField(max_length=128, blank=True)
    api_version = models.PositiveSmallIntegerField(null=True, blank=True)
    cpi = models.CharField(max_length=100, blank=True, default="")
    cloud_properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="stemcell_name_version")
        ]
        ordering = ["name", "-id"]

    def __str__(self):
        return f"{self.name}/{self.version}"
