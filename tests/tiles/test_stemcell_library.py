"""The Stemcell Library: kept stemcell files, matching them to products, and Apply Changes
uploading the ones the director lacks (unit tests here; the real apply on vcsim at the end)."""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass

import pytest

from director.models import Stemcell, Task, TaskState
from tests.director.builders import build_stemcell_tgz
from tiles import services
from tiles.models import LibraryStemcell
from tiles.services.installations import steps as installation_steps
from tiles.services.stemcells import match_stemcell, matching_stemcells

JAMMY = "bosh-vsphere-esxi-ubuntu-jammy-go_agent"


# --------------------------------------------------------------------------- matching (pure)


@dataclass(frozen=True)
class Cell:
    version: str
    operating_system: str = "ubuntu-jammy"
    name: str = JAMMY


def cells(*versions: str, os: str = "ubuntu-jammy") -> list[Cell]:
    return [Cell(v, os) for v in versions]


JAMMY_1 = {"os": "ubuntu-jammy", "version": "1.0"}


@pytest.mark.parametrize(
    ("criteria", "candidates", "picked"),
    [
        (JAMMY_1, cells("1.0", "1.5"), "1.0"),  # the exact version wins
        (JAMMY_1, cells("1.5", "1.10", "1.9"), "1.10"),  # else the newest of the line
        ({"os": "ubuntu-jammy", "version": "1.x"}, cells("1.0", "1.5", "2.1"), "1.5"),
        ({**JAMMY_1, "enable_patch_security_updates": False}, cells("1.5"), None),
        ({**JAMMY_1, "enable_patch_security_updates": False}, cells("1.0", "1.5"), "1.0"),
        (JAMMY_1, cells("2.0"), None),  # another major line
        (JAMMY_1, cells("1.0", os="ubuntu-noble"), None),  # another OS
        ({"os": "ubuntu-jammy"}, cells("1.0", "3.2", "2.9"), "3.2"),  # no version: the newest
        ({"version": "1.0"}, cells("1.0"), None),  # no os: nothing matches
        (None, cells("1.0"), None),
        (JAMMY_1, [Cell("1.2", "")], "1.2"),  # a director row without OS: matched by name
        (JAMMY_1, [Cell("1.2", "", name="bosh-vsphere-esxi-ubuntu-noble-go_agent")], None),
    ],
)
def test_match_stemcell(criteria, candidates, picked):
    found = match_stemcell(criteria, candidates)
    assert (found.version if found else None) == picked


def test_matching_stemcells_are_listed_oldest_first():
    found = matching_stemcells(JAMMY_1, cells("1.10", "2.0", "1.2", "1.9"))
    assert [c.version for c in found] == ["1.2", "1.9", "1.10"]


# --------------------------------------------------------------------------- library bookkeeping


