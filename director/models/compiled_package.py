"""Compiled packages: a release package built on a stemcell, kept for every deploy after.

BOSH's ``compiled_packages`` table. A source package compiled by an agent
(``compile_package``) is kept in the blobstore and recorded here under what
determines its bytes: the package's **fingerprint**, the stemcell's
operating system and version, and the **dependency key** (its transitive
dependencies' names and versions, BOSH's ``KeyGenerator``). Any deploy of
any deployment whose package and stemcell match reuses it instead of
compiling again; a release version that shares the package's fingerprint
reuses it too. ``build`` numbers the compilations of one package per
stemcell, as BOSH's ``generate_build_number`` does; the agent is sent
``<version>.<build>``.
"""

from django.db import models


class CompiledPackage(models.Model):
    """A package compiled for one stemcell os/version with one set of dependencies."""

    name = models.CharField(max_length=255)
    version = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=128)
    stemcell_os = models.CharField(max_length=100)
    stemcell_version = models.CharField(max_length=100)
    dependency_key = models.TextField(default="[]")
    dependency_key_sha1 = models.CharField(max_length=40)
    build = models.PositiveIntegerField(default=1)
    blobstore_id = models.CharField(max_length=64)
    sha1 = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "stemcell_os", "stemcell_version", "dependency_key_sha1"],
                name="compiled_package_unique",
            )
        ]
        ordering = ["name", "stemcell_os", "stemcell_version"]

    def __str__(self):
        return f"{self.name}/{self.version} on {self.stemcell_os}/{self.stemcell_version}"

    @property
    def full_version(self) -> str:
        """What the agent is told (``<version>.<build>``)."""
        return f"{self.version}.{self.build}"
