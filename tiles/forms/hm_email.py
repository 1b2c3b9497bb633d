"""The form of the Director tile's Email Alerts pane (``tiles.director_tile.hm_email``).

Fields carry the service's names (``from`` too), so a service error lands
under its field; the service validates, as for the API. The password field
never shows a value: a stored one is said, and left blank it is kept.
"""

from __future__ import annotations

from typing import Any

from django import forms

__all__ = ["HmEmailForm"]


class HmEmailForm(forms.Form):
    """Email Alerts (``hm_emailer_options``)."""

    enabled = forms.BooleanField(
        label="Email the health monitor's alerts", required=False, initial=False
    )
    host = forms.CharField(label="SMTP Server", required=False, help_text="host name or IP address")
    port = forms.CharField(label="SMTP Port", required=False, help_text="25 unless set")
    recipients = forms.CharField(
        label="Recipients", required=False, help_text="email addresses, separated by commas"
    )
    tls = forms.BooleanField(label="Enable TLS (STARTTLS)", required=False)
    smtp_user = forms.CharField(label="SMTP Username", required=False)
    smtp_password = forms.CharField(
        label="SMTP Password",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, password_stored: bool = False, **kw):
        super().__init__(*args, **kw)
        # "from" is a keyword: the field is added by name, after the server's.
        sender = forms.CharField(label="From", required=False, help_text="the sender's address")
        order = list(self.fields)
        self.fields["from"] = sender
        order.insert(order.index("recipients"), "from")
        self.order_fields(order)
        if password_stored:
            self.fields[
                "smtp_password"
            ].help_text = (
                "A password is stored; leave blank to keep it (clear the username to drop it)."
            )

    @classmethod
    def initial_of(cls, saved: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: v for k, v in saved.items() if k != "password_stored"},
            "recipients": ", ".join(saved.get("recipients") or []),
        }

    def hm_email(self) -> dict[str, Any]:
        """The service's values (a blank password keeps the stored one)."""
        return dict(self.cleaned_data)