def sha1_of(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.django_db
def test_import_keeps_one_file_per_name_and_version_and_starts_the_director_upload(
    tiles_dirs, settings
):
    first = build_stemcell_tgz(tiles_dirs / "a.tgz", version="1.7", image=b"first image")
    result = services.import_stemcell(str(first), "admin")
    assert result.created is True
    assert result.message == f"Stemcell {JAMMY}/1.7 added to the Stemcell Library"
    kept = LibraryStemcell.objects.get()
    assert (kept.name, kept.version, kept.operating_system) == (JAMMY, "1.7", "ubuntu-jammy")
    assert kept.uploaded_by == "admin" and kept.sha1 == sha1_of(first)
    files = list(settings.STEMCELL_LIBRARY_DIR.iterdir())
    assert [f.name for f in files] == [f"{JAMMY}-1.7.tgz"] and str(files[0]) == kept.path
    assert result.task.type == "update_stemcell" and result.task.state == TaskState.QUEUED
    assert result.task.args["version"] == "1.7"

    # the same name/version again, with other bytes: nothing is replaced, and it says so
    again = build_stemcell_tgz(tiles_dirs / "b.tgz", version="1.7", image=b"other image")
    result = services.import_stemcell(str(again), "operator")
    assert result.created is False
    assert "already in the Stemcell Library" in result.message
    assert "not replaced" in result.message
    assert LibraryStemcell.objects.count() == 1
    assert sha1_of(files[0]) == kept.sha1 == sha1_of(first)
    assert [f.name for f in settings.STEMCELL_LIBRARY_DIR.iterdir()] == [f"{JAMMY}-1.7.tgz"]
    assert result.task.type == "update_stemcell"  # the director upload is still started


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": None}, "image: not in the tarball"),
        ({"manifest": {"name": JAMMY, "version": "1.0"}}, "missing key 'operating_system'"),
        (
            {
                "manifest": {
                    "name": JAMMY,
                    "version": "1.0",
                    "operating_system": "ubuntu-jammy",
                    "stemcell_formats": ["aws-light"],
                }
            },
            "cannot be imported by the vSphere CPI",
        ),
    ],
)
def test_a_bad_tarball_is_refused_and_nothing_is_kept(tiles_dirs, settings, kwargs, message):
    bad = build_stemcell_tgz(tiles_dirs / "bad.tgz", **kwargs)
    with pytest.raises(services.ServiceError) as exc:
        services.import_stemcell(str(bad), "admin")
    assert list(exc.value.errors) == ["stemcell"] and message in exc.value.errors["stemcell"][0]
    assert not LibraryStemcell.objects.exists() and not Task.objects.exists()
    assert list(settings.STEMCELL_LIBRARY_DIR.iterdir()) == []


@pytest.mark.django_db
def test_not_a_tarball_is_refused(tiles_dirs, settings):
    with pytest.raises(services.ServiceError) as exc:
        services.import_stemcell(io.BytesIO(b"hello"), "admin")
    assert exc.value.errors["stemcell"][0].startswith("not a gzip tarball")
    assert list(settings.STEMCELL_LIBRARY_DIR.iterdir()) == []


# --------------------------------------------------------------------------- products and checks


def library_only(tiles_dirs, version="1.7"):
    """A jammy stemcell kept in the library, never uploaded to the director."""
    tgz = build_stemcell_tgz(tiles_dirs / f"jammy-{version}.tgz", version=version)
    return services.import_stemcell(str(tgz), "admin", upload=False).stemcell


@pytest.mark.django_db
def test_a_library_stemcell_counts_as_present_and_is_rendered(small, small_release, tiles_dirs):
    checks, warnings = services.product_checks(small)
    assert checks["stemcell_present"] is False
    assert "Missing stemcell: ubuntu-jammy 1.0" in warnings

    library_only(tiles_dirs, "1.7")
    checks, warnings = services.product_checks(small)
    assert checks["stemcell_present"] is True
    assert not any("stemcell" in w.lower() for w in warnings)
    manifest = services.render_manifest(small)
    assert manifest["stemcells"][0]["version"] == "1.7"
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert entry["completeness_checks"]["stemcell_present"] is True
    assert entry["notes"] == [
        f"Stemcell {JAMMY}/1.7 (ubuntu-jammy) is in the Stemcell Library and will be "
        "uploaded to the director by Apply Changes"
    ]

    # once the director has a matching stemcell, it is used and nothing is noted
    Stemcell.objects.create(name=JAMMY, version="1.5", operating_system="ubuntu-jammy", cid="sc-x")
    assert services.render_manifest(small)["stemcells"][0]["version"] == "1.5"
    assert services.pending_changes(with_plan=False)["product_changes"][1]["notes"] == []


