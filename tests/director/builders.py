"""Build release and stemcell tarballs for tests.

``build_release`` writes a small zookeeper-like release (two packages, two
jobs with ``job.MF`` and templates) whose ``release.MF`` digests are right;
``edit`` (a function given the release.MF dict), ``omit`` (member names to
leave out) and ``extra`` (name -> bytes) make the broken variants.
``build_stemcell_tgz`` writes a stemcell tarball around any ``image`` bytes;
for one the CPI can import use ``cpi.stemcell_builder.build_stemcell``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import yaml

DEFAULT_PACKAGES = [
    {"name": "java", "dependencies": []},
    {"name": "zookeeper", "dependencies": ["java"]},
]
DEFAULT_JOBS = [
    {
        "name": "zookeeper",
        "templates": {"ctl.erb": "bin/ctl", "zoo.cfg.erb": "config/zoo.cfg"},
        "packages": ["java", "zookeeper"],
        "properties": {
            "client_port": {"description": "port for clients", "default": 2181},
            "tick_time": {"default": 2000},
            "password": {"description": "no default"},
        },
        "provides": [{"name": "peers", "type": "zookeeper_peers"}],
        "consumes": [{"name": "peers", "type": "zookeeper_peers"}],
    },
    {
        "name": "smoke-tests",
        "templates": {"run.erb": "bin/run"},
        "packages": ["zookeeper"],
        "properties": {},
    },
]


def tgz_bytes(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def job_tgz(job: dict, omit_templates: tuple[str, ...] = ()) -> bytes:
    spec = {k: v for k, v in job.items() if k not in ("version",)}
    files: dict[str, bytes | str] = {"job.MF": yaml.safe_dump(spec)}
    for source in job.get("templates", {}):
        if source not in omit_templates:
            # a script a VM can run (bin/ctl, bin/run): it says which template it is
            files[f"templates/{source}"] = (
                f"#!/bin/sh\n# template {source} of {job['name']}\n"
                f"echo '{job['name']} {source} ran'\n"
            )
    return tgz_bytes(files)


def package_tgz(package: dict) -> bytes:
    return tgz_bytes({"packaging": f"# build {package['name']}\n", "src/README": package["name"]})


def build_release(
    out: str | Path,
    name: str = "zookeeper",
    version: str = "0.0.10",
    jobs: list[dict] | None = None,
    packages: list[dict] | None = None,
    edit: Callable[[dict], None] | None = None,
    omit: tuple[str, ...] = (),
    extra: dict[str, bytes] | None = None,
    sha256: bool = False,
    omit_templates: tuple[str, ...] = (),
    rewrite: Callable[[str], str] | None = None,
) -> Path:
    jobs = copy.deepcopy(DEFAULT_JOBS if jobs is None else jobs)
    packages = copy.deepcopy(DEFAULT_PACKAGES if packages is None else packages)
    members: dict[str, bytes] = {}

    def digest(data: bytes) -> str:
        if sha256:
            return "sha256:" + hashlib.sha256(data).hexdigest()
        return hashlib.sha1(data).hexdigest()

    mf: dict = {
        "name": name,
        "version": version,
        "commit_hash": "abc1234",
        "uncommitted_changes": False,
        "jobs": [],
        "packages": [],
    }
    for p in packages:
        data = package_tgz(p)
        members[f"packages/{p['name']}.tgz"] = data
        fp = hashlib.sha1(p["name"].encode()).hexdigest()
        mf["packages"].append(
            {
                "name": p["name"],
                "version": fp,
                "fingerprint": fp,
                "sha1": digest(data),
                "dependencies": p.get("dependencies", []),
            }
        )
    for j in jobs:
        data = job_tgz(j, omit_templates)
        members[f"jobs/{j['name']}.tgz"] = data
        fp = hashlib.sha1(j["name"].encode()).hexdigest()
        mf["jobs"].append(
            {"name": j["name"], "version": fp, "fingerprint": fp, "sha1": digest(data)}
        )
    if edit:
        edit(mf)
    text = yaml.safe_dump(mf, sort_keys=False)
    if rewrite:
        text = rewrite(text)
    members = {"release.MF": text.encode(), **members}
    members.update(extra or {})
    out = Path(out)
    with tarfile.open(out, "w:gz") as tar:
        for member, data in members.items():
            if member in omit:
                continue
            info = tarfile.TarInfo(f"./{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def build_stemcell_tgz(
    out: str | Path,
    manifest: dict | None = None,
    image: bytes | None = b"not really an image",
    name: str = "bosh-vsphere-esxi-ubuntu-jammy-go_agent",
    version: str = "1.0",
) -> Path:
    """A stemcell tarball with the given ``stemcell.MF`` (None: leave the file out)."""
    if manifest is None:
        manifest = {
            "name": name,
            "version": version,
            "operating_system": "ubuntu-jammy",
            "api_version": 3,
            "stemcell_formats": ["vsphere-ovf"],
            "cloud_properties": {"infrastructure": "vsphere"},
        }
    files: dict[str, bytes | str] = {}
    if manifest is not False:
        files["stemcell.MF"] = yaml.safe_dump(manifest)
    if image is not None:
        files["image"] = image
    out = Path(out)
    out.write_bytes(tgz_bytes(files))
    return out
