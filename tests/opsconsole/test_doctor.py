"""`manage.py doctor` says in plain words what works and what is wrong."""

import json

import pytest
from django.core.management import call_command


def _write_vcsim_facts(settings, vcsim, password=None):
    facts = {
        "host": vcsim.host,
        "url": vcsim.url,
        "username": vcsim.username,
        "password": password or vcsim.password,
        "cert_file": str(vcsim.cert_file),
        "inventory": vcsim.inventory,
    }
    settings.LOCAL_VCSIM_FILE.parent.mkdir(parents=True, exist_ok=True)
    settings.LOCAL_VCSIM_FILE.write_text(json.dumps(facts))


@pytest.mark.django_db(transaction=True)
def test_doctor_all_green_with_worker_and_vcsim(settings, vcsim, celery_worker, capsys):
    _write_vcsim_facts(settings, vcsim)
    try:
        call_command("doctor")
    finally:
        settings.LOCAL_VCSIM_FILE.unlink()
    out = capsys.readouterr().out
    for name in ("database", "broker", "worker", "vcenter"):
        assert f"ok   {name}" in out
    assert vcsim.host in out


@pytest.mark.django_db
def test_doctor_names_the_refusing_vcenter(settings, vcsim, capsys):
    _write_vcsim_facts(settings, vcsim, password="not-the-password")
    try:
        with pytest.raises(SystemExit) as exit_info:
            call_command("doctor")
    finally:
        settings.LOCAL_VCSIM_FILE.unlink()
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    vcenter_line = next(line for line in out.splitlines() if "vcenter" in line)
    assert "FAIL" in vcenter_line and vcsim.host in vcenter_line


@pytest.mark.django_db
def test_doctor_says_when_no_vcenter_is_configured(settings, capsys):
    settings.LOCAL_VCSIM_FILE.unlink(missing_ok=True)
    with pytest.raises(SystemExit):
        call_command("doctor")
    vcenter_line = next(line for line in capsys.readouterr().out.splitlines() if "vcenter" in line)
    assert "FAIL" in vcenter_line
    assert "no vCenter" in vcenter_line


@pytest.fixture
def registry(monkeypatch):
    """The doctor's checks as the apps registered them; a test's additions are dropped after."""
    from opsconsole import doctor

    monkeypatch.setattr(doctor, "_CHECKS", dict(doctor._CHECKS))
    return doctor


def test_the_director_adds_its_vcenter_check_at_start(registry):
    names = list(registry._CHECKS)
    assert names[:3] == ["database", "broker", "worker"]
    assert "vcenter" in names  # registered by DirectorConfig.ready, not imported by the doctor


@pytest.mark.django_db
def test_a_check_that_raises_is_a_failed_line_naming_it(registry, settings, capsys):
    def broken():
        raise RuntimeError("the ledger is locked")

    registry.register("ledger", broken, title="the ledger", quick=True)
    registry.register("worker", lambda: registry.Check("worker", True, "1 worker(s) answered"))
    registry.register("vcenter", lambda: registry.Check("vcenter", True, "vc.example: vCenter"))
    with pytest.raises(SystemExit):
        call_command("doctor")
    lines = capsys.readouterr().out.splitlines()
    assert any(
        "FAIL" in line
        and "ledger" in line
        and "cannot check the ledger: the ledger is locked" in line
        for line in lines
    )
    assert any(line.startswith("ok") and "vcenter" in line for line in lines)
    # /health runs only the quick ones: no worker ping, no vCenter login
    assert [c.name for c in registry.run_checks(quick=True)] == ["database", "broker", "ledger"]
