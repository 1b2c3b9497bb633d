"""The whole manifest pipeline on a real deployment, in BOSH's order:
ops files on the raw template, validation, generation of missing variables,
interpolation, runtime-config addons, cloud-config cross-checks, and job
property resolution."""

import pytest

from director import manifest as m
from tests.corpus import CORPUS, needs_corpus

OPS = CORPUS / "ops-files/concourse-bosh-deployment/cluster/operations"


def _doc(path):
    return m.load_yaml_document((CORPUS / path).read_text(), path)


@needs_corpus
def test_concourse_on_the_vbox_cloud_config():
    doc = m.load_yaml(
        (CORPUS / "deployments/concourse-bosh-deployment/cluster/concourse.yml").read_text()
    )
    for name in ("tls-vars.yml", "tls.yml", "scale.yml"):
        doc = m.apply_ops(doc, m.load_yaml_document((OPS / name).read_text()), name)
    raw = m.parse_manifest(doc)

    store = dict(_doc("vars-files/concourse-bosh-deployment/versions.yml"))
    store |= {
        "deployment_name": "concourse",
        "azs": ["z1"],
        "network_name": "concourse",
        "web_vm_type": "concourse",
        "worker_vm_type": "concourse",
        "db_vm_type": "concourse",
        "db_persistent_disk_type": "db",
        "external_url": "https://10.244.15.2",
        "external_host": "10.244.15.2",
        "web_instances": 1,
        "worker_instances": 2,
    }
    generated = m.generate_missing(raw["variables"], store.get, store.__setitem__)
    assert {"atc_ca", "atc_tls", "token_signing_key", "worker_key"} <= set(generated)

    final = m.parse_manifest(m.interpolate(raw, store, skip=m.deferred_to_render))
    web = next(ig for ig in final["instance_groups"] if ig["name"] == "web")
    assert final["name"] == "concourse" and web["instances"] == 1 and web["azs"] == ["z1"]
    # job properties keep their placeholders until rendering
    assert "((" in m.dump_yaml(web["jobs"])

    dns = _doc("runtime-configs/bosh-deployment/dns.yml")
    final = m.apply_addons(final, "concourse", [dns])  # ubuntu-jammy: bosh-dns applies
    assert all("bosh-dns" in [j["name"] for j in ig["jobs"]] for ig in final["instance_groups"])
    assert {"/dns_api_tls_ca"} <= {v["name"] for v in final["variables"]}

    cloud = m.parse_cloud_config(
        m.consolidate_cloud_configs([_doc("cloud-configs/concourse-bosh-deployment/vbox.yml")])
    )
    assert m.validate_against_cloud_config(final, cloud) == []

    # rendering-time interpolation of one job's properties, with the generated TLS cert
    web_job = next(j for j in web["jobs"] if j["name"] == "web")
    props = m.interpolate(web_job["properties"], lambda n: store[n] if n in store else f"<{n}>")
    assert props["tls"]["cert"]["certificate"] == store["atc_tls"]["certificate"]


@needs_corpus
def test_the_pipeline_reports_a_bad_manifest_before_generating_anything():
    doc = m.load_yaml(
        (CORPUS / "deployments/concourse-bosh-deployment/cluster/concourse.yml").read_text()
    )
    web = next(ig for ig in doc["instance_groups"] if ig["name"] == "web")
    next(j for j in web["jobs"] if j["name"] == "web")["release"] = "concourze"
    with pytest.raises(m.ManifestError) as exc:
        m.parse_manifest(doc)
    assert exc.value.paths == ["instance_groups/web/jobs/web/release"]
