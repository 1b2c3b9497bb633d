"""load_yaml / dump_yaml: BOSH-compatible YAML reading."""

import pytest

from director.manifest.errors import ManifestError
from director.manifest.yaml import dump_yaml, load_yaml, load_yaml_document

ALIASES = """
base: &db
  name: ccdb
  roles: [{name: cloud_controller}]
api:
  db: *db
worker:
  db: *db
"""


def test_aliases_become_independent_copies():
    doc = load_yaml(ALIASES)
    assert doc["api"]["db"] == doc["worker"]["db"] == doc["base"]
    doc["api"]["db"]["roles"][0]["name"] = "changed"
    assert doc["worker"]["db"]["roles"][0]["name"] == "cloud_controller"
    assert doc["base"]["roles"][0]["name"] == "cloud_controller"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: [1, 2\nb: 3\n", "line 2, column 2"),
        ("a: 1\n  b: 2\n", "line 2, column 4"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("", "is empty"),
        ("- a\n- b\n", "must be a YAML mapping, got a list"),
        ("just text", "must be a YAML mapping, got a str"),
    ],
)
def test_bad_documents_are_refused_with_a_location(text, expected):
    with pytest.raises(ManifestError) as exc:
        load_yaml(text, what="cloud-config")
    assert expected in str(exc.value)
    assert str(exc.value).startswith("cloud-config")


def test_yaml_11_scalars_like_bosh():
    doc = load_yaml("size: 1_024\nflag: yes\nwhen: 2019-01-01\nversion: '1.10'\n")
    assert doc == {"size": 1024, "flag": True, "when": "2019-01-01", "version": "1.10"}


def test_load_yaml_document_accepts_lists_and_null():
    assert load_yaml_document("---\n# nothing\n") is None
    assert load_yaml_document("- type: remove\n  path: /a\n") == [{"type": "remove", "path": "/a"}]


def test_dump_is_block_style_in_insertion_order_and_round_trips():
    doc = {"name": "zk", "b": [1, {"x": "multi\nline\n"}], "a": {"k": None}}
    text = dump_yaml(doc)
    assert text.index("name:") < text.index("b:") < text.index("a:")
    assert "{" not in text and "[" not in text
    assert "x: |" in text
    assert load_yaml(text) == doc


def test_dump_never_writes_anchors():
    shared = {"k": "v"}
    assert "&" not in dump_yaml({"a": shared, "b": shared})
