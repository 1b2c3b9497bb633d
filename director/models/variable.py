"""Variables: generated and supplied credentials (BOSH ``variable_sets``,
``variables``, and the config server they point into).

``Credential`` is the console's own config server (CredHub's role in BOSH):
values by absolute name ``/<director>/<deployment>/<name>``, every write a
new version, encrypted at rest. ``VariableSet`` is one deploy's view: each
``Variable`` records which credential version an instance was deployed with,
so a later deploy that fails keeps instances on the values they run with.
A deploy creates a writable set; it becomes ``deployed_successfully`` when
the deploy succeeds and read-only (``writable=False``) when it ends.
"""

from django.db import models

from opsconsole.crypto import EncryptedJSONField

from .deployment import Deployment


class Credential(models.Model):
    """One version of a stored value; latest version of a name = highest id."""

    name = models.CharField(max_length=500)
    #: BOSH variable type: password, certificate, rsa, ssh, user, value, json.
    type = models.CharField(max_length=32)
    value = EncryptedJSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["name", "-id"], name="credential_latest_idx")]
        ordering = ["name", "-id"]

    def __str__(self):
        return f"{self.name} ({self.type}) v{self.id}"

    @classmethod
    def latest(cls, name: str) -> "Credential | None":
        return cls.objects.filter(name=name).order_by("-id").first()

    @classmethod
    def put(cls, name: str, type: str, value) -> "Credential":
        """Store a new version of ``name``."""
        return cls.objects.create(name=name, type=type, value=value)


class VariableSet(models.Model):
    """The variable versions one deploy of a deployment resolved."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="variable_sets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deployed_successfully = models.BooleanField(default=False)
    writable = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"variable set {self.id} of {self.deployment_id}"


class Variable(models.Model):
    """A variable of a set: its absolute name, type and the value it resolved to."""

    variable_set = models.ForeignKey(
        VariableSet, on_delete=models.CASCADE, related_name="variables"
    )
    name = models.CharField(max_length=500)
    type = models.CharField(max_length=32, blank=True)
    value = EncryptedJSONField(null=True, blank=True)
    credential = models.ForeignKey(
        Credential, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["variable_set", "name"], name="variable_set_name")
        ]

    def __str__(self):
        return self.name
