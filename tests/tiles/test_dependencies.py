"""requires_product_versions: enforced when staging and at Apply Changes.

A tile requiring another product (``~> 2.4``) is refused with a 422 naming
the product and the constraint while that product is not staged, or is
staged at a version outside the constraint; once it is, the tile stages. If
the dependency is unstaged afterwards, Apply Changes refuses the tile, even
with ``ignore_warnings``.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tiles import services
from tiles.dependencies import ConstraintError, satisfies

API = "/api/v0"

CONSUMER = """
name: consumer
product_version: '1.0'
requires_product_versions:
- {name: p-mysql, version: '~> 2.4'}
- {name: p-healthwatch, version: '>= 2.0', optional: true}
"""


def producer(name: str, version: str) -> str:
    return f"name: {name}\nproduct_version: '{version}'\n"


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("2.4", "~> 2.4", True),
        ("2.9.1", "~> 2.4", True),
        ("3.0", "~> 2.4", False),
        ("2.3.9", "~> 2.4", False),
        ("2.4.7", "~> 2.4.1", True),
        ("2.5.0", "~> 2.4.1", False),
        ("1.0", ">= 1.0", True),
        ("1.0-build.0", ">= 1.0", False),  # a prerelease is below the release
        ("1.0-build.1", ">= 1.0-build.0", True),
        ("2.0", "> 1.0, < 3", True),
        ("3.0.0", "> 1.0, < 3", False),
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "!= 1.2.3", False),
        ("10.0", "> 9.1", True),
    ],
)
def test_version_constraints(version, constraint, ok):
    assert satisfies(version, constraint) is ok


def test_unreadable_constraint():
    with pytest.raises(ConstraintError):
        satisfies("1.0", "about 2")


def _import(admin_api, text, filename):
    upload = SimpleUploadedFile(filename, text.encode())
    res = admin_api.post(f"{API}/available_products", {"product[file]": upload}, format="multipart")
    assert res.status_code == 200, res.content


def _stage(admin_api, name, version):
    return admin_api.post(
        f"{API}/staged/products", {"name": name, "product_version": version}, format="json"
    )


@pytest.mark.django_db
def test_staging_is_refused_until_the_required_version_is_staged(admin_api):
    _import(admin_api, CONSUMER, "consumer.yml")
    res = _stage(admin_api, "consumer", "1.0")
    assert res.status_code == 422
    assert res.json()["errors"] == {
        "requires_product_versions": [
            "requires p-mysql ~> 2.4: p-mysql is not staged; import and stage it first"
        ]
    }
    _import(admin_api, producer("p-mysql", "2.3.1"), "old.yml")
    assert _stage(admin_api, "p-mysql", "2.3.1").status_code == 201
    res = _stage(admin_api, "consumer", "1.0")
    assert res.status_code == 422
    assert res.json()["errors"]["requires_product_versions"] == [
        "requires p-mysql ~> 2.4: p-mysql 2.3.1 is staged"
    ]
    assert admin_api.get(f"{API}/staged/products").json()[-1]["type"] == "p-mysql"
    # Upgrading the dependency meets it; the optional one may stay absent.
    _import(admin_api, producer("p-mysql", "2.6.0"), "new.yml")
    assert _stage(admin_api, "p-mysql", "2.6.0").status_code == 200
    assert _stage(admin_api, "consumer", "1.0").status_code == 201


@pytest.mark.django_db
def test_optional_dependency_present_must_match(admin_api):
    _import(admin_api, CONSUMER, "consumer.yml")
    for name, version in (("p-mysql", "2.4.0"), ("p-healthwatch", "1.8")):
        _import(admin_api, producer(name, version), f"{name}.yml")
        assert _stage(admin_api, name, version).status_code == 201
    res = _stage(admin_api, "consumer", "1.0")
    assert res.status_code == 422
    assert res.json()["errors"]["requires_product_versions"] == [
        "requires p-healthwatch >= 2.0: p-healthwatch 1.8 is staged"
    ]


@pytest.mark.django_db
def test_apply_changes_refuses_a_tile_whose_dependency_went_away(
    admin_api, director_configured, stemcell
):
    _import(admin_api, producer("p-mysql", "2.4.0"), "p-mysql.yml")
    mysql = _stage(admin_api, "p-mysql", "2.4.0").json()["guid"]
    _import(admin_api, CONSUMER, "consumer.yml")
    consumer = _stage(admin_api, "consumer", "1.0").json()["guid"]
    services.unstage_product(mysql)  # never deployed: removed at once
    res = admin_api.post(
        f"{API}/installations",
        {"deploy_products": [consumer], "ignore_warnings": True},
        format="json",
    )
    assert res.status_code == 422, res.content
    assert "requires p-mysql ~> 2.4: p-mysql is not staged" in " ".join(
        res.json()["errors"][consumer]
    )
