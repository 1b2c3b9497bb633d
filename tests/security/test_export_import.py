"""Export the installation on one console, import it on a fresh one: the same console again.

Both consoles live in one test: after the export the database is flushed,
the data-dir files removed, the data dirs moved and the encryption key
swapped (the second console), then the export is imported there. What is
compared is what an admin sees through the API before and after, and what
an attacker holding the first console's key would find (nothing it opens).
A wrong passphrase or a damaged file is refused and changes nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from console.backup import installation, keys
from director import uploads
from director.agents import nats_auth
from director.agents.certs import MbusPki
from director.blobstore.credentials import blobstore_credentials
from director.models import (
    Config,
    Credential,
    Deployment,
    Instance,
    IpAddress,
    PersistentDisk,
    ReleasePackage,
    Variable,
    VariableSet,
    Vm,
)
from opsconsole import crypto
from opsconsole.models import ApiToken
from tests.director.builders import build_stemcell_tgz
from tiles import services
from tiles.models import LibraryStemcell, Product, StagedProduct

from .conftest import cpi_config_text

pytestmark = pytest.mark.django_db

URL = "/api/v0/installation_asset_collection"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def key_file(settings, tmp_path):
    """The first console's key, in a data-dir file of the test's own."""
    key = Fernet.generate_key().decode()
    path = tmp_path / "encryption_key"
    path.write_text(key + "\n")
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = path
    crypto.adopt_key(key)
    return path


@pytest.fixture
def console(key_file, small, stemcell, small_release, tmp_path, vc_password, settings):
    """An installation with something everywhere: a deployed tile, VMs, credentials, files."""
    # the blobstore's users and signing secret, which the agents of its VMs hold
    settings.BLOBSTORE_AUTH_DIR = tmp_path / "blobstore_auth"
    # the message bus's certificates: this test's own (empty), not the session's nats-server's
    settings.NATS_DIR = tmp_path / "nats"
    blobstore_credentials()
    staged = services.set_properties(
        small, {".properties.api_key": {"value": "api-key-0123456789"}}
    )
    services._mark_deployed(staged, services.manifest_yaml(services.render_manifest(staged)))
    # the Stemcell Library keeps a file (its row holds the absolute path)
    services.import_stemcell(build_stemcell_tgz(tmp_path / "sc.tgz"), "admin", upload=False)
    # the blobstore holds the release's package
    blob, sha1 = uploads._store_blob(io.BytesIO(b"package bits " * 1000))
    ReleasePackage.objects.create(
        release_version=small_release, name="web", version="1", sha1=sha1, blobstore_id=blob
    )
    Config.objects.create(type="cpi", name="default", content=cpi_config_text(vc_password))
    deployment = Deployment.objects.create(name=staged.guid, manifest_text="name: x\n")
    deployment.stemcells.add(stemcell)
    deployment.release_versions.add(small_release)
    cred = Credential.put(f"/opsconsole/{staged.guid}/admin_password", "password", "pw-abcdef")
    vs = VariableSet.objects.create(deployment=deployment, deployed_successfully=True)
    Variable.objects.create(
        variable_set=vs, name="admin_password", value="pw-abcdef", credential=cred
    )
    for i in range(2):
        inst = Instance.objects.create(
            deployment=deployment, group="web", uuid=f"uuid-{i}", index=i, az="az1", variable_set=vs
        )
        vm = Vm.objects.create(instance=inst, cid=f"vm-{i}", agent_id=f"agent-{i}", active=True)
        IpAddress.objects.create(
            address=f"10.0.0.{10 + i}", network_name="infra", instance=inst, vm=vm
        )
        PersistentDisk.objects.create(instance=inst, disk_cid=f"disk-{i}", size=1024, active=True)
    return services.get_staged_product(staged.guid)


def admin_client(username: str = "admin") -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user = get_user_model().objects.create_superuser(username, "", "admin-password-1")
    _, raw = ApiToken.issue(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def what_an_admin_sees(client: APIClient) -> dict:
    """The GET answers an operator compares: staged, deployed, credentials, deployments, VMs."""
    seen = {}

    def get(url):
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:500])
        seen[url] = response.json()
        return seen[url]

    for url in (
        "/api/v0/available_products",
        "/api/v0/staged/director/properties",
        "/api/v0/staged/director/availability_zones",
        "/api/v0/staged/director/networks",
        "/api/v0/staged/cloud_config",
        "/api/v0/stemcell_assignments",
        "/api/v0/deployed/products",
        "/api/v0/director/stemcells",
        "/api/v0/director/releases",
        "/api/v0/director/configs",
    ):
        get(url)
    for product in get("/api/v0/staged/products"):
        guid = product["guid"]
        if product["type"] == "p-bosh":  # the Director tile: its panes are read above
            continue
        for part in ("properties", "networks_and_azs", "errands", "manifest"):
            get(f"/api/v0/staged/products/{guid}/{part}")
        for job in get(f"/api/v0/staged/products/{guid}/jobs")["jobs"]:
            get(f"/api/v0/staged/products/{guid}/jobs/{job['guid']}/resource_config")
    for product in seen["/api/v0/deployed/products"]:
        guid = product["guid"]
        get(f"/api/v0/deployed/products/{guid}/manifest")
        for ref in get(f"/api/v0/deployed/products/{guid}/credentials")["credentials"]:
            get(f"/api/v0/deployed/products/{guid}/credentials/{ref}")
    deployments = get("/api/v0/director/deployments")["results"]
    assert deployments
    for deployment in deployments:
        name = deployment["name"]
        for part in ("", "/instances", "/vms"):
            get(f"/api/v0/director/deployments/{name}{part}")
    return seen


def export(client: APIClient) -> bytes:
    response = client.get(URL, HTTP_X_EXPORT_PASSPHRASE=PASSPHRASE)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].startswith('attachment; filename="installation-')
    return b"".join(response.streaming_content)


def data_files():
    return (
        django_settings.BLOBSTORE_DIR,
        django_settings.STEMCELL_LIBRARY_DIR,
        django_settings.BLOBSTORE_AUTH_DIR,
    )


def files_in(*dirs) -> dict[str, bytes]:
    return {
        f"{d.name}/{p.relative_to(d)}": p.read_bytes()
        for d in dirs
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def become_a_fresh_console(settings, tmp_path) -> str:
    """Flush the database, remove the data-dir files, move the data dirs, swap the key."""
    if connection.vendor == "postgresql":
        # TRUNCATE refuses tables with deferred FK checks pending in the test's transaction.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("flush", interactive=False, verbosity=0)
    for name in ("BLOBSTORE_DIR", "STEMCELL_LIBRARY_DIR", "BLOBSTORE_AUTH_DIR"):
        shutil.rmtree(getattr(django_settings, name), ignore_errors=True)
    second = tmp_path / "second"
    settings.BLOBSTORE_DIR = second / "blobstore"
    settings.BLOBSTORE_AUTH_DIR = second / "blobstore_auth"
    settings.STEMCELL_LIBRARY_DIR = second / "stemcell_library"
    second.mkdir()
    key = Fernet.generate_key().decode()
    (second / "encryption_key").write_text(key + "\n")
    settings.ENCRYPTION_KEY = key
    settings.ENCRYPTION_KEY_FILE = second / "encryption_key"
    crypto.adopt_key(key)
    return key


def raw_tokens() -> dict:
    return {
        (column.label, pk): token
        for column in keys.encrypted_columns()
        for pk, token in keys._tokens(column, lock=False)
    }


def import_(client, data: bytes, passphrase=PASSPHRASE, **extra):
    upload = io.BytesIO(data)
    upload.name = "installation.zip"
    body = {"installation[file]": upload, **extra}
    if passphrase is not None:
        body["passphrase"] = passphrase
    return client.post(URL, body, format="multipart")


def test_export_then_import_on_a_fresh_console_shows_the_same_installation(
    console, key_file, settings, tmp_path
):
    client = admin_client()
    before = what_an_admin_sees(client)
    old_key = key_file.read_text().strip()
    old_files = files_in(*data_files())
    assert len(old_files) == 3
    old_blobstore_credentials = blobstore_credentials()
    credential = before[f"/api/v0/deployed/products/{console.guid}/credentials/.properties.admin"]
    assert credential["credential"]["value"]["password"]  # admins see the value itself
    assert len(before[f"/api/v0/director/deployments/{console.guid}/vms"]) == 2
    assert len(before[f"/api/v0/deployed/products/{console.guid}/credentials"]["credentials"]) >= 2

    data = export(client)

    # The export holds no secret in clear (nor the key): it is encrypted as a whole.
    for secret in ("api-key-0123456789", "s3cret-vc-password", "pw-abcdef", old_key):
        assert secret.encode() not in data
    assert credential["credential"]["value"]["password"].encode() not in data
    for value in vars(old_blobstore_credentials).values():
        assert value.encode() not in data

    new_key = become_a_fresh_console(settings, tmp_path)
    assert not Product.objects.exists() and not Deployment.objects.exists()
    client = admin_client()  # the fresh console's own admin

    response = import_(client, data)

    assert response.status_code == 200, response.content
    assert response.json()["import"]["files"] == 3
    after = what_an_admin_sees(client)
    assert after.keys() == before.keys()
    for url in before:
        assert after[url] == before[url], url
    assert files_in(*data_files()) == old_files
    # the agents' blobstore users came along, and are private again once read
    assert blobstore_credentials() == old_blobstore_credentials
    auth_file = django_settings.BLOBSTORE_AUTH_DIR / "credentials.json"
    assert auth_file.stat().st_mode & 0o077 == 0
    # the Stemcell Library's row names the file where this console keeps it
    library = LibraryStemcell.objects.get()
    assert library.path.startswith(str(django_settings.STEMCELL_LIBRARY_DIR))
    # every secret is under the new console's key; the first console's key opens none of them
    tokens = raw_tokens()
    assert len(tokens) >= 8
    for token in tokens.values():
        Fernet(new_key.encode()).decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(token.encode())
    # new rows get new ids: the sequences follow the imported rows
    top = Instance.objects.order_by("-id").first().id
    deployment = Deployment.objects.get(name=console.guid)
    added = Instance.objects.create(deployment=deployment, group="web", uuid="uuid-new", index=9)
    assert added.id > top
    # the fresh console's admin token still works; nothing is left staged in the data dir
    assert client.get("/api/v0/staged/products").status_code == 200
    assert not list(django_settings.DATA_DIR.glob(".import-*"))
    # the import is in the audit trail (and the exported events came along)
    assert client.get("/api/v0/director/events?object_type=installation").json()


def mode(path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_keys_and_secrets_are_private_again_after_an_import(console, settings, tmp_path):
    """Restored files get the default mode; the keys must not: the message bus's CA and
    certificate keys and its users, the blobstore's users and signing secret."""
    settings.NATS_DIR = tmp_path / "nats"
    pki = MbusPki(settings.NATS_DIR).ensure()
    nats_auth.write_initial(settings.NATS_DIR, ["agent-0"])
    ca = pki.ca_file.read_bytes()
    data = export(admin_client())

    become_a_fresh_console(settings, tmp_path)
    shutil.rmtree(settings.NATS_DIR)
    settings.NATS_DIR = tmp_path / "second" / "nats"
    umask = os.umask(0o022)  # what a console process usually runs with
    try:
        response = import_(admin_client(), data)
    finally:
        os.umask(umask)

    assert response.status_code == 200, response.content
    nats, auth = django_settings.NATS_DIR, django_settings.BLOBSTORE_AUTH_DIR
    # as the import left them, before any code that would tighten them again reads them
    private = [*sorted(nats.glob("*.key")), nats / "auth.conf", nats / "agents.json"]
    private.append(auth / "credentials.json")
    assert len(private) == 7
    assert {str(p.relative_to(tmp_path)): mode(p) for p in private} == {
        str(p.relative_to(tmp_path)): "0o600" for p in private
    }
    assert (mode(nats), mode(auth)) == ("0o700", "0o700")
    # certificates and blobs keep the default mode; the bus's PKI is the one exported
    assert mode(nats / "ca.pem") == "0o644"
    assert MbusPki(nats).ensure().ca_file.read_bytes() == ca
    assert not list(django_settings.DATA_DIR.glob(".import-*"))