@pytest.mark.django_db
def test_apply_changes_plans_the_stemcells_step_and_uploads_what_is_missing(
    small, small_release, tiles_dirs
):
    kept = library_only(tiles_dirs, "1.7")
    inst = services.apply_changes("admin")
    steps = list(inst.steps.order_by("seq"))
    assert [(s.kind, s.label) for s in steps[:4]] == [
        ("vcenter", "Check the vCenter connection"),
        ("configs", "Update director configs (cpi-config, cloud-config)"),
        ("stemcells", "Upload missing stemcells"),
        ("deploy", f"Deploy Small ({small.guid})"),
    ]
    plan = services.stemcells_to_upload([small])
    assert [(lib.pk, guids) for lib, guids in plan.uploads] == [(kept.pk, (small.guid,))]
    assert plan.missing == ()

    # the step runs the director's update_stemcell task inline (here without a vCenter: it fails
    # with the director's own message, and the installation says which step failed)
    step = steps[2]
    assert installation_steps._run_stemcells(step, inst) is False
    step.refresh_from_db()
    assert step.state == "failed" and step.task.type == "update_stemcell"
    assert step.task.state == TaskState.ERROR
    assert step.message.startswith(f"stemcell {JAMMY}/1.7: ")


@pytest.mark.django_db
def test_the_stemcells_step_is_skipped_when_the_director_has_them(small, small_release, stemcell):
    inst = services.apply_changes("admin")
    step = inst.steps.get(kind="stemcells")
    assert installation_steps._run_stemcells(step, inst) is True
    step.refresh_from_db()
    assert step.state == "skipped" and step.task is None
    assert step.message == "no stemcell to upload: the director has every one needed"


@pytest.mark.django_db
def test_no_stemcells_step_without_products_to_deploy(director_configured):
    inst = services.apply_changes("admin", deploy_products="none")
    assert [s.kind for s in inst.steps.all()] == ["vcenter", "configs"]


@pytest.mark.django_db
def test_a_product_with_no_stemcell_anywhere_still_blocks_the_apply(small, small_release):
    with pytest.raises(services.ServiceError) as exc:
        services.apply_changes("admin", ignore_warnings=True)
    assert any("missing stemcell" in m for m in exc.value.errors[small.guid])


# --------------------------------------------------------------------------- API


@pytest.mark.django_db
def test_post_stemcells_keeps_the_file_and_answers_with_the_director_task(
    admin_api, role_api, tiles_dirs, settings
):
    from rest_framework.test import APIClient

    tgz = build_stemcell_tgz(tiles_dirs / "s.tgz", version="3.1")
    res = admin_api.post(
        "/api/v0/stemcells", {"stemcell[file]": io.BytesIO(tgz.read_bytes())}, format="multipart"
    )
    assert res.status_code == 202, res.content
    body = res.json()
    assert Task.objects.get(id=body["id"]).type == "update_stemcell"
    assert res["Location"].endswith(f"/api/v0/director/tasks/{body['id']}")
    assert body["stemcell_library"]["added"] is True
    assert body["stemcell_library"]["name"] == JAMMY
    assert body["stemcell_library"]["sha1"] == sha1_of(tgz)

    res = admin_api.post(
        "/api/v0/stemcells", {"stemcell[file]": io.BytesIO(tgz.read_bytes())}, format="multipart"
    )
    assert res.json()["stemcell_library"]["added"] is False
    assert "already in the Stemcell Library" in res.json()["stemcell_library"]["message"]
    assert LibraryStemcell.objects.count() == 1

    viewer = role_api("full_view")
    files = {"stemcell[file]": io.BytesIO(tgz.read_bytes())}
    assert viewer.post("/api/v0/stemcells", files, format="multipart").status_code == 403
    assert APIClient().get("/api/v0/stemcell_assignments").status_code == 401
    assert APIClient().post("/api/v0/stemcells", files, format="multipart").status_code == 401
    assert viewer.get("/api/v0/stemcell_assignments").status_code == 200
    res = admin_api.post("/api/v0/stemcells", {}, format="multipart")
    assert res.status_code in (400, 422)
    assert "stemcell[file]" in res.json()["errors"]


