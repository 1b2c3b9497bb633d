"""Product template loading, validation errors with paths, and .pivotal files."""

import io
import tarfile
import textwrap
import zipfile

import pytest

from tests.corpus import TILES as CORPUS
from tests.corpus import needs_corpus
from tiles.template import TemplateError, load_pivotal, load_product_template

EXAMPLE = CORPUS / "om-fixtures/example-product-metadata.yml"


@needs_corpus
def test_example_product_helpers():
    t = load_product_template(EXAMPLE.read_bytes())
    assert (t.name, t.product_version, t.label) == (
        "example-product",
        "1.0-build.0",
        "Ops Manager: Example Product",
    )
    assert list(t.job_types) == ["example-errand", "web_server", "no_op"]
    assert [e["name"] for e in t.post_deploy_errands] == [
        "example-errand",
        "example_colocated_errand",
    ]
    assert [e["name"] for e in t.pre_delete_errands] == ["example-errand"]
    assert t.stemcell_criteria["os"] == "ubuntu-xenial"
    assert [(r["name"], r["version"]) for r in t.releases] == [
        ("example-release", "2.5.release43"),
        ("os-conf", "15"),
    ]
    assert [v["name"] for v in t.variables][:1] == ["credhub-password"]
    assert [rc["name"] for rc in t.runtime_configs] == ["kindness_banner_everywhere"]
    assert "example_selector" in t.property_blueprints
    assert [f["name"] for f in t.form_types][0] == "example-form"

    refs = {r.reference: r for r in t.iter_property_references()}
    pepperoni = refs[".properties.example_selector.pizza_option.pepperoni"]
    assert (pepperoni.selector, pepperoni.option, pepperoni.job) == (
        ".properties.example_selector",
        "pizza_option",
        None,
    )
    assert pepperoni.blueprint["type"] == "boolean"
    assert refs[".web_server.example_string"].job == "web_server"
    assert refs[".properties.example_collection"].blueprint["type"] == "collection"
    # Collection fields are record fields, not references of their own.
    assert ".properties.example_collection.album" not in refs
    assert t.blueprint(".properties.nope") is None


def test_numbers_where_strings_belong_are_accepted():
    t = load_product_template(
        "name: t\nproduct_version: 1.2\nreleases: [{name: r, version: 15, file: r.tgz}]\n"
        "stemcell_criteria: {os: ubuntu-jammy, version: 1.8}\n"
    )
    assert t.product_version == "1.2"
    assert t.releases[0]["version"] == "15"
    assert t.stemcell_criteria["version"] == "1.8"


def test_yaml_aliases_are_expanded():
    t = load_product_template(
        textwrap.dedent(
            """
            name: t
            product_version: '1'
            base: &rd
              - {name: ram, default: 1024}
            job_types:
            - name: a
              resource_definitions: *rd
            - name: b
              resource_definitions: *rd
            """
        )
    )
    assert t.job_type("b")["resource_definitions"][0]["default"] == 1024


BASE = """
name: t
product_version: '1'
releases: [{name: rel, version: '1', file: rel-1.tgz}]
"""

