"""Configs: versioned YAML documents by type and name (BOSH ``configs``).

Types ``cloud``, ``runtime``, ``cpi`` and ``resurrection`` mean something to
the director; any other type is stored for whoever reads it. Every update
appends a row: the latest version of ``(type, name)`` is the highest id that
is not deleted, and deployments pin the exact rows they were deployed with
(``Deployment.configs``). Deleting a config marks all its versions deleted.

Content is encrypted at rest for every type (``ConfigContentField``): a
cpi-config holds the vCenter password, and any config may hold a secret, so
the column only ever holds a Fernet token. BOSH stores configs in clear and
relies on ``((variables))`` from CredHub; we deliberately do better, since
the Director tile writes the real password into the cpi-config. The price:
content cannot be compared or searched in SQL; compare decrypted text in
Python (``director.services.update_config`` does).
"""

from django.db import IntegrityError, models, transaction

from opsconsole.crypto import EncryptedTextField, decrypt
from opsconsole.redaction import register_yaml_secrets


class ConfigContentField(EncryptedTextField):
    """A config's YAML text, stored as a Fernet token.

    Unlike the plain ``EncryptedTextField``, which registers the whole
    decrypted value for log redaction, this registers only the values under
    secret-looking keys (``cpis[*].properties.password``): the rest of a
    config is no secret, and log lines quoting it stay readable.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        plain = decrypt(value)
        register_yaml_secrets(plain)
        return plain


class ConfigType(models.TextChoices):
    CLOUD = "cloud"
    RUNTIME = "runtime"
    CPI = "cpi"
    RESURRECTION = "resurrection"


#: Config types whose content the director interprets.
KNOWN_CONFIG_TYPES = tuple(ConfigType.values)


class Config(models.Model):
    """One version of the config ``(type, name)``; content is YAML text."""

    type = models.CharField(max_length=100)
    name = models.CharField(max_length=255, default="default")
    content = ConfigContentField()
    created_at = models.DateTimeField(auto_now_add=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["type", "name", "-id"], name="config_latest_idx")]
        ordering = ["-id"]

    def __str__(self):
        return f"{self.type}/{self.name} #{self.id}"

    @classmethod
    def latest(cls, type: str, name: str = "default") -> "Config | None":
        """The current version of ``(type, name)``, or None."""
        return cls.objects.filter(type=type, name=name, deleted=False).order_by("-id").first()

    @classmethod
    def latest_set(cls, type: str) -> list["Config"]:
        """The current version of every name of ``type``, ordered by name (BOSH: latest_set)."""
        ids = (
            cls.objects.filter(type=type, deleted=False)
            .values("name")
            .annotate(latest_id=models.Max("id"))
            .values_list("latest_id", flat=True)
        )
        return list(cls.objects.filter(id__in=list(ids)).order_by("name"))


class DirectorAttribute(models.Model):
    """A director-wide setting (BOSH ``director_attributes``), e.g. ``resurrection_paused``.

    ``value`` is plain text (often JSON); a setting's secret part (the health
    monitor's SMTP password) goes in ``secret``, an encrypted column, so key
    rotation re-encrypts it and an installation export carries it as it
    carries every other secret. ``set`` writes both: a setting written
    without its secret has none.
    """

    RESURRECTION_PAUSED = "resurrection_paused"

    name = models.CharField(max_length=100, unique=True)
    value = models.TextField(blank=True, default="")
    secret = EncryptedTextField(blank=True, default="")

    def __str__(self):
        return f"{self.name}={self.value}"

    @classmethod
    def get(cls, name: str, default: str | None = None) -> str | None:
        # values_list: reading a setting decrypts no secret
        value = cls.objects.filter(name=name).values_list("value", flat=True).first()
        return default if value is None else value

    @classmethod
    def get_secret(cls, name: str) -> str:
        """The decrypted secret of the setting ``name`` ("" when none is stored)."""
        return cls.objects.filter(name=name).values_list("secret", flat=True).first() or ""

    @classmethod
    def has_secret(cls, name: str) -> bool:
        return cls.objects.filter(name=name).exclude(secret="").exists()

    @classmethod
    def set(cls, name: str, value: str, secret: str = "") -> None:
        # update, not update_or_create: a secret the key cannot open must not stop its replacement
        if cls.objects.filter(name=name).update(value=value, secret=secret):
            return
        try:
            with transaction.atomic():
                cls.objects.create(name=name, value=value, secret=secret)
        except IntegrityError:  # another process created it a moment ago
            cls.objects.filter(name=name).update(value=value, secret=secret)
