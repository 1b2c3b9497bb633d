"""The monitor's scan without vCenter work: an empty director, an instance with no VM."""

from __future__ import annotations

import pytest

from director.health import monitor
from director.models import Alert, Deployment, Instance, ResurrectionEvent, Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]


@pytest.fixture(autouse=True)
def no_vcenter(settings, tmp_path):
    """No cpi config and no local vcsim: any vCenter read would fail the scan."""
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"


def test_an_empty_director_needs_no_vcenter():
    report = monitor.scan()
    assert report.error == "" and report.vms == 0 and report.deployments == []


def test_an_instance_never_deployed_is_alerted_but_not_resurrected():
    d = Deployment.objects.create(name="zk")
    i = Instance.objects.create(deployment=d, group="zookeeper", uuid="u-1", index=0)
    report = monitor.scan()
    assert report.error == ""
    assert [(p.instance.uuid, p.cause) for p in report.problems["zk"]] == [("u-1", "no_vm")]
    alert = Alert.objects.get(category="vm_health")
    assert alert.instance == i.name and alert.title == "zookeeper/u-1 (0) has no VM"
    assert alert.decision == "skipped"
    assert not Task.objects.exists()
    assert list(ResurrectionEvent.objects.order_by("id").values_list("decision", flat=True)) == [
        "detected",
        "skipped",
    ]
    monitor.scan()  # no new events for the same condition
    assert ResurrectionEvent.objects.count() == 2


def test_instances_going_away_close_their_alerts():
    d = Deployment.objects.create(name="zk")
    Instance.objects.create(deployment=d, group="zookeeper", uuid="u-1", index=0)
    monitor.scan()
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 2  # vm + deployment
    d.delete()
    monitor.scan()
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
