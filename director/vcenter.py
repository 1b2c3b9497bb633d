"""Which vCenter the director talks to, and a reachability check.

The cpi-config rendered by the Director tile wins; until one exists, the
local vcsim that ``make run`` started (its connection file in the data
directory) is the default vCenter.
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
    from opsconsole.doctor import Check

    facts = local_vcsim()
    if facts is None:
        return Check(
            "vcenter",
            False,
            "no vCenter configured and no local vcsim running (start one with `make run`)",
        )
    import ssl

    from pyVim.connect import Disconnect, SmartConnect

    host, _, port = facts["host"].partition(":")
    context = ssl.create_default_context(cafile=facts.get("cert_file"))
    try:
        si = SmartConnect(
            host=host,
            port=int(port or 443),
            user=facts["username"],
            pwd=facts["password"],
            sslContext=context,
            connectionPoolTimeout=5,
        )
    except Exception as exc:
        return Check("vcenter", False, f"vCenter {facts['host']} refused or did not answer: {exc}")
    try:
        about = si.content.about.fullName
    finally:
        Disconnect(si)
    return Check("vcenter", True, f"{facts['host']}: {about}")
