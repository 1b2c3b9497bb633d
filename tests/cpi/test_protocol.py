"""``python -m cpi``: BOSH's external CPI protocol, run as a subprocess like the director does."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cpi_json(tmp_path, cpi_properties):
    def write(properties=None):
        path = tmp_path / "cpi.json"
        path.write_text(
            json.dumps({"cloud": {"plugin": "vsphere", "properties": properties or cpi_properties}})
        )
        return path

    return write


def run_cpi(config_path, request, timeout=60):
    """One request in, one response out; the director's minimal environment."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TMPDIR": "/tmp",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cpi", "--config", str(config_path)],
        input=request if isinstance(request, str) else json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"exactly one JSON line on stdout: {proc.stdout!r} {proc.stderr!r}"
    response = json.loads(lines[0])
    assert set(response) == {"result", "error", "log"}
    return proc.returncode, response


def request(method, *arguments, context=None):
    return {
        "method": method,
        "arguments": list(arguments),
        "context": {"director_uuid": "d-uuid", "request_id": "cpi-123456", **(context or {})},
        "api_version": 2,
    }


def test_info_is_answered_without_vcenter(cpi_json, cpi_properties):
    unreachable = copy.deepcopy(cpi_properties)
    unreachable["vcenters"][0]["host"] = "127.0.0.1:1"
    code, response = run_cpi(cpi_json(unreachable), request("info"))
    assert code == 0
    assert response["error"] is None
    assert response["result"] == {
        "stemcell_formats": ["vsphere-ovf", "vsphere-ova"],
        "api_version": 2,
    }


def test_disk_round_trip_and_typed_errors(cpi_json):
    config = cpi_json()
    _, created = run_cpi(config, request("create_disk", 1024, {}, None))
    assert created["error"] is None
    disk = created["result"]
    assert disk.startswith("disk-")
    assert run_cpi(config, request("has_disk", disk))[1]["result"] is True
    _, deleted = run_cpi(config, request("delete_disk", disk))
    assert (deleted["result"], deleted["error"]) == (None, None)
    assert run_cpi(config, request("has_disk", disk))[1]["result"] is False

    _, missing = run_cpi(config, request("delete_vm", "vm-does-not-exist"))
    assert missing["result"] is None
    assert missing["error"]["type"] == "Bosh::Clouds::VMNotFound"
    assert "vm-does-not-exist" in missing["error"]["message"]
    assert missing["error"]["ok_to_retry"] is False


def test_stemcell_and_vm_through_the_protocol(cpi_json, stemcell_image, networks):
    config = cpi_json()
    _, sc = run_cpi(config, request("create_stemcell", stemcell_image, {"name": "x"}))
    assert sc["error"] is None and sc["result"].startswith("sc-")
    _, vm = run_cpi(
        config,
        request(
            "create_vm",
            "agent-p",
            sc["result"],
            {"cpu": 1, "ram": 256, "disk": 512},
            networks,
            [],
            {"bosh": {"password": "pw-hash-xyz"}},
        ),
    )
    assert vm["error"] is None
    vm_cid, nets = vm["result"]
    assert vm_cid.startswith("vm-") and nets == networks
    assert "create_vm request_id=cpi-123456" in vm["log"] and f"created {vm_cid}" in vm["log"]
    assert "pw-hash-xyz" not in vm["log"]
    _, meta = run_cpi(config, request("set_vm_metadata", vm_cid, {"deployment": "cf"}))
    assert meta["error"] is None
    assert run_cpi(config, request("has_vm", vm_cid))[1]["result"] is True
    assert run_cpi(config, request("delete_vm", vm_cid))[1]["error"] is None
    assert run_cpi(config, request("has_vm", vm_cid))[1]["result"] is False
    assert run_cpi(config, request("delete_stemcell", sc["result"]))[1]["error"] is None


def test_context_overrides_the_config_like_the_director_cpi_config(cpi_json, cpi_properties, vcsim):
    wrong = copy.deepcopy(cpi_properties)
    wrong["vcenters"][0]["password"] = "stale-password"
    config = cpi_json(wrong)

    _, refused = run_cpi(config, request("has_vm", "vm-x"))
    assert refused["error"]["type"] == "Bosh::Clouds::CloudError"
    assert vcsim.host in refused["error"]["message"]

    _, ok = run_cpi(config, request("has_vm", "vm-x", context={"password": vcsim.password}))
    assert ok["error"] is None and ok["result"] is False
    for response in (refused, ok):
        assert "stale-password" not in json.dumps(response)
        assert vcsim.password not in json.dumps(response)


@pytest.mark.parametrize(
    "raw, type_name, text",
    [
        ("{not json", "Bosh::Clouds::CpiError", "Invalid request: not JSON"),
        (
            json.dumps({"arguments": []}),
            "Bosh::Clouds::CpiError",
            "'method' must be a non-empty string",
        ),
        (
            json.dumps({"method": "has_vm", "arguments": "vm-1"}),
            "Bosh::Clouds::CpiError",
            "'arguments' must be a list",
        ),
        (
            json.dumps(request("teleport_vm", "vm-1")),
            "Bosh::Clouds::NotImplemented",
            "Method is not known, got 'teleport_vm'",
        ),
        (json.dumps(request("has_vm")), "Bosh::Clouds::CpiError", "has_vm: wrong arguments"),
        (
            json.dumps(request("snapshot_disk", "disk-1", {})),
            "Bosh::Clouds::NotImplemented",
            "snapshot_disk is not implemented",
        ),
    ],
)
def test_bad_requests_get_error_responses(cpi_json, raw, type_name, text):
    code, response = run_cpi(cpi_json(), raw)
    assert code == 0
    assert response["result"] is None
    assert response["error"]["type"] == type_name
    assert text in response["error"]["message"]


def test_unreadable_config_still_answers_in_json(tmp_path):
    code, response = run_cpi(tmp_path / "missing.json", request("info"))
    assert code == 1
    assert response["error"]["type"] == "Bosh::Clouds::CpiError"
    assert "Cannot read CPI config" in response["error"]["message"]


def test_invalid_config_names_the_key(cpi_json, cpi_properties):
    broken = copy.deepcopy(cpi_properties)
    del broken["vcenters"][0]["datacenters"][0]["persistent_datastore_pattern"]
    _, response = run_cpi(cpi_json(broken), request("has_vm", "vm-x"))
    assert response["error"]["type"] == "Bosh::Clouds::CloudError"
    assert (
        "vcenters/0/datacenters/0/persistent_datastore_pattern: is required"
        in response["error"]["message"]
    )
