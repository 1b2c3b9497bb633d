"""The health monitor and resurrector on vcsim with a real worker: VMs that come back.

Each test deploys a small zookeeper-like deployment, breaks it in vCenter
behind the director's back (a VM removed from the inventory, a VM powered
off), runs the health monitor's scan the way Celery beat does, and checks
what vCenter and the console hold after: the instance's new VM (new cid,
same instance, same IP, the same persistent disk attached), the alerts and
the resurrection events, or, when resurrection may not act (switched off,
disabled by config, meltdown, a deploy in progress), that nothing was
recreated.
"""

from __future__ import annotations

import pytest
import yaml

from benchmarks.soap_calls import count_soap_calls
from director import locks, runner, services
from director.agent import agent_for
from director.health import monitor
from director.models import (
    AgentHeartbeat,
    Alert,
    Instance,
    IpAddress,
    PersistentDisk,
    ResurrectionEvent,
    TaskState,
    Vm,
)

from .conftest import (
    fix_tasks,
    power_off,
    unregister,
    wait_done,
    wait_fix,
    zookeeper_manifest,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def deploy(env, name, instances=3, **changes):
    wait_done(env.deploy(zookeeper_manifest(name, instances=instances, **changes)))
    return list(Instance.objects.filter(deployment__name=name).order_by("index"))


def facts(instance):
    """(cid, IPs, active disk cid) of an instance as the director has them."""
    vm = Vm.objects.get(instance=instance, active=True)
    ips = sorted(IpAddress.objects.filter(instance=instance).values_list("address", flat=True))
    disk = PersistentDisk.objects.get(instance=instance, active=True).disk_cid
    return vm.cid, ips, disk


def open_alerts(**filters):
    return Alert.objects.filter(resolved_at__isnull=True, **filters)


def test_a_vm_removed_from_vcenter_comes_back_with_its_ip_and_disk(
    director_env, vm_runtime, nats_server, settings
):
    settings.NATS_URL = nats_server.url  # the test asks the new VM's agent itself
    env, name = director_env, "hm-missing"
    instances = deploy(env, name)
    victim = instances[1]
    old_cid, ips, disk = facts(victim)
    # What the job wrote on its persistent disk (the VM runtime keeps a disk as a directory).
    (vm_runtime.disk(disk) / "hm-marker").write_text("written before the outage")
    unregister(env, old_cid)
    assert old_cid not in env.vms()

    report = monitor.scan()
    assert [p.cause for p in report.problems[name]] == ["missing_vm"]
    alert = open_alerts(category="vm_health").get()
    assert alert.instance == victim.name and alert.cause == "missing_vm"
    assert open_alerts(category="deployment_health", deployment=name).count() == 1
    task = wait_fix(name)
    assert task.state == TaskState.DONE, task.result
    assert task.description == "scan and fix" and task.username == "health_monitor"

    new_cid, new_ips, new_disk = facts(victim)
    assert new_cid != old_cid
    assert (new_ips, new_disk) == (ips, disk)
    in_vcenter = env.vms()
    assert old_cid not in in_vcenter
    seen = in_vcenter[new_cid]
    assert seen.power == "poweredOn"
    assert seen.ips == ips
    assert seen.disks == [disk]  # the same persistent disk, reattached
    assert seen.metadata["id"] == victim.uuid and seen.metadata["deployment"] == name
    assert seen.settings["agent_id"] == Vm.objects.get(cid=new_cid).agent_id
    # The new VM's agent runs the jobs again, with the same disk mounted and its data.
    agent = agent_for(Vm.objects.get(cid=new_cid))
    assert agent.get_state()["job_state"] == "running"
    assert disk in agent.list_disk()
    assert (vm_runtime.disk(disk) / "hm-marker").read_text() == "written before the outage"
    # the other instances were left alone
    assert {facts(i)[0] for i in instances if i.id != victim.id} <= set(in_vcenter)

    outcome = ResurrectionEvent.objects.get(decision="recreated")
    assert outcome.instance == victim.name and outcome.task_id == task.id
    assert outcome.old_cid == old_cid and outcome.new_cid == new_cid
    assert 0 < outcome.seconds_to_recover < 120
    decisions = list(
        ResurrectionEvent.objects.filter(instance=victim.name)
        .order_by("id")
        .values_list("decision", flat=True)
    )
    assert decisions == ["detected", "resurrect", "recreated"]

    # The next scan finds everything healthy and closes the alerts.
    report = monitor.scan()
    assert report.problems[name] == []
    assert not open_alerts(deployment=name).exists()
    assert fix_tasks(name).count() == 1


def test_a_vm_powered_off_behind_the_directors_back_is_recreated(director_env):
    env, name = director_env, "hm-off"
    instances = deploy(env, name, instances=2)
    victim = instances[0]
    old_cid, ips, disk = facts(victim)
    power_off(env, old_cid)

    report = monitor.scan()
    assert [(p.instance.uuid, p.cause) for p in report.problems[name]] == [
        (victim.uuid, "powered_off")
    ]
    assert "poweredOff" in open_alerts(category="vm_health").get().title
    assert wait_fix(name).state == TaskState.DONE

    new_cid, new_ips, new_disk = facts(victim)
    in_vcenter = env.vms()
    assert new_cid != old_cid and old_cid not in in_vcenter  # the old VM was deleted
    assert in_vcenter[new_cid].power == "poweredOn"
    assert (new_ips, new_disk) == (ips, disk) and in_vcenter[new_cid].disks == [disk]
    monitor.scan()
    assert not open_alerts(deployment=name).exists()


def test_resurrection_off_globally_alerts_and_recreates_nothing(director_env):
    env, name = director_env, "hm-paused"
    instances = deploy(env, name, instances=2)
    services.set_resurrection(False, "admin")
    old_cid, _, _ = facts(instances[0])
    unregister(env, old_cid)

    for _ in range(2):
        report = monitor.scan()
    assert [p.cause for p in report.problems[name]] == ["missing_vm"]
    assert open_alerts(category="vm_health", deployment=name).count() == 1
    assert not fix_tasks(name).exists()
    assert Vm.objects.get(instance=instances[0]).cid == old_cid
    assert old_cid not in env.vms()
    # one decision recorded, not one per scan
    assert ResurrectionEvent.objects.filter(decision="disabled").count() == 1

    # A scan and fix queued anyway (by hand) refuses to run while paused.
    task = runner.create_task(
        "scan_and_fix", "scan and fix", "admin", name, {"jobs": {"zookeeper": [instances[0].uuid]}}
    )
    task = wait_fix(name)
    assert task.state == TaskState.ERROR and "paused" in task.result


def test_resurrection_config_disables_one_instance_group(director_env):
    env, name = director_env, "hm-config"
    extra = {
        "name": "other",
        "azs": ["z1"],
        "instances": 1,
        "jobs": [{"name": "smoke-tests", "release": "zookeeper", "properties": {}}],
        "vm_type": "small",
        "stemcell": "default",
        "networks": [{"name": "default"}],
    }
    manifest = zookeeper_manifest(name, instances=1)
    manifest["instance_groups"].append(extra)
    wait_done(env.deploy(manifest))
    zk = Instance.objects.get(deployment__name=name, group="zookeeper")
    other = Instance.objects.get(deployment__name=name, group="other")
    services.update_config(
        "resurrection",
        "no-zk",
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "enabled": False,
                        "include": {"deployments": [name], "instance_groups": ["zookeeper"]},
                    }
                ]
            }
        ),
        "admin",
    )
    zk_cid = Vm.objects.get(instance=zk).cid
    other_cid = Vm.objects.get(instance=other).cid
    unregister(env, zk_cid)
    unregister(env, other_cid)

    monitor.scan()
    task = wait_fix(name)
    assert task.state == TaskState.DONE
    assert task.args == {"jobs": {"other": [other.uuid]}}
    assert Vm.objects.get(instance=other).cid != other_cid  # recreated
    assert Vm.objects.get(instance=zk).cid == zk_cid  # left dead, as configured
    assert zk_cid not in env.vms()
    disabled = open_alerts(cause="resurrection_disabled").get()
    assert disabled.title == "Resurrection is disabled by resurrection config"
    assert ResurrectionEvent.objects.filter(
        instance=zk.name, decision="disabled_by_config"
    ).exists()
    monitor.scan()
    assert fix_tasks(name).count() == 1
    assert open_alerts(category="vm_health").get().instance == zk.name


