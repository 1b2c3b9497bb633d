"""The Health page (alerts feed, resurrection timeline) and the VMs page's health column."""

from __future__ import annotations

import pytest
from django.utils import timezone

from director.models import Alert, Deployment, Instance, ResurrectionEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("director_dirs")]

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def admin_client(client, admin_user, settings, tmp_path):
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"  # no vCenter: rows from the database
    client.force_login(admin_user)
    return client


@pytest.fixture
def outage():
    now = timezone.now()
    d = Deployment.objects.create(name="zk")
    sick = Instance.objects.create(deployment=d, group="zookeeper", uuid="sick-1", index=0)
    Instance.objects.create(deployment=d, group="zookeeper", uuid="well-1", index=1)
    Alert.objects.create(
        key="vm_health:zk:sick-1",
        category="vm_health",
        severity=2,
        cause="missing_vm",
        title="zookeeper/sick-1 (0) VM vm-1 is missing from vCenter",
        deployment="zk",
        instance=sick.name,
        vm_cid="vm-1",
        decision="meltdown",
        created_at=now,
        last_seen_at=now,
    )
    ResurrectionEvent.objects.create(
        created_at=now,
        deployment="zk",
        instance=sick.name,
        cause="missing_vm",
        decision="recreated",
        old_cid="vm-1",
        new_cid="vm-2",
        seconds_to_recover=7.5,
    )
    return sick


def test_anonymous_is_sent_to_login(client):
    response = client.get("/director/health/")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_health_page_lists_open_alerts_and_resurrections(admin_client, outage):
    page = admin_client.get("/director/health/").content.decode()
    assert "zookeeper/sick-1 (0) VM vm-1 is missing from vCenter" in page
    assert 'data-decision="recreated"' in page and "7.5 s" in page
    assert 'href="/director/health/"' in page  # in the navigation


def test_health_fragment_for_htmx(admin_client, outage):
    body = admin_client.get("/director/health/?deployment=other", **HTMX).content.decode()
    assert body.startswith('<div id="health-feed"') and "<html" not in body
    assert "No open alerts" in body


def test_vms_page_shows_each_instances_health_and_a_summary(admin_client, outage):
    body = admin_client.get("/director/vms/", **HTMX).content.decode()
    assert 'data-unhealthy="1"' in body and "1 without alerts" in body
    sick_row = body.split('id="instance-sick-1"')[1].split("</tr>")[0]
    assert "missing_vm" in sick_row and "meltdown" in sick_row
    well_row = body.split('id="instance-well-1"')[1].split("</tr>")[0]
    assert "missing_vm" not in well_row and "no open health alert" in well_row