def test_a_wrong_passphrase_or_a_damaged_file_changes_nothing(console, settings, tmp_path):
    data = export(admin_client())
    become_a_fresh_console(settings, tmp_path)
    client = admin_client()
    tokens_before = raw_tokens()

    def unchanged():
        assert not Product.objects.exists() and not StagedProduct.objects.exists()
        assert not Deployment.objects.exists() and not Vm.objects.exists()
        assert raw_tokens() == tokens_before
        assert files_in(*data_files()) == {}
        assert not list(django_settings.DATA_DIR.glob(".import-*"))

    wrong = import_(client, data, passphrase="not the passphrase at all")
    assert wrong.status_code == 422
    assert wrong.json() == {
        "errors": {"passphrase": ["wrong passphrase: it does not open this export"]}
    }
    unchanged()

    # one flipped byte in the last member (a data-dir file, staged after the rows were read)
    archive = zipfile.ZipFile(io.BytesIO(data))
    last = [i for i in archive.infolist() if i.filename.startswith("payload/files/")][-1]
    damaged = bytearray(data)
    damaged[last.header_offset + 30 + len(last.filename) + 100] ^= 0x01
    for bad in (bytes(damaged), data[: len(data) // 2], b"PK\x03\x04 not a zip", b"junk" * 100):
        response = import_(client, bad)
        assert response.status_code == 422, response.content
        [message] = response.json()["errors"]["installation[file]"]
        assert message.startswith("not a usable installation export: ")
        unchanged()

    missing = import_(client, data, passphrase=None)
    assert missing.status_code == 400 and "passphrase" in missing.json()["errors"]
    no_file = client.post(URL, {"passphrase": PASSPHRASE}, format="multipart")
    assert no_file.status_code == 400 and "installation[file]" in no_file.json()["errors"]
    unchanged()


def test_import_onto_a_console_with_an_installation_needs_force(console):
    client = admin_client()
    before = what_an_admin_sees(client)
    data = export(client)
    services.set_properties(
        services.get_staged_product(console.guid),
        {".properties.greeting": {"value": "changed after the export"}},
    )
    refused = import_(client, data)
    assert refused.status_code == 409
    [message] = refused.json()["errors"]["base"]
    assert "already has 1 deployment, 1 product, 1 staged product" in message
    assert "changed after the export" in str(what_an_admin_sees(client))

    forced = import_(client, data, force="true")

    assert forced.status_code == 200, forced.content
    assert what_an_admin_sees(client) == before


def test_export_and_import_are_for_admins_only(console, role_api, api_client):
    for role in ("full_control", "full_view", "restricted_control"):
        client = role_api(role)
        assert client.get(URL, HTTP_X_EXPORT_PASSPHRASE=PASSPHRASE).status_code == 403
        assert import_(client, b"x").status_code == 403
    assert api_client.get(URL, HTTP_X_EXPORT_PASSPHRASE=PASSPHRASE).status_code == 401
    assert StagedProduct.objects.get().guid == console.guid


def test_export_passphrase_is_checked_and_never_taken_from_the_url(console):
    client = admin_client()
    in_url = client.get(f"{URL}?passphrase={PASSPHRASE}")
    assert in_url.status_code == 400
    assert "must not be given in the URL" in in_url.json()["errors"]["passphrase"][0]
    assert client.get(URL).json() == {"errors": {"passphrase": ["This field is required."]}}
    short = client.get(URL, HTTP_X_EXPORT_PASSPHRASE="short")
    assert short.status_code == 422
    assert short.json() == {"errors": {"passphrase": ["must be at least 12 characters long"]}}


def test_the_commands_export_and_import(console, settings, tmp_path, monkeypatch):
    client = admin_client()
    before = what_an_admin_sees(client)
    target = tmp_path / "backup" / "installation.zip"
    target.parent.mkdir()
    monkeypatch.setenv("OPSCONSOLE_EXPORT_PASSPHRASE", PASSPHRASE)
    out = io.StringIO()
    call_command("export_installation", str(target), stdout=out)
    assert "Exported" in out.getvalue() and oct(target.stat().st_mode & 0o777) == "0o600"

    become_a_fresh_console(settings, tmp_path)
    monkeypatch.setenv("OPSCONSOLE_EXPORT_PASSPHRASE", "another passphrase entirely")
    with pytest.raises(CommandError, match="wrong passphrase"):
        call_command("import_installation", str(target), stdout=io.StringIO())
    assert not Product.objects.exists()

    monkeypatch.setenv("OPSCONSOLE_EXPORT_PASSPHRASE", PASSPHRASE)
    call_command("import_installation", str(target), stdout=io.StringIO())
    assert what_an_admin_sees(admin_client()) == before


def test_models_added_later_are_carried():
    """Every model of the console's apps is exported but the session state named here."""
    carried = {m._meta.label for m in installation.carried_models()}
    from django.apps import apps

    for label in installation.APPS:
        for model in apps.get_app_config(label).get_models():
            assert (model._meta.label in carried) != (model._meta.label in installation.NOT_CARRIED)
    assert set(installation.data_dirs()) >= {"BLOBSTORE_DIR", "STEMCELL_LIBRARY_DIR"}
    assert not set(installation.data_dirs()) & {"TASK_LOG_DIR", "UPLOAD_DIR", "DATA_DIR"}


def test_export_and_import_wait_for_running_work(console):
    from django.utils import timezone

    from director.models import Task

    client = admin_client()
    data = export(client)
    task = Task.objects.create(
        type="update_deployment",
        description="create deployment",
        state="processing",
        checkpoint_time=timezone.now(),
    )
    for response in (
        client.get(URL, HTTP_X_EXPORT_PASSPHRASE=PASSPHRASE),
        import_(client, data, force="true"),
    ):
        assert response.status_code == 409
        [message] = response.json()["errors"]["base"]
        assert f"director task {task.id} (create deployment) is processing" in message
