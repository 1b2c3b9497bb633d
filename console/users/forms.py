"""Forms of the Users page: create a user, change a role, reset a password.

They only shape the input (and check that a new password was typed twice
alike); ``services`` checks the values, so the page and the API refuse the
same things with the same messages.
"""

from django import forms

from opsconsole.auth import ROLES

ROLE_CHOICES = [(r, r) for r in ROLES]
PASSWORD_HELP = (
    "At least 12 characters, not a common password, not only digits, not like the user name."
)


class NewPasswordMixin(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
        help_text=PASSWORD_HELP,
    )
    password_again = forms.CharField(
        label="Password (again)",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        strip=False,
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


class UserCreateForm(NewPasswordMixin):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="full_view")
    field_order = ["username", "role", "password", "password_again"]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class PasswordResetForm(NewPasswordMixin):
    pass


def add_service_errors(form: forms.Form, errors: dict) -> None:
    """Put a ``ServiceError``'s field errors on the form (unknown fields as form errors)."""
    for field, messages in errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
