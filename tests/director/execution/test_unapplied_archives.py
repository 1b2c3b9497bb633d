"""Rendered template archives never applied are deleted; applied ones and release blobs stay.

Without vCenter or agents: what ``store_archive`` records before it stores
an archive, what recording an apply deletes (the archive it replaced), and
what the next deploy's ``delete_unapplied_archives`` deletes after a worker
was killed between storing an archive and recording its apply. What is
checked is what the blobstore holds. (On vcsim, with a real killed worker:
``test_failures_vcsim``.)
"""

from __future__ import annotations

import io

import pytest

from director.blobstore import blobstore
from director.cleanup import delete_unapplied_archives
from director.execution.deploy import _record_applied_templates
from director.execution.templates import store_archive
from director.models import CompiledPackage, Deployment, Instance

pytestmark = pytest.mark.django_db


class Rendered:
    """What ``store_archive`` reads of a ``RenderedInstance``: its archive's bytes."""

    def __init__(self, data: bytes):
        self.data = data

    def archive(self) -> bytes:
        return self.data


@pytest.fixture
def store(settings, tmp_path):
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.BLOBSTORE = "local"
    return blobstore()


@pytest.fixture
def instance():
    deployment = Deployment.objects.create(name="zk")
    return Instance.objects.create(deployment=deployment, group="zookeeper", uuid="u-0", index=0)


def apply(instance, archive):
    _record_applied_templates(
        instance, {"id": instance.uuid, "rendered_templates_archive": archive}
    )


def test_an_archive_stored_and_never_applied_is_deleted_by_the_next_run(store, instance):
    first = store_archive(instance, Rendered(b"v1"))
    apply(instance, first)
    # a worker killed after storing v2, before the agent's apply was recorded
    killed = store_archive(Instance.objects.get(id=instance.id), Rendered(b"v2"))
    assert store.exists(killed["blobstore_id"])

    deleted = delete_unapplied_archives(Instance.objects.filter(deployment__name="zk"))

    assert deleted == [f"{killed['blobstore_id']} (zookeeper/u-0 (0))"]
    assert not store.exists(killed["blobstore_id"])
    assert store.exists(first["blobstore_id"])  # the applied one stays
    assert delete_unapplied_archives(Instance.objects.all()) == []  # nothing listed any more


def test_recording_an_apply_deletes_the_archive_it_replaced_and_keeps_the_new_one(store, instance):
    first = store_archive(instance, Rendered(b"v1"))
    apply(instance, first)
    again = store_archive(Instance.objects.get(id=instance.id), Rendered(b"v1"))
    assert again == first  # equal renders: the stored archive is reused
    second = store_archive(Instance.objects.get(id=instance.id), Rendered(b"v2"))
    apply(Instance.objects.get(id=instance.id), second)

    assert not store.exists(first["blobstore_id"])
    assert store.exists(second["blobstore_id"])
    spec = Instance.objects.get(id=instance.id).spec_json
    assert spec["rendered_templates_archive"] == second
    assert delete_unapplied_archives(Instance.objects.all()) == []


def test_a_listed_blob_that_something_refers_to_is_never_deleted(store, instance):
    applied = store.put(io.BytesIO(b"applied")).id
    compiled = store.put(io.BytesIO(b"compiled")).id
    orphan = store.put(io.BytesIO(b"orphan")).id
    CompiledPackage.objects.create(
        name="java",
        version="1.1",
        fingerprint="f",
        stemcell_os="ubuntu-jammy",
        stemcell_version="1.0",
        dependency_key_sha1="d",
        blobstore_id=compiled,
        sha1="s",
    )
    Instance.objects.filter(id=instance.id).update(
        spec_json={
            "apply_spec": {"rendered_templates_archive": {"blobstore_id": applied}},
            "unapplied_templates_archives": [applied, compiled, orphan],
        }
    )

    assert delete_unapplied_archives([instance]) == [f"{orphan} (zookeeper/u-0 (0))"]
    assert store.exists(applied) and store.exists(compiled) and not store.exists(orphan)
    assert "unapplied_templates_archives" not in Instance.objects.get(id=instance.id).spec_json
