"""The director's own talks with vCenter, outside the CPI contract.

Two questions the console asks before any deploy:

- ``vcenter_check``: can the director log in to its vCenter (the cpi
  config's, else the local vcsim that ``make run`` started; which one is
  ``director.cloud.cloud_properties``'s decision)? The doctor runs it.
- ``vcenter_inventory``: does a vCenter the operator typed in log in, and
  which datacenters, clusters, resource pools, datastores and portgroups
  does it hold? The Director tile's "Test connection" and its pane checks
  call it, so the tile never speaks pyVmomi or the vSphere CPI's client.

Refusals are ``ServiceError`` naming the argument at fault (``host``,
``password``, ``ca_cert``, ``datacenter``); a vCenter that does not answer
is its subclass ``VCenterUnreachable``, which a caller may choose to wait
out or save past.
"""

from __future__ import annotations

import ssl

from cpi.base import CloudError
from opsconsole.doctor import Check
from opsconsole.errors import ServiceError

from .cloud import CloudNotConfigured, cloud_properties


class VCenterUnreachable(ServiceError):
    """vCenter gave no usable answer (network, timeout, 5xx): nothing could be read."""

    def __init__(self, errors: dict, address: str = ""):
        super().__init__(errors)
        self.address = address


def vcenter_check():
    """Can the director log in to its vCenter (the cpi config's, else the local vcsim)?"""
    # heavy: pyVmomi loads only when vCenter is asked, not with every process.
    from pyVim.connect import Disconnect, SmartConnect

    try:
        name, properties = cloud_properties()
    except CloudNotConfigured as exc:
        return Check("vcenter", False, str(exc))
    except Exception as exc:  # the database is not there yet: say so, do not crash the doctor
        return Check("vcenter", False, f"cannot read the cpi config: {exc}")
    vc = properties["vcenters"][0]
    host, _, port = str(vc.get("host", "")).partition(":")
    options = vc.get("connection_options") or {}
    if options.get("ca_cert"):
        context = ssl.create_default_context(cadata=options["ca_cert"])
    elif options.get("insecure"):
        context = ssl._create_unverified_context()  # noqa: S323 - the operator asked for it
    else:
        context = ssl.create_default_context()
    try:
        si = SmartConnect(
            host=host,
            port=int(port or 443),
            user=vc.get("user", ""),
            pwd=vc.get("password", ""),
            sslContext=context,
            connectionPoolTimeout=5,
        )
    except Exception as exc:
        return Check(
            "vcenter", False, f"vCenter {vc.get('host')} ({name}) refused or did not answer: {exc}"
        )
    try:
        about = si.content.about.fullName
    finally:
        Disconnect(si)
    return Check("vcenter", True, f"{vc.get('host')} ({name}): {about}")


def vcenter_inventory(
    *,
    host: str,
    user: str,
    password: str,
    ca_cert: str | None = None,
    insecure: bool = False,
    datacenter: str | None = None,
) -> dict:
    """Log in to the vCenter at ``host`` (``name[:port]``) and list one datacenter's names.

    Returns ``{"datacenters", "datacenter", "clusters", "datastores",
    "portgroups", "resource_pools"}``: every datacenter of the vCenter, the
    one read (``datacenter``, else the first by name), and its names, each a
    sorted list (resource pools as ``cluster/pool``). The names are read in
    two round trips (``cpi.vsphere.catalog``). A bad host, a refused login,
    an untrusted certificate or an unknown datacenter raise ``ServiceError``
    naming the argument; a vCenter that does not answer raises
    ``VCenterUnreachable`` (naming ``host``).
    """
    # heavy: pyVmomi and the vSphere client load only when vCenter is asked.
    from pyVmomi import vmodl

    from cpi.vsphere import client as vsphere
    from cpi.vsphere.catalog import datacenter_names

    config = _config(host, user, password, ca_cert, insecure, (5.0, 30.0))
    client = vsphere.VSphereClient(config, keepalive_seconds=0)
    try:
        try:
            names = datacenter_names(client, datacenter or None)
        except vsphere.VCenterUnreachable as exc:
            raise VCenterUnreachable({"host": [str(exc)]}, address=config.address) from None
        except CloudError as exc:
            msg = str(exc)
            field = "password" if "user name or password" in msg else "host"
            if "certificate" in msg:
                field = "ca_cert"
            raise ServiceError({field: [msg]}) from None
        except vmodl.MethodFault as exc:
            raise ServiceError({"host": [exc.msg or type(exc).__name__]}) from None
        except OSError as exc:  # the connection broke after the login
            raise VCenterUnreachable(
                {"host": [f"vCenter {config.address} stopped answering: {exc}"]},
                address=config.address,
            ) from None
        if names.datacenter is None:
            raise ServiceError(
                {
                    "datacenter": [
                        f"vCenter {config.address} has no datacenter '{datacenter or ''}' "
                        f"(it has: {', '.join(names.datacenters) or 'none'})"
                    ]
                }
            )
        return {
            "datacenters": list(names.datacenters),
            "datacenter": names.datacenter,
            "clusters": list(names.clusters),
            "datastores": list(names.datastores),
            "portgroups": list(names.portgroups),
            "resource_pools": list(names.resource_pools),
        }
    finally:
        client.close()