def test_meltdown_recreates_nothing_and_raises_one_alert(director_env, meltdown):
    env, name = director_env, "hm-melt"
    meltdown(minimum_down_jobs=2, percent_threshold=50, time_threshold=600)
    instances = deploy(env, name, instances=3)
    cids = [facts(i)[0] for i in instances[:2]]
    for cid in cids:
        unregister(env, cid)

    for _ in range(3):
        report = monitor.scan()
    assert report.meltdown == [name]
    assert not fix_tasks(name).exists()
    melt = Alert.objects.filter(cause="meltdown")
    assert melt.count() == 1 and melt.get().title == "We are in meltdown"
    assert melt.get().severity == 1
    assert [Vm.objects.get(instance=i).cid for i in instances[:2]] == cids
    assert ResurrectionEvent.objects.filter(decision="meltdown").count() == 2


def test_below_the_meltdown_threshold_every_vm_comes_back(director_env, meltdown):
    env, name = director_env, "hm-below"
    meltdown(minimum_down_jobs=3, percent_threshold=50, time_threshold=600)
    instances = deploy(env, name, instances=3)
    old = {i.id: facts(i) for i in instances[:2]}
    for cid, _, _ in old.values():
        unregister(env, cid)

    report = monitor.scan()
    assert report.meltdown == [] and len(report.problems[name]) == 2
    assert wait_fix(name).state == TaskState.DONE
    in_vcenter = env.vms()
    for i in instances[:2]:
        cid, ips, disk = facts(i)
        assert cid != old[i.id][0] and (ips, disk) == old[i.id][1:]
        assert in_vcenter[cid].power == "poweredOn" and in_vcenter[cid].disks == [disk]
    assert ResurrectionEvent.objects.filter(decision="recreated").count() == 2
    assert not Alert.objects.filter(cause="meltdown").exists()


