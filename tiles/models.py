"""Tiles: available products, staged configuration, the Director tile, installations.

The console's data follows Ops Manager's three states of a product:

- **available** (``Product``): an imported product template (``.pivotal`` or
  bare metadata YAML), one row per ``name`` + ``version``; its releases were
  handed to the director on import.
- **staged** (``StagedProduct``): the desired configuration an operator edits
  (property values, AZ/network assignment, resource config per job, errand
  switches). Secret values live only in the encrypted ``secrets`` column.
- **deployed**: the snapshot of a staged product taken when an Apply Changes
  deployed it (``deployed_*`` columns, encrypted where they hold secrets);
  Review Pending Changes diffs against it and Revert restores it.

The **Director tile** (``DirectorConfig``, product name ``p-bosh``) is one
row, always present and never deletable: vCenter, director settings, AZs,
networks, VM types. It renders the cpi-config and cloud-config.

The **Stemcell Library** (``LibraryStemcell``) holds the stemcell files the
console imported; Apply Changes uploads the ones the director lacks.

An **Installation** is one Apply Changes: its ``InstallationStep`` rows are
run in order by one Celery task, each step as a director ``Task``.
"""

from __future__ import annotations

import secrets

from django.db import models

from opsconsole.crypto import EncryptedJSONField, EncryptedTextField
from tiles.template import load_product_template

DIRECTOR_PRODUCT_NAME = "p-bosh"


def new_guid(product_name: str) -> str:
    """Ops Manager's product guid: ``<name>-<20 hex>``."""
    return f"{product_name}-{secrets.token_hex(10)}"


class ConsoleCertificateAuthority(models.Model):
    """The console's root CA, generated once; signs ``rsa_cert_credentials``."""

    cert_pem = models.TextField()
    private_key_pem = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"root CA #{self.id}"


class Product(models.Model):
    """An available (imported) product: its template text and release list."""

    name = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    label = models.CharField(max_length=255, blank=True, default="")
    metadata = models.TextField(help_text="the product template YAML as imported")
    #: ``[{"name", "version", "file"}]`` from the template's ``releases``.
    releases = models.JSONField(default=list, blank=True)
    #: Director task ids of the release uploads started by the import.
    release_task_ids = models.JSONField(default=list, blank=True)
    filename = models.CharField(max_length=255, blank=True, default="")
    uploaded_by = models.CharField(max_length=150, blank=True, default="")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    #: Quirks import accepted, as Ops Manager does (``"<template path>: <message>"``),
    #: shown at import, on the tile and in the API (``tiles.template`` lenient checks).
    warnings = models.JSONField(default=list, blank=True)
    #: The ``.pivotal``'s ``migrations/v1/*.js``, ``[{"name", "source"}]`` in name order:
    #: run when a staged product is upgraded to this version (``tiles.jsmigrations``).
    migrations = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="product_name_version")
        ]
        ordering = ["name", "-id"]

    def __str__(self):
        return f"{self.name} {self.version}"

    def template(self):
        """The parsed ``ProductTemplate`` (cached on the instance)."""
        cached = getattr(self, "_template", None)
        if cached is None:
            cached = self._template = load_product_template(self.metadata, source=self.filename)
        return cached


class StagedProduct(models.Model):
    """A product on the dashboard: staged configuration plus the deployed snapshot."""

    guid = models.CharField(max_length=100, unique=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="staged")
    #: Non-secret property values by reference (normalised, see tiles.properties).
    values = models.JSONField(default=dict, blank=True)
    #: Secret and credential values by reference (encrypted at rest).
    secrets = EncryptedJSONField(default=dict, blank=True)
    #: ``{"network": name, "singleton_availability_zone": name,
    #: "other_availability_zones": [names], "service_network": name|None}``
    network_and_azs = models.JSONField(default=dict, blank=True)
    #: Per job name: ``{"instances": int|None, "instance_type": str|None,
    #: "persistent_disk_mb": int|None}`` (None = Automatic).
    resource_config = models.JSONField(default=dict, blank=True)
    #: Per errand name: ``{"post_deploy": bool|"when-changed"|None, "pre_delete": ...}``.
    errands = models.JSONField(default=dict, blank=True)
    marked_for_deletion = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: Bumped by every operator write (a pane saved, an API PUT): the version a
    #: form's hidden field or an API ``ETag`` carries, so a write based on a
    #: stale read is refused (409) instead of silently undoing another's change.
    revision = models.PositiveIntegerField(default=0)
    #: The last change of each part: ``{key: {"revision", "by", "at"}}``, key a
    #: property reference, ``networks_and_azs``, ``resource_config/<job>`` or
    #: ``errands`` (see ``tiles.services.versions``).
    edits = models.JSONField(default=dict, blank=True)
    #: The last upgrade to another version (``tiles.services.upgrades``):
    #: ``{"from_version", "to_version", "migrations", "changes"}``, secret values
    #: as ``***``; Review Pending Changes shows it until that version is deployed.
    upgrade = models.JSONField(default=dict, blank=True)

    # The deployed snapshot (empty until the first successful deploy).
    deployed_product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="deployed"
    )
    deployed_version = models.CharField(max_length=100, blank=True, default="")
    #: The manifest YAML last deployed (holds credentials: encrypted).
    deployed_manifest = EncryptedTextField(blank=True, default="")
    #: ``{"values", "secrets", "network_and_azs", "resource_config", "errands"}`` as deployed.
    deployed_state = EncryptedJSONField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.guid

    @property
    def name(self) -> str:
        return self.product.name

    @property
    def is_deployed(self) -> bool:
        return bool(self.deployed_version)

    def all_values(self) -> dict:
        """Staged values and secrets together, by reference."""
        return {**(self.values or {}), **(self.secrets or {})}