@pytest.mark.django_db
def test_stemcell_assignments(admin_api, small, stemcell, tiles_dirs):
    library_only(tiles_dirs, "1.7")
    library_only(tiles_dirs, "2.0")  # another major line: not available to the small tile
    body = admin_api.get("/api/v0/stemcell_assignments").json()
    assert body == {
        "products": [
            {
                "guid": small.guid,
                "identifier": "small",
                "staged_stemcell_version": "1.5",  # the director's, which it deploys with
                "available_stemcell_versions": ["1.5", "1.7"],
                "required_stemcell_version": "1.0",
                "required_stemcell_os": "ubuntu-jammy",
            }
        ]
    }


# --------------------------------------------------------------------------- pages


@pytest.mark.django_db
def test_stemcells_page_lists_the_library_and_the_dashboard_follows(
    admin_client, small, tiles_dirs
):
    dashboard = admin_client.get("/").content.decode()
    assert "Missing stemcell" in dashboard
    page = admin_client.get("/director/stemcells/").content.decode()
    assert "The Stemcell Library is empty." in page

    tgz = build_stemcell_tgz(tiles_dirs / "s.tgz", version="1.7")
    with open(tgz, "rb") as fh:
        res = admin_client.post("/director/stemcells/", {"stemcell[file]": fh})
    task = Task.objects.get(type="update_stemcell")
    assert res.status_code == 302 and res["Location"] == f"/director/tasks/{task.id}/"
    page = admin_client.get("/director/stemcells/").content.decode()
    library = page.split('id="stemcell-library"')[1].split("</table>")[0]
    assert "1.7" in library and "will be uploaded at the next Apply Changes" in library
    assert f'href="/products/{small.guid}/"' in library and "Small" in library
    assert "Missing stemcell" not in admin_client.get("/").content.decode()
    pending = admin_client.get("/pending_changes/").content.decode()
    assert "will be uploaded to the director by Apply Changes" in pending

    Stemcell.objects.create(name=JAMMY, version="1.7", operating_system="ubuntu-jammy", cid="sc-7")
    page = admin_client.get("/director/stemcells/").content.decode()
    library = page.split('id="stemcell-library"')[1].split("</table>")[0]
    assert "uploaded to the director" in library and "sc-7" in library
    assert "will be uploaded" not in library

    with open(tgz, "rb") as fh:  # again: kept, not replaced, and said so
        page = admin_client.post("/director/stemcells/", {"stemcell[file]": fh}, follow=True)
    text = page.content.decode()
    assert "already in the Stemcell Library" in text
    assert f"Stemcell &#x27;{JAMMY}/1.7&#x27; already exists" in text


# The page moved here from the director's pages (it is the console's).


@pytest.mark.django_db
def test_stemcells_page_lists_the_directors_and_uploads(admin_client, tiles_dirs):
    Stemcell.objects.create(
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent", version="1.18", cid="sc-abc"
    )
    page = admin_client.get("/director/stemcells/").content.decode()
    assert "sc-abc" in page and "1.18" in page and 'name="stemcell[file]"' in page

    good = build_stemcell_tgz(tiles_dirs / "s.tgz", version="2.0")
    with open(good, "rb") as fh:
        response = admin_client.post("/director/stemcells/", {"stemcell[file]": fh})
    task = Task.objects.get(type="update_stemcell")
    assert response.status_code == 302 and response["Location"] == f"/director/tasks/{task.id}/"

    bad = build_stemcell_tgz(tiles_dirs / "bad.tgz", image=None)
    with open(bad, "rb") as fh:
        response = admin_client.post("/director/stemcells/", {"stemcell[file]": fh}, follow=True)
    assert "bad.tgz: image: not in the tarball" in response.content.decode()
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_a_read_only_role_sees_no_upload_form_and_cannot_upload(client, user_with_role, tiles_dirs):
    client.force_login(user_with_role("full_view"))
    assert 'name="stemcell[file]"' not in client.get("/director/stemcells/").content.decode()
    with open(build_stemcell_tgz(tiles_dirs / "s.tgz"), "rb") as fh:
        response = client.post("/director/stemcells/", {"stemcell[file]": fh}, follow=True)
    assert "may not upload" in response.content.decode()
    assert not Task.objects.exists()