BAD = [
    (
        "property_blueprints: [{name: a, type: strng}]",
        ("property_blueprints/0/type", "unknown type 'strng'"),
    ),
    (
        "property_blueprints: [{name: a, type: string}]\n"
        "form_types: [{name: f, property_inputs: [{reference: .properties.a}, {reference: .properties.a}, {reference: .properties.nope}]}]",
        ("form_types/0/property_inputs/2/reference", ".properties.nope does not exist"),
    ),
    (
        "job_types: [{name: web, templates: [], instance_definition: {default: 1, constraints: {min: one}}}]",
        ("job_types/web/instance_definition/constraints/min", "must be an integer"),
    ),
    (
        "job_types: [{name: web, instance_definition: {default: 3, constraints: {max: 1}}}]",
        ("job_types/web/instance_definition/default", "3 is above constraints/max 1"),
    ),
    (
        "job_types: [{name: web, templates: [{name: nginx, release: other}]}]",
        ("job_types/web/templates/nginx/release", "release 'other' is not listed in releases"),
    ),
    (
        "job_types: [{name: web, templates: [{name: nginx, release: rel, manifest: 'a: [1'}]}]",
        (
            "job_types/web/templates/nginx/manifest",
            "invalid YAML (line 2): did not find expected ',' or ']'",
        ),
    ),
    (
        "job_types: [{name: web, max_in_flight: lots}]",
        (
            "job_types/web/max_in_flight",
            "'lots' must be a positive integer or a percentage like 25%",
        ),
    ),
    (
        "property_blueprints: [{name: a, type: string}, {name: a, type: integer}]",
        ("property_blueprints/1/name", "property 'a' is defined twice"),
    ),
    (
        "property_blueprints: [{name: a, type: selector, option_templates: []}]",
        ("property_blueprints/0/option_templates", "a selector needs at least one option"),
    ),
    (
        "property_blueprints: [{name: a, type: selector, default: Soup, option_templates: [{name: x, select_value: X}]}]",
        ("property_blueprints/0/default", "'Soup' is not one of the options: X"),
    ),
    (
        "property_blueprints: [{name: s, type: selector, option_templates: [{name: x, property_blueprints: [{name: y, type: nope}]}]}]",
        (
            "property_blueprints/0/option_templates/0/property_blueprints/0/type",
            "unknown type 'nope'",
        ),
    ),
    (
        "property_blueprints: [{name: a, type: integer, default: many}]",
        ("property_blueprints/0/default", "must be an integer"),
    ),
    (
        "property_blueprints: [{name: a, type: string, constraints: [{must_match_regex: '([a-z'}]}]",
        (
            "property_blueprints/0/constraints/0/must_match_regex",
            "invalid regular expression: unterminated character set at position 1",
        ),
    ),
    (
        "property_blueprints: [{name: a, type: dropdown_select}]",
        ("property_blueprints/0/options", "a dropdown_select needs at least one option"),
    ),
    (
        "property_blueprints: [{name: s, type: selector, option_templates: [{name: x}]}]\n"
        "form_types: [{name: f, property_inputs: [{reference: .properties.s, selector_property_inputs: [{reference: .properties.s.y}]}]}]",
        (
            "form_types/0/property_inputs/0/selector_property_inputs/0/reference",
            ".properties.s.y is not an option of .properties.s",
        ),
    ),
    (
        "property_blueprints: [{name: c, type: collection, property_blueprints: [{name: f, type: string}]}]\n"
        "form_types: [{name: f, property_inputs: [{reference: .properties.c, property_inputs: [{reference: g}]}]}]",
        (
            "form_types/0/property_inputs/0/property_inputs/0/reference",
            ".properties.c has no field 'g'",
        ),
    ),
    (
        "post_deploy_errands: [{name: smoke}]",
        ("post_deploy_errands/0/name", "errand 'smoke' is not a job type"),
    ),
    (
        "job_types: [{name: web}]\npost_deploy_errands: [{name: smoke, colocated: true, instances: [web/first]}]",
        (
            "post_deploy_errands/0/instances/0",
            "job type 'web' has no job 'smoke' to run as an errand",
        ),
    ),
    (
        "job_types: [{name: web, instance_definition: {zero_if: {property_reference: .properties.gone, property_value: x}}}]",
        (
            "job_types/web/instance_definition/zero_if/property_reference",
            ".properties.gone does not exist",
        ),
    ),
    (
        "job_types: [{name: web, resource_definitions: [{name: gpu, default: 1}]}]",
        (
            "job_types/web/resource_definitions/0/name",
            "unknown resource 'gpu' (one of ram, ephemeral_disk, persistent_disk, cpu)",
        ),
    ),
    (
        "stemcell_criteria: {version: '1'}",
        ("stemcell_criteria/os", "is required"),
    ),
]


@pytest.mark.parametrize(("extra", "error"), BAD)
def test_a_bad_template_names_the_path(extra, error):
    with pytest.raises(TemplateError) as exc:
        load_product_template(BASE + extra)
    assert error in exc.value.errors
    assert f"{error[0]}: {error[1]}" in str(exc.value)


