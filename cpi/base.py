"""The CPI contract: BOSH's Cloud Provider Interface, API version 2.

The director never talks to an IaaS directly; it calls these methods, with
exactly BOSH's arguments and results (bosh.io/docs/cpi-api-v2-method/), on a
``Cpi`` object. ``cpi.vsphere.VSphereCloud`` implements them with pyvmomi;
``cpi.protocol`` exposes any ``Cpi`` as BOSH's external CPI (one JSON request on
stdin, one JSON response on stdout) so other tools can drive it too.

Errors are typed like BOSH's ``Bosh::Clouds::*`` exceptions: each carries the
Ruby class name the director understands (``type``), a message a person can
act on, and ``ok_to_retry`` (the director retries ``create_vm`` on a
``VMCreationFailed`` that allows it). Anything a CPI raises that is not a
``CpiError`` is a bug in the CPI.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

#: The methods of the v2 contract, in bosh.io order; ``dispatch`` accepts only these.
METHODS: tuple[str, ...] = (
    "info",
    "create_stemcell",
    "delete_stemcell",
    "create_vm",
    "delete_vm",
    "has_vm",
    "reboot_vm",
    "set_vm_metadata",
    "calculate_vm_cloud_properties",
    "create_disk",
    "delete_disk",
    "has_disk",
    "attach_disk",
    "detach_disk",
    "get_disks",
    "resize_disk",
    "set_disk_metadata",
    # Part of the v2 surface but optional for an IaaS (vSphere answers NotImplemented).
    "update_disk",
    "snapshot_disk",
    "delete_snapshot",
)

#: What the director reads from the cloud beyond the v2 contract (BOSH's director asks
#: the agents; we also ask vCenter). Not in ``dispatch``, not in the CPI log: the VMs
#: page, the health monitor, cloud check and the leftover scan call them often, and
#: they change nothing. A CPI that cannot answer raises ``NotImplemented``.
READS: tuple[str, ...] = (
    "vm_states",
    "vm_health",
    "vms_of_director",
    "has_stemcell",
)

API_VERSION = 2


class CpiError(Exception):
    """Base of every CPI error; ``type`` is the BOSH class name the director maps."""

    type: ClassVar[str] = "Bosh::Clouds::CpiError"
    default_ok_to_retry: ClassVar[bool] = False

    def __init__(self, message: str, *, ok_to_retry: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ok_to_retry = self.default_ok_to_retry if ok_to_retry is None else ok_to_retry

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of the external CPI protocol."""
        return {"type": self.type, "message": self.message, "ok_to_retry": self.ok_to_retry}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, ok_to_retry={self.ok_to_retry})"


class NotImplemented(CpiError):  # noqa: A001 - BOSH's name, on purpose
    """The CPI does not implement this method (the director may fall back)."""

    type = "Bosh::Clouds::NotImplemented"


class NotSupported(CpiError):
    """The method exists but cannot do what was asked on this IaaS."""

    type = "Bosh::Clouds::NotSupported"


class CloudError(CpiError):
    """The IaaS refused or failed: bad credentials, unreachable, a vSphere fault."""

    type = "Bosh::Clouds::CloudError"


class VMNotFound(CloudError):
    type = "Bosh::Clouds::VMNotFound"


class NetworkNotFound(CloudError):
    type = "Bosh::Clouds::NetworkNotFound"


class DiskNotFound(CloudError):
    type = "Bosh::Clouds::DiskNotFound"


class DiskNotAttached(CloudError):
    type = "Bosh::Clouds::DiskNotAttached"
    default_ok_to_retry = True


class NoDiskSpace(CloudError):
    type = "Bosh::Clouds::NoDiskSpace"


class VMCreationFailed(CloudError):
    type = "Bosh::Clouds::VMCreationFailed"


ERROR_TYPES: dict[str, type[CpiError]] = {
    cls.type: cls
    for cls in (
        CpiError,
        NotImplemented,
        NotSupported,
        CloudError,
        VMNotFound,
        NetworkNotFound,
        DiskNotFound,
        DiskNotAttached,
        NoDiskSpace,
        VMCreationFailed,
    )
}


def error_from_dict(error: dict[str, Any]) -> CpiError:
    """Rebuild a typed error from a protocol ``error`` object (unknown types -> CpiError)."""
    cls = ERROR_TYPES.get(str(error.get("type")), CpiError)
    exc = cls(str(error.get("message", "")), ok_to_retry=bool(error.get("ok_to_retry", False)))
    if cls is CpiError and error.get("type") != CpiError.type:
        exc.message = f"{error.get('type')}: {exc.message}"
    return exc


