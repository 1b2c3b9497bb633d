"""The health monitor's scan: every managed VM read in one vCenter round trip, every interval.

``scan()`` runs on Celery beat every ``HM_SCAN_INTERVAL`` seconds
(``OPSCONSOLE_HM_SCAN_INTERVAL``, default 10; see ``director.schedule``)
and can be called directly. One pass:

1. Deployments being changed are skipped (BOSH skips locked deployments):
   an unexpired deployment lock, or any queued/running task of the
   deployment (a deploy, delete, errand or the resurrector's own ``scan and
   fix``). They are checked again after the vCenter read, so a deploy that
   started meanwhile (and may be deleting VMs on purpose) is not judged.
2. Every instance that expects a VM (not a compilation or errand instance,
   not ``detached``, not ``ignore``d) with its active VM, and one
   ``VSphereCloud.vm_health`` call for all their cids (power state and our
   metadata, one ``RetrievePropertiesEx``).
3. Per instance, a cause or none (``classify``):

   ``no_vm``               the director has no VM for it (BOSH "has no VM")
   ``missing_vm``          its VM is not in vCenter (deleted behind our back)
   ``powered_off``         its VM is not powered on. The director never powers
                           a VM off except while deleting it, and that happens
                           under the deployment lock (skipped above); ``bosh
                           stop`` keeps the VM running and ``stop --hard``
                           deletes it. So a powered-off VM of an unlocked
                           deployment was powered off behind its back, and no
                           power record is needed. Should the director ever
                           power VMs off outside a lock, record it and honour
                           it in ``classify``.
   ``unresponsive_agent``  its agent's last heartbeat (``AgentHeartbeat``,
                           written by the agent listener) is older than
                           ``HM_AGENT_TIMEOUT`` (BOSH: 60 s). An agent never
                           heard from is not judged (no listener runs, or it
                           has not beaten yet), nor a VM younger than that.
   ``failing``             its agent's last heartbeat reports ``job_state:
                           failing`` (a job process died): alerted on, never
                           resurrected (a new VM would run the job the same way).

4. Alerts (``director.health.alerts``): a ``vm_health`` alert per unhealthy
   instance and one ``deployment_health`` alert per deployment that has
   any, kept open while the condition holds and resolved when it ends;
   alerts of deployments that are gone are resolved too.
5. The resurrector's decision for each deployment with unhealthy instances
   (``decide``): meltdown (one alert, nothing recreated), resurrection off
   globally or by config (alert, nothing recreated), else one ``scan and
   fix`` task (``director.health.resurrector``) for the instances it may fix.
6. New alerts are emailed when HM email is configured.

Heartbeats and agent alerts arrive by NATS into ``AgentHeartbeat`` /
``AgentAlert`` (``director.agents.listener``); this scan only reads them.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from director import locks, runner
from director.cloud import CachedCloud
from director.manifest import load_yaml
from director.models import (
    AgentHeartbeat,
    Alert,
    AlertCategory,
    Config,
    Decision,
    Deployment,
    DirectorAttribute,
    Instance,
    Lock,
    ResurrectionEvent,
    Severity,
    Task,
    Vm,
)
from director.runner import expire_timed_out_tasks
from director.services.resurrection import resurrection_enabled
from opsconsole.redaction import redact_text

from . import alerts
from .rules import MeltdownThresholds, ResurrectionRules, RuleError, in_meltdown

log = logging.getLogger(__name__)

#: Where Apply Changes stores the Director tile's meltdown thresholds (tiles.services.installations.configs).
MELTDOWN_ATTRIBUTE = "hm_meltdown"

CAUSE_TEXT = {
    "no_vm": "has no VM",
    "missing_vm": "VM {cid} is missing from vCenter",
    "powered_off": "VM {cid} is {power} in vCenter (not by the director)",
    "unresponsive_agent": "agent {agent} has timed out (no heartbeat for {timeout:g} s)",
    "failing": "has failing jobs (agent {agent} reports job_state failing)",
}
#: Causes the resurrector acts on (BOSH: missing VMs and timed-out agents). A job that
#: fails on a healthy VM is alerted on, not recreated: a new VM would run it the same way.
RESURRECTABLE = ("no_vm", "missing_vm", "powered_off", "unresponsive_agent")
#: The resurrector's task (``health.resurrector`` handles it); BOSH's description, by
#: which the monitor finds running ones too.
RESURRECTION_TASK = "scan_and_fix"
RESURRECTION_DESCRIPTION = "scan and fix"


def vm_health_key(deployment: str, instance_uuid: str) -> str:
    """The key of an instance's VM health alert (the resurrector clears it on recovery)."""
    return f"vm_health:{deployment}:{instance_uuid}"


