"""``/api/v0/director/health/alerts`` and ``/resurrections``: shapes, filters, roles."""

from __future__ import annotations

import pytest
from django.utils import timezone

from director.models import Alert, ResurrectionEvent

pytestmark = pytest.mark.django_db

H = "/api/v0/director/health"


@pytest.fixture
def record():
    now = timezone.now()
    vm = Alert.objects.create(
        key="vm_health:zk:abc",
        category="vm_health",
        severity=2,
        cause="missing_vm",
        title="zookeeper/abc (0) VM vm-1 is missing from vCenter",
        deployment="zk",
        instance="zookeeper/abc",
        vm_cid="vm-1",
        created_at=now,
        last_seen_at=now,
    )
    dep = Alert.objects.create(
        key="deployment_health:zk",
        category="deployment_health",
        severity=2,
        cause="missing_vm",
        title="zk has instances which do not have VMs",
        deployment="zk",
        created_at=now,
        last_seen_at=now,
        resolved_at=now,
    )
    event = ResurrectionEvent.objects.create(
        created_at=now,
        deployment="zk",
        instance="zookeeper/abc",
        cause="missing_vm",
        decision="recreated",
        old_cid="vm-1",
        new_cid="vm-2",
        seconds_to_recover=12.5,
    )
    return vm, dep, event


def test_anonymous_callers_are_refused(api_client, record):
    for path in ("alerts", "resurrections"):
        assert api_client.get(f"{H}/{path}").status_code == 401


@pytest.mark.parametrize("role", ["restricted_view", "full_view", "restricted_control"])
def test_every_reading_role_sees_alerts(role_api, record, role):
    client = role_api(role)
    assert client.get(f"{H}/alerts").status_code == 200
    assert client.get(f"{H}/resurrections").status_code == 200


def test_writes_are_not_routes(admin_api, record):
    assert admin_api.post(f"{H}/alerts", {}, format="json").status_code == 405


def test_alerts_newest_first_with_filters(admin_api, record):
    vm, dep, _ = record
    body = admin_api.get(f"{H}/alerts").json()
    assert body["count"] == 2 and [a["id"] for a in body["results"]] == [dep.id, vm.id]
    one = admin_api.get(f"{H}/alerts?state=open").json()["results"]
    assert [a["id"] for a in one] == [vm.id]
    assert one[0] == {
        **one[0],
        "category": "vm_health",
        "severity": 2,
        "instance": "zookeeper/abc",
        "vm_cid": "vm-1",
        "state": "open",
        "resolved_at": None,
        "cause": "missing_vm",
    }
    assert [a["id"] for a in admin_api.get(f"{H}/alerts?state=resolved").json()["results"]] == [
        dep.id
    ]
    assert (
        admin_api.get(f"{H}/alerts?category=deployment_health").json()["results"][0]["id"] == dep.id
    )
    assert admin_api.get(f"{H}/alerts?deployment=other").json()["count"] == 0


@pytest.mark.parametrize(
    "query,field", [("state=closed", "state"), ("category=disk_health", "category")]
)
def test_a_bad_filter_is_a_400_naming_it(admin_api, record, query, field):
    response = admin_api.get(f"{H}/alerts?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_resurrection_events(admin_api, record):
    _, _, event = record
    body = admin_api.get(f"{H}/resurrections?deployment=zk").json()
    assert body["results"] == [
        {
            "id": event.id,
            "timestamp": int(event.created_at.timestamp()),
            "deployment": "zk",
            "instance": "zookeeper/abc",
            "cause": "missing_vm",
            "decision": "recreated",
            "task": None,
            "old_cid": "vm-1",
            "new_cid": "vm-2",
            "seconds_to_recover": 12.5,
            "message": "",
        }
    ]
    assert admin_api.get(f"{H}/resurrections?instance=zookeeper/x").json()["count"] == 0


def test_query_count_is_constant(admin_api, record, django_assert_max_num_queries):
    now = timezone.now()
    for i in range(30):
        Alert.objects.create(
            key=f"vm_health:zk:{i}",
            category="vm_health",
            severity=2,
            cause="no_vm",
            title=f"i{i}",
            created_at=now,
            last_seen_at=now,
        )
    with django_assert_max_num_queries(6):
        assert admin_api.get(f"{H}/alerts?limit=50").status_code == 200


@pytest.mark.parametrize(
    "content,path",
    [
        ("rules: [{enabled: false, include: [zk]}]", "rules/0/include"),
        ("rules: [{enabled: false, exclude: {jobs: [zk]}}]", "rules/0/exclude/jobs"),
        ("rules: [{enabled: false, include: {deployments: zk}}]", "rules/0/include/deployments"),
    ],
)
def test_a_resurrection_config_the_monitor_could_not_use_is_refused(admin_api, content, path):
    from director.models import Config

    response = admin_api.post(
        "/api/v0/director/configs",
        {"type": "resurrection", "name": "rules", "content": content},
        format="json",
    )
    assert response.status_code == 422
    assert path in response.json()["errors"]
    assert not Config.objects.filter(type="resurrection").exists()
