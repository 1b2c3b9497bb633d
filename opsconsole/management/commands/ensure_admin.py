"""``manage.py ensure_admin``: create the admin user once and print its login.

The password comes from ``OPSCONSOLE_ADMIN_PASSWORD`` when set; otherwise one
is generated on first run and kept (mode 0600) in the data directory so later
runs can print it again. A given password must pass the password rules
(``settings.AUTH_PASSWORD_VALIDATORS``): a weak one is refused, naming the
variable, and nothing is created or changed.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the admin user if missing and print its login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("OPSCONSOLE_ADMIN_USER", "admin"))

    def handle(self, *args, username, **options):
        User = get_user_model()
        path = settings.DATA_DIR / "admin_password"
        given = os.environ.get("OPSCONSOLE_ADMIN_PASSWORD")
        user = User.objects.filter(username=username).first()
        if given:
            try:
                validate_password(given, user=user or User(username=username))
            except ValidationError as exc:
                raise CommandError(
                    "OPSCONSOLE_ADMIN_PASSWORD is refused by the password rules: "
                    + " ".join(exc.messages)
                ) from None
        if user is None:
            password = given or secrets.token_urlsafe(18)
            User.objects.create_superuser(username=username, email="", password=password)
            if not given:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(password)
        elif given:
            if not user.check_password(given):
                user.set_password(given)
                user.save(update_fields=["password"])
            password = given
        else:
            password = (
                path.read_text().strip()
                if path.exists()
                else "(set when the admin was created; not stored)"
            )
        self.stdout.write(f"Admin login: username {username}  password {password}")