# --------------------------------------------------------------------------- on vcsim


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_apply_changes_uploads_a_library_stemcell_then_deploys_on_vcsim(
    celery_worker, vcsim, vsphere_si, settings, tmp_path
):
    from cpi.stemcell_builder import build_stemcell
    from tests.tiles.test_apply_vcsim import vms_in, wait_installation, wait_task
    from tiles import demo

    settings.LOCAL_VCSIM_FILE = tmp_path / "none.json"
    settings.STEMCELL_LIBRARY_DIR = tmp_path / "library"
    inv = vcsim.inventory
    dc = inv["datacenters"][0]
    suffix = uuid.uuid4().hex[:8]
    folder, templates = f"lib-{suffix}", f"lib-templates-{suffix}"
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": dc,
            "ephemeral_datastores_string": ",".join(inv["datastores"]),
            "persistent_datastores_string": ",".join(inv["datastores"]),
            "bosh_vm_folder": folder,
            "bosh_template_folder": templates,
            "bosh_disk_path": f"lib-disks-{suffix}",
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

    # The stemcell is only in the library: kept, never sent to the director.
    tgz = build_stemcell(
        tmp_path / "stemcell.tgz", name=JAMMY, version="1.0", operating_system="ubuntu-jammy"
    )
    kept = services.import_stemcell(str(tgz), "admin", upload=False).stemcell
    assert not Stemcell.objects.exists()

    pivotal = demo.build_pivotal(tmp_path / "demo")
    with open(pivotal, "rb") as fh:
        product = services.import_product(fh, pivotal.name, "admin")
    for task_id in product.release_task_ids:
        wait_task(task_id)
    staged = services.stage_product(product.name, product.version)
    services.set_networks_and_azs(
        staged,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}],
            "network": {"name": "infra"},
        },
    )
    for job in ("web", "worker", "smoke-tests"):
        services.set_resource_config(staged, job, instances=1, instance_type="tiny")
    entry = services.pending_changes(with_plan=False)["product_changes"][1]
    assert all(entry["completeness_checks"].values()), entry["warnings"]
    assert "will be uploaded to the director by Apply Changes" in entry["notes"][0]

    inst = wait_installation(services.apply_changes("admin").id, timeout=400)
    logs = services.installation_logs(inst.id)
    assert inst.status == "succeeded", logs
    steps = list(inst.steps.order_by("seq"))
    assert [(s.kind, s.state) for s in steps][:4] == [
        ("vcenter", "succeeded"),
        ("configs", "succeeded"),
        ("stemcells", "succeeded"),
        ("deploy", "succeeded"),
    ]
    upload = steps[2].task
    assert upload.type == "update_stemcell" and upload.state == TaskState.DONE
    assert steps[2].message == f"uploaded {JAMMY}/1.0 for {staged.guid} (task {upload.id})"
    assert f"===== Upload missing stemcells: succeeded (task {upload.id})" in logs
    director_stemcell = Stemcell.objects.get(name=JAMMY, version="1.0")
    assert director_stemcell.cid.startswith("sc-")
    assert director_stemcell.cid in vms_in(vsphere_si, dc, templates)  # the template VM
    assert director_stemcell.deployments.filter(name=staged.guid).exists()
    assert len(vms_in(vsphere_si, dc, folder)) == 2  # web and worker
    assert LibraryStemcell.objects.get().path == kept.path  # the library keeps its file
    page_entry = services.stemcell_library()[0]
    assert page_entry.director_cid == director_stemcell.cid

    # A second apply: the director has the stemcell, the step says so and uploads nothing.
    inst2 = wait_installation(services.apply_changes("admin").id)
    assert inst2.status == "succeeded", services.installation_logs(inst2.id)
    step = inst2.steps.get(kind="stemcells")
    assert step.state == "skipped" and step.task is None
    assert step.message == "no stemcell to upload: the director has every one needed"
    assert Task.objects.filter(type="update_stemcell").count() == 1
