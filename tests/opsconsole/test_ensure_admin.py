"""``manage.py ensure_admin`` applies the password rules to OPSCONSOLE_ADMIN_PASSWORD."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

STRONG = "Velvet-Harbor-Compass-19"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.mark.parametrize(
    "weak, why",
    [
        ("hunter2", "too short"),
        ("password1234", "too common"),
        ("482917365018", "entirely numeric"),
        ("operations12", "too similar to the username"),
    ],
)
def test_a_weak_env_password_is_refused_naming_the_variable(monkeypatch, weak, why):
    monkeypatch.setenv("OPSCONSOLE_ADMIN_PASSWORD", weak)
    with pytest.raises(CommandError) as refused:
        call_command("ensure_admin", username="operations", stdout=io.StringIO())
    message = str(refused.value)
    assert message.startswith("OPSCONSOLE_ADMIN_PASSWORD is refused by the password rules")
    assert why in message
    assert weak not in message  # the value is not echoed
    assert not get_user_model().objects.exists()


def test_a_weak_env_password_does_not_replace_the_existing_one(monkeypatch):
    get_user_model().objects.create_superuser("admin", "", STRONG)
    monkeypatch.setenv("OPSCONSOLE_ADMIN_PASSWORD", "short")
    with pytest.raises(CommandError, match="OPSCONSOLE_ADMIN_PASSWORD"):
        call_command("ensure_admin", stdout=io.StringIO())
    assert authenticate(username="admin", password=STRONG) is not None
    assert authenticate(username="admin", password="short") is None


def test_a_strong_env_password_creates_the_admin(monkeypatch):
    monkeypatch.setenv("OPSCONSOLE_ADMIN_PASSWORD", STRONG)
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "username admin" in out.getvalue()
    user = authenticate(username="admin", password=STRONG)
    assert user is not None and user.is_superuser


def test_a_generated_password_passes_the_rules(monkeypatch, data_dir):
    from django.contrib.auth.password_validation import validate_password

    monkeypatch.delenv("OPSCONSOLE_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin", stdout=io.StringIO())
    generated = (data_dir / "admin_password").read_text()
    admin = get_user_model().objects.get(username="admin")
    validate_password(generated, user=admin)
    assert authenticate(username="admin", password=generated) is not None
