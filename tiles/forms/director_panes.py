"""Forms of the Director tile's Security, Syslog and Resource Config panes.

Each field carries the service's name (``tiles.director_security``,
``tiles.director_tile.resource_config``) so a service error's path lands under
it (``tiles.views.fielderrors.form_errors``). The forms only shape what the
browser sends; the services validate it, as for the API: numbers are text
here so a bad one gets the service's message, not a second one.
"""

from __future__ import annotations

from typing import Any

from django import forms

__all__ = ["SecurityForm", "SyslogForm", "CompilationForm"]

_VM_PASSWORDS = [
    ("true", "Generate a random password for each VM"),
    ("false", "Use the stemcell's default password"),
]


class SecurityForm(forms.Form):
    """Security (``security_configuration``)."""

    trusted_certificates = forms.CharField(
        label="Trusted Certificates",
        required=False,
        widget=forms.Textarea({"rows": 6}),
        help_text="PEM certificates every VM the director creates trusts",
    )
    opsmanager_root_ca_trusted_certs = forms.BooleanField(
        label="Include the console's root CA in Trusted Certificates", required=False
    )
    clear_default_trusted_certificates_store = forms.BooleanField(
        label="Clear the stemcell's default trusted certificates store", required=False
    )
    generate_vm_passwords = forms.ChoiceField(
        label="VM passwords", choices=_VM_PASSWORDS, widget=forms.RadioSelect, initial="true"
    )

    @classmethod
    def initial_of(cls, saved: dict[str, Any]) -> dict[str, Any]:
        return {
            **saved,
            "generate_vm_passwords": "true" if saved["generate_vm_passwords"] else "false",
        }

    def security(self) -> dict[str, Any]:
        """The service's ``security_configuration``."""
        data = dict(self.cleaned_data)
        data["generate_vm_passwords"] = data["generate_vm_passwords"] == "true"
        return data


class SyslogForm(forms.Form):
    """Syslog (``syslog_configuration``)."""

    enabled = forms.BooleanField(
        label="Forward the director's logs to a syslog server", required=False
    )
    address = forms.CharField(label="Address", required=False, help_text="host name or IP address")
    port = forms.CharField(label="Port", required=False, help_text="1 to 65535; 514 is syslog's")
    transport_protocol = forms.ChoiceField(
        label="Transport Protocol", choices=[("udp", "UDP"), ("tcp", "TCP")], initial="udp"
    )
    tls_enabled = forms.BooleanField(label="Enable TLS", required=False)
    permitted_peer = forms.CharField(
        label="Permitted Peer", required=False, help_text="the name in the server's TLS certificate"
    )
    ssl_ca_certificate = forms.CharField(
        label="SSL Certificate",
        required=False,
        widget=forms.Textarea({"rows": 4}),
        help_text="PEM CA certificate of the syslog server (TLS)",
    )
    queue_size = forms.CharField(label="Queue Size", required=False)
    forward_debug_logs = forms.BooleanField(label="Forward Debug Logs", required=False)
    custom_rsyslog_configuration = forms.CharField(
        label="Custom rsyslog Configuration", required=False, widget=forms.Textarea({"rows": 4})
    )

    @classmethod
    def initial_of(cls, saved: dict[str, Any]) -> dict[str, Any]:
        return {k: ("" if v is None else v) for k, v in saved.items()}

    def syslog(self) -> dict[str, Any]:
        """The service's ``syslog_configuration``."""
        return dict(self.cleaned_data)


class CompilationForm(forms.Form):
    """Resource Config's compilation workers (``resource_config["compilation"]``)."""

    instances = forms.CharField(
        label="Compilation workers", help_text="VMs that compile packages at the same time"
    )
    instance_type = forms.ChoiceField(label="VM Type")

    def __init__(self, *args, vm_types: list[dict], automatic: str, saved: str = "", **kw):
        super().__init__(*args, **kw)
        choices = [("automatic", f"Automatic: {automatic}")]
        names = [t["name"] for t in vm_types]
        if saved and saved != "automatic" and saved not in names:
            # A type since removed from the catalog: shown, so saving it again says why not.
            choices.append((saved, f"{saved} (not in the VM Types catalog)"))
        choices += [
            (
                t["name"],
                f"{t['name']} (CPU {t['cpu']}, RAM {t['ram']} MB, disk {t['ephemeral_disk']} MB)",
            )
            for t in vm_types
        ]
        self.fields["instance_type"].choices = choices
