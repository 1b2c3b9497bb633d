"""The demo tile: a valid product template and release, reproducible builds,
every pane renders, and its manifest renders with the demo's job properties."""

import hashlib
import zipfile

import pytest

from director.tarballs import read_release
from tiles import demo
from tiles.forms import TilePaneForm
from tiles.formspec import build_form_specs
from tiles.manifest import NetworkAssignment, RenderContext, StemcellRef, VmType, render_manifest
from tiles.template import load_pivotal, load_product_template


def test_pivotal_holds_metadata_and_release_and_builds_reproducibly(tmp_path):
    first = demo.build_pivotal(tmp_path / "a")
    second = demo.build_pivotal(tmp_path / "b")
    assert hashlib.sha1(first.read_bytes()).digest() == hashlib.sha1(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as zf:
        assert sorted(zf.namelist()) == [
            "metadata/opsconsole-demo.yml",
            "releases/opsconsole-demo-1.0.0.tgz",
        ]
    template, releases = load_pivotal(first)
    assert (template.name, template.product_version) == ("opsconsole-demo", "1.0.0")
    assert [(r.name, r.version) for r in releases] == [("opsconsole-demo", "1.0.0")]


@pytest.mark.django_db
def test_release_passes_the_directors_checks(tmp_path):
    archive = read_release(demo.build_release(tmp_path))
    assert archive.label == "opsconsole-demo/1.0.0"
    assert [j.name for j in archive.jobs] == ["demo-web", "demo-worker", "smoke-tests"]
    web = archive.jobs[0].spec
    assert web["packages"] == ["demo-runtime"]
    assert "demo.admin.password" in web["properties"]


def test_template_has_what_the_demo_promises():
    t = load_product_template(demo.metadata_text())
    types = {ref.blueprint["type"] for ref in t.iter_property_references()}
    assert {"selector", "collection", "simple_credentials", "port", "secret"} <= types
    assert [j for j, spec in t.job_types.items() if spec.get("errand")] == ["smoke-tests"]
    resources = {
        r["name"]: r
        for r in t.job_type("web")["resource_definitions"]
        if r["name"] == "persistent_disk"
    }
    assert resources["persistent_disk"]["default"] == 1024
    assert [e["name"] for e in t.post_deploy_errands] == ["smoke-tests"]
    for spec in build_form_specs(t):
        assert TilePaneForm(spec, t).items, spec.name


def test_manifest_renders_job_properties_from_the_forms():
    t = load_product_template(demo.metadata_text())
    values = {
        ".properties.admin_credentials": {"identity": "admin", "password": "pw"},
        ".properties.storage": "s3",
        ".properties.storage.s3.endpoint": "https://s3.example.com",
        ".properties.storage.s3.bucket": "files",
        ".properties.storage.s3.secret_key": {"secret": "k"},
        ".web.port": 9090,
    }
    ctx = RenderContext(
        deployment_name="opsconsole-demo-0",
        network=NetworkAssignment("default", "az1", ("az1",)),
        stemcell=StemcellRef("ubuntu-jammy", "1.0"),
        vm_types={"small": VmType("small", 1, 2048, 8192)},
    )
    m = render_manifest(t, values, ctx)
    groups = {g["name"]: g for g in m["instance_groups"]}
    assert (groups["web"]["instances"], groups["web"]["persistent_disk"]) == (2, 1024)
    assert "persistent_disk" not in groups["worker"]
    assert groups["smoke-tests"]["lifecycle"] == "errand"
    props = groups["web"]["jobs"][0]["properties"]["demo"]
    assert props["port"] == 9090
    assert props["storage"] == {
        "backend": "s3",
        "endpoint": "https://s3.example.com",
        "bucket": "files",
        "secret_key": "k",
    }
    assert groups["worker"]["jobs"][0]["properties"]["demo"]["queues"] == [
        {"name": "default", "concurrency": 2, "durable": True}
    ]


@pytest.mark.django_db
def test_seed_demo_builds_the_tile_and_stemcell_and_uploads_the_stemcell_once(
    tmp_path, tiles_dirs, settings
):
    from django.core.management import call_command

    from director.models import Task
    from tiles.models import LibraryStemcell, Product

    call_command("seed_demo", out=str(tmp_path), import_product=True)
    [kept] = LibraryStemcell.objects.all()
    assert (kept.name, kept.version, kept.operating_system) == (
        "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        "1.0",
        "ubuntu-jammy",
    )
    assert [p.name for p in settings.STEMCELL_LIBRARY_DIR.iterdir()] == [
        "bosh-vsphere-esxi-ubuntu-jammy-go_agent-1.0.tgz"
    ]
    assert (tmp_path / "opsconsole-demo-1.0.0.pivotal").exists()
    assert (tmp_path / "bosh-vsphere-esxi-ubuntu-jammy-go_agent-1.0.tgz").exists()
    [task] = Task.objects.filter(type="update_stemcell")
    assert task.args["version"] == "1.0"
    assert Product.objects.filter(name="opsconsole-demo", version="1.0.0").count() == 1
    call_command("seed_demo", out=str(tmp_path), import_product=True)  # again: nothing new
    assert Product.objects.count() == 1
    assert Task.objects.filter(type="update_stemcell").count() == 1
    assert LibraryStemcell.objects.count() == 1
