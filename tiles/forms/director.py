"""Forms of the BOSH Director tile, and the parsers of its row editors.

``VCenterForm`` (``iaas_configuration``) keeps a stored password when its
input is left blank; ``DirectorSettingsForm`` is ``director_configuration``.
AZs, networks and VM types are edited as numbered rows
(``az-<i>-cluster-<j>-cluster``, ``net-<i>-subnet-<j>-cidr``,
``vm-<i>-cpu``) that ``parse_*`` turn into the Director tile's shapes;
``tiles.director_tile`` validates them.
"""

from __future__ import annotations

from typing import Any

from django import forms

from .blueprint import SECRET_PLACEHOLDER, indexed_rows

__all__ = [
    "VCenterForm",
    "DirectorSettingsForm",
    "parse_availability_zones",
    "parse_networks",
    "parse_vm_types",
]


class VCenterForm(forms.Form):
    """vCenter Config of the BOSH Director tile (``iaas_configuration``)."""

    name = forms.CharField(label="Name", initial="default")
    vcenter_host = forms.CharField(label="vCenter Host", help_text="host or host:port")
    vcenter_username = forms.CharField(label="vCenter Username")
    vcenter_password = forms.CharField(
        label="vCenter Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )
    ssl_verification_enabled = forms.BooleanField(
        label="Verify the vCenter certificate", required=False, initial=True
    )
    vcenter_ca_certificate = forms.CharField(
        label="vCenter CA Certificate",
        required=False,
        widget=forms.Textarea({"rows": 3}),
        help_text="PEM; needed when vCenter's certificate is not publicly trusted",
    )
    datacenter = forms.CharField(
        label="Datacenter Name", widget=forms.TextInput({"list": "dl-datacenters"})
    )
    disk_type = forms.ChoiceField(
        label="Virtual Disk Type",
        choices=[
            ("thin", "Thin"),
            ("preallocated", "Preallocated"),
            ("eagerZeroedThick", "Eager zeroed thick"),
        ],
    )
    ephemeral_datastores_string = forms.CharField(
        label="Ephemeral Datastore Names (comma delimited)",
        widget=forms.TextInput({"list": "dl-datastores"}),
    )
    persistent_datastores_string = forms.CharField(
        label="Persistent Datastore Names (comma delimited)",
        widget=forms.TextInput({"list": "dl-datastores"}),
    )
    bosh_vm_folder = forms.CharField(label="VM Folder")
    bosh_template_folder = forms.CharField(label="Template Folder")
    bosh_disk_path = forms.CharField(label="Disk path Folder")

    def __init__(self, *args, password_stored: bool = False, **kw):
        super().__init__(*args, **kw)
        if password_stored:
            self.fields["vcenter_password"].widget.attrs["placeholder"] = SECRET_PLACEHOLDER
            self.fields["vcenter_password"].help_text = "Stored; leave blank to keep it."

    def iaas(self) -> dict:
        data = dict(self.cleaned_data)
        if not data.get("vcenter_password"):
            data["vcenter_password"] = SECRET_PLACEHOLDER  # keeps the stored password
        return data


class DirectorSettingsForm(forms.Form):
    """Director Config (``director_configuration``)."""

    resurrector_enabled = forms.BooleanField(label="Enable VM Resurrector Plugin", required=False)
    minimum_down_jobs = forms.IntegerField(
        label="Meltdown: minimum unresponsive instances", min_value=0
    )
    percent_threshold = forms.IntegerField(
        label="Meltdown: percent of a deployment unresponsive", min_value=0, max_value=100
    )
    time_threshold = forms.IntegerField(label="Meltdown: time window (seconds)", min_value=1)
    max_threads = forms.IntegerField(label="Max Threads", min_value=1)
    default_vm_strategy = forms.ChoiceField(
        label="Default VM strategy",
        choices=[("delete-create", "delete-create"), ("create-swap-delete", "create-swap-delete")],
    )
    ntp_servers_string = forms.CharField(label="NTP Servers (comma delimited)", required=False)
    director_hostname = forms.CharField(label="Director Hostname", required=False)
    post_deploy_enabled = forms.BooleanField(label="Enable Post Deploy Scripts", required=False)


def parse_availability_zones(data) -> list[dict]:
    """AZ rows ``az-<i>-name`` with clusters ``az-<i>-cluster-<j>-{cluster,res_pool,host_group,drs_rule}``."""
    azs = []
    for i in indexed_rows(data, "az"):
        p = f"az-{i}"
        clusters = []
        for j in indexed_rows(data, f"{p}-cluster"):
            c = f"{p}-cluster-{j}"
            cluster = (data.get(f"{c}-cluster") or "").strip()
            pool = (data.get(f"{c}-res_pool") or "").strip()
            hg = (data.get(f"{c}-host_group") or "").strip()
            if not (cluster or pool or hg):
                continue
            entry: dict[str, Any] = {"cluster": cluster}
            if data.get(f"{c}-guid"):
                entry["guid"] = data[f"{c}-guid"]
            if pool:
                entry["res_pool"] = pool
            if hg:
                entry["host_group"] = {"name": hg, "drs_rule": data.get(f"{c}-drs_rule") or "MUST"}
            clusters.append(entry)
        az: dict[str, Any] = {"name": (data.get(f"{p}-name") or "").strip(), "clusters": clusters}
        if data.get(f"{p}-guid"):
            az["guid"] = data[f"{p}-guid"]
        azs.append(az)
    return azs


def parse_networks(data) -> dict:
    """Network rows ``net-<i>-name`` with subnets ``net-<i>-subnet-<j>-<field>``."""
    nets = []
    for i in indexed_rows(data, "net"):
        p = f"net-{i}"
        subnets = []
        for j in indexed_rows(data, f"{p}-subnet"):
            s = f"{p}-subnet-{j}"
            sn = {
                "iaas_identifier": (data.get(f"{s}-iaas_identifier") or "").strip(),
                "cidr": (data.get(f"{s}-cidr") or "").strip(),
                "reserved_ip_ranges": (data.get(f"{s}-reserved_ip_ranges") or "").strip(),
                "dns": (data.get(f"{s}-dns") or "").strip(),
                "gateway": (data.get(f"{s}-gateway") or "").strip(),
                "availability_zone_names": list(data.getlist(f"{s}-azs"))
                if hasattr(data, "getlist")
                else list(data.get(f"{s}-azs") or []),
            }
            if data.get(f"{s}-guid"):
                sn["guid"] = data[f"{s}-guid"]
            subnets.append(sn)
        net: dict[str, Any] = {"name": (data.get(f"{p}-name") or "").strip(), "subnets": subnets}
        if data.get(f"{p}-guid"):
            net["guid"] = data[f"{p}-guid"]
        nets.append(net)
    return {"icmp_checks_enabled": bool(data.get("icmp_checks_enabled")), "networks": nets}


def parse_vm_types(data) -> list[dict]:
    """VM type rows ``vm-<i>-{name,cpu,ram,ephemeral_disk}``; blank rows are dropped."""
    out = []
    for i in indexed_rows(data, "vm"):
        p = f"vm-{i}"
        row = {
            k: (data.get(f"{p}-{k}") or "").strip()
            for k in ("name", "cpu", "ram", "ephemeral_disk")
        }
        if any(row.values()):
            out.append(row)
    return out
