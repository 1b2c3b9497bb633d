"""Releases: versioned bundles of jobs and packages (BOSH ``releases``,
``release_versions``, ``templates`` (= jobs) and ``packages``).

A release tarball is unpacked once on upload (``director.uploads``): each
job's ``job.MF`` becomes ``ReleaseJob.spec`` (templates, packages,
properties with their defaults, consumes/provides links), each job's and
package's tarball is kept in the director's blobstore (``director.blobstore``)
and ``blobstore_id`` holds its blob id (BOSH's name; an older console wrote a
``<sha1[:2]>/<sha1>`` path there, which migration 0006 moves into the blobstore),
``sha1`` its digest from ``release.MF``. Nothing is compiled: packages are
source packages, or compiled packages when the tarball was a compiled release
(``stemcell``).

Unlike BOSH, jobs and packages belong to one release version rather than
being shared between versions through join tables: simpler to read.
"""

from django.db import models


class Release(models.Model):
    """A release name (``zookeeper``); its versions hold the content."""

    name = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ReleaseVersion(models.Model):
    """One uploaded version of a release (``zookeeper/0.0.10``)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    commit_hash = models.CharField(max_length=64, blank=True, default="")
    uncommitted_changes = models.BooleanField(default=False)
    #: False while the upload task is storing jobs and packages.
    update_completed = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "version"], name="release_version_unique")
        ]
        ordering = ["release__name", "-id"]

    def __str__(self):
        return f"{self.release.name}/{self.version}"


class ReleaseJob(models.Model):
    """A job of a release version (BOSH's ``templates`` table).

    ``spec`` is the job's ``job.MF`` as uploaded: ``name``, ``templates``
    (source -> destination path), ``packages`` (names), ``properties``
    (name -> {description, default, type, example}), ``consumes`` and
    ``provides`` (links). Manifest validation fills property defaults from it.
    """

    release_version = models.ForeignKey(
        ReleaseVersion, on_delete=models.CASCADE, related_name="jobs"
    )
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=128, blank=True)
    sha1 = models.CharField(max_length=128, blank=True)
    blobstore_id = models.CharField(max_length=500, blank=True)
    spec = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release_version", "name"], name="release_job_unique")
        ]
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}/{self.version}"

    @property
    def properties(self) -> dict:
        return self.spec.get("properties") or {}

    @property
    def package_names(self) -> list[str]:
        return list(self.spec.get("packages") or [])


class ReleasePackage(models.Model):
    """A package of a release version; its tarball is the blob whose id is ``blobstore_id``.

    ``dependencies`` lists package names of the same release. ``stemcell``
    is ``<os>/<version>`` for a compiled package, empty for a source package.
    """

    release_version = models.ForeignKey(
        ReleaseVersion, on_delete=models.CASCADE, related_name="packages"
    )
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=128, blank=True)
    sha1 = models.CharField(max_length=128, blank=True)
    blobstore_id = models.CharField(max_length=500, blank=True)
    dependencies = models.JSONField(default=list, blank=True)
    stemcell = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["release_version", "name", "stemcell"], name="release_package_unique"
            )
        ]
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}/{self.version}"