def test_all_errors_are_collected_at_once():
    with pytest.raises(TemplateError) as exc:
        load_product_template(
            "product_version: '1'\nproperty_blueprints: [{name: a, type: strng}, {name: b}]\n"
        )
    assert exc.value.errors == [
        ("name", "is required"),
        ("property_blueprints/0/type", "unknown type 'strng'"),
        ("property_blueprints/1/type", "is required"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "a product template must be a YAML mapping"),
        ("name: [unclosed\n", "not valid YAML at line 2, column 1"),
        (b"\xff\xfe", "metadata is not UTF-8 text"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_unparseable_metadata(text, message):
    with pytest.raises(TemplateError) as exc:
        load_product_template(text, source="m.yml")
    assert exc.value.errors[0][0] == "m.yml"
    assert message in exc.value.errors[0][1]


@needs_corpus
def test_kiln_all_fields_placeholder_template_is_refused_field_by_field():
    with pytest.raises(TemplateError) as exc:
        load_product_template((CORPUS / "kiln/proofing-metadata-all-fields.yml").read_bytes())
    paths = dict(exc.value.errors)
    assert paths["property_blueprints/0/type"] == "unknown type 'some-type'"
    assert paths["form_types/0/property_inputs/0/reference"] == "some-reference does not exist"
    assert paths["job_types/some-name/templates/some-name/release"] == (
        "release 'some-release' is not listed in releases"
    )


@needs_corpus
def test_tile_generator_input_is_not_a_product_template():
    with pytest.raises(TemplateError) as exc:
        load_product_template((CORPUS / "tile-generator/sample-tile.yml").read_bytes())
    assert ("product_version", "is required") in exc.value.errors


@needs_corpus
def test_colocated_errand_on_a_missing_job_is_refused():
    path = CORPUS / "kiln/upgrade-breaking-changes/removed_errand/initial.yml"
    with pytest.raises(TemplateError) as exc:
        load_product_template(path.read_bytes())
    assert exc.value.errors == [
        ("post_deploy_errands/0/instances/0", "job type 'clock_global' does not exist")
    ]


# --------------------------------------------------------------------------
# .pivotal


METADATA = """
name: tiny
product_version: '1.0'
label: Tiny
stemcell_criteria: {os: ubuntu-jammy, version: '1.8'}
releases:
- {name: tiny-release, version: '0.1', file: tiny-release-0.1.tgz}
job_types:
- name: web
  templates: [{name: web, release: tiny-release}]
"""


def release_tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"name: tiny-release\nversion: '0.1'\njobs: []\npackages: []\n"
        info = tarfile.TarInfo("release.MF")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def pivotal(files: dict[str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


def test_pivotal_loads_template_and_releases(tmp_path):
    tgz = release_tgz()
    path = tmp_path / "tiny-1.0.pivotal"
    path.write_bytes(
        pivotal(
            {
                "metadata/tiny.yml": METADATA,
                "releases/tiny-release-0.1.tgz": tgz,
                "migrations/v1/201801010000_noop.js": "exports.migrate = function(i) { return i; };",
            }
        ).getvalue()
    )
    template, releases = load_pivotal(path)
    assert template.name == "tiny" and template.source == "metadata/tiny.yml"
    [rel] = releases
    assert (rel.name, rel.version, rel.filename, rel.size) == (
        "tiny-release",
        "0.1",
        "releases/tiny-release-0.1.tgz",
        len(tgz),
    )
    with rel.open() as fh:
        assert fh.read() == tgz
    with rel.open() as fh, tarfile.open(fileobj=fh, mode="r|gz") as tar:
        assert [m.name for m in tar] == ["release.MF"]


def test_pivotal_from_a_file_object():
    template, releases = load_pivotal(
        pivotal({"metadata/tiny.yml": METADATA, "releases/tiny-release-0.1.tgz": release_tgz()})
    )
    assert template.name == "tiny" and len(releases) == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"metadata/tiny.yml": METADATA},
            "release tiny-release 0.1: releases/tiny-release-0.1.tgz is not in the .pivotal",
        ),
        (
            {"releases/tiny-release-0.1.tgz": b"x"},
            "no product template: expected one metadata/*.yml",
        ),
        (
            {"metadata/a.yml": METADATA, "metadata/b.yml": METADATA},
            "more than one product template: metadata/a.yml, metadata/b.yml",
        ),
        ({"metadata/tiny.yml": METADATA, "../evil.sh": b"x"}, "unsafe path in archive: ../evil.sh"),
        (
            {"metadata/tiny.yml": METADATA, "/etc/passwd": b"x"},
            "unsafe path in archive: /etc/passwd",
        ),
        ({"metadata/tiny.yml": "name: [broken"}, "not valid YAML"),
    ],
)
def test_bad_pivotal_files_fail_clearly(files, message):
    with pytest.raises(TemplateError) as exc:
        load_pivotal(pivotal(files))
    assert message in str(exc.value)


def test_not_a_zip():
    with pytest.raises(TemplateError, match="not a .pivotal file: it is not a zip archive"):
        load_pivotal(io.BytesIO(b"this is not a zip"))


def test_pivotal_size_is_bounded():
    data = pivotal({"metadata/tiny.yml": METADATA, "releases/tiny-release-0.1.tgz": b"0" * 10_000})
    with pytest.raises(TemplateError, match="archive expands to .* more than 5000"):
        load_pivotal(data, max_uncompressed=5000)
