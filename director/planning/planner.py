"""``DeploymentPlanner``: manifest + cloud-config + current state -> ``DeploymentPlan``.

The manifest arrives interpolated and validated by ``director.manifest``
(BOSH v2 shape, plain dicts); the cloud-configs arrive consolidated into one
dict. The planner still checks every key it relies on, so a bad value gives
a ``PlanError`` naming its path rather than a traceback.

Steps, as in BOSH's ``Assembler#bind_models``; ``DeploymentPlanner.plan``
calls one method per step:

1. Parse the cloud-config: AZs, vm_types, vm_extensions, disk_types,
   networks (subnets with reserved/static ranges, see ``cloud_config.py``
   and ``networks.py``), then the instance groups (``groups.py``).
2. Per instance group, in manifest order: place instances in AZs, keep or
   create instances, assign indexes, elect the bootstrap (``azs.py``).
3. Reserve IPs for the whole deployment: first existing instances keep their
   still-valid dynamic IPs (every group), then static IPs are reserved, then
   the remaining dynamic IPs are handed out lowest first
   (``reservations.py``, one address at a time by ``ips.py``).
4. Build each instance's desired state (merged cloud properties AZ <- vm_type
   <- vm_extensions, stemcell, networks, disk, env, jobs) and compare it
   with what was applied (``instance_plans.py``, ``changes.py``).
5. With ``vm_strategy: create-swap-delete``, instances that are recreated get
   fresh dynamic IPs for the duplicate VM; their old IPs are released later.
6. Instances no longer needed and groups removed from the manifest get
   ``delete`` plans; their IPs, and IPs that changed, are listed in
   ``ip_reservations_to_release``.

Errands (``lifecycle: errand``) are planned like service groups and reserve
their IPs, but their instances without a VM get ``change == "none"``: their
VM is created when the errand runs. ``migrated_from`` and ``persistent_disks``
(plural) are refused for now with a clear error.

No I/O: ``uuid_factory`` (default ``uuid4``) names new instances, and
``jobs_fingerprint`` (default: a digest of job names, releases and
properties) summarises a group's jobs, so tests are deterministic.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from director.planning.azs import place_instances, tie_breaker
from director.planning.cloud_config import CloudConfig, mapping, parse_cloud_config
from director.planning.errors import PlanError, UnresponsiveInstance, UpdateConfigError
from director.planning.groups import GroupSpec, group_names, parse_group, static_pools
from director.planning.inputs import MISSING_VM, ExistingInstance, PlanOptions, StemcellRef
from director.planning.instance_plans import (
    delete_plan,
    desired,
    instance_plan,
    obsolete_reason,
    releases,
    with_networks,
)
from director.planning.ips import IpAllocator
from director.planning.model import DeploymentPlan, InstanceGroupPlan
from director.planning.reservations import (
    PlacedGroup,
    Reservations,
    fresh_for_duplicates,
    make_allocator,
    reserve_ips,
)
from director.planning.update import UpdateConfig, WatchTime, resolve_update_config


def default_jobs_fingerprint(group: Mapping[str, Any]) -> str:
    """A digest of the group's job names, releases and properties (and the
    group-level ``properties``). Stands in for the rendered templates' digest
    until templates are rendered; equal inputs give equal fingerprints."""
    payload = {
        "jobs": [
            {
                "name": job.get("name"),
                "release": job.get("release"),
                "properties": job.get("properties"),
                "consumes": job.get("consumes"),
                "provides": job.get("provides"),
            }
            for job in group.get("jobs") or []
            if isinstance(job, Mapping)
        ],
        "properties": group.get("properties"),
    }
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class DeploymentPlanner:
    """Plans one deployment. Construct, then call ``plan()``."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        cloud_config: Mapping[str, Any],
        existing: Sequence[ExistingInstance] = (),
        stemcells: Mapping[str, StemcellRef] | None = None,
        ips_in_use: Mapping[str, str] | None = None,
        options: PlanOptions | None = None,
        jobs_fingerprint: Callable[[Mapping[str, Any]], str] | None = None,
        uuid_factory: Callable[[], str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.cloud_config = cloud_config
        self.options = options or PlanOptions()
        self.existing = tuple(
            replace(e, unresponsive=True, vm_missing=why == MISSING_VM)
            if (why := self.options.unreachable.get(e.uuid))
            else e
            for e in existing
        )
        self.stemcells = dict(stemcells or {})
        self.ips_in_use = dict(ips_in_use or {})
        self.jobs_fingerprint = jobs_fingerprint or default_jobs_fingerprint
        self.uuid_factory = uuid_factory or (lambda: str(uuidlib.uuid4()))
        self._taken_uuids = {e.uuid for e in self.existing}
        self.by_group: dict[str, list[ExistingInstance]] = {}
        for instance in self.existing:
            self.by_group.setdefault(instance.group, []).append(instance)

    def plan(self) -> DeploymentPlan:
        manifest = mapping(self.manifest, "")
        name = manifest.get("name")
        if not isinstance(name, str) or not name:
            raise PlanError("name", "is required")
        cloud = parse_cloud_config(self.cloud_config)
        raw_groups, seen = group_names(manifest)
        deployment_update = manifest.get("update")
        groups = [self._parse_group(raw, cloud, deployment_update) for raw in raw_groups]
        self._refuse_unresponsive(seen)

        placed = [self._place(name, group) for group in groups]
        allocator = make_allocator(
            cloud,
            deployment=name,
            existing=self.existing,
            ips_in_use=self.ips_in_use,
            director_ips=self.options.director_ips,
        )
        reservations = reserve_ips(allocator, placed)
        group_plans = [self._group_plan(p, cloud, reservations) for p in placed]
        group_plans = self._swap_ips_of_duplicates(allocator, placed, group_plans)

        plan = DeploymentPlan(
            name=name,
            instance_groups=tuple(group_plans),
            obsolete_groups=self._removed_groups(seen, deployment_update),
            initial_deploy=(
                self.options.initial_deploy
                if self.options.initial_deploy is not None
                else not self.existing
            ),
            warnings=tuple(
                f"instance {e.label} is ignored: the deploy leaves it as it is"
                for e in self.existing
                if e.ignore
            ),
        )
        return replace(plan, ip_reservations_to_release=releases(plan))

    # -- 1. parsing ------------------------------------------------------

    def _parse_group(
        self, raw: Mapping[str, Any], cloud: CloudConfig, deployment_update: object
    ) -> GroupSpec:
        return parse_group(
            raw,
            cloud,
            deployment_update,
            stemcells=self.stemcells,
            options=self.options,
            jobs_fingerprint=self.jobs_fingerprint,
        )

    def _refuse_unresponsive(self, groups_in_manifest: set[str]) -> None:
        """An unresponsive instance of a group being deployed stops the plan,
        unless the deploy recreates it (``fix``)."""
        for instance in self.existing:
            if (
                instance.unresponsive
                and not self.options.fix
                and instance.group in groups_in_manifest
            ):
                raise UnresponsiveInstance(
                    f"instance_groups/{instance.group}",
                    f"instance {instance.label} is not responding; run cloud check, or deploy "
                    "with fix to recreate it",
                )

    # -- 2. placement and identity ---------------------------------------

    def _place(self, deployment: str, group: GroupSpec) -> PlacedGroup:
        rng = None
        if self.options.randomize_az_placement:
            rng = random.Random(f"{self.options.random_seed}:{deployment}:{group.name}")
        result = place_instances(
            group.name,
            group.instances,
            group.azs,
            self.by_group.get(group.name, []),
            static_pools=static_pools(group),
            pick=tie_breaker(rng),
            path=group.path,
        )
        with_uuid = [
            (p, p.existing.uuid if p.existing else self._new_uuid(group)) for p in result.placements
        ]
        return PlacedGroup(group, with_uuid, result.obsolete)

    def _new_uuid(self, group: GroupSpec) -> str:
        uuid = self.uuid_factory()
        if uuid in self._taken_uuids:
            raise PlanError(group.path, f"uuid_factory returned uuid '{uuid}', already in use")
        self._taken_uuids.add(uuid)
        return uuid

    # -- 4. desired state and changes ------------------------------------

    def _group_plan(
        self, placed: PlacedGroup, cloud: CloudConfig, reservations: Reservations
    ) -> InstanceGroupPlan:
        group, items, obsolete = placed
        previous = len(self.by_group.get(group.name, []))
        plans = [
            instance_plan(
                group,
                placement,
                uuid,
                desired(group, placement, cloud, reservations.get(uuid, {})),
                self.options,
            )
            for placement, uuid in items
        ]
        return InstanceGroupPlan(
            name=group.name,
            lifecycle=group.lifecycle,
            update=group.update,
            instance_plans=tuple(plans),
            obsolete_plans=tuple(
                delete_plan(e, obsolete_reason(group, e, previous)) for e in obsolete
            ),
            azs=group.azs,
        )

    # -- 5. create-swap-delete -------------------------------------------

    @staticmethod
    def _swap_ips_of_duplicates(
        allocator: IpAllocator, placed: list[PlacedGroup], group_plans: list[InstanceGroupPlan]
    ) -> list[InstanceGroupPlan]:
        """Fresh dynamic IPs for the duplicate VMs."""
        duplicates = {p.uuid for g in group_plans for p in g.instance_plans if p.needs_duplicate_vm}
        if not duplicates:
            return group_plans
        fresh = fresh_for_duplicates(allocator, placed, duplicates)
        return [
            replace(
                g,
                instance_plans=tuple(
                    with_networks(p, fresh.get(p.uuid, {})) for p in g.instance_plans
                ),
            )
            for g in group_plans
        ]

    # -- 6. groups removed from the manifest -----------------------------

    def _removed_groups(
        self, groups_in_manifest: set[str], deployment_update: object
    ) -> tuple[InstanceGroupPlan, ...]:
        obsolete_groups = []
        for group_name, instances in self.by_group.items():
            if group_name in groups_in_manifest:
                continue
            for instance in instances:
                if instance.ignore:
                    raise PlanError(
                        "instance_groups",
                        f"instance group '{group_name}' was removed but contains ignored "
                        f"instance {instance.label}; deleting it is not allowed",
                    )
            obsolete_groups.append(
                InstanceGroupPlan(
                    name=group_name,
                    lifecycle="service",
                    update=self._obsolete_group_update(deployment_update),
                    instance_plans=(),
                    obsolete_plans=tuple(
                        delete_plan(e, "instance group removed from the manifest")
                        for e in sorted(instances, key=lambda e: -e.index)
                    ),
                )
            )
        return tuple(obsolete_groups)

    def _obsolete_group_update(self, deployment_update: object) -> UpdateConfig:
        try:
            return resolve_update_config(
                deployment_update,  # type: ignore[arg-type]
                default_vm_strategy=self.options.default_vm_strategy,
                canaries=self.options.canaries,
                max_in_flight=self.options.max_in_flight,
            )
        except UpdateConfigError:
            # The deployment-level block may be incomplete when every group
            # brought its own; deleting needs only max_in_flight.
            return UpdateConfig("0", "1", WatchTime(0, 0), WatchTime(0, 0))


def plan_deployment(
    manifest: Mapping[str, Any],
    cloud_config: Mapping[str, Any],
    existing: Sequence[ExistingInstance] = (),
    stemcells: Mapping[str, StemcellRef] | None = None,
    ips_in_use: Mapping[str, str] | None = None,
    options: PlanOptions | None = None,
    jobs_fingerprint: Callable[[Mapping[str, Any]], str] | None = None,
    uuid_factory: Callable[[], str] | None = None,
) -> DeploymentPlan:
    """Plan a deployment in one call (see ``DeploymentPlanner``)."""
    return DeploymentPlanner(
        manifest,
        cloud_config,
        existing,
        stemcells,
        ips_in_use,
        options,
        jobs_fingerprint,
        uuid_factory,
    ).plan()