def test_a_deploy_in_progress_is_never_raced(director_env):
    env, name = director_env, "hm-busy"
    instances = deploy(env, name, instances=2)
    cid = facts(instances[0])[0]
    unregister(env, cid)

    # A deploy holds the deployment's lock: the monitor does not judge it.
    held = locks.acquire(locks.deployment_lock_name(name), None, timeout=0)
    try:
        report = monitor.scan()
        assert name in report.skipped and name not in report.problems
        assert not Alert.objects.filter(deployment=name).exists()
        # A scan and fix queued meanwhile cannot take the lock and touches nothing.
        runner.create_task(
            "scan_and_fix",
            "scan and fix",
            "health_monitor",
            name,
            {"jobs": {"zookeeper": [instances[0].uuid]}},
        )
        task = wait_fix(name)
        assert task.state == TaskState.ERROR
        assert "Unable to get deployment lock" in task.result
        assert Vm.objects.get(instance=instances[0]).cid == cid
    finally:
        locks.release(held)

    # A deploy queued or running (no lock yet) is skipped too.
    deploy_task = env.deploy(zookeeper_manifest(name, instances=2))
    report = monitor.scan()
    assert name in report.skipped
    assert fix_tasks(name).count() == 1
    wait_done(deploy_task)


def test_a_scan_is_one_vcenter_round_trip(director_env):
    env, name = director_env, "hm-calls"
    deploy(env, name, instances=3)
    monitor.scan()  # logs in and learns the VM folder once per process
    with count_soap_calls() as calls:
        report = monitor.scan()
    assert report.vms == 3 and report.problems[name] == []
    assert calls == {"RetrievePropertiesEx": 1}, calls


