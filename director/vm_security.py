"""Director-wide VM security settings: trusted certificates and generated VM passwords.

BOSH's director has ``trusted_certs`` (a PEM bundle every VM trusts) and
``generate_vm_passwords`` (each VM gets a random password, as a sha512-crypt
hash in ``env.bosh.password``, unless its env names one). Ops Manager sets
both from the Director tile's Security pane; here Apply Changes stores them
as the director attribute ``vm_security`` (``set_vm_security``) and every
``create_vm`` puts them into the VM's env (``apply_to_env``), which the CPI
writes into the agent settings (``env.bosh.trusted_certs``,
``env.bosh.password``). VMs made before a change keep what they had until
they are recreated, as in BOSH.
"""

from __future__ import annotations

import json
from typing import Any

from .models import DirectorAttribute
from .passwords import generated_vm_password_hash

__all__ = ["SETTING", "vm_security", "set_vm_security", "apply_to_env"]

SETTING = "vm_security"


def vm_security() -> dict[str, Any]:
    """``{"trusted_certs": PEM or "", "generate_vm_passwords": bool}`` (both off by default)."""
    try:
        stored = json.loads(DirectorAttribute.get(SETTING) or "{}")
    except ValueError:
        stored = {}
    return {
        "trusted_certs": str(stored.get("trusted_certs") or ""),
        "generate_vm_passwords": bool(stored.get("generate_vm_passwords")),
    }


def set_vm_security(trusted_certs: str, generate_vm_passwords: bool) -> bool:
    """Store the settings; True when they changed."""
    new = {
        "trusted_certs": trusted_certs or "",
        "generate_vm_passwords": bool(generate_vm_passwords),
    }
    if new == vm_security():
        return False
    DirectorAttribute.set(SETTING, json.dumps(new))
    return True


def apply_to_env(bosh: dict[str, Any], security: dict[str, Any] | None = None) -> None:
    """Add the trusted certificates and a generated password hash to a VM's ``env.bosh``.

    A password the manifest's env gives is kept, as BOSH keeps it.
    """
    security = security if security is not None else vm_security()
    if security.get("trusted_certs"):
        bosh["trusted_certs"] = security["trusted_certs"]
    if security.get("generate_vm_passwords") and not bosh.get("password"):
        bosh["password"] = generated_vm_password_hash()
