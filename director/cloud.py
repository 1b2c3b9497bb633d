"""The director's cloud: which CPI a task talks to, built from the configs.

The latest ``cpi`` config wins. Its shape is BOSH's cpi-config::

    cpis:
    - name: vcenter-1
      type: vsphere
      properties: {host, user, password, datacenters: [{name, clusters, ...}],
                   connection_options: {ca_cert}, default_disk_type, agent}

``properties`` are the vSphere CPI's global config for one vCenter; they
become ``cloud.properties.vcenters[0]`` of the cpi.json the CPI factory
(``cpi.load_cloud``) takes. Until a cpi config exists, the local vcsim that
``make run`` started is the vCenter (``local_vcsim``: its connection file in
the data directory), with
BOSH's default folders (``BOSH_VMs``, ``BOSH_Templates``, ``BOSH_Disks``),
its first datacenter, every cluster and every datastore.

The CPI's ``agent`` block carries the director's blobstore to every VM's
agent settings (``agent_blobstore_settings``), as BOSH's director job gives
its CPI ``agent.blobstore``, unless the cpi config names a blobstore itself.

In a task, the cloud is wrapped so every call is written to the task's CPI
log, and closed (vCenter session logged out) when the task ends. Outside
tasks, readers that ask vCenter every few seconds (the VMs page, the health
monitor's scan) share one ``CachedCloud`` per process each.

The cpi config's content is encrypted at rest (``director.models.config``);
reading it decrypts it and registers its password for log redaction, and
the vCenter password is registered again here before any CPI call, so
neither the debug log, the CPI log nor Django's logs can show it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from django.conf import settings

import cpi
from cpi.logging import LoggedCpi
from opsconsole.redaction import redact_text, register_secret

from .blobstore import agent_blobstore_settings
from .models import Config, ConfigType


class CloudNotConfigured(Exception):
    """No cpi config and no local vcsim: the director has no vCenter to talk to."""


def local_vcsim() -> dict | None:
    """The connection facts of the vcsim that `make run` started, if any."""
    path = settings.LOCAL_VCSIM_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _vsphere_cpi_entry(config: Config) -> dict:
    """The first vsphere entry of a cpi config (content decrypted by the model field)."""
    try:
        doc = yaml.safe_load(config.content) or {}
    except yaml.YAMLError as exc:
        # The parser quotes the offending line, which may hold the password.
        raise CloudNotConfigured(
            f"cpi config '{config.name}': not valid YAML: {redact_text(str(exc))}"
        ) from None
    cpis = doc.get("cpis") if isinstance(doc, dict) else None
    if not isinstance(cpis, list) or not cpis:
        raise CloudNotConfigured(f"cpi config '{config.name}': cpis: must list at least one CPI")
    for i, entry in enumerate(cpis):
        if isinstance(entry, dict) and entry.get("type", "vsphere") == "vsphere":
            if not isinstance(entry.get("properties"), dict):
                raise CloudNotConfigured(
                    f"cpi config '{config.name}': cpis/{entry.get('name', i)}/properties: "
                    "is required (a map)"
                )
            return entry
    raise CloudNotConfigured(f"cpi config '{config.name}': no CPI of type vsphere in cpis")


def properties_from_cpi_config(properties: dict) -> dict:
    """cpi-config ``properties`` (one vCenter) -> cpi.json ``cloud.properties``."""
    vcenter = {k: v for k, v in properties.items() if k != "agent"}
    return {"vcenters": [vcenter], "agent": properties.get("agent") or {}}


def properties_from_vcsim(facts: dict) -> dict:
    """The local vcsim's connection file -> cpi.json ``cloud.properties``."""
    inventory = facts.get("inventory") or {}
    datacenters = inventory.get("datacenters") or ["DC0"]
    datastores = inventory.get("datastores") or []
    pattern = "^(" + "|".join(re.escape(d) for d in datastores) + ")$" if datastores else ".*"
    connection: dict[str, Any] = {}
    cert_file = facts.get("cert_file")
    if cert_file and Path(cert_file).exists():
        connection["ca_cert"] = Path(cert_file).read_text()
    return {
        "vcenters": [
            {
                "host": facts["host"],
                "user": facts["username"],
                "password": facts["password"],
                "connection_options": connection,
                "default_disk_type": "thin",
                "datacenters": [
                    {
                        "name": datacenters[0],
                        "vm_folder": "BOSH_VMs",
                        "template_folder": "BOSH_Templates",
                        "disk_path": "BOSH_Disks",
                        "datastore_pattern": pattern,
                        "persistent_datastore_pattern": pattern,
                        "clusters": list(inventory.get("clusters") or []),
                    }
                ],
            }
        ],
        "agent": {},
    }


