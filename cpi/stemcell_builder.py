"""Build a small but well-formed vSphere stemcell tarball.

A BOSH vSphere stemcell is a gzipped tarball holding ``stemcell.MF`` (name,
version, operating_system, stemcell_formats, cloud_properties, api_version,
sha1 of the image) and ``image``: itself a gzipped tarball of an OVF
descriptor and a streamOptimized VMDK. This tool makes one with a tiny blank
disk (``qemu-img convert -O vmdk -o subformat=streamOptimized``; Debian
package ``qemu-utils``), so tests and ``make run`` can upload a stemcell
without downloading a real one. The VM it describes has 1 CPU, 512 MB, one
disk on an LSI Logic SCSI controller and one VMXNET3 NIC on "VM Network".

    python -m cpi.stemcell_builder --out stemcell.tgz [--name N --version V --os OS]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

DEFAULT_NAME = "bosh-vsphere-esxi-ubuntu-jammy-go_agent"
DEFAULT_VERSION = "1.0"
DEFAULT_OS = "ubuntu-jammy"
DISK_CAPACITY_MB = 64

OVF_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
          xmlns:vmw="http://www.vmware.com/schema/ovf"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{vmdk}" ovf:id="file1" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity_mb}" ovf:capacityAllocationUnits="byte * 2^20"
          ovf:diskId="vmdisk1" ovf:fileRef="file1"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A BOSH stemcell virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>512MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>512</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


class BuildError(Exception):
    pass


def make_stream_optimized_vmdk(out: Path, capacity_mb: int = DISK_CAPACITY_MB) -> None:
    """A blank disk of ``capacity_mb`` as a streamOptimized VMDK (a few KB on disk)."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise BuildError("qemu-img is missing: apt-get install qemu-utils")
    with tempfile.TemporaryDirectory(prefix="stemcell-raw-") as tmp:
        raw = Path(tmp) / "disk.raw"
        with open(raw, "wb") as f:
            f.truncate(capacity_mb * 1024 * 1024)
        proc = subprocess.run(
            [
                qemu_img,
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                str(raw),
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BuildError(f"qemu-img convert failed: {proc.stderr.strip()}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_image(out: Path, name: str = "image", capacity_mb: int = DISK_CAPACITY_MB) -> Path:
    """The stemcell's ``image``: a .tgz of ``image.ovf`` + ``image-disk1.vmdk``."""
    with tempfile.TemporaryDirectory(prefix="stemcell-image-") as tmp:
        vmdk = Path(tmp) / "image-disk1.vmdk"
        make_stream_optimized_vmdk(vmdk, capacity_mb)
        ovf = OVF_TEMPLATE.format(
            vmdk=vmdk.name, vmdk_size=vmdk.stat().st_size, capacity_mb=capacity_mb, name=name
        )
        with tarfile.open(out, "w:gz") as tar:
            _add_bytes(tar, "image.ovf", ovf.encode())
            tar.add(vmdk, arcname=vmdk.name)
    return out


def build_stemcell(
    out: str | Path,
    *,
    name: str = DEFAULT_NAME,
    version: str = DEFAULT_VERSION,
    operating_system: str = DEFAULT_OS,
    capacity_mb: int = DISK_CAPACITY_MB,
) -> Path:
    """Write a stemcell tarball to ``out`` and return its path."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="stemcell-") as tmp:
        image = build_image(Path(tmp) / "image", capacity_mb=capacity_mb)
        image_bytes = image.read_bytes()
        manifest = {
            "name": name,
            "version": str(version),
            "bosh_protocol": "1",
            "api_version": 3,
            "sha1": hashlib.sha1(image_bytes).hexdigest(),
            "operating_system": operating_system,
            "stemcell_formats": ["vsphere-ovf"],
            "cloud_properties": {
                "name": name,
                "version": str(version),
                "infrastructure": "vsphere",
                "hypervisor": "esxi",
                "disk": capacity_mb,
                "disk_format": "ovf",
                "container_format": "bare",
                "os_type": "linux",
                "os_distro": operating_system.split("-")[0],
                "architecture": "x86_64",
                "root_device_name": "/dev/sda1",
            },
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz") as tar:
            _add_bytes(tar, "stemcell.MF", yaml.safe_dump(manifest, sort_keys=False).encode())
            _add_bytes(tar, "image", image_bytes)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpi.stemcell_builder", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="where to write the stemcell .tgz")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--os", default=DEFAULT_OS, dest="operating_system")
    parser.add_argument(
        "--disk-mb", type=int, default=DISK_CAPACITY_MB, help="virtual disk size (MB)"
    )
    args = parser.parse_args(argv)
    try:
        path = build_stemcell(
            args.out,
            name=args.name,
            version=args.version,
            operating_system=args.operating_system,
            capacity_mb=args.disk_mb,
        )
    except (BuildError, OSError) as exc:
        print(f"stemcell_builder: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
