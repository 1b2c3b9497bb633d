"""Form descriptions built from form_types and property_inputs."""

import pytest

from tests.corpus import TILES as CORPUS
from tests.corpus import needs_corpus
from tiles.formspec import build_form_spec, build_form_specs
from tiles.template import load_product_template


@pytest.fixture(scope="module")
def example():
    return load_product_template((CORPUS / "om-fixtures/example-product-metadata.yml").read_bytes())


@pytest.fixture(scope="module")
def generated():
    return load_product_template(
        (CORPUS / "tile-generator/test_metadata_expected_output.yml").read_bytes()
    )


def field(form, reference):
    [f] = [f for f in form.fields if f.reference == reference]
    return f


@needs_corpus
def test_one_form_spec_per_form_type(example):
    specs = build_form_specs(example)
    assert [s.name for s in specs] == [f["name"] for f in example.form_types]
    first = specs[0]
    assert (first.label, first.description) == (
        "Configurable Properties",
        "All the properties that you can configure!",
    )
    assert first.markdown.startswith("## I am markdown")
    assert len(first.fields) == 22


PLAIN_FIELDS = [
    # reference, type, label, required, default, placeholder
    (".web_server.example_string", "string", "Example string", True, "Hello world", None),
    (
        ".web_server.example_string_with_placeholder",
        "string",
        "Example string containing Placeholder text",
        False,
        None,
        "Ghost text. Spooky!",
    ),
    (".web_server.example_migrated_integer", "integer", "Example integer", True, 1, None),
    (".web_server.example_boolean", "boolean", "Example boolean", True, True, None),
    (
        ".web_server.example_ip_ranges",
        "ip_ranges",
        "Example ip_ranges",
        True,
        "1.1.1.1-1.1.1.4,2.2.2.1-2.2.2.4",
        None,
    ),
    (".web_server.example_port", "port", "Example port", True, 1111, None),
    (".web_server.client_certificate", "ca_certificate", "Example certificate", False, None, None),
]


@pytest.mark.parametrize(
    ("ref", "type_", "label", "required", "default", "placeholder"), PLAIN_FIELDS
)
@needs_corpus
def test_plain_fields(example, ref, type_, label, required, default, placeholder):
    f = field(build_form_spec(example, "example-form"), ref)
    assert (f.type, f.label, f.required, f.default, f.placeholder) == (
        type_,
        label,
        required,
        default,
        placeholder,
    )
    assert f.secret is False and f.nested is None


@needs_corpus
def test_constraints_and_choices(example):
    form = build_form_spec(example, "example-form")
    s = field(form, ".web_server.example_string")
    assert s.constraints[0]["error_message"] == "This name cannot contain special characters."
    dd = field(form, ".web_server.example_dropdown")
    assert dd.choices == (
        ("kiwi", "label for kiwi"),
        ("lime", "label for lime"),
        ("avocado", "label for avocado"),
    )
    ms = field(form, ".web_server.example_multi_select_options")
    assert ms.default == ["earth", "jupiter"] and ms.choices[0] == ("mercury", "label for mercury")
    assert field(form, ".web_server.example_smtp_authentication").choices[0] == ("plain", "plain")
    assert field(form, ".web_server.example_network_address_list").freeze_on_deploy is True


@needs_corpus
def test_selector_options_take_labels_and_fields_from_selector_property_inputs(example):
    sel = field(build_form_spec(example, "example_selector_form"), ".properties.example_selector")
    assert sel.type == "selector" and sel.label == "Food Choices" and sel.default == "Pizza"
    assert sel.choices == (
        ("Pizza", "Pizza"),
        ("Filet Mignon", "Filet Mignon"),
        ("Beverage", "Beverage"),
    )
    nested = sel.nested
    assert list(nested) == ["pizza_option", "filet_mignon_option", "beverage_option"]
    pizza = nested["pizza_option"]
    assert [(f.reference, f.label) for f in pizza] == [
        (".properties.example_selector.pizza_option.pepperoni", "Add Pepperoni"),
        (".properties.example_selector.pizza_option.pineapple", "Add Pineapple"),
        (".properties.example_selector.pizza_option.other_toppings", "Other toppings"),
        (".properties.example_selector.pizza_option.cheesy_vm_type", "Cheesy VM Type"),
    ]
    assert pizza[1].description == "Nothing like an apple, would not buy again"
    assert pizza[1].default is True
    filet = nested["filet_mignon_option"]
    sauce = filet[2]
    assert (sauce.type, sauce.secret, sauce.credential, sauce.required) == (
        "secret",
        True,
        True,
        False,
    )
    rarity = filet[0]
    assert rarity.choices == (("rare", "Rare"), ("medium", "Medium"), ("well-done", "Well done"))


