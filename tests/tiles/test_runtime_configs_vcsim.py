"""A runtime-config tile applied through Apply Changes, on vcsim with a real worker.

An os-conf-style tile (a login banner addon, no job types of its own) is
imported with its release beside the demo tile. Apply Changes uploads its
runtime config under Ops Manager's name, the demo deployment (the addon's
include rule names it) is deployed with the addon job, whose pre-start
runs on the VM. Then the banner text changes (an update that re-applies),
then the tile is deleted (its runtime config goes, the demo loses the
addon). The audit token, a secret of the tile, is never in the config table,
the deployment's manifest or a task's arguments.
"""

from __future__ import annotations

import hashlib
import uuid
import zipfile

import pytest
import yaml

from director import services as director_services
from director.models import Config, Deployment, Task
from tiles import demo, services
from tiles.models import Installation

from .test_apply_vcsim import jammy_stemcell, wait_for, wait_installation, wait_task  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

AUDIT_TOKEN = "audit-token-0c4e6b1a93"

BANNER_TILE = """
name: login-banner
product_version: '1.0.0'
label: Login Banner
stemcell_criteria: {os: ubuntu-jammy, version: '1.0'}
releases:
- {name: os-conf, version: '1.0', file: os-conf-1.0.tgz}
property_blueprints:
- {name: text, type: string, configurable: true, default: Authorized use only}
- {name: audit_token, type: secret, configurable: true}
form_types:
- name: banner
  label: Banner
  property_inputs:
  - {reference: .properties.text, label: Text}
  - {reference: .properties.audit_token, label: Audit token}
runtime_configs:
- name: banner
  runtime_config: |
    releases: [{name: os-conf, version: '1.0'}]
    addons:
    - name: login-banner
      jobs:
      - name: login_banner
        release: os-conf
        properties:
          login_banner:
            text: (( .properties.text.value ))
            audit_token: (( .properties.audit_token.value ))
      include: {deployments: [(( ..opsconsole-demo.deployment_name ))], lifecycle: service}
"""

#: os-conf's login_banner job, writing where the VM's job user may (not /etc/issue.net).
LOGIN_BANNER_SPEC = {
    "name": "login_banner",
    "templates": {"pre-start.sh.erb": "bin/pre-start"},
    "packages": [],
    "properties": {
        "login_banner.text": {"description": "Login banner text"},
        "login_banner.audit_token": {"description": "Token of the audit service"},
    },
}
PRE_START = """#!/bin/bash
set -e
mkdir -p /var/vcap/data/login_banner
cat > /var/vcap/data/login_banner/issue.net << 'EOF'
<%= p('login_banner.text') %>
EOF
"""


def os_conf_release() -> bytes:
    files = {
        "job.MF": yaml.safe_dump(LOGIN_BANNER_SPEC, sort_keys=False),
        "monit": "",
        "templates/pre-start.sh.erb": PRE_START,
    }
    job = demo._tgz(files)
    fp = demo._fingerprint(files)
    manifest = {
        "name": "os-conf",
        "version": "1.0",
        "commit_hash": "0000000",
        "uncommitted_changes": False,
        "jobs": [
            {
                "name": "login_banner",
                "version": fp,
                "fingerprint": fp,
                "sha1": hashlib.sha1(job).hexdigest(),
            }
        ],
        "packages": [],
        "license": None,
    }
    return demo._tgz(
        {"release.MF": yaml.safe_dump(manifest, sort_keys=False), "jobs/login_banner.tgz": job}
    )


