"""Builders for the rendering tests: a job from inline ERB, an instance, a release dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from director.rendering import InstanceJob, InstanceToRender, JobTemplates, ruby_path

needs_ruby = pytest.mark.skipif(
    ruby_path() is None,
    reason="needs Debian's ruby to evaluate ERB (make install adds it; CI has it)",
)


def job(
    name="web",
    templates=None,
    properties=None,
    monit="",
    release="demo",
    version="1.2",
    provides=(),
    consumes=(),
):
    """A release job whose templates are ``{src: (dest, erb)}``."""
    templates = templates or {}
    spec = {
        "name": name,
        "templates": {src: dest for src, (dest, _) in templates.items()},
        "properties": properties or {},
        "provides": list(provides),
        "consumes": list(consumes),
    }
    sources = {src: erb for src, (_, erb) in templates.items()}
    return JobTemplates(name, release, version, spec, monit, sources)


def manual_net(ip, gateway="10.0.0.1", default=("dns", "gateway")):
    return {
        "type": "manual",
        "ip": ip,
        "netmask": "255.255.255.0",
        "gateway": gateway,
        "dns": ["10.0.0.2"],
        "default": list(default) if default is not None else None,
        "cloud_properties": {"name": "VM Network"},
    }


def instance(
    jobs,
    *,
    group="web",
    id="0d8a3c2e-1111-4c1c-9f4e-aaaaaaaaaaaa",
    index=0,
    az="z1",
    bootstrap=True,
    networks=None,
    deployment="demo",
    persistent_disk=0,
    address=None,
):
    """An instance; ``jobs`` are ``InstanceJob``s or ``(JobTemplates, properties[, links])``."""
    wrapped = []
    for j in jobs:
        if isinstance(j, InstanceJob):
            wrapped.append(j)
        else:
            wrapped.append(InstanceJob(*j))
    return InstanceToRender(
        deployment=deployment,
        group=group,
        id=id,
        index=index,
        az=az,
        bootstrap=bootstrap,
        networks=networks if networks is not None else {"default": manual_net("10.0.0.10")},
        jobs=tuple(wrapped),
        persistent_disk=persistent_disk,
        address=address,
    )


def load_job(release_dir: Path, name: str, release: str, version: str) -> JobTemplates:
    """A job of a release source tree (``jobs/<name>/{spec,monit,templates/}``)."""
    d = release_dir / "jobs" / name
    # libyaml, as the BOSH CLI's yaml.v2: os-conf's harden_sshd spec has a tab inside a
    # plain scalar, which PyYAML's pure-Python scanner refuses.
    spec = yaml.load((d / "spec").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    sources = {src: (d / "templates" / src).read_text() for src in spec.get("templates") or {}}
    monit = (d / "monit").read_text() if (d / "monit").exists() else ""
    return JobTemplates(name, release, version, spec, monit, sources)
