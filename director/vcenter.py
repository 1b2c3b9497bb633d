"""Which vCenter the director talks to, and a reachability check.

The cpi-config rendered by the Director tile wins; until one exists, the
local vcsim that ``make run`` started (its connection file in the data
directory) is the default vCenter (``director.cloud.cloud_properties``
decides; ``vcenter_check`` logs in to whichever it is).
"""

import json

from django.conf import settings


def local_vcsim() -> dict | None:
    """The connection facts of the vcsim that `make run` started, if any."""
    path = settings.LOCAL_VCSIM_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def vcenter_check():
    """Can the director log in to its vCenter (the cpi config's, else the local vcsim)?"""
    import ssl

    from pyVim.connect import Disconnect, SmartConnect

    from opsconsole.doctor import Check

    from .cloud import CloudNotConfigured, cloud_properties

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
