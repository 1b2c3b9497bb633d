"""The data model's invariants: config versions, uniqueness, encrypted values, active VMs."""

import pytest
from django.db import IntegrityError, connection, transaction

from director.models import (
    Config,
    Credential,
    Deployment,
    Instance,
    IpAddress,
    Stemcell,
    Variable,
    VariableSet,
    Vm,
)
from opsconsole import crypto
from opsconsole.redaction import redact_text

pytestmark = pytest.mark.django_db


def test_config_latest_and_latest_set():
    Config.objects.create(type="cloud", name="default", content="v1")
    v2 = Config.objects.create(type="cloud", name="default", content="v2")
    vms = Config.objects.create(type="cloud", name="vm-extensions", content="x")
    Config.objects.create(type="cloud", name="gone", content="y", deleted=True)
    Config.objects.create(type="runtime", name="default", content="r")
    assert Config.latest("cloud") == v2
    assert Config.latest("cloud", "nope") is None
    assert Config.latest_set("cloud") == [v2, vms]  # by name, deleted left out


@pytest.mark.parametrize(
    "make",
    [
        lambda: Stemcell.objects.create(name="s", version="1", cid="sc-2"),
        lambda: IpAddress.objects.create(address="10.0.0.5", network_name="other"),
        lambda: Deployment.objects.create(name="zk"),
    ],
    ids=["stemcell name+version", "ip address", "deployment name"],
)
def test_uniqueness_guards(make):
    Stemcell.objects.create(name="s", version="1", cid="sc-1")
    IpAddress.objects.create(address="10.0.0.5", network_name="default")
    Deployment.objects.create(name="zk")
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


def test_active_vm_and_instance_name():
    deployment = Deployment.objects.create(name="zk")
    inst = Instance.objects.create(deployment=deployment, group="zookeeper", uuid="u1", index=2)
    assert inst.active_vm is None
    Vm.objects.create(instance=inst, cid="vm-old", agent_id="a1", active=False)
    new = Vm.objects.create(instance=inst, cid="vm-new", agent_id="a2", active=True)
    assert inst.active_vm == new
    assert inst.name == "zookeeper/u1" and str(inst) == "zookeeper/u1 (2)"


def test_credentials_are_encrypted_at_rest_and_redacted_once_read():
    value = {"ca": "-----BEGIN CERTIFICATE-----", "private_key": "very-secret-key-pem"}
    Credential.put("/opsconsole/zk/zk_tls", "certificate", value)
    Credential.put("/opsconsole/zk/admin_password", "password", "s3cret-passw0rd")
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM director_credential")
        raw = " ".join(row[0] for row in cursor.fetchall())
    assert "very-secret-key-pem" not in raw and "s3cret-passw0rd" not in raw

    latest = Credential.latest("/opsconsole/zk/admin_password")
    assert latest.value == "s3cret-passw0rd"
    assert Credential.latest("/opsconsole/zk/zk_tls").value == value
    assert redact_text("password is s3cret-passw0rd") == "password is ((redacted))"
    assert redact_text("key very-secret-key-pem") == "key ((redacted))"
    assert "BEGIN CERTIFICATE" in redact_text("-----BEGIN CERTIFICATE-----")  # not a secret


def test_new_versions_of_a_credential_and_variables_pinned_to_one():
    deployment = Deployment.objects.create(name="zk")
    first = Credential.put("/opsconsole/zk/pw", "password", "one-one-one")
    second = Credential.put("/opsconsole/zk/pw", "password", "two-two-two")
    assert Credential.latest("/opsconsole/zk/pw") == second
    vset = VariableSet.objects.create(deployment=deployment)
    Variable.objects.create(
        variable_set=vset,
        name="/opsconsole/zk/pw",
        type="password",
        value=first.value,
        credential=first,
    )
    assert Variable.objects.get(variable_set=vset).value == "one-one-one"
    with pytest.raises(IntegrityError), transaction.atomic():
        Variable.objects.create(variable_set=vset, name="/opsconsole/zk/pw", type="password")


def test_a_wrong_key_is_a_clear_error(settings):
    token = crypto.encrypt("hello")
    from cryptography.fernet import Fernet

    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(crypto.DecryptionError, match="OPSCONSOLE_ENCRYPTION_KEY"):
        crypto.decrypt(token)