def host_capacity(
    *,
    host: str,
    user: str,
    password: str,
    ca_cert: str | None = None,
    insecure: bool = False,
    datacenter: str,
) -> list[tuple[str, int, int]]:
    """``(name, CPU cores, memory in MB)`` of every connected host in ``datacenter``.

    Review Pending Changes asks it to foresee a VM type no host can hold, so
    vCenter gets short timeouts (3 s to connect, 10 s a call). A ``host``
    that is not ``name[:port]`` raises ``ServiceError`` naming ``host``, a
    datacenter vCenter lacks one naming ``datacenter``; whatever else goes
    wrong (no answer, a refused login) is raised as the vSphere client raised it.
    """
    # heavy: pyVmomi and the vSphere client load only when vCenter is asked.
    from pyVmomi import vim

    from cpi.vsphere.client import VSphereClient

    config = _config(host, user, password, ca_cert, insecure, (3.0, 10.0), error_names_path=True)
    client = VSphereClient(config, keepalive_seconds=0)
    try:
        dc = next(
            (
                d
                for d in client.content.rootFolder.childEntity
                if isinstance(d, vim.Datacenter) and d.name == datacenter
            ),
            None,
        )
        if dc is None:
            raise ServiceError({"datacenter": [f"vCenter has no datacenter '{datacenter}'"]})
        rows = client.retrieve(
            dc.hostFolder,
            vim.HostSystem,
            [
                "name",
                "summary.hardware.numCpuCores",
                "summary.hardware.memorySize",
                "runtime.connectionState",
            ],
        )
        return [
            (
                str(p.get("name")),
                int(p.get("summary.hardware.numCpuCores") or 0),
                int(p.get("summary.hardware.memorySize") or 0) // (1024 * 1024),
            )
            for _, p in rows
            if p.get("runtime.connectionState") in (None, "connected")
        ]
    finally:
        client.close()


def _config(
    host: str,
    user: str,
    password: str,
    ca_cert: str | None,
    insecure: bool,
    timeouts: tuple[float, float],
    *,
    error_names_path: bool = False,
):
    """The ``VCenterConfig`` for a vCenter the caller names by ``host`` (``name[:port]``).

    ``timeouts``: seconds to connect, then seconds a call may take.

    A ``host`` that is not ``name[:port]`` raises ``ServiceError`` naming
    ``host``; its message keeps the ``host: `` prefix only when
    ``error_names_path`` (Review Pending Changes shows ``host_capacity``'s
    message alone; the Director tile shows ``vcenter_inventory``'s beside
    its host field). An insecure login sends no CA certificate.
    """
    # heavy: cpi.vsphere's package loads the whole CPI (pyVmomi) with it.
    from cpi.vsphere.config import ConfigError, VCenterConfig, split_host

    try:
        name, port = split_host(str(host), "host")
    except ConfigError as exc:
        message = str(exc) if error_names_path else str(exc).split(": ", 1)[-1]
        raise ServiceError({"host": [message]}) from None
    return VCenterConfig(
        host=name,
        port=port,
        user=str(user),
        password=str(password),
        ca_cert=None if insecure else ca_cert,
        insecure=insecure,
        connect_timeout=timeouts[0],
        http_timeout=timeouts[1],
    )
