"""The task CPI log: one record per call, secrets redacted, errors recorded and re-raised."""

import json

import pytest

from cpi.base import VMNotFound
from cpi.logging import REDACTED, LoggedCpi, redact


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"bosh": {"password": "$6$x", "group": "g"}},
            {"bosh": {"password": REDACTED, "group": "g"}},
        ),
        (
            {"blobstore": {"options": {"secret_access_key": "k", "bucket": "b"}}},
            {"blobstore": {"options": {"secret_access_key": REDACTED, "bucket": "b"}}},
        ),
        (
            {"private_key": "-----BEGIN", "token": "t", "credentials": {"a": 1}},
            {"private_key": REDACTED, "token": REDACTED, "credentials": REDACTED},
        ),
        (
            {"mbus": "nats://nats:hunter2@10.0.0.6:4222"},
            {"mbus": f"nats://nats:{REDACTED}@10.0.0.6:4222"},
        ),
        ([{"password": ""}, "plain"], [{"password": ""}, "plain"]),
        ("the vc password is vc-secret-1", f"the vc password is {REDACTED}"),
    ],
)
def test_redact(value, expected):
    assert redact(value, ["vc-secret-1"]) == expected


def test_each_call_is_recorded_with_redacted_arguments(cloud, stemcell_cid, networks):
    records = []
    logged = LoggedCpi(cloud, records.append)
    env = {"bosh": {"password": "$6$rounds$hashed", "group": "dir-dep-web"}}
    vm_cid, _ = logged.create_vm(
        "agent-log", stemcell_cid, {"cpu": 1, "ram": 256, "disk": 512}, networks, [], env
    )
    try:
        assert logged.has_vm(vm_cid) is True
        with pytest.raises(VMNotFound):
            logged.reboot_vm("vm-missing")
    finally:
        logged.delete_vm(vm_cid)

    assert [r["method"] for r in records] == ["create_vm", "has_vm", "reboot_vm", "delete_vm"]
    create = records[0]
    assert set(create) == {"time", "method", "request", "response", "duration_ms"}
    args = create["request"]["arguments"]
    assert args[0] == "agent-log" and args[1] == stemcell_cid
    assert args[5] == {"bosh": {"password": REDACTED, "group": "dir-dep-web"}}
    assert create["response"] == {"result": [vm_cid, networks]}
    assert isinstance(create["duration_ms"], int) and create["duration_ms"] >= 0
    assert records[1]["response"] == {"result": True}
    assert records[2]["response"]["error"]["type"] == "Bosh::Clouds::VMNotFound"
    assert records[2]["response"]["error"]["ok_to_retry"] is False
    text = json.dumps(records)
    assert "$6$rounds$hashed" not in text
    assert cloud.config.vcenter.password not in text


def test_the_wrapper_is_a_cpi_and_passes_other_attributes_through(cloud):
    logged = LoggedCpi(cloud, lambda record: None)
    assert logged.info() == cloud.info()
    assert logged.config is cloud.config