def agent_timeout() -> float:
    return float(getattr(settings, "HM_AGENT_TIMEOUT", 60))


def retry_interval() -> float:
    """Seconds before a failed ``scan and fix`` of a deployment is tried again."""
    return float(getattr(settings, "HM_RESURRECTION_RETRY_INTERVAL", 60))


# --------------------------------------------------------------------------- reading


#: One vCenter session per worker process, kept between scans (a scan is one round trip).
_cloud = CachedCloud()


def vcenter_view(cloud: Any, cids: list[str]) -> dict[str, dict]:
    """``{cid: {"power_state", "metadata"}}`` for the VMs vCenter has (one round trip)."""
    if not cids:
        return {}
    return cloud.vm_health(list(cids))


@dataclass(frozen=True)
class Beat:
    """An agent's last heartbeat as the agent listener recorded it."""

    at: datetime | None
    job_state: str


def heartbeats_for(agent_ids: list[str]) -> dict[str, Beat]:
    return {
        agent_id: Beat(at, job_state or "")
        for agent_id, at, job_state in AgentHeartbeat.objects.filter(
            agent_id__in=agent_ids
        ).values_list("agent_id", "last_heartbeat_at", "job_state")
    }


def classify(
    instance: Instance,
    vm: Vm | None,
    facts: dict[str, dict],
    beats: dict[str, Beat],
    now: datetime,
) -> str | None:
    """The cause that makes ``instance`` unhealthy, or None (see the module docstring)."""
    if vm is None:
        return "no_vm"
    seen = facts.get(vm.cid)
    if seen is None:
        return "missing_vm"
    if seen.get("power_state") != "poweredOn":
        return "powered_off"
    beat = beats.get(vm.agent_id)
    timeout = timedelta(seconds=agent_timeout())
    if beat is None or beat.at is None:
        return None
    if now - beat.at > timeout and now - vm.created_at > timeout:
        return "unresponsive_agent"
    if beat.job_state == "failing" and instance.state == "started":
        return "failing"
    return None


def busy_deployments(names: list[str]) -> set[str]:
    """Deployments a task is changing: a held lock, or a queued/running task of theirs."""
    expire_timed_out_tasks(Task.objects.filter(deployment_name__in=names))
    busy = set(
        Task.objects.active()
        .filter(deployment_name__in=names)
        .values_list("deployment_name", flat=True)
    )
    held = Lock.objects.filter(
        name__in=[locks.deployment_lock_name(n) for n in names], expired_at__gte=timezone.now()
    ).values_list("name", flat=True)
    busy.update(name.removeprefix("lock:deployment:") for name in held)
    return busy


def _errand_groups(deployment: Deployment) -> set[str]:
    try:
        manifest = load_yaml(deployment.manifest) if deployment.manifest else {}
    except Exception:
        return set()
    groups = (manifest or {}).get("instance_groups") if isinstance(manifest, dict) else None
    return {
        g.get("name")
        for g in groups or []
        if isinstance(g, dict) and g.get("lifecycle") == "errand"
    }


# --------------------------------------------------------------------------- scan


@dataclass
class Problem:
    instance: Instance
    vm: Vm | None
    cause: str
    detail: str


@dataclass
class ScanReport:
    """What one pass saw and did (returned for tests and the management command)."""

    deployments: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    vms: int = 0
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    meltdown: list[str] = field(default_factory=list)
    tasks: dict[str, int] = field(default_factory=dict)
    error: str = ""


