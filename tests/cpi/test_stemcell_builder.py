"""The stemcell builder makes a tarball shaped like a real vSphere stemcell."""

import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET

import yaml

from cpi.stemcell_builder import build_stemcell

OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"
RASD = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"


def test_stemcell_tarball_has_manifest_and_image(tmp_path):
    out = build_stemcell(
        tmp_path / "sc.tgz", name="my-stemcell", version="7.5", operating_system="ubuntu-noble"
    )
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["image", "stemcell.MF"]
        manifest = yaml.safe_load(tar.extractfile("stemcell.MF"))
        tar.extractall(tmp_path / "sc", filter="data")
    assert manifest["name"] == "my-stemcell" and manifest["version"] == "7.5"
    assert manifest["operating_system"] == "ubuntu-noble"
    assert manifest["stemcell_formats"] == ["vsphere-ovf"]
    assert manifest["cloud_properties"]["infrastructure"] == "vsphere"
    assert isinstance(manifest["api_version"], int)

    with tarfile.open(tmp_path / "sc" / "image") as image:
        assert sorted(image.getnames()) == ["image-disk1.vmdk", "image.ovf"]
        image.extractall(tmp_path / "image", filter="data")
    ovf = ET.parse(tmp_path / "image" / "image.ovf").getroot()
    items = {int(i.findtext(f"{RASD}ResourceType")): i for i in ovf.iter(f"{OVF}Item")}
    assert items[3].findtext(f"{RASD}VirtualQuantity") == "1"  # CPU
    assert items[4].findtext(f"{RASD}VirtualQuantity") == "512"  # MB
    assert items[17].findtext(f"{RASD}HostResource") == "ovf:/disk/vmdisk1"
    assert items[10].findtext(f"{RASD}Connection") == "VM Network"
    ref = ovf.find(f"{OVF}References/{OVF}File")
    assert ref.get(f"{OVF}href") == "image-disk1.vmdk"
    assert int(ref.get(f"{OVF}size")) == (tmp_path / "image" / "image-disk1.vmdk").stat().st_size

    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(tmp_path / "image" / "image-disk1.vmdk")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"create-type": "streamOptimized"' in info
    assert '"virtual-size": 67108864' in info


def test_command_line(tmp_path):
    out = tmp_path / "cli.tgz"
    proc = subprocess.run(
        [sys.executable, "-m", "cpi.stemcell_builder", "--out", str(out), "--version", "1.2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out) as tar:
        assert yaml.safe_load(tar.extractfile("stemcell.MF"))["version"] == "1.2"
