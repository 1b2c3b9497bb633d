"""Bad API input is a 4xx naming the field, never a 500: every operation of /api/v0/ fuzzed.

Each operation of the OpenAPI schema (``test_every_operation_is_fuzzed``
keeps the table below complete) is called by an admin through DRF's
APIClient against a database holding a little real state: the Director tile
configured, a small tile imported, staged and deployed, an installation, a
BOSH deployment with instances, a task, an event, a cloud-config. Inputs:

* bodies and query parameters from the schema where it declares them
  (``ConfigUpdate``, ``DeployRequest``, ``Resurrection``, ``ErrandRunRequest``,
  the uploads), each field either of its type or junk;
* real Ops Manager bodies (those of tests/tiles/test_api.py) broken
  structurally by ``tests.robustness.mutate``: a node's type or value
  replaced, a key dropped, an unknown key added, huge strings, deep nesting;
* non-JSON bodies, wrong content types, forms, multipart without the file or
  with a file that is not a tarball / zip / YAML;
* path parameters that do not exist or are malformed.

Every answer must be < 500, a 4xx must be JSON ``{"errors": {...}}`` with a
named field, and a 4xx must leave every stored row as it was. Each example
runs in a savepoint rolled back afterwards, so examples do not see each
other's writes. Nothing leaves loopback: name lookups and connections to
other hosts fail as an unreachable vCenter would.
"""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from django.apps import apps
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from tests.corpus import CORPUS, needs_corpus, read_text
from tests.robustness.mutate import HUGE, JUNK, SPECIAL_STRINGS, mutate, mutations
from tests.tiles.conftest import AZS, IAAS, NETWORKS, SMALL_TILE

pytestmark = pytest.mark.django_db

API = "/api/v0"

ZOOKEEPER = read_text(CORPUS / "deployments/zookeeper-release/zookeeper.yml")

CLOUD_CONFIG = """
azs:
- {name: z1, cloud_properties: {datacenters: [{name: DC0, clusters: [DC0_C0: {}]}]}}
vm_types:
- {name: default, cloud_properties: {cpu: 1, ram: 1024, disk: 4096}}
networks:
- name: default
  type: manual
  subnets:
  - {range: 10.0.0.0/24, gateway: 10.0.0.1, azs: [z1], cloud_properties: {name: VM Network}}
compilation: {workers: 1, network: default, az: z1, vm_type: default}
"""


