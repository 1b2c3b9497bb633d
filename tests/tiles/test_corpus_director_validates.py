"""The manifests the corpus tiles render are manifests the director accepts.

Issue 5 asks that every full product template of the corpus renders a
manifest "the director validates": each rendered manifest goes through the
director's own parser and is checked against a cloud-config with the AZs,
VM types, disk types and network the render context named.
"""

import pytest

from director.manifest import parse_cloud_config, parse_manifest, validate_against_cloud_config
from tests.corpus import needs_corpus
from tests.tiles.test_corpus_tiles import CORPUS, FULL, VM_TYPES, context, staged
from tiles.credentials import make_root_ca
from tiles.manifest import render_manifest
from tiles.template import load_product_template

CLOUD_CONFIG = {
    "azs": [{"name": az, "cloud_properties": {}} for az in ("az1", "az2", "az3")],
    "vm_types": [
        {"name": v.name, "cloud_properties": {"cpu": v.cpu, "ram": v.ram, "disk": v.ephemeral_disk}}
        for v in VM_TYPES.values()
    ],
    "disk_types": [
        {"name": n, "disk_size": size}
        for n, size in {"1024": 1024, "10240": 10240, "102400": 102400}.items()
    ],
    "networks": [
        {
            "name": name,
            "type": "manual",
            "subnets": [
                {
                    "range": f"10.0.{i}.0/24",
                    "gateway": f"10.0.{i}.1",
                    "azs": ["az1", "az2", "az3"],
                    "cloud_properties": {"name": "VM Network"},
                }
            ],
        }
        for i, name in enumerate(("deployment", "services"))
    ],
    "compilation": {"workers": 1, "network": "deployment", "az": "az1", "vm_type": "small"},
}


REQUIRED = {
    "tile-generator/test_metadata_expected_output.yml": {
        ".properties.canary_watch_timeout": 30000,
        ".properties.update_watch_timeout": 60000,
    },
}


@pytest.fixture(scope="module")
def root_ca():
    return make_root_ca()


@pytest.mark.parametrize(("path", "values", "instance_groups", "where", "expected"), FULL)
@needs_corpus
def test_rendered_manifest_passes_the_directors_validation(
    root_ca, path, values, instance_groups, where, expected
):
    template = load_product_template((CORPUS / path).read_bytes(), source=path)
    ctx = context(template)
    # Required properties without defaults, as an operator must fill them before applying.
    values = {**REQUIRED.get(path, {}), **values}
    rendered = render_manifest(template, staged(template, root_ca, ctx, values), ctx)
    manifest = parse_manifest(rendered)
    assert [g["name"] for g in manifest["instance_groups"]] == instance_groups
    problems = validate_against_cloud_config(manifest, parse_cloud_config(CLOUD_CONFIG))
    assert problems == []
