"""What ``deploy --fix`` recreates: instances whose VM is missing or whose agent is silent.

BOSH's deploy reads every existing instance's agent (``get_state``) before
planning; an agent that does not answer fails the deploy unless ``--fix``,
which recreates it. Here, with ``fix`` only:

1. every instance that has a VM (not ``ignore``d, not ``detached``) is
   looked up in vCenter in one read (``vm_health``): a VM vCenter does not
   have is a ``MISSING_VM``;
2. the agents of the others are pinged in parallel (``PING_TIMEOUT``, no
   retry, as cloud check does): one that does not answer (a VM powered off,
   an agent gone) is an ``UNRESPONSIVE_AGENT``.

The result (instance uuid -> reason) goes to the planner as
``PlanOptions.unreachable``; a plain deploy asks nothing and leaves such
instances as they are.
"""

from __future__ import annotations

from typing import Any

from director.agents.errors import AgentError
from director.models import Deployment, Instance, InstanceState, Vm
from director.planning import MISSING_VM, UNRESPONSIVE_AGENT

from .agent import agent_for
from .run import parallel

#: How long a ping may take before the agent counts as unresponsive (BOSH cck: 10 s).
PING_TIMEOUT = 10.0


def unreachable_instances(cloud: Any, deployment: Deployment) -> dict[str, str]:
    """``{instance uuid: MISSING_VM | UNRESPONSIVE_AGENT}`` of the deployment's instances."""
    vms: list[tuple[str, Vm, str]] = []
    for instance in (
        Instance.objects.filter(deployment=deployment, compilation=False, ignore=False)
        .exclude(state=InstanceState.DETACHED)
        .prefetch_related("vms")
        .order_by("group", "index")
    ):
        vm = instance.active_vm
        if vm is not None:
            vms.append((instance.uuid, vm, instance.name))
    if not vms:
        return {}
    present = cloud.vm_health([vm.cid for _, vm, _ in vms])
    found = {uuid: MISSING_VM for uuid, vm, _ in vms if vm.cid not in present}
    to_ping = [item for item in vms if item[0] not in found]
    answers = parallel(to_ping, _answers, lambda item: item[2])
    for (uuid, _, _), answered in zip(to_ping, answers, strict=True):
        if not answered:
            found[uuid] = UNRESPONSIVE_AGENT
    return found


def _answers(item: tuple[str, Vm, str]) -> bool:
    _, vm, name = item
    try:
        agent_for(vm, name).ping(timeout=PING_TIMEOUT)
    except AgentError:
        return False
    return True