def fuzz(examples: int) -> settings:
    """Bounded runs (the file stays under ~90 s); FUZZ_SCALE=10 digs deeper."""
    return settings(
        max_examples=examples * int(os.environ.get("FUZZ_SCALE", "1")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# --------------------------------------------------------------------------- loopback only


LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture
def loopback_only(monkeypatch):
    """Lookups and connections beyond loopback fail like an unreachable host."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None and not str(host).startswith(LOOPBACK):
            raise socket.gaierror(socket.EAI_NONAME, "blocked by the API fuzz (not loopback)")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and not str(address[0]).startswith(LOOPBACK):
            raise ConnectionRefusedError("blocked by the API fuzz (not loopback)")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


# --------------------------------------------------------------------------- the world


@pytest.fixture
def world(settings, tmp_path, loopback_only):
    from director import runner
    from director.events import record_event
    from director.models import (
        Config,
        Deployment,
        Instance,
        IpAddress,
        PersistentDisk,
        Release,
        ReleaseJob,
        ReleaseVersion,
        Stemcell,
        Vm,
    )
    from tiles import services

    settings.TASK_LOG_DIR = tmp_path / "tasks"
    settings.BLOBSTORE_DIR = tmp_path / "blobstore"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STEMCELL_LIBRARY_DIR = tmp_path / "stemcell_library"
    settings.LOCAL_VCSIM_FILE = tmp_path / "no-vcsim.json"
    # POST /encryption_key/rotate rewrites the key file: the test's own copy, not the session's.
    settings.ENCRYPTION_KEY = settings.ENCRYPTION_KEY
    settings.ENCRYPTION_KEY_FILE = tmp_path / "encryption_key"
    settings.ENCRYPTION_KEY_FILE.write_text(settings.ENCRYPTION_KEY)

    # The Director tile, pointing at a vCenter on loopback that is not there.
    services.set_iaas_configuration({**IAAS, "vcenter_host": "127.0.0.1:9"})
    services.set_availability_zones(AZS)
    services.set_networks(NETWORKS)
    services.set_network_and_az(
        {"network": {"name": "infra"}, "singleton_availability_zone": {"name": "az1"}}
    )
    # A tile imported, staged, placed and deployed; an installation that ended.
    stemcell = Stemcell.objects.create(
        name="bosh-vsphere-esxi-ubuntu-jammy-go_agent",
        version="1.5",
        operating_system="ubuntu-jammy",
        cid="sc-test",
    )
    small_release = Release.objects.create(name="small-release")
    ReleaseVersion.objects.create(release=small_release, version="1.0")
    services.import_product(SMALL_TILE.encode(), "small.yml", "admin")
    sp = services.stage_product("small", "1.0.0")
    services.set_networks_and_azs(
        sp,
        {
            "singleton_availability_zone": {"name": "az1"},
            "other_availability_zones": [{"name": "az1"}, {"name": "az2"}],
            "network": {"name": "infra"},
        },
    )
    sp = services.get_staged_product(sp.guid)
    services._mark_deployed(sp, services.manifest_yaml(services.render_manifest(sp)))
    inst = services.apply_changes("admin", deploy_products="none")
    inst.status = "succeeded"
    inst.save()
    # A BOSH deployment with instances, an errand, a task, an event, a cloud-config.
    zk = Release.objects.create(name="zookeeper")
    rv = ReleaseVersion.objects.create(release=zk, version="0.0.10")
    for job in ("zookeeper", "status", "smoke-tests"):
        ReleaseJob.objects.create(
            release_version=rv, name=job, version="abc", spec={"properties": {}}
        )
    cloud = Config.objects.create(type="cloud", name="default", content=CLOUD_CONFIG)
    manifest = ZOOKEEPER.replace("name: zookeeper\n", "name: zk\n", 1)
    deployment = Deployment.objects.create(name="zk", manifest_text=manifest)
    deployment.stemcells.add(stemcell)
    deployment.release_versions.add(rv)
    deployment.configs.add(cloud)
    for i in range(2):
        instance = Instance.objects.create(
            deployment=deployment, group="zookeeper", uuid=f"uuid-{i}", index=i, az="z1"
        )
        vm = Vm.objects.create(instance=instance, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="default", instance=instance, vm=vm
        )
        PersistentDisk.objects.create(
            instance=instance, disk_cid=f"disk-{i}", size=1024, active=True
        )
    task = runner.create_task("cck_scan", "scan deployment", "admin", deployment_name="zk")
    event = record_event("create", "deployment", "zk", user="admin", task=task, deployment="zk")
    from console.users.services import create_user

    fuzzed_user = create_user("admin", "fuzzed", PASSWORD, "full_view")
    from opsconsole.models import ApiToken

    fuzzed_token, _ = ApiToken.issue(fuzzed_user, name="fuzz")
    return {
        "guid": sp.guid,
        "job_guid": services.list_jobs(sp)[0]["guid"],
        "az_guid": services.list_availability_zones()[0]["guid"],
        "installation_id": inst.id,
        "ref": ".properties.admin",
        "name": "zk",
        "errand": "smoke-tests",
        "group": "zookeeper",
        "ident": "0",
        "blob": "0b1c2d3e-aaaa-4bbb-8ccc-000000000000",  # no such logs bundle
        "config_id": cloud.id,
        "task_id": task.id,
        "task_guid": str(task.id),
        "event_id": event.id,
        "username": fuzzed_user.username,
        "token_id": fuzzed_token.pk,
        "version": "1.5",
        "stemcell_name": stemcell.name,
        "tmp": tmp_path,
    }


# --------------------------------------------------------------------------- snapshots

#: Rows a refused request may touch: the caller's token (its last use), a failed login's count.
NOT_STATE = {
    "opsconsole.apitoken",
    "opsconsole.loginthrottle",
    "sessions.session",
    "admin.logentry",
}


def snapshot() -> dict:
    out = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in NOT_STATE or model._meta.app_label not in ("tiles", "director", "opsconsole"):
            continue
        out[label] = [repr(sorted(r.items())) for r in model.objects.order_by("pk").values()]
    return out


def changed(before: dict, after: dict) -> dict:
    return {
        k: {
            "gone": sorted(set(before[k]) - set(after[k]))[:3],
            "new": sorted(set(after[k]) - set(before[k]))[:3],
        }
        for k in before
        if before[k] != after[k]
    }


# --------------------------------------------------------------------------- inputs

#: Path values that name nothing, or are malformed (no '/': that is another route).
BAD_PATH_VALUES = st.one_of(
    st.sampled_from([s for s in SPECIAL_STRINGS if "/" not in s and s]),
    st.sampled_from(["nope", "..", ".", "%", "%00", "\x00", "a" * 3000, "é", " x ", "-1", "0"]),
    st.text(
        st.characters(blacklist_characters="/", blacklist_categories=["Cs"]),
        min_size=1,
        max_size=20,
    ),
)
BAD_INT_VALUES = st.one_of(
    st.integers(min_value=0, max_value=2**80), st.sampled_from([0, 2**31, 2**63, 10**30])
)
QUERY_VALUES = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["true", "false", "event", "debug", "cpi", "result", "processing,done", "1e9"]),
)

INT_PARAMS = {"config_id", "task_id", "event_id", "installation_id", "token_id"}


@dataclass
class Op:
    method: str
    path: str  # the schema's template, e.g. /api/v0/director/tasks/{task_id}
    bodies: list = field(default_factory=list)  # real JSON bodies (or callables of the world)
    upload: str | None = None  # multipart field for uploads ("stemcell[file]")
    query: dict = field(default_factory=dict)  # real query values


def _stemcell_tgz(w) -> bytes:
    from tests.director.builders import build_stemcell_tgz

    return build_stemcell_tgz(w["tmp"] / "s.tgz", version="9.9").read_bytes()


def _release_tgz(w) -> bytes:
    from tests.director.builders import build_release

    return build_release(w["tmp"] / "r.tgz", version="0.0.11").read_bytes()


def _pivotal(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata/small.yml", text)
    return buf.getvalue()


PROPERTIES = {
    "properties": {
        ".properties.port": {"value": 9001},
        ".properties.greeting": {"value": "hi there"},
        ".properties.api_key": {"value": {"secret": "k"}},
    }
}
DEPLOY = {"manifest": ZOOKEEPER.replace("name: zookeeper\n", "name: zk\n", 1)}
DEPLOY_OPS = {
    **DEPLOY,
    "ops": [[{"type": "replace", "path": "/instance_groups/name=zookeeper/instances", "value": 1}]],
    "vars": {"x": "y"},
    "dry_run": True,
}
T = f"{API}/staged/products/{{guid}}"
PASSWORD = "Quiet-Lantern-Orbit-5"
D = f"{API}/director"

OPS = [
    Op("get", f"{API}/info"),
    Op("post", f"{API}/auth/token", [{"username": "admin", "password": "admin-password-1"}]),
    Op("get", f"{API}/auth/tokens", query={"username": "fuzzed", "state": "active", "limit": "1"}),
    Op("delete", f"{API}/auth/tokens", query={"username": "fuzzed"}),
    Op("get", f"{API}/auth/tokens/{{token_id}}"),
    Op("delete", f"{API}/auth/tokens/{{token_id}}"),
    Op("get", f"{API}/users", query={"search": "fuzz", "limit": "1", "offset": "0"}),
    Op("post", f"{API}/users", [{"username": "new", "role": "full_view", "password": PASSWORD}]),
    Op("get", f"{API}/users/{{username}}"),
    Op(
        "patch",
        f"{API}/users/{{username}}",
        [{"role": "full_control"}, {"active": False}, {"password": PASSWORD, "active": True}],
    ),
    Op("delete", f"{API}/users/{{username}}"),
    Op("get", f"{API}/available_products"),
    Op("post", f"{API}/available_products", upload="product[file]"),
    Op("delete", f"{API}/available_products", query={"product_name": "small", "version": "1.0.0"}),
    Op("get", f"{API}/deployed/products"),
    Op("get", f"{API}/deployed/products/{{guid}}/credentials"),
    Op("get", f"{API}/deployed/products/{{guid}}/credentials/{{ref}}"),
    Op("get", f"{API}/deployed/products/{{guid}}/manifest"),
    Op("get", f"{API}/deployed/products/{{guid}}/status"),
    Op("get", f"{API}/deployed/products/{{guid}}/jobs/{{job_guid}}/logs"),
    Op("post", f"{API}/deployed/products/{{guid}}/jobs/{{job_guid}}/logs"),
    Op("get", f"{API}/deployed/products/{{guid}}/jobs/{{job_guid}}/logs/{{task_guid}}"),
    Op("get", f"{D}/configs", query={"type": "cloud", "name": "default", "latest": "false"}),
    Op(
        "post",
        f"{D}/configs",
        [
            {"type": "cloud", "name": "default", "content": CLOUD_CONFIG},
            {"type": "runtime", "name": "dns", "content": "addons: []\n"},
            {"type": "resurrection", "content": "rules: [{enabled: false}]\n"},
            {
                "type": "cpi",
                "content": "cpis: [{name: a, type: vsphere, properties: {host: 127.0.0.1,"
                " user: u, password: p, datacenters: [{name: DC0}]}}]\n",
            },
        ],
    ),
    Op("delete", f"{D}/configs", query={"type": "cloud", "name": "default"}),
    Op("get", f"{D}/configs/{{config_id}}"),
    Op("get", f"{D}/deployments"),
    Op("post", f"{D}/deployments", [DEPLOY, DEPLOY_OPS]),
    Op("get", f"{D}/deployments/{{name}}"),
    Op("delete", f"{D}/deployments/{{name}}", query={"force": "true"}),
    Op("get", f"{D}/deployments/{{name}}/errands"),
    Op(
        "post",
        f"{D}/deployments/{{name}}/errands/{{errand}}/runs",
        [{"keep_alive": True, "when_changed": False, "instances": ["smoke-tests"]}, {}],
    ),
    Op("get", f"{D}/deployments/{{name}}/instances", query={"format": "full"}),
    Op(
        "post",
        f"{D}/deployments/{{name}}/instances/{{group}}/actions",
        [{"action": "restart"}, {"action": "stop", "hard": True}],
    ),
    Op(
        "post",
        f"{D}/deployments/{{name}}/instances/{{group}}/{{ident}}/actions",
        [{"action": "start"}, {"action": "recreate"}],
    ),
    Op(
        "post",
        f"{D}/deployments/{{name}}/logs",
        [{"instances": ["zookeeper/0"], "type": "job", "filters": ["*.log"]}, {"type": "agent"}],
    ),
    Op("post", f"{D}/deployments/{{name}}/plan", [DEPLOY, DEPLOY_OPS]),
    Op("get", f"{D}/deployments/{{name}}/problems"),
    Op(
        "put",
        f"{D}/deployments/{{name}}/problems",
        [{"resolutions": {"1": "recreate_vm"}}, {"auto": True}],
    ),
    Op("post", f"{D}/deployments/{{name}}/scans"),
    Op("get", f"{D}/deployments/{{name}}/vms"),
    Op("get", f"{D}/diff"),
    Op(
        "get",
        f"{D}/events",
        query={"deployment": "zk", "action": "create", "object_type": "deployment", "limit": "2"},
    ),
    Op("get", f"{D}/events/{{event_id}}"),
    Op(
        "get",
        f"{D}/health/alerts",
        query={"state": "all", "deployment": "zk", "category": "vm_health", "limit": "1"},
    ),
    Op("get", f"{D}/health/resurrections", query={"deployment": "zk", "instance": "zk/0"}),
    Op("get", f"{D}/info"),
    Op("get", f"{D}/releases"),
    Op("post", f"{D}/releases", upload="release[file]"),
    Op("get", f"{D}/resources/{{blob}}"),
    Op("get", f"{D}/resurrection"),
    Op("put", f"{D}/resurrection", [{"resurrection_paused": True}, {"resurrection": False}]),
    Op("get", f"{D}/stemcells"),
    Op("post", f"{D}/stemcells", upload="stemcell[file]"),
    Op("delete", f"{D}/stemcells/{{name}}/{{version}}", query={"force": "true"}),
    Op("get", f"{D}/tasks", query={"state": "processing,queued", "deployment": "zk"}),
    Op("get", f"{D}/tasks/{{task_id}}"),
    Op("post", f"{D}/tasks/{{task_id}}/cancel"),
    Op("get", f"{D}/tasks/{{task_id}}/output", query={"type": "event", "after": "0"}),
    Op("get", f"{API}/disk_types"),
    Op("get", f"{API}/installations", query={"limit": "1", "offset": "0"}),
    Op(
        "post",
        f"{API}/installations",
        [
            {"deploy_products": "none", "ignore_warnings": True},
            {
                "deploy_products": ["{guid}"],
                "errands": {"{guid}": {"run_post_deploy": {"check": False}}},
            },
        ],
    ),
    Op("get", f"{API}/installations/{{installation_id}}"),
    Op("get", f"{API}/installations/{{installation_id}}/logs"),
    Op("get", f"{API}/installation_asset_collection"),
    Op("post", f"{API}/installation_asset_collection", upload="installation[file]"),
    Op("post", f"{API}/encryption_key/rotate"),
    Op("get", f"{API}/products/{{guid}}/diff"),
    Op("delete", f"{API}/staged"),
    Op("get", f"{API}/staged/cloud_config"),
    Op("get", f"{API}/staged/director/availability_zones"),
    Op(
        "post",
        f"{API}/staged/director/availability_zones",
        [
            {
                "availability_zone": {
                    "name": "az9",
                    "clusters": [{"cluster": "DC0_C0", "res_pool": "p"}],
                }
            }
        ],
    ),
    Op(
        "put",
        f"{API}/staged/director/availability_zones",
        [{"availability_zones": [*AZS, {"name": "az8", "clusters": [{"cluster": "DC0_C0"}]}]}],
    ),
    Op(
        "put",
        f"{API}/staged/director/availability_zones/{{az_guid}}",
        [{"availability_zone": {"name": "az1", "clusters": [{"cluster": "DC0_C1"}]}}],
    ),
    Op("get", f"{API}/staged/director/network_and_az"),
    Op(
        "put",
        f"{API}/staged/director/network_and_az",
        [
            {
                "network_and_az": {
                    "network": {"name": "infra"},
                    "singleton_availability_zone": {"name": "az1"},
                }
            }
        ],
    ),
    Op("get", f"{API}/staged/director/networks"),
    Op("put", f"{API}/staged/director/networks", [NETWORKS]),
    Op("get", f"{API}/staged/director/properties"),
    Op(
        "put",
        f"{API}/staged/director/properties",
        [
            {"director_configuration": {"max_threads": 8, "ntp_servers_string": "pool.ntp.org"}},
            {"iaas_configuration": {**IAAS, "vcenter_host": "127.0.0.1:9"}},
        ],
    ),
    Op(
        "post",
        f"{API}/staged/director/test_connection",
        [{"iaas_configuration": {**IAAS, "vcenter_host": "127.0.0.1:9"}}, {}],
    ),
    Op("get", f"{API}/staged/pending_changes"),
    Op("get", f"{API}/staged/products"),
    Op("post", f"{API}/staged/products", [{"name": "small", "product_version": "1.0.0"}]),
    Op("get", T),
    Op("put", T, [{"to_version": "1.0.0"}]),
    Op("delete", T),
    Op("get", f"{T}/errands"),
    Op("put", f"{T}/errands", [{"errands": [{"name": "check", "post_deploy": False}]}]),
    Op("get", f"{T}/jobs"),
    Op("get", f"{T}/resources"),
    Op("get", f"{T}/jobs/{{job_guid}}/resource_config"),
    Op(
        "put",
        f"{T}/jobs/{{job_guid}}/resource_config",
        [
            {
                "instances": 3,
                "instance_type": {"id": "automatic"},
                "persistent_disk": {"size_mb": "10240"},
            }
        ],
    ),
    Op("get", f"{T}/manifest"),
    Op("get", f"{T}/networks_and_azs"),
    Op(
        "put",
        f"{T}/networks_and_azs",
        [
            {
                "networks_and_azs": {
                    "singleton_availability_zone": {"name": "az1"},
                    "other_availability_zones": [{"name": "az2"}],
                    "network": {"name": "infra"},
                }
            }
        ],
    ),
    Op("get", f"{T}/properties"),
    Op("put", f"{T}/properties", [PROPERTIES]),
    Op("get", f"{API}/stemcell_assignments"),
    Op("post", f"{API}/stemcells", upload="stemcell[file]"),
    Op("get", f"{API}/vm_types"),
    Op(
        "put",
        f"{API}/vm_types",
        [{"vm_types": [{"name": "custom", "cpu": 2, "ram": 2048, "ephemeral_disk": 8192}]}],
    ),
]


def op_id(op: Op) -> str:
    return f"{op.method.upper()} {op.path.removeprefix(API)}"


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _fill(value: Any, w: dict) -> Any:
    """Real bodies name world rows as ``{guid}``; put the world's values in."""
    if isinstance(value, str):
        for k, v in w.items():
            value = value.replace(f"{{{k}}}", str(v))
        return value
    if isinstance(value, dict):
        return {_fill(k, w): _fill(v, w) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, w) for v in value]
    return value


# --- bodies from the schema


def from_schema(schema: dict, components: dict) -> st.SearchStrategy:
    """Values of a (small) OpenAPI schema, each property sometimes junk or left out."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = {k: from_schema(v, components) | JUNK for k, v in schema["properties"].items()}
        return st.fixed_dictionaries({}, optional=props)
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components), max_size=3)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return st.integers()
    if kind == "string":
        return st.sampled_from(SPECIAL_STRINGS) | st.text(max_size=30)
    return JUNK


# --- encodings: how a body reaches the view


def _form(body: Any) -> dict:
    if not isinstance(body, dict):
        return {"body": str(body)[:100]}
    return {str(k): (v if isinstance(v, str) else json.dumps(v))[:1000] for k, v in body.items()}


def _yaml_text(body: Any) -> str:
    try:
        return yaml.safe_dump(body)
    except (RecursionError, yaml.YAMLError):
        return "a: [1"


def _expand(body: Any) -> Any:
    if body == HUGE:
        return "A" * 200_000
    if isinstance(body, dict):
        return {k: _expand(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_expand(v) for v in body]
    return body


JUNK_BYTES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b"[1, 2",
            b"null",
            b'"x"',
            b"NaN",
            b"\xff\xfe\x00",
            b'{"a": ' * 2000,
            b"<xml/>",
            b"a: [1",
            b"--- !!python/object:os.system x",
            b"\x1f\x8b\x08\x00garbage",
            b"PK\x03\x04garbage",
        ]
    ),
)


def encoded(bodies: st.SearchStrategy) -> st.SearchStrategy:
    """(content type, payload bytes) pairs for a JSON-ish body."""

    def as_json(b):
        try:
            return ("application/json", json.dumps(_expand(b)).encode())
        except (ValueError, RecursionError):
            return ("application/json", b"{}")

    return st.one_of(
        bodies.map(as_json),
        bodies.map(as_json),
        bodies.map(as_json),
        bodies.map(lambda b: ("application/x-yaml", _yaml_text(b).encode())),
        bodies.map(lambda b: ("form", _form(b))),
        bodies.map(lambda b: ("multipart", _form(b))),
        st.tuples(
            st.sampled_from(["application/json", "text/plain", "application/xml", "text/yaml", ""]),
            JUNK_BYTES,
        ),
    )


# --- uploads


def _tar(members: dict[str, bytes], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _retar(real: bytes, muts: list, name: str) -> bytes:
    """The real tarball with one YAML member structurally mutated."""
    src = tarfile.open(fileobj=io.BytesIO(real))
    members = {}
    for m in src.getmembers():
        if m.isfile():
            members[m.name] = src.extractfile(m).read()
    for k, data in members.items():
        if k.endswith(name):
            try:
                doc = yaml.safe_load(data)
            except yaml.YAMLError:
                continue
            members[k] = _yaml_text(mutate(doc, muts)).encode()
    return _tar(members)


def upload_files(op: Op) -> st.SearchStrategy:
    """A multipart body: (field name, file name, file bytes or a recipe of the world)."""
    names = st.sampled_from([op.upload, "file", "other[file]", op.upload])
    filenames = st.sampled_from(["x.tgz", "x.pivotal", "x.yml", "", "../../etc/passwd", "x" * 300])
    if op.upload == "product[file]":
        doc = yaml.safe_load(SMALL_TILE)
        content = st.one_of(
            JUNK_BYTES,
            mutations().map(lambda m: _yaml_text(mutate(doc, m)).encode()),
            mutations().map(lambda m: _pivotal(_yaml_text(mutate(doc, m)))),
            st.just(_pivotal("")),
            st.just(_tar({"metadata/x.yml": SMALL_TILE.encode()})),
        )
    else:
        member = "stemcell.MF" if op.upload == "stemcell[file]" else "release.MF"
        build = _stemcell_tgz if op.upload == "stemcell[file]" else _release_tgz
        content = st.one_of(
            JUNK_BYTES,
            st.integers(min_value=0, max_value=4000).map(lambda n: ("truncate", n)),
            mutations().map(lambda m: ("mutate", m)),
            st.just(_tar({member: b"name: [1"})),
            st.just(_tar({"../evil": b"x", member: b"{}"})),
            st.just(_tar({member: b"name: x\nversion: 1\n"}, gz=False)),
            st.just(_pivotal(SMALL_TILE)),
        )
        content = content.map(lambda c, build=build, member=member: (c, build, member))
    return st.tuples(names, filenames, content)


def _file_bytes(content, w) -> bytes:
    if isinstance(content, bytes):
        return content
    recipe, build, member = content
    if isinstance(recipe, bytes):
        return recipe
    real = build(w)
    if recipe[0] == "truncate":
        return real[: recipe[1]]
    return _retar(real, recipe[1], member)


# --- one request


def request_strategy(op: Op, components: dict, schema_op: dict) -> st.SearchStrategy:
    names = [p["name"] for p in schema_op.get("parameters", []) if p["in"] == "path"]
    declared = [p["name"] for p in schema_op.get("parameters", []) if p["in"] == "query"]
    path = st.fixed_dictionaries(
        {
            n: st.one_of(
                st.just(None),  # the world's real value
                st.just(None),
                BAD_INT_VALUES if n in INT_PARAMS else BAD_PATH_VALUES,
            )
            for n in names
        }
    )
    query_names = sorted({*declared, *op.query, "limit", "offset"})
    query = st.one_of(
        st.just(dict(op.query)),
        st.dictionaries(st.sampled_from(query_names), QUERY_VALUES, max_size=4)
        if query_names
        else st.just({}),
        st.builds(
            lambda a, b: {**op.query, **b},
            st.none(),
            st.dictionaries(st.sampled_from(query_names), QUERY_VALUES, max_size=2),
        )
        if query_names
        else st.just({}),
    )
    body: st.SearchStrategy = st.just(None)
    content = schema_op.get("requestBody", {}).get("content", {})
    if op.upload:
        body = st.one_of(
            upload_files(op).map(lambda f: ("upload", f)),
            st.just(("multipart", {})),
            st.just(("multipart", {"x": "y"})),
            encoded(JUNK),
        )
    elif content or op.bodies:
        choices = []
        if op.bodies:
            real = st.sampled_from(op.bodies)
            choices.append(real)
            choices.append(st.tuples(real, mutations(max_size=3)).map(lambda t: mutate(t[0], t[1])))
            choices.append(st.tuples(real, mutations(max_size=3)).map(lambda t: mutate(t[0], t[1])))
        ref = content.get("application/json", {}).get("schema", {})
        if "$ref" in ref:
            choices.append(from_schema(ref, components))
        choices.append(JUNK)
        body = encoded(st.one_of(*choices))
    elif op.method != "get":
        body = st.one_of(st.just(None), encoded(JUNK))
    return st.tuples(path, query, body)


def send(client, op: Op, w: dict, path_values: dict, query: dict, body) -> Any:
    url = op.path
    for n, v in path_values.items():
        value = (
            w[n if n != "name" or "stemcells" not in op.path else "stemcell_name"]
            if v is None
            else v
        )
        url = url.replace(f"{{{n}}}", quote(str(value), safe=""))
    if query:
        url += "?" + urlencode(_fill(query, w))
    method = op.method.upper()
    if body is None:
        return client.generic(method, url)
    kind, payload = body
    if kind == "upload":
        name, filename, content = payload
        from django.core.files.uploadedfile import SimpleUploadedFile

        data = {name: SimpleUploadedFile(filename or "f", _file_bytes(content, w))}
        return getattr(client, op.method)(url, data, format="multipart")
    if kind == "form":
        return client.generic(
            method, url, urlencode(_fill(payload, w)), "application/x-www-form-urlencoded"
        )
    if kind == "multipart":
        return getattr(client, op.method)(url, _fill(payload, w), format="multipart")
    if kind == "application/json":
        payload = _fill_bytes(payload, w)
    return client.generic(method, url, payload, kind)


def _fill_bytes(payload: bytes, w: dict) -> bytes:
    for k in ("guid",):
        payload = payload.replace(f"{{{k}}}".encode(), str(w[k]).encode())
    return payload


def check(response, op: Op, before: dict | None) -> None:
    code = response.status_code
    assert code < 500, f"{code}: {response.content[:2000]!r}"
    if code >= 400:
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        errors = response.json().get("errors")
        assert isinstance(errors, dict) and errors, response.content[:300]
        for k, v in errors.items():
            assert isinstance(k, str) and k, errors
            assert isinstance(v, list) and v, errors
        if before is not None:
            diff = changed(before, snapshot())
            assert not diff, f"{code} {errors} yet rows changed: {diff}"


# --------------------------------------------------------------------------- the tests


def test_every_operation_is_fuzzed():
    schema = _schema()
    declared = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    fuzzed = {(op.method, op.path) for op in OPS}
    assert declared - fuzzed == set(), "operations without a fuzz entry"
    assert fuzzed - declared == set(), "fuzz entries for operations the schema does not declare"


EXAMPLES = {"get": 10, "delete": 12, "post": 30, "put": 30, "patch": 30}
WRITES = [op for op in OPS if op.method != "get"]
READS = [op for op in OPS if op.method == "get"]


def _fuzz_op(op: Op, world: dict, client, schema: dict) -> None:
    schema_op = schema["paths"].get(op.path, {}).get(op.method, {})
    strategy = request_strategy(op, schema["components"]["schemas"], schema_op)

    # A crash reported elsewhere (OUTSIDE) is not shrunk: that would take minutes.
    phases = [Phase.generate] if op_id(op) in OUTSIDE else list(Phase)

    @settings(fuzz(EXAMPLES[op.method]), phases=phases)
    @given(strategy)
    def run(args):
        path_values, query, body = args
        note(f"{op_id(op)} path={path_values!r} query={query!r} body={str(body)[:500]!r}")
        sid = transaction.savepoint()
        try:
            before = snapshot() if op.method != "get" else None
            response = send(client, op, world, path_values, query, copy.deepcopy(body))
            check(response, op, before)
        finally:
            transaction.savepoint_rollback(sid)

    run()


@pytest.fixture(scope="module")
def schema():
    return _schema()


#: Crashes rooted in files this suite's owner may not change, reported to the lead.
OUTSIDE: dict[str, str] = {}


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(op, marks=pytest.mark.xfail(reason=OUTSIDE[op_id(op)], strict=True))
        if op_id(op) in OUTSIDE
        else op
        for op in WRITES
    ],
    ids=op_id,
)
def test_bad_input_is_a_4xx_naming_the_field(op, world, admin_api, schema):
    _fuzz_op(op, world, admin_api, schema)


def test_bad_reads_are_a_4xx_naming_the_parameter(world, admin_api, schema):
    """Every GET in one world (reads change nothing): each failing operation is reported."""
    failures = {}
    for op in READS:
        try:
            _fuzz_op(op, world, admin_api, schema)
        except Exception as exc:  # collect, so one crash does not hide the others
            failures[op_id(op)] = f"{type(exc).__name__}: {str(exc)[:3000]}"
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


# --------------------------------------------------------------------------- known crashes

#: Inputs that once gave a 500, with the status and the error key they give now.
#: (method, path template, content type, payload, status, error key)
KNOWN = [
    ("get", f"{T}", None, None, {"guid": "\x00"}, 400, "guid"),
    ("delete", f"{T}", None, None, {"guid": "\x00"}, 400, "guid"),
    ("put", f"{T}/errands", "json", {"errands": []}, {"guid": "\x00"}, 400, "guid"),
    ("get", f"{D}/deployments/{{name}}", None, None, {"name": "\x00"}, 400, "name"),
    ("get", f"{D}/deployments/{{name}}/vms", None, None, {"name": "é中\x00"}, 400, "name"),
    (
        "get",
        f"{API}/deployed/products/{{guid}}/credentials/{{ref}}",
        None,
        None,
        {"guid": "é中\x00"},
        400,
        "guid",
    ),
    ("get", f"{D}/events?deployment=%00", None, None, {}, 400, "deployment"),
    (
        "put",
        f"{T}/properties",
        "json",
        {"properties": {".properties.greeting": {"value": "a\x00b"}}},
        {},
        400,
        "properties/.properties.greeting/value",
    ),
    ("post", f"{D}/configs", "json", None, {}, 400, "body"),
    ("post", f"{D}/configs", "json", {"type": "A" * 101, "content": "a: 1"}, {}, 422, "type"),
    ("post", f"{D}/configs", "json", {"type": "cloud", "content": True}, {}, 400, "content"),
    ("post", f"{D}/configs", "json", {"type": True, "content": "a: 1"}, {}, 400, "type"),
    (
        "post",
        f"{D}/configs",
        "json",
        {"type": "cloud", "name": True, "content": CLOUD_CONFIG},
        {},
        400,
        "name",
    ),
    (
        "put",
        f"{API}/staged/director/availability_zones/{{az_guid}}",
        "json",
        {"availability_zone": None},
        {},
        422,
        "availability_zone",
    ),
    (
        "put",
        f"{API}/staged/director/network_and_az",
        "json",
        {"network_and_az": {"network": [None], "singleton_availability_zone": {"name": "az1"}}},
        {},
        422,
        "network_and_az/network/name",
    ),
    (
        "put",
        f"{API}/staged/director/network_and_az",
        "json",
        {"network_and_az": {"network": {"name": "infra"}, "singleton_availability_zone": [None]}},
        {},
        422,
        "network_and_az/singleton_availability_zone/name",
    ),
    (
        "put",
        f"{T}/networks_and_azs",
        "json",
        {"networks_and_azs": {"singleton_availability_zone": [{"k": 1}], "network": "infra"}},
        {},
        422,
        "singleton_availability_zone",
    ),
    (
        "put",
        f"{T}/networks_and_azs",
        "json",
        {
            "networks_and_azs": {
                "singleton_availability_zone": "az1",
                "other_availability_zones": [[{"k": 1}]],
                "network": [{"k": 1}],
            }
        },
        {},
        422,
        "other_availability_zones/0",
    ),
    ("post", f"{D}/deployments", "json", {**DEPLOY, "vars": {"x": None}}, {}, 422, "vars/x"),
    ("post", f"{D}/deployments", "json", {**DEPLOY, "vars": {"": "v"}}, {}, 422, "vars/"),
    (
        "post",
        f"{API}/installations",
        "json",
        {"deploy_products": [{"k": "bottom"}]},
        {},
        422,
        "deploy_products",
    ),
    (
        "post",
        f"{API}/staged/director/test_connection",
        "multipart",
        {"iaas_configuration": json.dumps(IAAS)},
        {},
        422,
        "iaas_configuration",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kind", "payload", "path_values", "status", "key"),
    KNOWN,
    ids=[f"{k[0].upper()} {k[1].removeprefix(API)} {str(k[3])[:40]} {k[4]}" for k in KNOWN],
)
@needs_corpus
def test_known_crashes_are_4xx_naming_the_field(
    world, admin_api, method, path, kind, payload, path_values, status, key
):
    w = {**world, **path_values}
    url = path
    for n in ("guid", "ref", "name", "az_guid"):
        url = url.replace(f"{{{n}}}", quote(str(w[n]), safe=""))
    before = snapshot()
    if kind == "json":
        response = admin_api.generic(method.upper(), url, json.dumps(payload), "application/json")
    elif kind == "multipart":
        response = getattr(admin_api, method)(url, payload, format="multipart")
    else:
        response = getattr(admin_api, method)(url)
    assert response.status_code == status, response.content[:500]
    assert key in response.json()["errors"], response.json()
    assert changed(before, snapshot()) == {}