@needs_corpus
def test_selector_option_labels_override_select_values(example):
    sel = field(
        build_form_spec(example, "example_selector_form"),
        ".properties.example_selector_with_deployed_director_accessors",
    )
    assert sel.choices == (("No", "Do not utilize it"), ("Yes", "Utilize it"))
    assert sel.nested == {"disable_option": (), "enable_option": ()}


@needs_corpus
def test_collection_fields_describe_one_record(example):
    coll = field(
        build_form_spec(example, "example_collections_form"), ".properties.example_collection"
    )
    assert coll.type == "collection" and coll.label == "Albums collection"
    assert coll.default == [
        {"album": "Christmas Carols", "artist": "Ops Manatee", "explicit": True, "genre": "edm"}
    ]
    names = [(f.reference, f.type, f.label) for f in coll.nested]
    assert names[:3] == [
        ("album", "string", "Name of the Album"),
        ("artist", "string", "Name of the Artist"),
        ("explicit", "boolean", "Explicit?"),
    ]
    creds = {f.reference: f for f in coll.nested}
    assert creds["secret_meaning_rsa_cert_credentials"].secret is True
    assert creds["genre"].choices == (
        ("rock", "Rock"),
        ("country", "Country"),
        ("edm", "Beep Boop PSH"),
    )


@needs_corpus
def test_secret_forms(example):
    form = build_form_spec(example, "example_secrets_form")
    assert [(f.reference, f.type, f.secret) for f in form.fields] == [
        (".properties.super_secret", "secret", True),
        (".web_server.configured_secret", "secret", True),
        (".web_server.configured_simple_credentials", "simple_credentials", True),
        (".web_server.configured_rsa_cert_credentials", "rsa_cert_credentials", True),
    ]


@needs_corpus
def test_tile_generator_selector_without_subproperties(generated):
    sel = field(
        build_form_spec(generated, "selector_without_subproperties"),
        ".properties.is_feature_enabled",
    )
    assert sel.choices == (
        ("feature_enabled", "Enable feature"),
        ("feature_disabled", "Disable feature"),
    )
    # The disabled option has `property_inputs: null` and no blueprints.
    assert [f.label for f in sel.nested["feature_enabled"]] == ["Configure this feature"]
    assert sel.nested["feature_disabled"] == ()


@needs_corpus
def test_tile_generator_dropdown_default_from_option_flag(generated):
    country = field(build_form_spec(generated, "contact_form"), ".properties.country")
    assert country.default == "country_us"
    assert country.choices == (("country_us", "US"), ("country_elsewhere", "Elsewhere"))


def test_collection_without_nested_inputs_lists_configurable_fields():
    t = load_product_template(
        """
name: t
product_version: '1'
property_blueprints:
- name: users
  type: collection
  configurable: true
  property_blueprints:
  - {name: guid, type: uuid}
  - {name: name, type: string}
  - {name: key, type: text, configurable: true}
form_types:
- name: users
  label: Users
  property_inputs: [{reference: .properties.users, label: Users}]
"""
    )
    users = build_form_spec(t, "users").fields[0]
    assert [f.reference for f in users.nested] == ["name", "key"]  # uuid is generated


@needs_corpus
def test_unknown_form_name(example):
    with pytest.raises(KeyError):
        build_form_spec(example, "nope")