def scan(now: datetime | None = None, cloud: Any = None) -> ScanReport:
    """One health monitor pass over every deployment (see the module docstring)."""
    now = now or timezone.now()
    report = ScanReport()
    deployments = {d.name: d for d in Deployment.objects.all()}
    busy = busy_deployments(list(deployments))
    report.skipped = sorted(busy)
    watched = [d for name, d in deployments.items() if name not in busy]
    expected: dict[str, list[Instance]] = {}
    for d in watched:
        errands = _errand_groups(d)
        expected[d.name] = [
            i
            for i in Instance.objects.filter(deployment=d, compilation=False, ignore=False)
            .exclude(state="detached")
            .prefetch_related("vms")
            .order_by("group", "index")
            if i.group not in errands
        ]
    active = {i.id: i.active_vm for insts in expected.values() for i in insts}
    cids = [vm.cid for vm in active.values() if vm is not None]
    report.vms = len(cids)
    try:
        if cloud is not None:
            facts = vcenter_view(cloud, cids)
        elif cids:
            facts = _cloud.call(lambda kept: vcenter_view(kept, cids))
        else:  # nothing deployed: no need for a vCenter (or a cpi config) at all
            facts = {}
    except Exception as exc:
        report.error = redact_text(str(exc)) or type(exc).__name__
        log.warning("health scan: vCenter could not be read: %s", report.error)
        return report
    beats = heartbeats_for([vm.agent_id for vm in active.values() if vm is not None])
    # A deploy that started while vCenter was read may be deleting VMs on purpose.
    late = busy_deployments([d.name for d in watched])
    report.skipped = sorted(busy | late)
    report.deployments = sorted(n for n in expected if n not in late)

    for name in report.deployments:
        problems = []
        for i in expected[name]:
            vm = active[i.id]
            cause = classify(i, vm, facts, beats, now)
            if cause is not None:
                seen = facts.get(vm.cid, {}) if vm else {}
                detail = CAUSE_TEXT[cause].format(
                    cid=vm.cid if vm else "",
                    power=seen.get("power_state", ""),
                    agent=vm.agent_id if vm else "",
                    timeout=agent_timeout(),
                )
                problems.append(Problem(i, vm, cause, detail))
        report.problems[name] = problems
        _record_health(name, expected[name], problems, now)
        fixable = [p for p in problems if p.cause in RESURRECTABLE]
        if fixable:
            task_id = decide(deployments[name], expected[name], fixable, now)
            if task_id == -1:
                report.meltdown.append(name)
            elif task_id:
                report.tasks[name] = task_id
        elif problems:  # only failing jobs: nothing for the resurrector to hold back
            alerts.resolve_resurrector_alerts(name, now)
        else:
            alerts.resolve_deployment(name, now)
    alerts.resolve_gone_deployments(set(deployments), now)
    alerts.send_new_alerts()
    return report


def _record_health(name: str, instances: list[Instance], problems: list[Problem], now) -> None:
    """Open or refresh the vm_health alerts of ``problems``; resolve those of healthy instances."""
    bad = {p.instance.uuid for p in problems}
    for p in problems:
        alert, created = alerts.raise_alert(
            vm_health_key(name, p.instance.uuid),
            category=AlertCategory.VM_HEALTH,
            severity=Severity.CRITICAL,
            cause=p.cause,
            title=f"{p.instance.name} ({p.instance.index}) {p.detail}",
            summary=p.detail,
            deployment=name,
            instance=p.instance.name,
            vm_cid=p.vm.cid if p.vm else "",
            now=now,
        )
        if created:
            ResurrectionEvent.objects.create(
                created_at=now,
                deployment=name,
                instance=p.instance.name,
                cause=p.cause,
                decision=Decision.DETECTED,
                old_cid=p.vm.cid if p.vm else "",
                message=p.detail,
            )
    healthy = [vm_health_key(name, i.uuid) for i in instances if i.uuid not in bad]
    alerts.resolve(healthy, now)
    if problems:
        by_group: dict[str, list[str]] = defaultdict(list)
        for p in problems:
            by_group[p.instance.group].append(p.instance.uuid)
        causes = sorted({p.cause for p in problems})
        title = (
            f"{name} has instances which do not have VMs"
            if set(causes) <= {"no_vm", "missing_vm"}
            else f"{name} has unhealthy instances ({', '.join(causes)})"
        )
        alerts.raise_alert(
            f"deployment_health:{name}",
            category=AlertCategory.DEPLOYMENT_HEALTH,
            severity=Severity.CRITICAL,
            cause=",".join(causes),
            title=title,
            summary=json.dumps({"jobs_to_instance_ids": dict(sorted(by_group.items()))}),
            deployment=name,
            now=now,
        )


# --------------------------------------------------------------------------- the resurrector's decision


def meltdown_thresholds() -> MeltdownThresholds:
    raw = DirectorAttribute.get(MELTDOWN_ATTRIBUTE)
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return MeltdownThresholds.from_mapping(data)


def resurrection_rules() -> ResurrectionRules:
    """Every current resurrection config's rules; a config that does not parse is skipped."""

    docs = []
    for config in Config.latest_set("resurrection"):
        try:
            doc = yaml.safe_load(config.content)
            ResurrectionRules.from_documents([doc])
        except (yaml.YAMLError, RuleError) as exc:
            log.warning("resurrection config '%s' ignored: %s", config.name, exc)
            continue
        docs.append(doc)
    return ResurrectionRules.from_documents(docs)