def cloud_properties() -> tuple[str, dict]:
    """``(cpi name, cloud.properties)`` of the vCenter the director uses now."""
    name, properties = _configured_cloud_properties()
    agent = properties.get("agent")
    if not isinstance(agent, dict):
        agent = properties["agent"] = {}
    if not agent.get("blobstore"):
        agent["blobstore"] = agent_blobstore_settings()
    return name, properties


def _configured_cloud_properties() -> tuple[str, dict]:
    configs = Config.latest_set(ConfigType.CPI)
    if configs:
        entry = _vsphere_cpi_entry(configs[0])
        return str(entry.get("name") or configs[0].name), properties_from_cpi_config(
            entry["properties"]
        )
    facts = local_vcsim()
    if facts:
        return "vcsim", properties_from_vcsim(facts)
    raise CloudNotConfigured(
        "no vCenter configured: upload a cpi config (Director tile) or start the local "
        "vcsim with `make run`"
    )


def cloud_for_director(task_ctx=None):
    """A ``cpi.base.Cpi`` for the configured vCenter; logged and closed with the task.

    Within a task the same cloud is returned on every call (one vCenter
    session per task); outside a task the caller closes it (``close()``).
    """
    if task_ctx is not None and getattr(task_ctx, "_cloud", None) is not None:
        return task_ctx._cloud

    name, properties = cloud_properties()
    # Decrypted from the cpi-config (or vcsim's file): no log line of this process may show it.
    secrets = [v.get("password") for v in properties.get("vcenters", []) if v.get("password")]
    for secret in secrets:
        register_secret(secret)
    cloud = cpi.load_cloud({"cloud": {"plugin": "vsphere", "properties": properties}})
    if task_ctx is None:
        return cloud
    if hasattr(cloud, "close"):
        task_ctx.add_cleanup(cloud.close)
    logged = _logged(cloud, task_ctx, secrets)
    task_ctx._cloud = logged
    task_ctx.debug(f"Using CPI '{name}' ({cloud!r})")
    return logged


def _logged(cloud, task_ctx, secrets):
    """Wrap the cloud with the CPI's call logger, writing to the task's CPI log."""
    return LoggedCpi(cloud, task_ctx.cpi_log, secrets=secrets)


T = TypeVar("T")


def _properties_key() -> str:
    """A digest of the current cloud properties: no second copy of the password is kept."""
    text = json.dumps(cloud_properties(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CachedCloud:
    """A vCenter session kept between reads of one process (``call``).

    A reader that asks vCenter every few seconds must not log in and out
    each time (vCenter's event log would fill with sessions), and a kept
    session knows its VM folder, so a read is one round trip. The session is
    built on first use and reused while the cloud properties it was built
    from (the cpi config) are current; a new config, or any error raised by
    a read, logs it out and the next read logs in again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: str | None = None
        self._cloud: Any = None

    def call(self, read: Callable[[Any], T]) -> T:
        """``read(cloud)`` through the kept session; an error drops the session and is raised."""
        key = _properties_key()
        with self._lock:
            if self._key != key:
                self._drop()
                self._cloud, self._key = cloud_for_director(), key
            cloud = self._cloud
        try:
            return read(cloud)
        except Exception:
            with self._lock:
                if self._cloud is cloud:  # another thread may have replaced it meanwhile
                    self._drop()
            raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._cloud is not None:
            try:
                self._cloud.close()
            except Exception:  # a dead session needs no logout
                pass
        self._cloud, self._key = None, None
