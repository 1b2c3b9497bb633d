"""The demo tile: a product written for opsconsole, with its own small release.

``build_release()`` writes a BOSH release tarball (``release.MF``, one
``jobs/<name>.tgz`` per job with its ``job.MF`` spec and templates, one
package with its packaging script) and ``build_pivotal()`` zips it with
``metadata.yml`` into a ``.pivotal`` file that the Installation Dashboard
imports like any other tile. Builds are reproducible (fixed timestamps and
ordering), so rebuilding gives the same digests and the director sees the
same release version.

    python -m tiles.demo --out /tmp/demo   # writes the .pivotal there
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
METADATA = HERE / "metadata.yml"
RELEASE_NAME = "opsconsole-demo"
RELEASE_VERSION = "1.0.0"
PRODUCT_NAME = "opsconsole-demo"
PRODUCT_VERSION = "1.0.0"
_MTIME = 1_700_000_000  # fixed, so builds are byte-for-byte reproducible

PACKAGE = {
    "name": "demo-runtime",
    "files": {
        "packaging": "set -e\nmkdir -p ${BOSH_INSTALL_TARGET}/bin\n"
        "cp demo-runtime/serve ${BOSH_INSTALL_TARGET}/bin/serve\n",
        "demo-runtime/serve": "#!/bin/sh\n# Serves the demo page (a placeholder runtime).\n"
        'exec python3 -m http.server "${PORT:-8080}"\n',
    },
}

JOBS = [
    {
        "name": "demo-web",
        "description": "The web tier of the demo app.",
        "templates": {"ctl.erb": "bin/ctl", "config.yml.erb": "config/config.yml"},
        "packages": ["demo-runtime"],
        "properties": {
            "demo.greeting": {"description": "Text on the home page", "default": "Hello"},
            "demo.support_email": {"description": "Footer contact address"},
            "demo.port": {"description": "HTTP port", "default": 8080},
            "demo.admin.username": {"description": "Admin user name"},
            "demo.admin.password": {"description": "Admin password"},
            "demo.storage": {"description": "Storage backend settings"},
        },
    },
    {
        "name": "demo-worker",
        "description": "The worker tier of the demo app.",
        "templates": {"ctl.erb": "bin/ctl", "config.yml.erb": "config/config.yml"},
        "packages": ["demo-runtime"],
        "properties": {
            "demo.queues": {"description": "Queues to consume", "default": []},
            "demo.storage": {"description": "Storage backend settings"},
        },
    },
    {
        "name": "smoke-tests",
        "description": "Checks that the web tier answers (an errand).",
        "templates": {"run.erb": "bin/run"},
        "packages": [],
        "properties": {"demo.web_port": {"description": "Port to probe", "default": 8080}},
    },
]

TEMPLATE_TEXT = {
    "ctl.erb": "#!/bin/sh\n# <%= name %>: start the demo runtime\n"
    "PORT=<%= p('demo.port', 8080) %> exec /var/vcap/packages/demo-runtime/bin/serve\n",
    "config.yml.erb": "<%= JSON.dump(p('demo')) %>\n",
    # The errand runs on a VM of its own through its agent: a script that runs there. The
    # demo runtime serves nothing to probe, so it checks the port it was rendered with.
    "run.erb": "#!/bin/sh\n# smoke-tests: check the web tier's port as rendered for this errand.\n"
    "port='<%= p('demo.web_port') %>'\n"
    'case "$port" in\n'
    "  ''|*[!0-9]*) echo \"smoke-tests: web port '$port' is not a number\" >&2; exit 1 ;;\n"
    "esac\n"
    'echo "smoke-tests: web tier port $port: ok"\n',
}


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = _MTIME
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _tgz(files: dict[str, bytes | str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            _add(tar, name, data.encode() if isinstance(data, str) else data)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _fingerprint(files: dict[str, bytes | str]) -> str:
    h = hashlib.sha1()
    for name in sorted(files):
        data = files[name]
        h.update(name.encode() + b"\0" + (data.encode() if isinstance(data, str) else data))
    return h.hexdigest()


def _job_files(job: dict) -> dict[str, str]:
    spec = {
        "name": job["name"],
        "description": job["description"],
        "templates": job["templates"],
        "packages": job["packages"],
        "properties": job["properties"],
    }
    files = {"job.MF": yaml.safe_dump(spec, sort_keys=False)}
    for source in job["templates"]:
        files[f"templates/{source}"] = TEMPLATE_TEXT[source]
    return files


def release_bytes() -> bytes:
    """The demo release tarball."""
    entries: dict[str, bytes] = {}
    package_files = PACKAGE["files"]
    package_tgz = _tgz(package_files)
    pkg_fp = _fingerprint(package_files)
    entries[f"packages/{PACKAGE['name']}.tgz"] = package_tgz
    jobs_mf = []
    for job in JOBS:
        files = _job_files(job)
        data = _tgz(files)
        entries[f"jobs/{job['name']}.tgz"] = data
        fp = _fingerprint(files)
        jobs_mf.append(
            {
                "name": job["name"],
                "version": fp,
                "fingerprint": fp,
                "sha1": hashlib.sha1(data).hexdigest(),
            }
        )
    manifest = {
        "name": RELEASE_NAME,
        "version": RELEASE_VERSION,
        "commit_hash": "0000000",
        "uncommitted_changes": False,
        "jobs": jobs_mf,
        "packages": [
            {
                "name": PACKAGE["name"],
                "version": pkg_fp,
                "fingerprint": pkg_fp,
                "sha1": hashlib.sha1(package_tgz).hexdigest(),
                "dependencies": [],
            }
        ],
        "license": None,
    }
    entries["release.MF"] = yaml.safe_dump(manifest, sort_keys=False).encode()
    return _tgz(entries)


def release_filename() -> str:
    return f"{RELEASE_NAME}-{RELEASE_VERSION}.tgz"


def build_release(out_dir: str | Path) -> Path:
    path = Path(out_dir) / release_filename()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(release_bytes())
    return path


def metadata_text() -> str:
    return METADATA.read_text()


def pivotal_filename() -> str:
    return f"{PRODUCT_NAME}-{PRODUCT_VERSION}.pivotal"


def build_pivotal(out_dir: str | Path, metadata: str | None = None) -> Path:
    """Write ``opsconsole-demo-<version>.pivotal`` (metadata + release) into ``out_dir``.

    ``metadata`` replaces the template text (tests build variants with it).
    """
    path = Path(out_dir) / pivotal_filename()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (
            (f"metadata/{PRODUCT_NAME}.yml", (metadata or metadata_text()).encode()),
            (f"releases/{release_filename()}", release_bytes()),
        ):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path
