"""Agent settings where a real stemcell reads them: an ``env.iso`` CD-ROM.

A vSphere stemcell's agent has one settings source (``agent.json``:
``{"Type": "CDROM", "FileName": "env"}``): at boot it mounts the VM's CD-ROM,
reads the JSON file ``env`` and ejects it. Newer agents can read
``guestinfo.userdata`` instead. So the CPI writes the same settings JSON to
both, as the BOSH vSphere CPI does:

* ``guestinfo.userdata`` (base64) with ``guestinfo.userdata.encoding`` in the
  VM's ``extraConfig`` (``settings_options``, read back by ``settings_in``);
* ``env.iso`` in the VM's own folder on its datastore (the folder of
  ``config.files.vmPathName``), an ISO 9660 image holding the single file
  ``env`` (ISO name ``ENV.;1``, Rock Ridge and Joliet name ``env``), built
  in memory and PUT through the datastore file API
  (``/folder/<path>?dcPath=&dsName=``), then set as the backing of the
  VM's CD-ROM (connected, connected at power on, no guest control) in the
  same reconfigure that writes ``extraConfig``.

The two always hold the same bytes: ``settings_json`` is what both encode.
The ISO lives in the VM's folder, so deleting the VM removes it with the
folder (vSphere keeps files it did not create there; see
``VmOperations.delete``). BOSH's debug copy ``env.json`` is not written: it
would be a second clear copy of the same credentials that nothing reads.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pycdlib
from pyVmomi import vim

from cpi.base import CloudError
from cpi.vsphere.client import VSphereClient
from cpi.vsphere.config import ConfigError
from cpi.vsphere.tasks import run_task

ENV_ISO = "env.iso"
ENV_FILE = "env"
IDE_UNITS = (0, 1)
USERDATA_KEY = "guestinfo.userdata"
USERDATA_ENCODING_KEY = "guestinfo.userdata.encoding"

_DS_PATH = re.compile(r"^\[(?P<datastore>[^\]]+)\]\s*(?P<path>.*)$")


@dataclass(frozen=True)
class DatastorePath:
    """``[datastore] path`` split in its two parts."""

    datastore: str
    path: str

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"

    def child(self, name: str) -> DatastorePath:
        return DatastorePath(self.datastore, f"{self.path.rstrip('/')}/{name}".lstrip("/"))


def parse_datastore_path(text: str) -> DatastorePath:
    match = _DS_PATH.match(text or "")
    if match is None:
        raise CloudError(f"'{text}' is not a datastore path ('[datastore] folder/file')")
    return DatastorePath(match["datastore"], match["path"].strip())


def vm_directory(vm_path_name: str) -> DatastorePath:
    """The VM's folder from ``config.files.vmPathName`` (``[ds] vm-x/vm-x.vmx`` -> ``[ds] vm-x``)."""
    vmx = parse_datastore_path(vm_path_name)
    folder = vmx.path.rsplit("/", 1)[0] if vmx.path.endswith(".vmx") else vmx.path
    if not folder or folder.endswith(".vmx"):
        raise CloudError(f"VM file '{vm_path_name}' is not in a folder of its own")
    return DatastorePath(vmx.datastore, folder.rstrip("/"))


# -- the ISO ----------------------------------------------------------------------------


def settings_json(settings: Mapping[str, Any]) -> bytes:
    """The settings document, byte for byte what guestinfo and the ISO carry."""
    return json.dumps(settings, sort_keys=True).encode()


def env_iso(settings: Mapping[str, Any]) -> bytes:
    """An ISO 9660 image holding ``env`` (the settings JSON), built in memory."""
    data = settings_json(settings)
    iso = pycdlib.PyCdlib()
    iso.new(vol_ident="CDROM", rock_ridge="1.09", joliet=3)
    try:
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{ENV_FILE.upper()}.;1",
            rr_name=ENV_FILE,
            joliet_path=f"/{ENV_FILE}",
        )
        out = io.BytesIO()
        iso.write_fp(out)
    finally:
        iso.close()
    return out.getvalue()