def _set_decision(name: str, problems: list[Problem], decision: str, now, task=None, message=""):
    """Record ``decision`` for each problem whose alert does not carry it yet (no repeats)."""
    for p in problems:
        key = vm_health_key(name, p.instance.uuid)
        if (
            not Alert.objects.filter(key=key, resolved_at__isnull=True)
            .exclude(decision=decision)
            .update(decision=decision)
        ):
            continue
        ResurrectionEvent.objects.create(
            created_at=now,
            deployment=name,
            instance=p.instance.name,
            cause=p.cause,
            decision=decision,
            task=task,
            old_cid=p.vm.cid if p.vm else "",
            message=message,
        )


def decide(deployment: Deployment, instances: list[Instance], problems: list[Problem], now):
    """Meltdown, disabled, or one ``scan and fix`` task: its id, -1 for meltdown, else None."""
    name = deployment.name
    thresholds = meltdown_thresholds()
    window = now - timedelta(seconds=thresholds.time_threshold)
    unhealthy = (
        Alert.objects.filter(
            deployment=name,
            category=AlertCategory.VM_HEALTH,
            cause__in=RESURRECTABLE,
            last_seen_at__gte=window,
        )
        .values("instance")
        .distinct()
        .count()
    )
    total = len(instances)
    if in_meltdown(unhealthy, total, thresholds):
        message = (
            f"{unhealthy} of {total} instances unhealthy within {thresholds.time_threshold} s "
            f"(meltdown: at least {thresholds.minimum_down_jobs} and "
            f"{thresholds.percent_threshold:g}%): nothing is recreated"
        )
        alerts.raise_alert(
            f"meltdown:{name}",
            category=AlertCategory.DEPLOYMENT_HEALTH,
            severity=Severity.ALERT,
            cause="meltdown",
            title="We are in meltdown",
            summary=f"{name}: {message}",
            source="hm plugin resurrector",
            deployment=name,
            now=now,
        )
        _set_decision(name, problems, Decision.MELTDOWN, now, message=message)
        return -1
    alerts.resolve([f"meltdown:{name}"], now)

    if not resurrection_enabled():
        _set_decision(
            name, problems, Decision.DISABLED, now, message="resurrection is off globally"
        )
        return None
    rules = resurrection_rules()
    fixable: dict[str, list[str]] = defaultdict(list)
    disabled_groups = set()
    never_deployed = [p for p in problems if not (p.instance.spec_json or {}).get("applied")]
    if never_deployed:
        _set_decision(
            name,
            never_deployed,
            Decision.SKIPPED,
            now,
            message="never deployed (no applied state to recreate from): deploy it again",
        )
    for p in problems:
        if p in never_deployed:
            continue
        if rules.enabled(name, p.instance.group):
            fixable[p.instance.group].append(p.instance.uuid)
        else:
            disabled_groups.add(p.instance.group)
    off = [p for p in problems if p.instance.group in disabled_groups]
    if off:
        _set_decision(
            name,
            off,
            Decision.DISABLED_BY_CONFIG,
            now,
            message="Resurrection is disabled by resurrection config",
        )
    for group in sorted(disabled_groups):
        alerts.raise_alert(
            f"resurrection_disabled:{name}:{group}",
            category=AlertCategory.DEPLOYMENT_HEALTH,
            severity=Severity.WARNING,
            cause="resurrection_disabled",
            title="Resurrection is disabled by resurrection config",
            summary=f"{name}/{group}: unhealthy instances are not recreated",
            source="hm plugin resurrector",
            deployment=name,
            now=now,
        )
    alerts.resolve(
        [
            a.key
            for a in Alert.objects.filter(
                deployment=name, cause="resurrection_disabled", resolved_at__isnull=True
            )
            if a.key.rsplit(":", 1)[-1] not in disabled_groups
        ],
        now,
    )
    if not fixable:
        return None
    with transaction.atomic():
        # One scan and fix at a time: the deployment was not busy a moment ago; a task
        # queued since (a deploy, another scan) makes us wait for the next pass.
        if Task.objects.active().filter(deployment_name=name).exists():
            return None
        # A fix that just failed is not retried every scan: once per retry interval.
        retry_after = now - timedelta(seconds=retry_interval())
        if Task.objects.filter(
            deployment_name=name,
            type=RESURRECTION_TASK,
            state="error",
            finished_at__gte=retry_after,
        ).exists():
            return None
        task = runner.create_task(
            RESURRECTION_TASK,
            RESURRECTION_DESCRIPTION,
            "health_monitor",
            deployment_name=name,
            args={"jobs": {g: sorted(u) for g, u in sorted(fixable.items())}},
        )
    _set_decision(
        name,
        [p for p in problems if p.instance.group not in disabled_groups],
        Decision.RESURRECT,
        now,
        task=task,
        message=f"scan and fix task {task.id}",
    )
    return task.id
