"""Link resolution within a deployment (pure: no ruby)."""

from __future__ import annotations

import pytest

from director.manifest.errors import ManifestError
from director.rendering import resolve_links

DB_SPEC = {
    "name": "db",
    "properties": {"port": {"default": 5432}, "tls.enabled": {"default": False}, "password": {}},
    "provides": [{"name": "db", "type": "postgres", "properties": ["port", "tls.enabled"]}],
}
API_SPEC = {
    "name": "api",
    "consumes": [
        {"name": "database", "type": "postgres"},
        {"name": "cache", "type": "redis", "optional": True},
    ],
}
SPECS = {("r", "db"): DB_SPEC, ("r", "api"): API_SPEC}
INSTANCES = {
    "pg": [
        {
            "name": "pg",
            "id": "p0",
            "index": 0,
            "az": "z1",
            "address": "10.0.0.5",
            "bootstrap": True,
        },
        {
            "name": "pg",
            "id": "p1",
            "index": 1,
            "az": "z2",
            "address": "10.0.0.6",
            "bootstrap": False,
        },
    ],
    "pg2": [
        {
            "name": "pg2",
            "id": "q0",
            "index": 0,
            "az": "z1",
            "address": "10.0.0.9",
            "bootstrap": True,
        }
    ],
    "web": [
        {
            "name": "web",
            "id": "w0",
            "index": 0,
            "az": "z1",
            "address": "10.0.0.7",
            "bootstrap": True,
        }
    ],
}


def manifest(*groups, properties=None):
    m = {"name": "shop", "instance_groups": list(groups)}
    if properties is not None:
        m["properties"] = properties
    return m


def group(name, *jobs, properties=None, networks=None):
    g = {"name": name, "jobs": list(jobs), "networks": networks or [{"name": "private"}]}
    if properties is not None:
        g["properties"] = properties
    return g


def test_implicit_link_by_type_with_provider_properties_and_defaults():
    m = manifest(
        group(
            "pg", {"name": "db", "release": "r", "properties": {"password": "s3cret", "port": 6432}}
        ),
        group("web", {"name": "api", "release": "r"}),
    )
    links = resolve_links(m, SPECS, INSTANCES)
    consumed, provided = links.for_job("web", "api")
    assert consumed == {
        "database": {
            "instances": INSTANCES["pg"],
            # only what the provides entry lists: the password stays with the provider
            "properties": {"port": 6432, "tls": {"enabled": False}},
            "instance_group": "pg",
            "default_network": "private",
            "deployment_name": "shop",
            "domain": "bosh",
            "use_short_dns_addresses": False,
            "use_link_dns_names": False,
        }
    }
    assert provided == []
    assert links.for_job("pg", "db") == ({}, [{"name": "db", "type": "postgres", "group": "1"}])


def test_provider_properties_from_the_instance_group_when_the_job_has_none():
    m = manifest(
        group("pg", {"name": "db", "release": "r"}, properties={"port": 7000}),
        group("web", {"name": "api", "release": "r"}),
        properties={"port": 1, "tls": {"enabled": True}},
    )
    consumed, _ = resolve_links(m, SPECS, INSTANCES).for_job("web", "api")
    assert consumed["database"]["properties"] == {"port": 7000, "tls": {"enabled": True}}


def test_two_providers_of_the_type_are_ambiguous():
    m = manifest(
        group("pg", {"name": "db", "release": "r"}),
        group("pg2", {"name": "db", "release": "r"}),
        group("web", {"name": "api", "release": "r"}),
    )
    with pytest.raises(ManifestError) as caught:
        resolve_links(m, SPECS, INSTANCES)
    assert caught.value.errors == [
        (
            "instance_groups/web/jobs/api/consumes/database",
            "more than one job provides a link of type 'postgres': pg/db (db), pg2/db (db)",
        )
    ]


def test_from_picks_the_provider_by_its_as_name():
    m = manifest(
        group("pg", {"name": "db", "release": "r", "provides": {"db": {"as": "main"}}}),
        group("pg2", {"name": "db", "release": "r", "provides": {"db": {"as": "replica"}}}),
        group(
            "web", {"name": "api", "release": "r", "consumes": {"database": {"from": "replica"}}}
        ),
    )
    consumed, _ = resolve_links(m, SPECS, INSTANCES).for_job("web", "api")
    assert [i["id"] for i in consumed["database"]["instances"]] == ["q0"]
    assert consumed["database"]["instance_group"] == "pg2"


def test_from_naming_a_link_of_another_type():
    m = manifest(
        group("pg", {"name": "db", "release": "r"}),
        group("web", {"name": "api", "release": "r", "consumes": {"cache": {"from": "db"}}}),
    )
    with pytest.raises(ManifestError) as caught:
        resolve_links(m, SPECS, INSTANCES)
    assert caught.value.errors == [
        (
            "instance_groups/web/jobs/api/consumes/cache",
            "link 'db' is of type 'postgres', not 'redis'",
        )
    ]


def test_missing_provider_is_an_error_unless_optional():
    m = manifest(group("web", {"name": "api", "release": "r"}))
    with pytest.raises(ManifestError) as caught:
        resolve_links(m, SPECS, INSTANCES)
    # database is required; cache is optional and silently absent
    assert caught.value.errors == [
        (
            "instance_groups/web/jobs/api/consumes/database",
            "no job provides a link of type 'postgres'",
        )
    ]


def test_nil_switches_a_link_off():
    m = manifest(
        group("pg", {"name": "db", "release": "r", "provides": {"db": None}}),
        group("web", {"name": "api", "release": "r", "consumes": {"database": None}}),
    )
    links = resolve_links(m, SPECS, INSTANCES)
    assert links.for_job("web", "api") == ({}, [])
    assert links.for_job("pg", "db") == ({}, [])


def test_manual_link():
    m = manifest(
        group(
            "web",
            {
                "name": "api",
                "release": "r",
                "consumes": {
                    "database": {
                        "instances": [{"address": "db.example.com"}],
                        "properties": {"port": 5433},
                        "address": "db.example.com",
                    }
                },
            },
        )
    )
    consumed, _ = resolve_links(m, SPECS, INSTANCES).for_job("web", "api")
    link = consumed["database"]
    assert link["address"] == "db.example.com"
    assert link["instances"][0]["address"] == "db.example.com"
    assert link["instances"][0]["bootstrap"] is True
    assert link["properties"] == {"port": 5433}


def test_cross_deployment_links_are_refused():
    m = manifest(
        group(
            "web",
            {
                "name": "api",
                "release": "r",
                "consumes": {"database": {"from": "db", "deployment": "other"}},
            },
        )
    )
    with pytest.raises(
        ManifestError,
        match=r"consumes/database: links from another deployment \('other'\) are not supported",
    ):
        resolve_links(m, SPECS, INSTANCES)


def test_default_network_is_the_gateway_one():
    nets = [{"name": "a"}, {"name": "b", "default": ["dns", "gateway"]}]
    m = manifest(
        group("pg", {"name": "db", "release": "r"}, networks=nets),
        group("web", {"name": "api", "release": "r"}),
    )
    consumed, _ = resolve_links(m, SPECS, INSTANCES).for_job("web", "api")
    assert consumed["database"]["default_network"] == "b"
