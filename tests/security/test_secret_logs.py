"""The vCenter password never reaches a log: task debug and CPI logs, installation log, Django's.

The password reaches the director inside the cpi-config the Director tile
renders. It is registered for redaction whenever it is decrypted, so any
log line of that process that quotes it shows ``((redacted))`` instead. On
vcsim, the director still logs in with the decrypted password.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.db import connection

from director import runner
from director.cloud import cloud_for_director
from director.models import Config, TaskState
from opsconsole.crypto import encrypt
from opsconsole.redaction import REDACTED, RedactingFilter
from tiles import services
from tiles.services import installations

from .conftest import cpi_config_text

pytestmark = pytest.mark.django_db


def _root_redacting_filter() -> RedactingFilter:
    """The filter that settings.LOGGING puts on the console handler of the root logger."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, RedactingFilter):
                return f
    raise AssertionError("no RedactingFilter on the root logger's handlers (settings.LOGGING)")


def _capture(logger_name: str):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_root_redacting_filter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    return stream, lambda: logger.removeHandler(handler)


def test_a_password_decrypted_from_a_config_is_scrubbed_from_django_logs(vc_password):
    # Written as the migration or another process would: this process never saw it in clear.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO director_config (type, name, content, created_at, deleted) "
            "VALUES (%s, %s, %s, CURRENT_TIMESTAMP, %s)",
            ["cpi", "default", encrypt(cpi_config_text(vc_password)), False],
        )
    stream, done = _capture("director.test")
    try:
        log = logging.getLogger("director.test")
        log.warning("before any read: %s", "nothing secret")
        content = Config.latest("cpi").content  # decrypts, registers the password
        log.warning("cpi config is %s", content)
        try:
            raise ValueError(f"vCenter refused password {vc_password}")
        except ValueError:
            log.exception("login failed")
    finally:
        done()
    out = stream.getvalue()
    assert vc_password not in out
    assert f"password: {REDACTED}" in out  # the config line, scrubbed
    assert f"ValueError: vCenter refused password {REDACTED}" in out  # the traceback, too
    assert "user: admin@vsphere.local" in out  # the rest of the config stays readable


def test_the_cpi_log_redacts_the_password_given_by_the_cpi_config():
    from cpi.logging import LoggedCpi

    class Cloud:  # the wrapped cloud's answer quotes the password back
        def info(self):
            return {"echo": "vc-pw-echoed-1234", "password": "vc-pw-echoed-1234"}

    records: list = []
    logged = LoggedCpi(Cloud(), records.append, secrets=["vc-pw-echoed-1234"])
    assert logged.info()["echo"] == "vc-pw-echoed-1234"  # the caller gets the real answer
    assert "vc-pw-echoed-1234" not in str(records) and REDACTED in str(records)


# --------------------------------------------------------------------------- on vcsim


@runner.task_handler("test_security_cloud_login")
def _login_and_leak(ctx):
    """Log in through the director's cloud, and try every way a careless handler could leak."""
    cloud = cloud_for_director(ctx)
    found = cloud.has_vm("vm-00000000-0000-0000-0000-000000000000")
    config = Config.latest("cpi")
    ctx.debug(f"cpi config in use:\n{config.content}")
    logging.getLogger("director.test").warning("cpi config: %s", config.content)
    stage = ctx.stage("Checking", total=1)
    with stage.track(f"login as {config.content.splitlines()[5]}"):
        pass
    return f"has_vm={found}"


@pytest.fixture
def vcsim_director(vcsim, tiles_dirs):
    """The Director tile filled in for vcsim, its configs applied (inline, as a worker does)."""
    inv = vcsim.inventory
    services.set_iaas_configuration(
        {
            "vcenter_host": vcsim.host,
            "vcenter_username": vcsim.username,
            "vcenter_password": vcsim.password,
            "vcenter_ca_certificate": vcsim.ca_pem,
            "datacenter": inv["datacenters"][0],
            "ephemeral_datastores_string": ",".join(inv["datastores"]),
            "persistent_datastores_string": ",".join(inv["datastores"]),
        }
    )
    services.set_availability_zones(
        [{"name": "az1", "clusters": [{"cluster": inv["clusters"][0]}]}]
    )
    services.set_networks(
        {
            "networks": [
                {
                    "name": "infra",
                    "subnets": [
                        {
                            "iaas_identifier": inv["portgroups"][0],
                            "cidr": "10.40.1.0/24",
                            "gateway": "10.40.1.1",
                            "dns": "10.40.0.2",
                            "reserved_ip_ranges": "10.40.1.2-10.40.1.9",
                            "availability_zone_names": ["az1"],
                        }
                    ],
                }
            ]
        }
    )
    services.set_network_and_az({"network": "infra", "singleton_availability_zone": "az1"})
    inst = services.apply_changes("admin", deploy_products="none")
    assert installations.run_installation(inst.id) == "succeeded", services.installation_logs(
        inst.id
    )
    return inst


def test_on_vcsim_the_password_is_ciphertext_at_rest_used_to_log_in_and_in_no_log(
    vcsim, vcsim_director
):
    password = vcsim.password
    with connection.cursor() as cursor:
        cursor.execute("SELECT type, content FROM director_config")
        stored = dict(cursor.fetchall())
    assert set(stored) == {"cpi", "cloud"}
    assert password not in stored["cpi"] and "cpis" not in stored["cpi"]
    assert f"password: {password}" in Config.latest("cpi").content  # the director reads it

    stream, done = _capture("director.test")
    try:
        task = runner.create_task("test_security_cloud_login", "login", "admin", enqueue=False)
        assert runner.run_task(task.id) == TaskState.DONE
    finally:
        done()
    task.refresh_from_db()
    assert task.result == "has_vm=False"  # vcsim accepted the decrypted password

    debug = runner.read_output(task, "debug").text
    cpi_log = runner.read_output(task, "cpi").text
    events = str(runner.read_output(task, "event").events)
    assert "has_vm" in cpi_log  # the call was logged...
    assert f"password: {REDACTED}" in debug  # ...and the careless debug line scrubbed
    for text in (debug, cpi_log, events, task.result, stream.getvalue()):
        assert password not in text
    install_log = services.installation_logs(vcsim_director.id)
    assert "Updating director configs: cpi-config (done)" in install_log
    assert password not in install_log

    # The diff never shows it either, whoever asks.
    diff = services.director_diff()["cpi_configs"][0]
    assert diff["status"] == "same" and password not in str(services.director_diff())
