"""Bad tiles never crash: broken metadata, staged values and .pivotal files.

Real product templates from the corpus are broken structurally (a node
replaced by a value of another type, a key deleted, junk added) and fed to
every public entry point of ``tiles``. Each call must either succeed or
raise the module's typed error (TemplateError, RenderError) whose errors
name a path: an operator uploading a bad tile sees what is wrong, never an
HTTP 500.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from tests.corpus import TILES as CORPUS
from tests.corpus import needs_corpus
from tests.robustness.mutate import mutate, mutations
from tiles.credentials import generate_missing_credentials, make_root_ca
from tiles.formspec import build_form_specs
from tiles.manifest import (
    NetworkAssignment,
    OtherProduct,
    RenderContext,
    RenderError,
    StemcellRef,
    VmType,
    evaluator,
    render_manifest,
)
from tiles.properties import validate_values
from tiles.template import TemplateError, load_pivotal, load_product_template

TILES = [
    "om-fixtures/example-product-metadata.yml",
    "tile-generator/test_metadata_expected_output.yml",
    "kiln/builder-output-metadata-hello-server.yml",
    "kiln/planitest-fake-tile-metadata.yml",
]
# Operator values that make each template render (plus generated credentials).
GIVEN = {
    TILES[0]: {".web_server.example_string": "x"},
    TILES[1]: {
        ".properties.city": "Springfield",
        ".properties.my_creds": {"identity": "me", "password": "pw"},
    },
    TILES[2]: {},
    TILES[3]: {".properties.required": "r"},
}


def fuzz(examples: int) -> settings:
    """Bounded runs (the directory stays under a minute); FUZZ_SCALE=10 digs deeper."""
    return settings(
        max_examples=examples * int(os.environ.get("FUZZ_SCALE", "1")),
        deadline=None
        if os.environ.get("FUZZ_DEADLINE") is None
        else int(os.environ["FUZZ_DEADLINE"]),
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


class _CfValues(dict):
    """A deployed ``cf`` tile answering any ``.job.property`` reference."""

    def __contains__(self, key):
        return dict.__contains__(self, key) or key.count(".") == 2

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return f"cf{key}"


CF = OtherProduct(
    "cf",
    "cf-0123456789abcdef",
    "pas",
    _CfValues(
        {
            ".uaa.system_services_credentials": {"identity": "svc", "password": "p"},
            ".uaa.admin_client_credentials": {"identity": "admin", "password": "p"},
            ".ha_proxy.skip_cert_verify": True,
        }
    ),
)


def context(template) -> RenderContext:
    sc = template.stemcell_criteria if isinstance(template.stemcell_criteria, dict) else {}
    return RenderContext(
        deployment_name=f"{template.name}-0a1b2c3d",
        network=NetworkAssignment("deployment", "az1", ("az1", "az2"), service_network="services"),
        stemcell=StemcellRef(str(sc.get("os", "ubuntu-jammy")), str(sc.get("version", "1.8"))),
        vm_types={
            "micro": VmType("micro", 1, 1024, 8192),
            "large": VmType("large", 2, 8192, 65536),
        },
        disk_types={"1024": 1024, "10240": 10240},
        director={"hostname": "10.0.0.3"},
        other_products={"cf": CF},
    )


def _dump(doc) -> str | None:
    try:
        return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    except RecursionError:
        return None  # junk too deep for PyYAML's writer; the loader is tested on text below


def assert_paths(exc: TemplateError | RenderError) -> None:
    """Every error is (path, message) with both parts filled in."""
    assert exc.errors, exc
    for path, message in exc.errors:
        assert isinstance(path, str) and path, exc.errors
        assert isinstance(message, str) and message, exc.errors


@pytest.fixture(scope="module")
def staged():
    """Each template with values that render, credentials generated once."""
    ca = make_root_ca()
    out = {}
    for path in TILES:
        template = load_product_template((CORPUS / path).read_bytes(), source=path)
        ctx = context(template)
        values, errors = validate_values(template, GIVEN[path])
        assert errors == {}
        values.update(
            generate_missing_credentials(
                template, values, root_ca=ca, domain_evaluator=evaluator(template, values, ctx)
            )
        )
        render_manifest(template, values, ctx)  # the unbroken base renders
        out[path] = (template, values)
    return out


# --------------------------------------------------------------------------
# Known crashes, each with the path its error must name


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("name: x\nproduct_version: '1'\nproperty_blueprints: 3", "property_blueprints"),
        ("name: x\nproduct_version: '1'\njob_types: true", "job_types"),
        (
            "name: x\nproduct_version: '1'\njob_types: [{name: web, property_blueprints: 7}]",
            "job_types/web/property_blueprints",
        ),
        (
            "name: x\nproduct_version: '1'\nproperty_blueprints:\n"
            "- {name: s, type: selector, option_templates: 5}",
            "property_blueprints/0/option_templates",
        ),
        (
            "name: x\nproduct_version: '1'\nproperty_blueprints:\n"
            "- {name: s, type: selector, option_templates: [{name: a, property_blueprints: 1}]}",
            "property_blueprints/0/option_templates/0/property_blueprints",
        ),
        (
            "name: x\nproduct_version: '1'\nproperty_blueprints:\n"
            "- {name: c, type: collection, default: [{f: 1}],"
            " property_blueprints: [{name: f, type: [x]}]}",
            "property_blueprints/0/property_blueprints/0/type",
        ),
    ],
)
def test_wrongly_typed_lists_name_their_path(text, path):
    with pytest.raises(TemplateError) as info:
        load_product_template(text)
    assert path in [p for p, _ in info.value.errors]


def test_a_huge_instance_count_is_refused_not_expanded():
    text = (
        "name: x\nproduct_version: '1'\njob_types:\n"
        "- {name: web, instance_definition: {default: 1000000000000}, templates: []}\n"
    )
    with pytest.raises(TemplateError) as info:
        load_product_template(text)
    assert "job_types/web/instance_definition/default" in [p for p, _ in info.value.errors]


def _credential_values(staged, ref, value):
    template, values = staged[TILES[0]]
    return template, {**values, ref: value}


@pytest.mark.parametrize(
    ("ref", "value"),
    [
        # A stored credential of the wrong shape (an old row, a tile upgrade).
        (".web_server.generated_rsa_cert_credentials", {"cert_pem": None}),
        (".web_server.generated_rsa_cert_credentials", {"private_key_pem": "not a key"}),
        (".web_server.generated_rsa_pkey_credentials", {"private_key_pem": ["x"]}),
        (".web_server.generated_salted_credentials", {"identity": "a", "password": 5}),
        (".web_server.generated_salted_credentials", {"identity": "a", "password": "p"}),
        (
            ".web_server.generated_salted_credentials",
            {"identity": "a", "password": "p", "salt": "000\x80\x80\x80\x80\x80\U00010000"},
        ),
    ],
)
@needs_corpus
def test_broken_stored_credentials_are_render_errors(staged, ref, value):
    template, values = _credential_values(staged, ref, value)
    try:
        render_manifest(template, values, context(template))
    except RenderError as e:
        assert_paths(e)
        assert any(ref in m for _, m in e.errors), e.errors
    # else: the tile never reads that accessor, which is fine too


@needs_corpus
def test_a_huge_salted_password_is_refused_not_hashed_for_ever(staged):
    template, _ = staged[TILES[0]]
    ref = ".web_server.generated_salted_credentials"
    _, errors = validate_values(
        template, {ref: {"identity": "a", "password": "p" * 200_000, "salt": "s"}}
    )
    assert "longer than 4096 bytes" in errors[ref]
    template, values = _credential_values(
        staged, ref, {"identity": "a", "password": "p" * 200_000, "salt": "s"}
    )
    start = time.monotonic()
    with pytest.raises(RenderError) as info:
        render_manifest(template, values, context(template))
    assert time.monotonic() - start < 5
    assert any("longer than 4096 bytes" in m for _, m in info.value.errors)


# --------------------------------------------------------------------------
# Structural fuzzing


@pytest.mark.parametrize("path", TILES)
@fuzz(100)
@given(muts=mutations())
@needs_corpus
def test_mutated_metadata_loads_or_names_the_path(path, muts):
    doc = _load_corpus(path)
    text = _dump(mutate(doc, muts))
    if text is None:
        return
    try:
        template = load_product_template(text, source=path)
    except TemplateError as e:
        assert_paths(e)
        return
    # A template that loads is usable: forms, defaults and a manifest.
    build_form_specs(template)
    values, _ = validate_values(template, {})
    try:
        render_manifest(template, values, context(template))
    except RenderError as e:
        assert_paths(e)


@pytest.mark.parametrize("path", TILES[:2])
@fuzz(100)
@given(muts=mutations())
@needs_corpus
def test_mutated_values_validate_and_render_or_name_the_property(staged, path, muts):
    template, base = staged[path]
    given_values = mutate(base, muts)
    if not isinstance(given_values, dict):
        return
    # Only what the mutation changed: re-validating every stored RSA key
    # would make each example slow without testing anything new.
    changed = {k: v for k, v in given_values.items() if k not in base or base[k] != v}
    normalized, errors = validate_values(template, changed)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    try:
        render_manifest(template, {**base, **normalized}, context(template))
    except RenderError as e:
        assert_paths(e)


@pytest.mark.parametrize("path", TILES[:2])
@fuzz(100)
@given(muts=mutations())
@needs_corpus
def test_stale_stored_values_render_or_name_the_path(staged, path, muts):
    """Values read back from the database unvalidated (a row from an older tile)."""
    template, base = staged[path]
    values = mutate(base, muts)
    if not isinstance(values, dict):
        return
    try:
        render_manifest(template, values, context(template))
    except RenderError as e:
        assert_paths(e)


_CACHE: dict = {}


def _load_corpus(path):
    if path not in _CACHE:
        _CACHE[path] = yaml.safe_load((CORPUS / path).read_text())
    return _CACHE[path]


# --------------------------------------------------------------------------
# Hostile text


def _billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines)


HOSTILE = [
    pytest.param(
        "name: x\nproduct_version: '1'\n" + _billion_laughs(), "expands to more", id="bomb"
    ),
    pytest.param(
        "name: x\nproduct_version: '1'\njob_types:\n- name: web\n  manifest:\n"
        + "".join(f"    {line}\n" for line in _billion_laughs().splitlines()),
        "expands to more",
        id="bomb-in-snippet",
    ),
    pytest.param("a: " + "[" * 100_000 + "]" * 100_000, "levels deep", id="deep-lists"),
    pytest.param("a: " + "{a: " * 5_000 + "1" + "}" * 5_000, "levels deep", id="deep-maps"),
    pytest.param(b"name: \xff\xfe\x00x\n", "not UTF-8", id="not-utf8"),
    pytest.param("name: x\x00\n", "not valid YAML", id="nul"),
    pytest.param("name: [unclosed\n", "not valid YAML", id="syntax"),
    pytest.param("- a\n- b\n", "must be a YAML mapping", id="a-list"),
    pytest.param("", "must be a YAML mapping", id="empty"),
    pytest.param(
        "name: x\nproduct_version: '1'\nlabel: " + "A" * 2_000_000 + "\nproperty_blueprints: 3",
        "must be a list",
        id="huge-string",
    ),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_metadata_text_is_refused_quickly(text, message):
    start = time.monotonic()
    with pytest.raises(TemplateError) as info:
        load_product_template(text, source="metadata/x.yml")
    assert time.monotonic() - start < 5
    assert_paths(info.value)
    assert message in str(info.value)


def test_a_bomb_in_a_snippet_string_is_refused_at_load():
    snippet = _billion_laughs()
    text = "name: x\nproduct_version: '1'\njob_types:\n- name: web\n  manifest: " + repr(snippet)
    with pytest.raises(TemplateError) as info:
        load_product_template(text)
    assert "job_types/web/manifest" in [p for p, _ in info.value.errors]


# --------------------------------------------------------------------------
# Corrupt .pivotal files


def _zip(members: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


GOOD_META = b"name: p\nproduct_version: '1'\nreleases:\n- {name: r, version: '1', file: r-1.tgz}\n"


def _truncated() -> io.BytesIO:
    data = _zip({"metadata/p.yml": GOOD_META, "releases/r-1.tgz": b"x" * 1000}).getvalue()
    return io.BytesIO(data[: len(data) // 2])


def _flipped() -> io.BytesIO:
    data = bytearray(_zip({"metadata/p.yml": GOOD_META * 50}).getvalue())
    for i in range(40, 80):
        data[i] ^= 0xFF
    return io.BytesIO(bytes(data))


PIVOTALS = [
    pytest.param(lambda: io.BytesIO(b""), "not a zip", id="empty"),
    pytest.param(lambda: io.BytesIO(b"PK\x03\x04" + b"\x00" * 100), "not a zip", id="header"),
    pytest.param(_truncated, "", id="truncated"),
    pytest.param(_flipped, "", id="corrupt-member"),
    pytest.param(lambda: _zip({"metadata/p.yml": b"\xff\xfe"}), "not UTF-8", id="not-utf8"),
    pytest.param(lambda: _zip({"metadata/p.yml": b"- 1\n"}), "mapping", id="list"),
    pytest.param(
        lambda: _zip({"metadata/p.yml": _billion_laughs().encode()}), "expands", id="bomb"
    ),
    pytest.param(
        lambda: _zip({"metadata/p.yml": b"name: p\nproduct_version: '1'\nreleases: 5\n"}),
        "releases",
        id="releases-not-a-list",
    ),
    pytest.param(
        lambda: _zip({"metadata/p.yml": b"name: p\nproduct_version: '1'\nreleases: [{name: r}]\n"}),
        "releases/0/version",
        id="release-without-version",
    ),
    pytest.param(lambda: _zip({"../evil.yml": b"x"}), "unsafe path", id="traversal"),
    pytest.param(lambda: _zip({"metadata/p.yml": GOOD_META}), "not in the .pivotal", id="no-rel"),
]


@pytest.mark.parametrize(("make", "message"), PIVOTALS)
def test_corrupt_pivotal_files_are_template_errors(make, message):
    with pytest.raises(TemplateError) as info:
        load_pivotal(make())
    assert_paths(info.value)
    assert message in str(info.value)