def read_env_iso(image: bytes) -> dict[str, Any]:
    """The settings in an ``env.iso`` image (what the agent reads from the CD-ROM)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, iso_path=f"/{ENV_FILE.upper()}.;1")
    finally:
        iso.close()
    return json.loads(out.getvalue())


# -- the datastore file API ---------------------------------------------------------------


def datastore_url(client: VSphereClient, datacenter: str, path: DatastorePath) -> str:
    query = urlencode({"dcPath": datacenter, "dsName": path.datastore})
    return client.url_for(f"https://*/folder/{quote(path.path)}?{query}")


def upload(client: VSphereClient, datacenter: str, path: DatastorePath, data: bytes) -> None:
    """PUT ``data`` to ``path`` (the file is replaced if it exists), with our session cookie."""
    headers = {"Content-Type": "application/octet-stream", "Cookie": client.session_cookie()}
    try:
        response = client.http().put(
            datastore_url(client, datacenter, path),
            data=data,
            headers=headers,
            timeout=(client.config.connect_timeout, client.config.http_timeout),
        )
    except OSError as exc:  # requests' errors are OSErrors
        raise CloudError(f"Uploading {path} failed: {exc}", ok_to_retry=True) from None
    if response.status_code >= 300:
        raise CloudError(
            f"Uploading {path} failed: HTTP {response.status_code} {response.text[:200]}",
            ok_to_retry=response.status_code >= 500,
        )


# -- the CD-ROM ---------------------------------------------------------------------------


def cdrom_of(devices: Sequence[Any]) -> vim.vm.device.VirtualCdrom | None:
    cdroms = [d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)]
    return min(cdroms, key=lambda d: d.key) if cdroms else None


def cdrom_change(
    devices: Sequence[Any], iso: DatastorePath, datastore: vim.Datastore | None = None
) -> vim.vm.device.VirtualDeviceSpec:
    """The device change that points the VM's CD-ROM at ``iso``, connected.

    The stemcell's CD-ROM is edited when there is one; otherwise one is added
    on a free IDE unit (a VM that is still powered off: vSphere adds IDE
    devices only then).
    """
    backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=str(iso), datastore=datastore)
    connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=False
    )
    Operation = vim.vm.device.VirtualDeviceSpec.Operation
    cdrom = cdrom_of(devices)
    if cdrom is not None:
        cdrom.backing = backing
        cdrom.connectable = connectable
        return vim.vm.device.VirtualDeviceSpec(operation=Operation.edit, device=cdrom)
    for controller in sorted(
        (d for d in devices if isinstance(d, vim.vm.device.VirtualIDEController)),
        key=lambda d: d.key,
    ):
        used = {d.unitNumber for d in devices if d.controllerKey == controller.key}
        free = [unit for unit in IDE_UNITS if unit not in used]
        if free:
            cdrom = vim.vm.device.VirtualCdrom(
                key=-300,
                controllerKey=controller.key,
                unitNumber=free[0],
                backing=backing,
                connectable=connectable,
            )
            return vim.vm.device.VirtualDeviceSpec(operation=Operation.add, device=cdrom)
    raise CloudError("The VM has no CD-ROM and no free IDE unit to add one for the agent settings")


# -- the settings: built, checked, in guestinfo ----------------------------------


def check_env(env: Any) -> None:
    """``env`` as the director passes it: a map; ``bosh.mbus`` (the agent's own message bus
    URLs and client certificate, which the agent prefers to the CPI's ``agent.mbus``) well formed.
    """
    if env is None:
        return
    if not isinstance(env, Mapping):
        raise ConfigError(f"env: must be a map, got {type(env).__name__}")
    bosh = env.get("bosh")
    if bosh is None:
        return
    if not isinstance(bosh, Mapping):
        raise ConfigError("env/bosh: must be a map")
    mbus = bosh.get("mbus")
    if mbus is None:
        return
    if not isinstance(mbus, Mapping):
        raise ConfigError("env/bosh/mbus: must be a map with urls and cert")
    urls = mbus.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls)
    ):
        raise ConfigError("env/bosh/mbus/urls: must be a list of message bus URLs")
    cert = mbus.get("cert")
    if cert is None:
        return
    if not isinstance(cert, Mapping):
        raise ConfigError("env/bosh/mbus/cert: must be a map with ca, certificate and private_key")
    for key in ("ca", "certificate", "private_key"):
        if not isinstance(cert.get(key, ""), str):
            raise ConfigError(f"env/bosh/mbus/cert/{key}: must be a PEM string")


def agent_settings(
    *,
    agent_id: str,
    vm_name: str,
    vm_id: str,
    networks: Mapping[str, Any],
    macs: Mapping[str, str],
    system_disk: str,
    ephemeral_disk: str,
    persistent_disks: Mapping[str, Any] | None,
    env: Mapping[str, Any] | None,
    agent_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The registry-less agent settings (CPI API v2): what the agent reads from its CD-ROM
    (``env.iso``) or from guestinfo. The CPI's ``agent`` properties (ntp, mbus,
    blobstore) are copied in; ``env`` (with ``bosh.mbus`` and ``bosh.blobstores``
    when the director sends them, which the agent prefers) is kept as given."""
    nets = {}
    for name, spec in networks.items():
        nets[name] = {**dict(spec), "mac": macs[name]}
    settings: dict[str, Any] = {
        "agent_id": agent_id,
        "vm": {"name": vm_name, "id": vm_id},
        "networks": nets,
        "disks": {
            "system": system_disk,
            "ephemeral": ephemeral_disk,
            "persistent": dict(persistent_disks or {}),
        },
        "env": dict(env or {}),
    }
    for key in ("ntp", "mbus", "blobstore"):
        if key in agent_config:
            settings[key] = agent_config[key]
    for key, value in agent_config.items():
        settings.setdefault(key, value)
    return settings


def encode_userdata(settings: Mapping[str, Any]) -> str:
    return base64.b64encode(settings_json(settings)).decode()


def decode_userdata(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value))


def read_settings(vm: vim.VirtualMachine) -> dict[str, Any] | None:
    """The agent settings of ``vm``, or None (reads its whole ``config``: one call).

    Callers that read other properties too should read ``config.extraConfig``
    with them and use ``settings_in``.
    """
    return settings_in(vm.config.extraConfig)


def settings_in(extra_config: list[Any] | None) -> dict[str, Any] | None:
    """The agent settings in a VM's ``config.extraConfig``, or None."""
    for opt in extra_config or []:
        if opt.key == USERDATA_KEY and opt.value:
            try:
                return decode_userdata(opt.value)
            except ValueError:
                return None
    return None


def settings_options(settings: Mapping[str, Any]) -> list[vim.option.OptionValue]:
    """The ``extraConfig`` entries that carry the agent settings."""
    return [
        vim.option.OptionValue(key=USERDATA_KEY, value=encode_userdata(settings)),
        vim.option.OptionValue(key=USERDATA_ENCODING_KEY, value="base64"),
    ]


def write_settings(
    vm: vim.VirtualMachine,
    settings: Mapping[str, Any],
    action: str,
    device_change: list[vim.vm.device.VirtualDeviceSpec],
) -> None:
    """One reconfigure: the settings in ``extraConfig`` and ``device_change`` (the CD-ROM)."""
    spec = vim.vm.ConfigSpec(extraConfig=settings_options(settings), deviceChange=device_change)
    run_task(action, vm.ReconfigVM_Task, spec)