class DirectorConfig(models.Model):
    """The BOSH Director tile (``p-bosh``): one row, see ``tiles.director_tile``."""

    guid = models.CharField(max_length=100, unique=True)
    #: vCenter settings without the password (Ops Manager's ``iaas_configuration``).
    iaas_configuration = models.JSONField(default=dict, blank=True)
    vcenter_password = EncryptedTextField(blank=True, default="")
    director_configuration = models.JSONField(default=dict, blank=True)
    #: ``[{"name", "clusters": [{"cluster", "res_pool", "host_group": {"name", "drs_rule"}}]}]``
    availability_zones = models.JSONField(default=list, blank=True)
    #: ``{"icmp_checks_enabled", "networks": [{"name", "subnets": [...]}]}``
    networks = models.JSONField(default=dict, blank=True)
    #: ``{"network": name, "singleton_availability_zone": name}``
    network_and_az = models.JSONField(default=dict, blank=True)
    #: Custom VM types; empty means the built-in catalog.
    vm_types = models.JSONField(default=list, blank=True)
    #: Resource config of the director's own jobs (compilation workers).
    resource_config = models.JSONField(default=dict, blank=True)
    #: The Security and Syslog panes (``tiles.director_security``).
    security_configuration = models.JSONField(default=dict, blank=True)
    syslog_configuration = models.JSONField(default=dict, blank=True)
    #: Everything above (with the password) as of the last successful apply.
    deployed_state = EncryptedJSONField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: As ``StagedProduct.revision``/``edits``; a part is a pane's column
    #: (``iaas_configuration``, ``availability_zones``, ``networks``...).
    revision = models.PositiveIntegerField(default=0)
    edits = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return self.guid


class InstallationStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Installation(models.Model):
    """One Apply Changes. Only one may be ``running`` at a time."""

    user_name = models.CharField(max_length=150, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=InstallationStatus.choices, default=InstallationStatus.RUNNING
    )
    #: ``"all"``, ``"none"`` or a list of guids, as requested.
    deploy_products = models.JSONField(default=list, blank=True)
    #: Errand overrides for this apply only (Ops Manager's shape, by guid).
    errands = models.JSONField(default=dict, blank=True)
    ignore_warnings = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    #: Set by the worker when it starts; a redelivered message finds it set.
    worker_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    #: What was reviewed, rendered at the click: the Director tile's cpi-config,
    #: cloud-config and settings, each product's manifest and configuration
    #: (``tiles.services.installations.snapshot``). The worker deploys this, never the
    #: staged configuration as it is when it runs. Encrypted: it holds secrets.
    snapshot = EncryptedJSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"Installation {self.id} ({self.status})"


class StepKind(models.TextChoices):
    VCENTER = "vcenter", "vCenter"
    CONFIGS = "configs"
    STEMCELLS = "stemcells"
    DEPLOY = "deploy"
    DELETE = "delete"
    ERRAND = "errand"


class StepState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class InstallationStep(models.Model):
    """One step of an installation, run as a director task (``task``).

    ``action`` is what the Change Log shows per product: ``install``,
    ``update``, ``delete``, ``unchanged`` (Ops Manager's ADDED / UPDATED /
    DELETED / NO CHANGES).
    """

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE, related_name="steps")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    product_guid = models.CharField(max_length=100, blank=True, default="")
    product_name = models.CharField(max_length=255, blank=True, default="")
    product_version = models.CharField(max_length=100, blank=True, default="")
    label = models.CharField(max_length=255)
    action = models.CharField(max_length=16, blank=True, default="")
    #: For errand steps: the errand name.
    errand = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    task = models.ForeignKey(
        "director.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["installation_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["installation", "seq"], name="installation_step_seq")
        ]

    def __str__(self):
        return f"{self.installation_id}/{self.seq} {self.label} ({self.state})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class LibraryStemcell(models.Model):
    """A stemcell file in the console's Stemcell Library (Ops Manager's "Import Stemcell").

    The tarball is kept under ``settings.STEMCELL_LIBRARY_DIR`` (one file per
    ``name`` + ``version``, checked with ``director.uploads.read_stemcell``
    before it is kept), so Apply Changes can upload it to the director
    whenever a staged product needs it and the director lacks it.
    """

    name = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    operating_system = models.CharField(max_length=100)
    #: Absolute path of the kept tarball.
    path = models.CharField(max_length=1024)
    #: sha1 of the tarball file (not the image's sha1 from ``stemcell.MF``).
    sha1 = models.CharField(max_length=40)
    uploaded_by = models.CharField(max_length=150, blank=True, default="")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name", "version"], name="library_stemcell_name_version"
            )
        ]
        ordering = ["operating_system", "name", "-id"]

    def __str__(self):
        return f"{self.name}/{self.version}"
