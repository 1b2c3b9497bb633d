"""The CPI contract: typed errors as BOSH names them, and dispatch of protocol calls."""

import pytest

from cpi import base
from cpi.base import (
    CloudError,
    CpiError,
    DiskNotAttached,
    DiskNotFound,
    NoDiskSpace,
    NotImplemented,
    NotSupported,
    VMCreationFailed,
    VMNotFound,
    dispatch,
    error_from_dict,
)


@pytest.mark.parametrize(
    "cls, type_name, retry",
    [
        (CpiError, "Bosh::Clouds::CpiError", False),
        (NotImplemented, "Bosh::Clouds::NotImplemented", False),
        (NotSupported, "Bosh::Clouds::NotSupported", False),
        (CloudError, "Bosh::Clouds::CloudError", False),
        (VMNotFound, "Bosh::Clouds::VMNotFound", False),
        (DiskNotFound, "Bosh::Clouds::DiskNotFound", False),
        (DiskNotAttached, "Bosh::Clouds::DiskNotAttached", True),
        (NoDiskSpace, "Bosh::Clouds::NoDiskSpace", False),
        (VMCreationFailed, "Bosh::Clouds::VMCreationFailed", False),
    ],
)
def test_error_types_round_trip_through_the_protocol_shape(cls, type_name, retry):
    err = cls("it broke")
    assert err.to_dict() == {"type": type_name, "message": "it broke", "ok_to_retry": retry}
    back = error_from_dict(err.to_dict())
    assert type(back) is cls and back.message == "it broke" and back.ok_to_retry is retry
    assert isinstance(err, CpiError)


def test_ok_to_retry_can_be_set_per_error():
    assert VMCreationFailed("x", ok_to_retry=True).to_dict()["ok_to_retry"] is True
    assert DiskNotAttached("x", ok_to_retry=False).ok_to_retry is False


def test_unknown_error_type_keeps_its_name_in_the_message():
    err = error_from_dict({"type": "Bosh::Clouds::Weird", "message": "m", "ok_to_retry": True})
    assert type(err) is CpiError
    assert err.message == "Bosh::Clouds::Weird: m" and err.ok_to_retry is True


def test_not_found_errors_are_cloud_errors():
    for cls in (VMNotFound, DiskNotFound, DiskNotAttached, NoDiskSpace, VMCreationFailed):
        assert issubclass(cls, CloudError)


class _Echo(base.Cpi):
    """A minimal contract implementation: records calls (only to test dispatch)."""

    def __init__(self):
        self.calls = []

    def _rec(self, name, *args):
        self.calls.append((name, args))
        return name

    def info(self):
        return {"stemcell_formats": ["x"], "api_version": 2}

    def create_stemcell(self, image_path, cloud_properties, env=None):
        return self._rec("create_stemcell", image_path, cloud_properties, env)

    def delete_stemcell(self, stemcell_cid):
        return self._rec("delete_stemcell", stemcell_cid)

    def create_vm(self, agent_id, stemcell_cid, cloud_properties, networks, disk_cids, env):
        return ["vm-1", networks]

    def delete_vm(self, vm_cid):
        return None

    def has_vm(self, vm_cid):
        return True

    def reboot_vm(self, vm_cid):
        return None

    def set_vm_metadata(self, vm_cid, metadata):
        return None

    def calculate_vm_cloud_properties(self, vm_resources):
        return {}

    def create_disk(self, size, cloud_properties, vm_cid=None):
        return "disk-1"

    def delete_disk(self, disk_cid):
        return None

    def has_disk(self, disk_cid):
        return True

    def attach_disk(self, vm_cid, disk_cid):
        return "1"

    def detach_disk(self, vm_cid, disk_cid):
        return None

    def get_disks(self, vm_cid):
        return []

    def resize_disk(self, disk_cid, new_size):
        return None

    def set_disk_metadata(self, disk_cid, metadata):
        return None


def test_dispatch_passes_positional_arguments():
    cpi = _Echo()
    assert dispatch(cpi, "create_stemcell", ["/tmp/image", {"a": 1}]) == "create_stemcell"
    assert cpi.calls == [("create_stemcell", ("/tmp/image", {"a": 1}, None))]
    assert dispatch(cpi, "create_vm", ["a", "sc", {}, {"n": {}}, [], {}]) == ["vm-1", {"n": {}}]


@pytest.mark.parametrize(
    "method, arguments, cls, text",
    [
        ("explode", [], NotImplemented, "Method is not known, got 'explode'"),
        ("delete_vm", [], CpiError, "delete_vm: wrong arguments"),
        ("delete_vm", ["a", "b"], CpiError, "delete_vm: wrong arguments"),
        ("has_vm", {"vm_cid": "x"}, CpiError, "arguments must be a list"),
        ("snapshot_disk", ["disk-1", {}], NotImplemented, "snapshot_disk is not implemented"),
    ],
)
def test_dispatch_rejects_bad_calls_with_typed_errors(method, arguments, cls, text):
    with pytest.raises(cls) as exc:
        dispatch(_Echo(), method, arguments)
    assert type(exc.value) is cls
    assert text in exc.value.message