def banner_pivotal(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata/login-banner.yml", BANNER_TILE)
        zf.writestr("releases/os-conf-1.0.tgz", os_conf_release())
    return path


def import_tile(path):
    with open(path, "rb") as fh:
        product = services.import_product(fh, path.name, "admin")
    for task_id in product.release_task_ids:
        wait_task(task_id)
    return product


def addon_jobs(guid: str) -> dict[str, list[dict]]:
    """Instance group -> the jobs of the deployment as the director deployed it (addons in)."""
    manifest = yaml.safe_load(Deployment.objects.get(name=guid).manifest)
    return {g["name"]: g["jobs"] for g in manifest["instance_groups"]}


def banners_on_vms(vm_runtime) -> list[str]:
    return [
        p.read_text().strip()
        for p in vm_runtime.data_dir.rglob("var/vcap/data/login_banner/issue.net")
    ]


def change(guid: str) -> dict:
    return next(
        c for c in services.pending_changes(with_plan=True)["product_changes"] if c["guid"] == guid
    )


def no_secret_anywhere():
    for config in Config.objects.filter(type="runtime"):
        assert AUDIT_TOKEN not in config.content
    for dep in Deployment.objects.all():
        assert AUDIT_TOKEN not in dep.manifest + dep.manifest_text
    for task in Task.objects.all():
        assert AUDIT_TOKEN not in str(task.args)


def test_runtime_config_tile_applied_updated_and_deleted_on_vcsim(
    celery_worker,
    vcsim,
    vm_runtime,
    jammy_stemcell,  # noqa: F811 (the fixture imported above)
    settings,
    tmp_path,
):
    settings.LOCAL_VCSIM_FILE = tmp_path / "none.json"
    inv = vcsim.inventory
    suffix = uuid.uuid4().hex[:8]
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": inv["datacenters"][0],
            "ephemeral_datastores_string": ",".join(inv["datastores"]),
            "persistent_datastores_string": ",".join(inv["datastores"]),
            "bosh_vm_folder": f"rc-{suffix}",
            "bosh_disk_path": f"rc-disks-{suffix}",
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": inv["clusters"][0]}]}]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.40.1.0/24",
                            "gateway": "10.40.1.1",
                            "dns": "10.40.0.2",
                            "reserved_ip_ranges": "10.40.1.2-10.40.1.9",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "infra", "singleton_availability_zone": "az1"})
    services.set_vm_types([{"name": "tiny", "cpu": 1, "ram": 256, "ephemeral_disk": 1024}])
    # The director's configs first, so the review can show the director's plans.
    inst = wait_installation(services.apply_changes("admin", deploy_products="none").id)
    assert inst.status == "succeeded", services.installation_logs(inst.id)
    wait_task(director_services.upload_stemcell(jammy_stemcell, "admin").id)

    import_tile(demo.build_pivotal(tmp_path / "demo"))
    app = services.stage_product(demo.PRODUCT_NAME, demo.PRODUCT_VERSION)
    services.set_networks_and_azs(
        app, {"singleton_availability_zone": {"name": "az1"}, "network": {"name": "infra"}}
    )
    services.set_resource_config(app, "web", instances=1, instance_type="tiny")
    services.set_resource_config(app, "worker", instances=0)
    services.set_resource_config(app, "smoke-tests", instance_type="tiny")
    no_errands = {app.guid: {"run_post_deploy": {"smoke-tests": False}}}

    import_tile(banner_pivotal(tmp_path / "login-banner-1.0.0.pivotal"))
    banner = services.stage_product("login-banner", "1.0.0")
    services.set_properties(banner, {".properties.audit_token": {"value": AUDIT_TOKEN}})
    config_name = f"{banner.guid}-banner"  # TILE_NAME-GUID-RUNTIME_CONFIG_NAME

    # -- review: the runtime config's diff, the demo's plan with the addon ---------------
    entry = change(banner.guid)
    assert entry["action"] == "install" and all(entry["completeness_checks"].values())
    assert [(e["name"], e["status"]) for e in entry["runtime_configs"]] == [
        (config_name, "to_be_installed")
    ]
    assert "+        text: Authorized use only" in entry["runtime_configs"][0]["diff"]
    assert f"((/opsmgr/{banner.guid}/audit_token.value))" in entry["runtime_configs"][0]["diff"]
    app_entry = change(app.guid)
    assert app_entry["action"] == "install"
    assert app_entry["plan"]["summary"]["create"] == 1, app_entry["plan"]

    # -- first apply: the config stored, the demo deployed with the addon, no banner deployment
    inst = wait_installation(services.apply_changes("admin", errands=no_errands).id, 600)
    assert inst.status == "succeeded", services.installation_logs(inst.id)
    steps = {s.product_guid: s for s in inst.steps.filter(kind="deploy")}
    assert steps[banner.guid].state == "succeeded"
    assert "runtime configs only" in steps[banner.guid].message
    assert not Deployment.objects.filter(name=banner.guid).exists()
    stored = Config.latest("runtime", config_name)
    assert stored is not None
    assert yaml.safe_load(stored.content)["addons"][0]["jobs"][0]["properties"] == {
        "login_banner": {
            "text": "Authorized use only",
            "audit_token": f"((/opsmgr/{banner.guid}/audit_token.value))",
        }
    }
    assert [j["name"] for j in addon_jobs(app.guid)["web"]] == ["demo-web", "login_banner"]
    assert banners_on_vms(vm_runtime) == ["Authorized use only"]  # its pre-start ran
    assert "runtime-config " + config_name in services.installation_logs(inst.id)
    assert change(banner.guid)["action"] == "unchanged"
    assert change(app.guid)["action"] == "unchanged"
    no_secret_anywhere()

    # -- the banner text changes: an update of the tile, and of the demo it reaches ------
    services.set_properties(banner, {".properties.text": {"value": "Keep out"}})
    entry = change(banner.guid)
    assert entry["action"] == "update"
    assert entry["runtime_configs"][0]["status"] == "different"
    app_entry = change(app.guid)
    assert app_entry["action"] == "update"
    assert any(config_name in n for n in app_entry["notes"]), app_entry["notes"]
    planned = {i["change"] for g in app_entry["plan"]["instance_groups"] for i in g["instances"]}
    assert "update" in planned, app_entry["plan"]
    inst = wait_installation(services.apply_changes("admin", errands=no_errands).id, 600)
    assert inst.status == "succeeded", services.installation_logs(inst.id)
    assert {s.product_guid: s.action for s in inst.steps.filter(kind="deploy")} == {
        app.guid: "update",
        banner.guid: "update",
    }
    assert "Keep out" in Config.latest("runtime", config_name).content
    web = addon_jobs(app.guid)["web"]
    assert web[1]["properties"]["login_banner"]["text"] == "Keep out"
    wait_for(lambda: banners_on_vms(vm_runtime) == ["Keep out"], 60, "the new banner on the VM")
    no_secret_anywhere()

    # -- the tile deleted: its runtime config goes, the demo loses the addon -------------
    services.unstage_product(banner.guid)
    entry = change(banner.guid)
    assert entry["action"] == "delete"
    assert [(e["name"], e["status"]) for e in entry["runtime_configs"]] == [
        (config_name, "to_be_deleted")
    ]
    assert change(app.guid)["action"] == "update"
    inst = wait_installation(services.apply_changes("admin", errands=no_errands).id, 600)
    assert inst.status == "succeeded", services.installation_logs(inst.id)
    assert Config.latest("runtime", config_name) is None
    assert [j["name"] for j in addon_jobs(app.guid)["web"]] == ["demo-web"]
    assert not services.list_staged_products() or all(
        sp.guid != banner.guid for sp in services.list_staged_products()
    )
    assert change(app.guid)["action"] == "unchanged"
    assert Installation.objects.count() == 4
    no_secret_anywhere()