class Cpi(abc.ABC):
    """BOSH CPI API v2. Implementations must be safe to call from several threads.

    Argument and result shapes are BOSH's; cids are strings chosen by the CPI.
    ``networks`` is the director's network spec (name -> {type, ip, netmask,
    gateway, dns, default, cloud_properties}); ``env`` is the VM environment
    (``{"bosh": {...}}``).
    """

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """``{"stemcell_formats": [...], "api_version": 2}``; must not need the IaaS."""

    @abc.abstractmethod
    def create_stemcell(
        self, image_path: str, cloud_properties: dict[str, Any], env: dict[str, Any] | None = None
    ) -> str:
        """Import the stemcell image at ``image_path``; returns the stemcell cid."""

    @abc.abstractmethod
    def delete_stemcell(self, stemcell_cid: str) -> None: ...

    @abc.abstractmethod
    def create_vm(
        self,
        agent_id: str,
        stemcell_cid: str,
        cloud_properties: dict[str, Any],
        networks: dict[str, Any],
        disk_cids: list[str] | None,
        env: dict[str, Any] | None,
    ) -> list[Any]:
        """Create and start a VM; returns ``[vm_cid, networks]`` (API v2)."""

    @abc.abstractmethod
    def delete_vm(self, vm_cid: str) -> None: ...

    @abc.abstractmethod
    def has_vm(self, vm_cid: str) -> bool: ...

    @abc.abstractmethod
    def reboot_vm(self, vm_cid: str) -> None: ...

    @abc.abstractmethod
    def set_vm_metadata(self, vm_cid: str, metadata: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def calculate_vm_cloud_properties(self, vm_resources: dict[str, Any]) -> dict[str, Any]:
        """``{cpu, ram, ephemeral_disk_size}`` -> this IaaS's vm_type cloud_properties."""

    @abc.abstractmethod
    def create_disk(
        self, size: int, cloud_properties: dict[str, Any], vm_cid: str | None = None
    ) -> str:
        """Create a persistent disk of ``size`` MiB (near ``vm_cid`` if given); its cid."""

    @abc.abstractmethod
    def delete_disk(self, disk_cid: str) -> None: ...

    @abc.abstractmethod
    def has_disk(self, disk_cid: str) -> bool: ...

    @abc.abstractmethod
    def attach_disk(self, vm_cid: str, disk_cid: str) -> Any:
        """Attach; returns the disk hint the director passes to the agent (API v2)."""

    @abc.abstractmethod
    def detach_disk(self, vm_cid: str, disk_cid: str) -> None: ...

    @abc.abstractmethod
    def get_disks(self, vm_cid: str) -> list[str]: ...

    @abc.abstractmethod
    def resize_disk(self, disk_cid: str, new_size: int) -> None: ...

    @abc.abstractmethod
    def set_disk_metadata(self, disk_cid: str, metadata: dict[str, Any]) -> None: ...

    def update_disk(self, disk_cid: str, new_size: int, cloud_properties: dict[str, Any]) -> Any:
        raise NotImplemented("update_disk is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    def snapshot_disk(self, disk_cid: str, metadata: dict[str, Any]) -> str:
        raise NotImplemented("snapshot_disk is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    def delete_snapshot(self, snapshot_cid: str) -> None:
        raise NotImplemented("delete_snapshot is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    # -- reads beyond the v2 contract (``READS``) --------------------------------------

    def vm_states(self, vm_cids: list[str]) -> dict[str, str]:
        """``{vm_cid: power state}`` ("poweredOn", "poweredOff", "suspended"); missing VMs left out."""
        raise NotImplemented("vm_states is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    def vm_health(self, vm_cids: list[str] | None) -> dict[str, dict[str, Any]]:
        """``{vm_cid: {"power_state", "metadata"}}``; ``None`` answers for every VM found."""
        raise NotImplemented("vm_health is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    def vms_of_director(self, director: str) -> dict[str, dict[str, Any]]:
        """The VMs ``director`` made: ``{vm_cid: {"director", "deployment", "groups", "agent_id"}}``.

        A VM is the director's when ``set_vm_metadata`` tagged it ``director``,
        or, before that, when its agent settings' ``env.bosh.groups`` name the
        director (``<director>`` or ``<director>-...``). ``director`` and
        ``deployment`` are the metadata (None if unset), ``groups`` and
        ``agent_id`` come from the agent settings ([] / None if unreadable).
        """
        raise NotImplemented("vms_of_director is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error

    def has_stemcell(self, stemcell_cid: str) -> bool:
        """Whether the IaaS still holds the stemcell ``stemcell_cid`` (cloud check's ``missing_stemcell``)."""
        raise NotImplemented("has_stemcell is not implemented by this CPI")  # noqa: F901 - BOSH's NotImplemented error


def dispatch(cpi: Cpi, method: str, arguments: list[Any]) -> Any:
    """Call ``method`` with BOSH's positional ``arguments``; unknown names are NotImplemented."""
    if method not in METHODS:
        raise NotImplemented(f"Method is not known, got '{method}'")  # noqa: F901 - BOSH's NotImplemented error
    if not isinstance(arguments, list):
        raise CpiError(f"{method}: arguments must be a list, got {type(arguments).__name__}")
    func = getattr(cpi, method)
    try:
        inspect.signature(func).bind(*arguments)
    except TypeError as exc:
        raise CpiError(f"{method}: wrong arguments: {exc}") from None
    return func(*arguments)