def test_new_alerts_are_emailed_once_when_hm_email_is_configured(director_env, mailoutbox):
    from director.health import alerts

    env, name = director_env, "hm-mail"
    alerts.set_email_settings(
        {
            "recipients": ["ops@example.com"],
            "from": "hm@example.com",
            "host": "smtp.example.com",
            "port": 587,
            "password": "smtp-secret-1",
        }
    )
    instances = deploy(env, name, instances=1)
    services.set_resurrection(False, "admin")
    unregister(env, facts(instances[0])[0])
    monitor.scan()
    monitor.scan()
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ops@example.com"] and mail.from_email == "hm@example.com"
    assert instances[0].name in mail.body and "missing from vCenter" in mail.body
    assert f"{name} has instances which do not have VMs" in mail.body
    from director.models import DirectorAttribute

    assert "smtp-secret-1" not in DirectorAttribute.get("hm_email")  # encrypted at rest


def test_a_silent_agent_is_recreated_and_failing_jobs_are_only_alerted(director_env):
    """Heartbeats as the agent listener records them: one agent silent past agent_timeout
    (its VM older than that), one reporting failing jobs."""
    from datetime import timedelta

    from django.utils import timezone

    env, name = director_env, "hm-beats"
    silent, failing = deploy(env, name, instances=2)
    silent_vm = Vm.objects.get(instance=silent, active=True)
    failing_vm = Vm.objects.get(instance=failing, active=True)
    now = timezone.now()
    Vm.objects.filter(id=silent_vm.id).update(created_at=now - timedelta(minutes=5))
    AgentHeartbeat.objects.create(
        agent_id=silent_vm.agent_id,
        last_heartbeat_at=now - timedelta(minutes=2),
        job_state="running",
    )
    AgentHeartbeat.objects.create(
        agent_id=failing_vm.agent_id, last_heartbeat_at=now, job_state="failing"
    )

    report = monitor.scan()
    causes = {p.instance.uuid: p.cause for p in report.problems[name]}
    assert causes == {silent.uuid: "unresponsive_agent", failing.uuid: "failing"}
    task = wait_fix(name)
    assert task.state == TaskState.DONE, task.result
    assert task.args == {"jobs": {"zookeeper": [silent.uuid]}}  # failing jobs are not recreated
    assert Vm.objects.get(instance=silent, active=True).cid != silent_vm.cid
    assert Vm.objects.get(instance=failing, active=True).cid == failing_vm.cid
    assert silent_vm.cid not in env.vms()
    failing_alert = open_alerts(category="vm_health").get(instance=failing.name)
    assert "failing" in failing_alert.title and failing_alert.decision == ""


def test_a_resurrection_that_cannot_work_fails_naming_why_and_waits_to_retry(director_env):
    from director.models import Stemcell

    env, name = director_env, "hm-fail"
    (instance,) = deploy(env, name, instances=1)
    cid = facts(instance)[0]
    Stemcell.objects.all().delete()  # the stemcell it was deployed with is gone
    unregister(env, cid)

    monitor.scan()
    task = wait_fix(name)
    assert task.state == TaskState.ERROR
    assert "no longer uploaded" in task.result
    step = [e for e in runner.read_output(task, "event").events if e.get("state") == "failed"]
    assert step and step[0]["stage"] == "Applying problem resolutions"
    failed = ResurrectionEvent.objects.get(decision="failed")
    assert failed.instance == instance.name and "no longer uploaded" in failed.message
    assert open_alerts(category="vm_health").get().decision == "failed"
    monitor.scan()  # within the retry interval: no second task
    assert fix_tasks(name).count() == 1
